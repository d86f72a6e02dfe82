// The whole system end to end, behind `npm start` / `ctm run` (config section `pipeline`): on the
// scenario's synthetic markets (no download, no service) it checks the features for look-ahead,
// builds a synthetic dataset, trains the multi-timeframe sequence model on it, trains DQN, PPO with
// the model's encoders and PPO from a freshly initialised encoder of the same architecture, and
// compares them with the baselines on the scenario's held-out test markets, into one run folder
// with one report. Each stage calls the library function its own `ctm` command calls and records its
// output; a crashed run continues with `--resume RUN`, and `--reuse RUN --stage NAME` starts a new
// run at NAME from RUN's earlier outputs. It owns the order of the stages and nothing else.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Candles, Timeframe } from './data-processing/candles.js';
import { checkFeatureLookAhead } from './data-processing/feature-engineering.js';
import { CheckpointError, ConfigError, UsageError } from './errors.js';
import { backtestStrategy, backtestReportInput } from './evaluation/backtest.js';
import {
  comparisonPayload,
  formatCompareTable,
  parsePolicyList,
  runCompare,
  type CompareResult,
} from './evaluation/compare.js';
import {
  buildBacktestPayload,
  emptyReportPayload,
  writeRunReport,
  type ReportPayload,
} from './evaluation/report.js';
import { checkScenarioName, scenarioMarkets } from './evaluation/scenarios.js';
import { agentPolicy, runAgentTraining } from './models/reinforcement/agent-runs.js';
import { runModelTraining } from './models/time-series/training-run.js';
import { resolvePolicy } from './policies.js';
import { buildSyntheticDataset } from './synthetic-data/dataset-builder.js';
import type { Config } from './utils/config.js';
import { logger } from './utils/logger.js';
import { createProgress } from './utils/progress.js';
import { createRun, openRun, readHistory, withRun, type Run } from './utils/runs.js';

/** The stages of a pipeline run, in order. */
export const PIPELINE_STAGES = [
  'lookahead',
  'dataset',
  'model',
  'dqn',
  'ppo-transfer',
  'ppo-random',
  'compare',
] as const;
/** One stage. */
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/** Options of `runPipeline`. */
export interface PipelineOptions {
  /** The resolved config (ignored with `resume`: the run's own config is used). */
  readonly config: Config;
  /** Use `pipeline.sizes.quick` (a first look in under 2 minutes) instead of `.default`. */
  readonly quick?: boolean;
  /** Continue this pipeline run (id or directory) after a crash, at its first unfinished stage. */
  readonly resume?: string;
  /** Start a new run at `stage`, taking the earlier stages' outputs from this pipeline run. */
  readonly reuse?: string;
  /** The stage `reuse` starts at. */
  readonly stage?: PipelineStage;
  /** Called with each line of the summary as it becomes known. */
  readonly onLine?: (line: string) => void;
  /** The command line, recorded in run.json. */
  readonly commandLine?: readonly string[];
}

/** What each stage left behind (run directories; the look-ahead check's leak count). */
export interface PipelineOutputs {
  lookahead?: { leaks: number; values: number };
  dataset?: string;
  model?: string;
  dqn?: string;
  'ppo-transfer'?: string;
  'ppo-random'?: string;
  compare?: string;
}

/** What `runPipeline` did. */
export interface PipelineResult {
  /** The pipeline's run directory (its report.html is the overview). */
  readonly runDir: string;
  /** Every stage's output. */
  readonly outputs: PipelineOutputs;
  /** The comparison (null when the compare stage did not run). */
  readonly comparison: CompareResult | null;
  /** The comparison table as text. */
  readonly table: string;
}

/**
 * The config a pipeline run uses: `config` with the sizes (`quick` or `default`) applied to the
 * sections they size (dataset, model.train, the scenario's markets, dqn, ppo, env.windows for DQN,
 * env.decisionInterval for every agent).
 * @throws {ConfigError} for an unknown scenario or a stage list out of order.
 */
export function pipelineConfig(config: Config, quick: boolean): Config {
  const p = config.pipeline;
  try {
    checkScenarioName(config, p.scenario);
  } catch (err) {
    throw new ConfigError('pipeline.scenario', (err as Error).message);
  }
  if (p.scenario === 'real' || p.data === 'real')
    throw new ConfigError(
      'pipeline.data',
      'the end-to-end run on real candles is not built yet: train on the store with ctm train model / ctm train dqn --source real / ctm compare --scenario real',
    );
  const order = p.stages.map((s) => PIPELINE_STAGES.indexOf(s));
  if (order.some((k, i) => i > 0 && k <= order[i - 1]))
    throw new ConfigError(
      'pipeline.stages',
      `stages must be in the order ${PIPELINE_STAGES.join(', ')}`,
    );
  const z = quick ? p.sizes.quick : p.sizes.default;
  const c = structuredClone(config);
  const sc = c.scenarios.synthetic[p.scenario];
  sc.days = z.marketDays;
  sc.seeds.train.count = z.trainMarkets;
  sc.seeds.validation.count = z.validationMarkets;
  sc.seeds.test.count = z.testMarkets;
  c.model.train.epochs = z.modelEpochs;
  c.model.train.maxStepsPerEpoch = z.modelStepsPerEpoch;
  c.dqn.totalTimesteps = z.dqnTimesteps;
  c.ppo.totalTimesteps = z.ppoTimesteps;
  c.ppo.transfer.frozenTimesteps = Math.max(0, z.ppoTimesteps - z.ppoFinetuneTimesteps);
  c.backtest.random.seeds = z.compareSeeds;
  c.env.windows = { ...p.agentWindows };
  c.env.decisionInterval = p.decisionInterval;
  return c;
}

interface PipelineState {
  quick: boolean;
  outputs: PipelineOutputs;
  /** Stages finished, in order. */
  done: PipelineStage[];
  /** The stage started last (its training run resumes from its checkpoint on `--resume`). */
  current: PipelineStage | null;
  /** The training run of `current`, once created. */
  currentRun: string | null;
  /** The pipeline run whose outputs were reused, and from which stage. */
  reusedFrom: { run: string; stage: PipelineStage } | null;
}

/**
 * Runs the pipeline (see the file comment) into a run folder of kind `pipeline`: run.json (the
 * resolved config with the sizes applied, the stages' outputs), metrics.json (the comparison) and
 * report.html (the comparison, each policy's equity against spot buy-and-hold, the best agent's
 * trades on the candles with the higher timeframes as known at each decision, and the training
 * curves of the sequence model and the agents).
 * @throws {ConfigError} for a config that cannot run; {UsageError}/{CheckpointError} for a bad
 *   `--resume`/`--reuse`; and as the stages' functions do.
 */
export async function runPipeline(options: PipelineOptions): Promise<PipelineResult> {
  const say = options.onLine ?? ((line: string) => logger.info(line));
  let run: Run;
  let config: Config;
  let state: PipelineState;
  if (options.resume !== undefined) {
    run = openRun(options.resume, options.config.paths.runs);
    if (run.info.kind !== 'pipeline')
      throw new UsageError(`run ${run.info.id} is a ${run.info.kind} run, not a pipeline run`);
    config = run.info.config;
    state = run.info.extra as unknown as PipelineState;
    run.update({ status: 'running' });
    say(`resuming pipeline run ${run.id} after ${state.done.join(', ') || 'no stage'}`);
  } else {
    const quick = options.quick ?? false;
    config = pipelineConfig(options.config, quick);
    state = { quick, outputs: {}, done: [], current: null, currentRun: null, reusedFrom: null };
    if (options.reuse !== undefined) {
      const stage = options.stage ?? 'compare';
      const from = openRun(options.reuse, config.paths.runs);
      if (from.info.kind !== 'pipeline')
        throw new UsageError(
          `--reuse ${options.reuse}: a ${from.info.kind} run, not a pipeline run`,
        );
      const prior = from.info.extra as unknown as PipelineState;
      config = from.info.config;
      for (const s of PIPELINE_STAGES.slice(0, PIPELINE_STAGES.indexOf(stage))) {
        if (!config.pipeline.stages.includes(s)) continue;
        if (!prior.done.includes(s))
          throw new UsageError(
            `--reuse ${from.id}: its ${s} stage did not finish, so ${stage} has no input from it`,
            { hint: `ctm run --resume ${from.id} finishes it` },
          );
        (state.outputs as Record<string, unknown>)[s] = (prior.outputs as Record<string, unknown>)[
          s
        ];
        state.done.push(s);
      }
      state.quick = prior.quick;
      state.reusedFrom = { run: from.dir, stage };
    }
    run = createRun({
      kind: 'pipeline',
      config,
      commandLine: options.commandLine ? [...options.commandLine] : undefined,
    });
    run.update({ extra: { ...state } });
  }
  return withRun(run, () => stages(run, config, state, options, say));
}

async function stages(
  run: Run,
  config: Config,
  state: PipelineState,
  options: PipelineOptions,
  say: (line: string) => void,
): Promise<PipelineResult> {
  const p = config.pipeline;
  const save = (): void => run.update({ extra: { ...state } });
  const started = Date.now();
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(0)} s`;
  const commandLine = ['run', ...(options.commandLine ?? [])];
  const scenario = p.scenario;
  say(
    `pipeline run ${run.dir}${state.quick ? ' (--quick)' : ''}: scenario ${scenario}, stages ${p.stages.join(' -> ')}`,
  );
  const bar = createProgress('pipeline', p.stages.length, { unit: 'stages' });
  bar.update(state.done.length);
  let comparison: CompareResult | null = null;
  let table = '';
  for (const stage of p.stages) {
    if (state.done.includes(stage)) continue;
    const resumeRun = state.current === stage ? state.currentRun : null;
    state.current = stage;
    state.currentRun = resumeRun;
    save();
    const onRun = (dir: string): void => {
      state.currentRun = dir;
      save();
    };
    bar.status(stage);
    switch (stage) {
      case 'lookahead': {
        // The features of one training market, truncated and poisoned at every cut.
        const [m] = await scenarioMarkets(config, scenario, 'train', { indices: [0] });
        const report = checkFeatureLookAhead(new Map(m.candles) as Map<Timeframe, Candles>, {
          spec: config.features,
          windows: config.windows,
          cuts: config.features.lookahead.cuts,
          seed: config.seed,
          checks: config.features.lookahead.checks,
        });
        state.outputs.lookahead = { leaks: report.leaks.length, values: report.valuesCompared };
        say(
          `look-ahead check: ${report.leaks.length} leaks in ${report.valuesCompared.toLocaleString('en-US')} values over ${report.cutRows.length} cuts of ${m.name} (${elapsed()})`,
        );
        if (report.leaks.length > 0)
          throw new ConfigError(
            'features',
            `the features leak the future (${report.leaks.length} leaks): see ctm lookahead-check`,
          );
        break;
      }
      case 'dataset': {
        const dir = run.path('dataset');
        const z = state.quick ? p.sizes.quick : p.sizes.default;
        const manifest = await buildSyntheticDataset(
          z.datasetSamples,
          {},
          {
            outDir: dir,
            config,
            seed: config.seed,
            overwrite: true,
          },
        );
        state.outputs.dataset = dir;
        say(`dataset: ${manifest.samples} synthetic samples in ${dir} (${elapsed()})`);
        break;
      }
      case 'model': {
        const dataset = need(state, 'dataset', stage);
        const r = await runModelTraining({
          config,
          source: 'dataset',
          dataDir: dataset,
          ...(resumeRun === null ? {} : { resume: resumeRun }),
          commandLine: [...commandLine, '(model)'],
          onRun: (r) => onRun(r.dir),
        });
        state.outputs.model = r.run.dir;
        say(
          `sequence model: ${r.steps} steps, validation accuracy ${pct(r.validation.accuracy)}${r.test === null ? '' : `, test ${pct(r.test.accuracy)}`} in ${r.run.dir} (${elapsed()})`,
        );
        break;
      }
      case 'dqn':
      case 'ppo-transfer':
      case 'ppo-random': {
        const model = stage === 'dqn' ? null : need(state, 'model', stage);
        const r = await runAgentTraining({
          config,
          algorithm: stage === 'dqn' ? 'dqn' : 'ppo',
          scenarios: [scenario],
          ...(model === null ? {} : { initFrom: model }),
          ...(stage === 'ppo-random' ? { encoderInit: 'random' as const } : {}),
          ...(resumeRun === null ? {} : { resume: resumeRun }),
          commandLine: [...commandLine, `(${stage})`],
          onRun: (r) => onRun(r.dir),
        });
        state.outputs[stage] = r.run.dir;
        const v = r.validation.map((x) => x.totalReturn ?? 0);
        say(
          `${stage}: ${r.steps} env steps, validation mean total return ${pct(v.reduce((a, b) => a + b, 0) / Math.max(1, v.length))} in ${r.run.dir} (${elapsed()})`,
        );
        break;
      }
      case 'compare': {
        const agents = (['dqn', 'ppo-transfer', 'ppo-random'] as const)
          .filter((s) => state.outputs[s] !== undefined)
          .map((s) => `${s}=${state.outputs[s]}`);
        const policies = parsePolicyList([...agents, ...p.baselines].join(','));
        const out = await runCompare({
          config,
          scenario,
          policies,
          seeds: config.backtest.random.seeds,
          resolvePolicy,
          commandLine: [...commandLine, '(compare)'],
        });
        state.outputs.compare = out.run.dir;
        comparison = out.result;
        table = out.table;
        say(
          `comparison on ${scenario} test markets (${out.result.markets.length}), after costs (${elapsed()}):`,
        );
        for (const line of out.table.split('\n')) say(line);
        break;
      }
    }
    state.done.push(stage);
    state.current = null;
    state.currentRun = null;
    save();
    bar.tick();
  }
  bar.stop();
  if (comparison === null && state.outputs.compare !== undefined) {
    const c = openRun(state.outputs.compare, config.paths.runs);
    comparison = readJson<CompareResult>(c.path('metrics.json'));
    table = formatCompareTable(comparison);
  }
  if (comparison !== null) run.writeMetrics({ comparison, outputs: state.outputs });
  const report = await writePipelineReport(run, config, state, comparison);
  say(`report: ${join(run.dir, report)}`);
  return { runDir: run.dir, outputs: state.outputs, comparison, table };
}

function need(state: PipelineState, stage: 'dataset' | 'model', by: PipelineStage): string {
  const out = state.outputs[stage];
  if (out === undefined || !existsSync(out))
    throw new CheckpointError(
      out ?? '(none)',
      `stage ${by} needs the output of stage ${stage}, which this run does not have`,
      { hint: `add ${stage} to pipeline.stages, or --reuse a pipeline run that has it` },
    );
  return out;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/**
 * The pipeline's report: the comparison (table and each policy's mean equity, spot buy-and-hold
 * included), the best agent's backtest on the first test market (its trades on the candles, the
 * higher timeframes as known at each decision, equity against spot buy-and-hold, drawdowns), and
 * the training curves of the sequence model and every agent.
 */
async function writePipelineReport(
  run: Run,
  config: Config,
  state: PipelineState,
  comparison: CompareResult | null,
): Promise<string> {
  let payload: ReportPayload = emptyReportPayload(
    `crypto-trading-model: agents and baselines on ${config.pipeline.scenario}`,
  );
  const agents = (['dqn', 'ppo-transfer', 'ppo-random'] as const).filter(
    (s) => state.outputs[s] !== undefined,
  );
  if (comparison !== null && agents.length > 0) {
    // The agent with the best mean total return, on the first test market.
    const best = [...comparison.policies]
      .filter((p) => (agents as readonly string[]).includes(p.label))
      .sort(
        (a, b) => (b.stats.totalReturn.mean ?? -Infinity) - (a.stats.totalReturn.mean ?? -Infinity),
      )[0];
    if (best !== undefined) {
      const [market] = await scenarioMarkets(config, config.pipeline.scenario, 'test', {
        indices: [0],
      });
      const dir = state.outputs[best.label as (typeof agents)[number]]!;
      const policy = await agentPolicy(join(dir, 'agent'), config.model.backend);
      const r = backtestStrategy({
        policy,
        data: market.features,
        broker: config.broker,
        range: market.range,
      });
      payload = buildBacktestPayload(
        backtestReportInput(
          r,
          `${best.label} on ${market.name} (the best agent, first test market)`,
        ),
        config.report,
      );
    }
  }
  if (comparison !== null) payload.comparison = comparisonPayload(comparison);
  payload.facts = {
    ...payload.facts,
    scenario: config.pipeline.scenario,
    sizes: state.quick ? 'quick' : 'default',
    fee: config.broker.takerFeeRate,
    market: config.broker.marketType,
  };
  payload.trainingRuns = (['model', ...agents] as const)
    .filter((s) => state.outputs[s] !== undefined)
    .map((s) => ({
      label: s,
      history: readHistory(openRun(state.outputs[s]!, config.paths.runs)),
    }));
  return writeRunReport(run, payload, config.report).html;
}
