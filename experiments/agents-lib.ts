// What the agent experiments (dqn.ts, ppo.ts, transfer.ts) share: their sizes (full and a tiny
// version the tests run), the config they run under (every scenario sized, DQN's raw windows, one
// runs folder so that the trial counter sees every configuration tried), the sequence model the
// transfer agents start from (trained once per config on a synthetic dataset and reused), training
// runs of an agent through the same library call `ctm train` makes, comparisons through the one
// `comparePolicies`, and the formatting of their tables. Never looks at a test market to choose
// anything: choices are made on validation markets (the agents' own validation backtests).

import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  comparePolicies,
  type ComparePolicySpec,
  type CompareResult,
} from '../src/evaluation/compare.js';
import type { ScenarioSplit } from '../src/evaluation/scenarios.js';
import { runAgentTraining, type AgentAlgorithm } from '../src/models/reinforcement/agent-runs.js';
import { runModelTraining } from '../src/models/time-series/training-run.js';
import { resolvePolicy } from '../src/policies.js';
import { buildSyntheticDataset } from '../src/synthetic-data/dataset-builder.js';
import { defaultConfig, type Config } from '../src/utils/config.js';
import { logger } from '../src/utils/logger.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Sizes of an agent experiment. */
export interface AgentScale {
  name: 'full' | 'tiny';
  /** Training seeds (>= 3 at full size). */
  seeds: number[];
  /** Env steps of one training run per scenario. */
  dqnSteps: number;
  ppoSteps: number;
  /** PPO transfer: env steps of the fine-tuning phase at the end of `ppoSteps`. */
  finetuneSteps: number;
  /** Days of each synthetic market and markets per split of every scenario. */
  days: number;
  markets: { train: number; validation: number; test: number };
  /** Bars per timeframe DQN (and raw-input PPO) observe. */
  agentWindows: Record<'15m' | '4h' | '1d', number>;
  /** The sequence model of the transfer agents: dataset samples, epochs, steps per epoch. */
  datasetSamples: number;
  modelEpochs: number;
  modelStepsPerEpoch: number;
  /** Seeds of the random baseline. */
  compareSeeds: number;
  /** Real BTC/USDT: walk-forward folds (indices of scenarios.real.testYears) and steps per fold. */
  realFolds: number[];
  realSteps: number;
}

/** About an hour per experiment on the shared 2-core machine (two experiments side by side). */
export const FULL: AgentScale = {
  name: 'full',
  seeds: [1, 2, 3],
  dqnSteps: 20_000,
  ppoSteps: 30_720,
  finetuneSteps: 8192,
  days: 60,
  markets: { train: 8, validation: 3, test: 8 },
  agentWindows: { '15m': 8, '4h': 4, '1d': 2 },
  datasetSamples: 20_000,
  modelEpochs: 4,
  modelStepsPerEpoch: 250,
  compareSeeds: 10,
  realFolds: [0, 1, 2],
  realSteps: 20_000,
};

/** A seconds-long version for the tests. */
export const TINY: AgentScale = {
  name: 'tiny',
  seeds: [1, 2],
  dqnSteps: 300,
  ppoSteps: 256,
  finetuneSteps: 128,
  days: 8,
  markets: { train: 1, validation: 1, test: 1 },
  agentWindows: { '15m': 2, '4h': 1, '1d': 1 },
  datasetSamples: 300,
  modelEpochs: 1,
  modelStepsPerEpoch: 3,
  compareSeeds: 2,
  realFolds: [],
  realSteps: 300,
};

/**
 * The config the agent experiments run under: the defaults, every synthetic scenario sized by
 * `scale`, DQN's raw windows, and the runs folder `runsDir` (default runs/experiments).
 */
export function experimentConfig(scale: AgentScale, runsDir?: string): Config {
  const c = defaultConfig();
  c.paths.runs = runsDir ?? join(ROOT, 'runs', 'experiments');
  for (const sc of Object.values(c.scenarios.synthetic)) {
    sc.days = scale.days;
    sc.seeds.train.count = scale.markets.train;
    sc.seeds.validation.count = scale.markets.validation;
    sc.seeds.test.count = scale.markets.test;
  }
  c.env.windows = { ...scale.agentWindows };
  c.backtest.random.seeds = scale.compareSeeds;
  c.ppo.transfer.frozenTimesteps = Math.max(0, scale.ppoSteps - scale.finetuneSteps);
  c.ppo.numEnvs = 4;
  c.ppo.nSteps = scale.name === 'tiny' ? 64 : 512;
  c.ppo.batchSize = scale.name === 'tiny' ? 64 : 128;
  c.dqn.checkpointEvery = 1_000_000;
  c.ppo.checkpointEveryUpdates = 1_000_000;
  if (scale.name === 'tiny') {
    c.windows = { '15m': 8, '4h': 4, '1d': 2 };
    c.dataset.workers = 1;
    c.model.hiddenDims = 8;
    c.model.denseUnits = 8;
    c.model.attentionHeads = 2;
    c.dqn.learningStarts = 100;
    c.ppo.nEpochs = 2;
  }
  return c;
}

/** A config with one seed (all training randomness follows `config.seed`). */
export function withSeed(config: Config, seed: number): Config {
  return { ...config, seed };
}

/**
 * The sequence model the transfer agents start from: trained once per (config, scale) on a
 * synthetic dataset of `scale.datasetSamples` samples, its run directory reused by later calls.
 */
export async function sequenceModel(config: Config, scale: AgentScale): Promise<string> {
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        config.model,
        config.dataset,
        config.windows,
        config.features,
        scale.datasetSamples,
        scale.modelEpochs,
        scale.modelStepsPerEpoch,
      ]),
    )
    .digest('hex')
    .slice(0, 12);
  const marker = join(config.paths.runs, `sequence-model-${key}.txt`);
  if (existsSync(marker)) {
    const dir = readFileSync(marker, 'utf8').trim();
    if (existsSync(join(dir, 'model'))) return dir;
  }
  const c = structuredClone(config);
  c.model.train.epochs = scale.modelEpochs;
  c.model.train.maxStepsPerEpoch = scale.modelStepsPerEpoch;
  const datasetDir = join(config.paths.runs, `dataset-${key}`);
  if (!existsSync(join(datasetDir, 'manifest.json')))
    await buildSyntheticDataset(
      scale.datasetSamples,
      {},
      { outDir: datasetDir, config: c, seed: c.seed, overwrite: true },
    );
  const r = await runModelTraining({ config: c, source: 'dataset', dataDir: datasetDir });
  const { writeFileAtomicSync } = await import('../src/utils/fs.js');
  writeFileAtomicSync(marker, r.run.dir + '\n');
  logger.info({ run: r.run.dir, validation: r.validation.accuracy }, 'sequence model for transfer');
  return r.run.dir;
}

/** One agent training run (the library call behind `ctm train`); returns its run directory. */
export async function trainAgent(
  config: Config,
  algorithm: AgentAlgorithm,
  scenarios: readonly string[],
  seed: number,
  options: {
    timesteps: number;
    initFrom?: string;
    encoderInit?: 'pretrained' | 'random';
    fold?: number;
  },
): Promise<{ dir: string; validation: number }> {
  const r = await runAgentTraining({
    config: withSeed(config, seed),
    algorithm,
    scenarios,
    timesteps: options.timesteps,
    ...(options.initFrom === undefined ? {} : { initFrom: options.initFrom }),
    ...(options.encoderInit === undefined ? {} : { encoderInit: options.encoderInit }),
    ...(options.fold === undefined ? {} : { fold: options.fold }),
    commandLine: ['experiments', algorithm, ...scenarios, `seed ${seed}`],
  });
  const v = r.validation.map((x) => x.totalReturn ?? 0);
  return { dir: r.run.dir, validation: v.reduce((a, b) => a + b, 0) / Math.max(1, v.length) };
}

/** `comparePolicies` of `policies` on a scenario's split (test unless told). */
export function compare(
  config: Config,
  scenario: string,
  policies: readonly ComparePolicySpec[],
  options: { split?: ScenarioSplit; markets?: readonly number[] } = {},
): Promise<CompareResult> {
  return comparePolicies({
    config,
    scenario,
    policies,
    seeds: config.backtest.random.seeds,
    resolvePolicy,
    ...(options.split === undefined ? {} : { split: options.split }),
    ...(options.markets === undefined ? {} : { markets: options.markets }),
  });
}

/** Percent with a sign and one decimal. */
export function pct(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;
}

/** Mean and standard error of `xs`. */
export function meanSe(xs: readonly number[]): { mean: number; se: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : NaN;
  return { mean, se: sd / Math.sqrt(n) };
}

/** A markdown table of a comparison: mean ± sd of return, Sharpe, drawdown, turnover, fee drag, the differences and DSR. */
export function compareMarkdown(result: CompareResult): string {
  const rows = result.policies.map((p) => {
    const s = p.stats;
    const ms = (k: keyof typeof s, f: (x: number) => string, g = f): string =>
      s[k].mean === null ? '—' : `${f(s[k].mean)}${s[k].sd === null ? '' : ` ± ${g(s[k].sd)}`}`;
    const sdPct = (x: number): string => `${(100 * x).toFixed(1)}%`;
    const diff = (d: typeof p.vsRandom): string =>
      d.n === 0
        ? '—'
        : `${pct(d.mean)} ± ${pct(d.se ?? NaN).replace('+', '')}${d.beats === true ? ' **beats**' : ''}`;
    return `| ${p.label} | ${p.seeds}×${result.markets.length} | ${ms('totalReturn', pct, sdPct)} | ${ms('sharpe', (x) => x.toFixed(2))} | ${ms('maxDrawdown', sdPct)} | ${ms('turnover', (x) => x.toFixed(1))} | ${ms('feeDrag', sdPct)} | ${diff(p.vsSpotBuyHold)} | ${diff(p.vsRandom)} | ${p.trials} |`;
  });
  return [
    '| policy | seeds×markets | total return | Sharpe | max drawdown | turnover | fee drag | vs spot buy-and-hold | vs random | trials |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}
