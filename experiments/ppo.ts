// Experiment of the PPO agent (section `ppo` of docs/results.md), the spec's step 7: "build PPO
// agent, transfer learning from time series model, train and evaluate".
// 1. Recipe, chosen on validation markets only: PPO on raw features (the newest bars, as DQN) and
//    PPO on the sequence model's encoders (frozen, then fine-tuned at a lower rate), each deciding
//    every bar or every 16 bars (env.decisionInterval), trained on `mix`, >= 3 seeds; the best mean
//    validation return is kept.
// 2. That recipe and DQN (the shipped recipe, the same markets and seeds) tested once on the `mix`
//    test markets after costs, beside spot buy-and-hold, flat, random (over seeds) and the pattern
//    oracle: the fraction of the pattern oracle's profit PPO earns, per seed, and whether it beats
//    spot buy-and-hold, random and DQN by more than two standard errors.
// Run: `npm run experiments ppo` (or `node --import tsx experiments/ppo.ts [--tiny] [--out FILE]`).

import { fileURLToPath } from 'node:url';
import { parsePolicyList } from '../src/evaluation/compare.js';
import { initTensorflow } from '../src/models/common/backend.js';
import type { Config } from '../src/utils/config.js';
import { logger } from '../src/utils/logger.js';
import {
  compare,
  compareMarkdown,
  experimentConfig,
  meanSe,
  pct,
  FULL,
  TINY,
  sequenceModel,
  trainAgent,
} from './agents-lib.js';
import { writeResultsSection } from './results-section.js';
import type { AgentExperimentOptions } from './dqn.js';

const log = logger.child({ module: 'experiment.ppo' });
const SECTION = 'ppo';

interface Recipe {
  transfer: boolean;
  /** Bars each action holds (env.decisionInterval). */
  interval: number;
}

const RECIPES: Record<string, Recipe> = {
  'raw features, every bar': { transfer: false, interval: 1 },
  'raw features, every 16 bars': { transfer: false, interval: 16 },
  'sequence-model encoders, every bar': { transfer: true, interval: 1 },
  'sequence-model encoders, every 16 bars': { transfer: true, interval: 16 },
};

/** Runs the experiment and returns its section of docs/results.md. */
export async function runPpoExperiment(options: AgentExperimentOptions = {}): Promise<string> {
  const scale = options.tiny === true ? TINY : FULL;
  const base = experimentConfig(scale, options.runsDir);
  await initTensorflow(base.model.backend);
  const started = Date.now();
  const model = await sequenceModel(base, scale);
  const withInterval = (decisionInterval: number): Config => ({
    ...base,
    env: { ...base.env, decisionInterval },
  });

  // 1. Recipe on validation markets.
  const runs = new Map<string, { dirs: string[]; vals: number[] }>();
  for (const [name, r] of Object.entries(RECIPES)) {
    const dirs: string[] = [];
    const vals: number[] = [];
    for (const seed of scale.seeds) {
      const out = await trainAgent(withInterval(r.interval), 'ppo', ['mix'], seed, {
        timesteps: scale.ppoSteps,
        ...(r.transfer ? { initFrom: model } : {}),
      });
      dirs.push(out.dir);
      vals.push(out.validation);
      log.info({ recipe: name, seed, validation: out.validation }, 'recipe run');
    }
    runs.set(name, { dirs, vals });
  }
  const best = [...runs.entries()].sort(
    (a, b) => meanSe(b[1].vals).mean - meanSe(a[1].vals).mean,
  )[0];

  // DQN on the same markets and seeds (the shipped recipe, at the chosen decision interval).
  const chosen = withInterval(RECIPES[best[0]].interval);
  const dqn: string[] = [];
  for (const seed of scale.seeds)
    dqn.push((await trainAgent(chosen, 'dqn', ['mix'], seed, { timesteps: scale.dqnSteps })).dir);

  // 2. Test once.
  const result = await compare(
    chosen,
    'mix',
    parsePolicyList(
      `ppo=${best[1].dirs.join('+')},dqn=${dqn.join('+')},spot-buy-hold,flat,random,pattern-oracle`,
    ),
  );
  const ppo = result.policies.find((p) => p.label === 'ppo')!;
  const oracle = result.policies.find((p) => p.label === 'pattern-oracle')!;
  const dqnRes = result.policies.find((p) => p.label === 'dqn')!;
  const oracleMean = oracle.stats.totalReturn.mean ?? NaN;
  const perSeed = scale.seeds.map((_, k) => {
    const xs = ppo.samples.filter((s) => s.seed === k).map((s) => s.values.totalReturn ?? 0);
    return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  });
  // PPO minus DQN, paired per market and seed index.
  const diffs = ppo.samples.map((s) => {
    const d = dqnRes.samples.find((x) => x.market === s.market && x.seed === s.seed);
    return (s.values.totalReturn ?? 0) - (d?.values.totalReturn ?? 0);
  });
  const vsDqn = meanSe(diffs);
  const beatsDqn = vsDqn.mean > 2 * vsDqn.se;
  const lines = [
    '## PPO',
    '',
    `\`npm run experiments ppo\` (${scale.name} scale, ${((Date.now() - started) / 60_000).toFixed(0)} min). Fees, slippage and funding on in every backtest. The sequence model for transfer: ${model} (a synthetic dataset of ${scale.datasetSamples.toLocaleString('en-US')} samples, ${scale.modelEpochs} epochs of ${scale.modelStepsPerEpoch} steps); encoders frozen for ${(scale.ppoSteps - scale.finetuneSteps).toLocaleString('en-US')} env steps (embeddings cached), then fine-tuned for ${scale.finetuneSteps.toLocaleString('en-US')} at ppo.transfer.finetuneLearningRate.`,
    '',
    '### Recipe (chosen on validation markets)',
    '',
    `Trained on \`mix\` (${scale.markets.train} markets of ${scale.days} days, ${scale.ppoSteps.toLocaleString('en-US')} env steps, 4 envs), seeds ${scale.seeds.join(', ')}; mean total return on the validation markets after costs, mean ± standard error over seeds. Kept: **${best[0]}**.`,
    '',
    '| recipe | validation return | per seed |',
    '|---|---:|---|',
    ...[...runs.entries()].map(([name, r]) => {
      const m = meanSe(r.vals);
      return `| ${name} | ${pct(m.mean)} ± ${(100 * m.se).toFixed(1)}% | ${r.vals.map((v) => pct(v)).join(', ')} |`;
    }),
    '',
    `### Test markets of \`mix\` (${result.markets.length}), after costs`,
    '',
    compareMarkdown(result),
    '',
    `- PPO's share of the pattern oracle's mean total return (${pct(oracleMean)}), per seed: ${perSeed.map((x) => (Number.isFinite(oracleMean) && oracleMean !== 0 ? `${((100 * x) / oracleMean).toFixed(0)}%` : '—')).join(', ')} (goal >= 50%).`,
    `- PPO − DQN, paired per market and seed: ${pct(vsDqn.mean)} ± ${(100 * vsDqn.se).toFixed(1)}%${beatsDqn ? ' (beats DQN by more than two standard errors)' : ' (does not beat DQN by two standard errors)'}; vs spot buy-and-hold ${ppo.vsSpotBuyHold.beats === true ? 'beats' : 'does not beat'}, vs random ${ppo.vsRandom.beats === true ? 'beats' : 'does not beat'}.`,
    '',
  ];
  const body = lines.join('\n');
  log.info({ minutes: (Date.now() - started) / 60_000 }, 'ppo experiment done');
  return body;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv.indexOf('--out');
  const body = await runPpoExperiment({ tiny: process.argv.includes('--tiny') });
  writeResultsSection(SECTION, body, out > 0 ? process.argv[out + 1] : undefined);
}
