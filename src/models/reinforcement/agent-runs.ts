// Training runs of the RL agents (`ctm train dqn`, `ctm train ppo`): the markets of a scenario or a
// curriculum of scenarios (weights carry over from one to the next), a vectorised trading env on
// them, the agent's `learn` with checkpoints and resume, the trained agent saved with its observation
// layout and levels, and a validation evaluation through the backtester on the scenario's
// validation markets. Every piece it calls is a library function the other commands call too; this
// module owns only the order. Never evaluates on test markets: that is `ctm compare`'s, once.

import { appendFileSync, existsSync } from 'node:fs';
import { CheckpointError, ConfigError, UsageError } from '../../errors.js';
import { backtestStrategy } from '../../evaluation/backtest.js';
import type { ObservationSpec, Policy } from '../../evaluation/policy.js';
import {
  parseCurriculum,
  scenarioFingerprint,
  scenarioMarkets,
  type ScenarioMarket,
} from '../../evaluation/scenarios.js';
import { rangeMs, type Config } from '../../utils/config.js';
import { writeFileAtomicSync } from '../../utils/fs.js';
import { logger as rootLogger } from '../../utils/logger.js';
import { createProgress } from '../../utils/progress.js';
import { createRun, openRun, withRun, type Run } from '../../utils/runs.js';
import { DiscreteAgentPolicy } from './agent-policy.js';
import { checkpointKind, readCheckpoint, type CheckpointContent } from '../common/checkpoint.js';
import { DQN_AGENT_KIND, DQN_TRAINING_KIND, DQNAgent, dqnHyperparameters } from './dqn-agent.js';
import {
  PPO_AGENT_KIND,
  PPO_TRAINING_KIND,
  PPOAgent,
  ppoHyperparameters,
  type PpoLearnOptions,
} from './ppo-agent.js';
import { maskedArgmax } from './dqn-agent.js';
import { embeddingEnvs, encoderInputHooks, EncoderPolicy, type TransferEnvs } from './transfer.js';
import { accountFieldsOf } from '../../evaluation/policy.js';
import { initTensorflow, type BackendChoice } from '../common/backend.js';
import type { ParameterGroup } from '../common/optimizer.js';
import { variableParameter } from '../common/tensors.js';
import { MultiTimeframeModel, type FeatureExtractor } from '../time-series/model.js';
import { ScenarioEnv } from './scenario-env.js';
import type { TradingEnvInfo } from './trading-env.js';
import { VecEnv } from './vec-env.js';

const log = rootLogger.child({ module: 'train-agent' });

/** The agents `ctm train` knows. */
export type AgentAlgorithm = 'dqn' | 'ppo';

/** Options of `runAgentTraining`. */
export interface AgentTrainingOptions {
  /** The resolved config (ignored on resume: the run's own config is used). */
  readonly config: Config;
  /** Which agent. */
  readonly algorithm: AgentAlgorithm;
  /** Scenarios in training order (a curriculum; one name = one scenario). Default: `mix`. */
  readonly scenarios?: readonly string[];
  /** `real` scenario: the walk-forward fold whose training range is used (default 0). */
  readonly fold?: number;
  /** `real` scenario: a data directory instead of the store / `scenarios.real.dataDir`. */
  readonly dataDir?: string;
  /** Env steps per scenario (default the algorithm section's `totalTimesteps`). */
  readonly timesteps?: number;
  /** Continue this run (id or directory) from its last checkpoint. */
  readonly resume?: string;
  /** PPO only: a `train-model` run whose encoders become the feature extractor. */
  readonly initFrom?: string;
  /**
   * With `initFrom`: `pretrained` (default) takes its weights; `random` its architecture, inputs
   * and normaliser with fresh weights (the control of a transfer experiment).
   */
  readonly encoderInit?: 'pretrained' | 'random';
  /** The command line, recorded in run.json. */
  readonly commandLine?: readonly string[];
  /** Called with the run as soon as it exists (before training), e.g. to record it for a resume. */
  readonly onRun?: (run: Run) => void;
  /**
   * Backtest the live agent on the stage's validation markets every this many env steps and log
   * its mean total return (`validationReturn`) in the history; 0 or absent = only at the end.
   */
  readonly evaluateEvery?: number;
}

/** The saved agent's description of what it reads and does (agent/checkpoint.json state). */
export interface SavedAgentExtra {
  /** `dqn` or `ppo`. */
  algorithm: AgentAlgorithm;
  /** The observation layout of the env it was trained in (the backtester builds the same). */
  observation: ObservationSpec;
  /** Target position of each discrete action (empty for a continuous policy). */
  levels: number[];
  /** Transfer agents: the sequence model the encoder came from, and its level. */
  transfer?: {
    modelDir: string;
    level: 'encoders' | 'fused';
    /** `pretrained`: the model's weights; `random`: its architecture, freshly initialised. */
    init: 'pretrained' | 'random';
    seed: number;
  } | null;
}

/** What a training run records beside the run folder. */
interface AgentRunExtra {
  algorithm: AgentAlgorithm;
  scenarios: string[];
  fold: number;
  dataDir: string | null;
  timesteps: number;
  /** Curriculum stages finished (their agent is in stage-<k>/). */
  stagesDone: number;
  /** PPO transfer: the train-model run the encoder came from. */
  initFrom: string | null;
  /** PPO transfer: the encoder's weights (`random` = the same architecture, freshly initialised). */
  encoderInit: 'pretrained' | 'random';
}

/** Validation of a trained agent on one market. */
export interface AgentValidation {
  /** Market name (`mix/validation/2100`). */
  market: string;
  /** Total return after every cost, fraction (null when undefined). */
  totalReturn: number | null;
  /** Annualised Sharpe ratio (null when undefined). */
  sharpe: number | null;
  /** Round trips. */
  trades: number;
}

/** What `runAgentTraining` returns. */
export interface AgentTrainingResult {
  /** The run. */
  run: Run;
  /** Directory of the saved agent. */
  agentDir: string;
  /** Env steps trained (all stages). */
  steps: number;
  /** Mean return of the last episodes of the last stage. */
  meanEpisodeReturn: number;
  /** Validation backtests on the last scenario's validation markets. */
  validation: AgentValidation[];
  /** The env step the resumed stage started from, or null. */
  resumedFromStep: number | null;
}

/**
 * Envs over a scenario's markets: each of the `numEnvs` draws a market per episode (seeded per env),
 * so every env trains on every market.
 */
export function scenarioEnvs(
  config: Config,
  markets: readonly ScenarioMarket[],
  numEnvs: number,
  actionType: 'discrete' | 'continuous',
  fullWindows = false,
): ScenarioEnv[] {
  if (markets.length === 0) throw new UsageError('the scenario has no training markets');
  return Array.from(
    { length: numEnvs },
    (_, i) =>
      new ScenarioEnv(markets, {
        config,
        seed: config.seed + 7919 * i,
        // An agent reading raw features sees `env.windows`; one with an encoder the full windows.
        env: { randomStart: true, actionType, ...(fullWindows ? { windows: null } : {}) },
      }),
  );
}

/** The agent of a run as a Policy (the greedy / mean action; through its encoder when it has one). */
export async function agentPolicy(
  agentDir: string,
  backend: BackendChoice = 'auto',
): Promise<Policy> {
  if (!existsSync(agentDir))
    throw new CheckpointError(agentDir, 'the run holds no trained agent (no agent/ directory)');
  if (checkpointKind(agentDir) === DQN_AGENT_KIND) {
    const { agent, extra } = DQNAgent.load(agentDir);
    const e = extra as unknown as SavedAgentExtra;
    return new DiscreteAgentPolicy(e.observation, e.levels, (o, n) => agent.qValues(o, n));
  }
  const meta = readCheckpoint<SavedAgentExtra>(agentDir, { kind: PPO_AGENT_KIND });
  const transfer = meta?.state.transfer ?? null;
  const encoder = transfer === null ? null : await loadEncoder(transfer, backend);
  const { agent, extra } = PPOAgent.load(
    agentDir,
    encoder === null ? [] : [encoderGroup(encoder, 0, false)],
  );
  const e = extra as unknown as SavedAgentExtra;
  const head = agentHead(agent, e.levels);
  if (encoder !== null) return new EncoderPolicy(e.observation, encoder, head);
  return { observation: e.observation, act: (obs, n, out, mask) => head(obs, n, out, mask) };
}

/**
 * A PPO agent's deterministic action on its inputs: the best allowed level (discrete) or the tanh
 * of the Gaussian mean (continuous).
 */
function agentHead(
  agent: PPOAgent,
  levels: readonly number[],
): (inputs: Float32Array, rows: number, out: Float32Array, mask?: Uint8Array) => void {
  return (inputs, rows, out, mask) => {
    const scores = agent.scores(inputs, rows);
    if (agent.discrete) {
      const A = levels.length;
      for (let i = 0; i < rows; i++)
        out[i] = levels[maskedArgmax(scores, i * A, A, mask ?? null, i * A)];
    } else for (let i = 0; i < rows; i++) out[i] = Math.tanh(scores[i]);
  };
}

/** The encoder of a transfer agent: the sequence model's extractor (weights set by the agent). */
async function loadEncoder(
  transfer: NonNullable<SavedAgentExtra['transfer']>,
  backend: BackendChoice,
): Promise<FeatureExtractor> {
  await initTensorflow(backend);
  const trained = MultiTimeframeModel.load(transfer.modelDir);
  // A random init keeps the architecture, inputs and normaliser: only the weights differ.
  const model =
    transfer.init === 'random'
      ? MultiTimeframeModel.create(trained.config, transfer.seed)
      : trained;
  if (model !== trained) model.setNormalizer(trained.normalizer);
  const encoder = model.featureExtractor(transfer.level);
  model.dispose();
  if (model !== trained) trained.dispose();
  return encoder;
}

/** The optimizer group of an encoder: its variables, at `learningRate`, frozen unless `trainable`. */
function encoderGroup(
  encoder: FeatureExtractor,
  learningRate: number,
  trainable: boolean,
): ParameterGroup {
  return {
    name: 'encoder',
    params: encoder.variables.map((v, k) =>
      variableParameter(v, `encoder.${encoder.variableNames[k]}`),
    ),
    learningRate,
    trainable,
  };
}

/**
 * Backtests a policy on each market's traded range (same broker, fees, slippage and funding as
 * every backtest) and returns the figures per market.
 */
export function validateOnMarkets(
  config: Config,
  policy: Policy,
  markets: readonly ScenarioMarket[],
): AgentValidation[] {
  return markets.map((m) => {
    const r = backtestStrategy({
      policy,
      data: m.features,
      broker: config.broker,
      range: m.range,
      benchmark: false,
      // The holdout split is a range of real dates; synthetic markets have none.
      ...(m.seed === null ? { holdout: rangeMs(config.splits.holdout) } : {}),
    });
    return {
      market: m.name,
      totalReturn: r.metrics.returns.totalReturn,
      sharpe: r.metrics.returns.sharpe,
      trades: r.metrics.trades.count,
    };
  });
}

/**
 * Trains a DQN or PPO agent on a scenario or curriculum (see the file comment) into a run folder:
 * run.json, history.jsonl (one line per log interval, with the stage), checkpoint/ (resumable),
 * agent/ (the trained agent), metrics.json (training summary and validation backtests).
 * @throws {UsageError} for unknown scenarios or a bad resume; {ConfigError} for hyperparameters
 *   that cannot work; {CheckpointError} when a resume finds no checkpoint or other settings.
 */
export async function runAgentTraining(
  options: AgentTrainingOptions,
): Promise<AgentTrainingResult> {
  let run: Run;
  let config: Config;
  let extra: AgentRunExtra;
  const kind = `train-${options.algorithm}`;
  if (options.resume !== undefined) {
    run = openRun(options.resume, options.config.paths.runs);
    if (run.info.kind !== kind)
      throw new UsageError(`run ${run.info.id} is a ${run.info.kind} run, not ${kind}`);
    config = run.info.config;
    extra = run.info.extra as unknown as AgentRunExtra;
    if (!existsSync(run.path('checkpoint')))
      throw new CheckpointError(run.dir, 'the run has no checkpoint to resume from');
  } else {
    config = options.config;
    const section = options.algorithm === 'dqn' ? config.dqn : config.ppo;
    extra = {
      algorithm: options.algorithm,
      scenarios: parseCurriculum(config, (options.scenarios ?? ['mix']).join(',')),
      fold: options.fold ?? 0,
      dataDir: options.dataDir ?? null,
      timesteps: options.timesteps ?? section.totalTimesteps,
      stagesDone: 0,
      initFrom: options.initFrom ?? null,
      encoderInit: options.encoderInit ?? 'pretrained',
    };
    if (extra.initFrom !== null && options.algorithm !== 'ppo')
      throw new UsageError('--init-from is for PPO (ctm train ppo --init-from RUN)');
    if (extra.initFrom !== null && !config.ppo.transfer.shareEncoder)
      throw new ConfigError(
        'ppo.transfer.shareEncoder',
        'separate encoder copies for actor and critic are not built yet; use true',
      );
    run = createRun({
      kind,
      config,
      commandLine: options.commandLine ? [...options.commandLine] : undefined,
    });
    run.update({
      extra: { ...extra },
      data: scenarioFingerprint(config, extra.scenarios[extra.scenarios.length - 1], 'train'),
    });
  }
  options.onRun?.(run);
  // A resumed run is running again; it ends completed or failed like a new one.
  if (options.resume !== undefined) run.update({ status: 'running' });
  const [r, c, e] = [run, config, extra];
  return withRun(run, () => trainStages(options, r, c, e));
}

/** The stages of an agent training run (see `runAgentTraining`). */
async function trainStages(
  options: AgentTrainingOptions,
  run: Run,
  config: Config,
  extra: AgentRunExtra,
): Promise<AgentTrainingResult> {
  log.info({ run: run.id, algorithm: extra.algorithm, scenarios: extra.scenarios }, 'train agent');
  const actionType = extra.algorithm === 'ppo' ? config.ppo.actionType : 'discrete';
  const numEnvs = extra.algorithm === 'dqn' ? config.dqn.numEnvs : config.ppo.numEnvs;
  let dqn: DQNAgent | null = null;
  let ppo: PPOAgent | null = null;
  const transfer =
    extra.initFrom === null
      ? null
      : {
          modelDir: openRun(extra.initFrom, config.paths.runs).path('model'),
          level: config.ppo.transfer.level,
          init: extra.encoderInit,
          seed: config.seed,
        };
  const encoder = transfer === null ? null : await loadEncoder(transfer, config.model.backend);
  let observation: ObservationSpec | null = null;
  let steps = 0;
  let meanEpisodeReturn = NaN;
  let resumedFromStep: number | null = null;
  const history: string[] = [];
  const started = Date.now();
  for (let stage = 0; stage < extra.scenarios.length; stage++) {
    const name = extra.scenarios[stage];
    const bar = createProgress(`${extra.algorithm} markets ${name}`, 1, { unit: 'markets' });
    const markets = await scenarioMarkets(config, name, 'train', {
      ...(name === 'real' ? { indices: [extra.fold] } : {}),
      ...(extra.dataDir !== null ? { dataDir: extra.dataDir } : {}),
      onMarket: (done, total) => {
        bar.setTotal(total);
        bar.update(done);
      },
    });
    bar.stop();
    const trading = scenarioEnvs(config, markets, numEnvs, actionType, encoder !== null);
    const first = trading[0].env;
    observation ??= first.builder.spec;
    const embedded =
      encoder === null
        ? null
        : embeddingEnvs(
            encoder,
            markets.map((m) => m.features),
            trading,
            accountFieldsOf(first.builder.spec),
          );
    const vec: VecEnv<TradingEnvInfo> = new VecEnv(embedded?.envs ?? trading);
    const stageDir = run.path(`checkpoint/stage-${stage}`);
    if (dqn === null && ppo === null) {
      if (extra.algorithm === 'dqn')
        dqn = new DQNAgent(
          vec.observationSize,
          first.levels.length,
          config.dqn.hiddenDim,
          config.dqn.learningRate,
          {
            ...dqnHyperparameters(config.dqn),
            seed: config.seed,
          },
        );
      else
        ppo = new PPOAgent(
          vec.observationSize,
          first.levels.length,
          config.ppo.hiddenDim,
          config.ppo.learningRate,
          {
            ...ppoHyperparameters(config.ppo),
            seed: config.seed,
            extraGroups:
              encoder === null
                ? []
                : [encoderGroup(encoder, config.ppo.transfer.finetuneLearningRate, false)],
          },
        );
    }
    if (stage < extra.stagesDone) {
      // A finished stage of a resumed run: its trained agent carries over.
      const c = stageCheckpoint(run, stage);
      if (dqn !== null) dqn.loadTensors(c.dir, c.content);
      else ppo!.loadTensors(c.dir, c.content);
      continue;
    }
    const settings = {
      algorithm: extra.algorithm,
      stage,
      scenario: name,
      hyperparameters: extra.algorithm === 'dqn' ? config.dqn : config.ppo,
      observation,
      data: scenarioFingerprint(config, name, 'train'),
      timesteps: extra.timesteps,
      numEnvs,
    };
    const resume = options.resume !== undefined;
    // One history line: step, wall time, stage, then the learner's figures. The wall time is
    // stored in the learner's line too, so a resume rewrites the confirmed lines as written.
    const format = (l: Record<string, number | null>): string =>
      JSON.stringify({ step: l.step, wallMs: l.wallMs, stage, scenario: name, ...l });
    // Validation during training (SB3's EvalCallback): the live agent backtested on the stage's
    // validation markets every `evaluateEvery` env steps, its mean total return in the history.
    const every = options.evaluateEvery ?? 0;
    const valMarketsOfStage =
      every > 0
        ? await scenarioMarkets(config, name, 'validation', {
            ...(name === 'real' ? { indices: [extra.fold] } : {}),
            ...(extra.dataDir !== null ? { dataDir: extra.dataDir } : {}),
          })
        : [];
    let lastEval = 0;
    const onLog = (line: Record<string, number | null>): void => {
      const step = Number(line.step ?? 0);
      if (every > 0 && Math.floor(step / every) > Math.floor(lastEval / every)) {
        const v = validateOnMarkets(config, livePolicy(), valMarketsOfStage);
        line.validationReturn =
          v.reduce((a, x) => a + (x.totalReturn ?? 0), 0) / Math.max(1, v.length);
        lastEval = step;
      }
      line.wallMs = Date.now() - started;
      const text = format(line);
      appendFileSync(run.path('history.jsonl'), text + '\n');
      history.push(text);
    };
    const onResume = (lines: ReadonlyArray<Record<string, number | null>>, step: number): void => {
      resumedFromStep = step;
      // Lines after the checkpoint were never confirmed: rewrite the history from the state.
      const kept = history.concat(lines.map(format));
      writeFileAtomicSync(run.path('history.jsonl'), kept.map((l) => l + '\n').join(''));
    };
    const levels = [...config.env.positionLevels];
    const livePolicy = (): Policy => {
      const spec = observation!;
      if (dqn !== null) return new DiscreteAgentPolicy(spec, levels, (o, n) => dqn!.qValues(o, n));
      const agent = ppo!;
      const head = agentHead(agent, levels);
      return encoder === null
        ? { observation: spec, act: (obs, n, out, mask) => head(obs, n, out, mask) }
        : new EncoderPolicy(spec, encoder, head);
    };
    const progress = createProgress(`${extra.algorithm} ${name}`, extra.timesteps, {
      unit: 'steps',
    });
    if (dqn !== null) {
      const r = dqn.learn({
        env: vec,
        totalTimesteps: extra.timesteps,
        envSeed: config.seed + 1000 * stage,
        logEvery: config.dqn.logEvery,
        onLog,
        progress,
        checkpoint: { dir: stageDir, everySteps: config.dqn.checkpointEvery, settings },
        resume,
        onResume,
      });
      steps += r.steps;
      meanEpisodeReturn = r.meanEpisodeReturn;
    } else {
      const r = ppo!.learn({
        env: vec,
        totalTimesteps: extra.timesteps,
        envSeed: config.seed + 1000 * stage,
        onLog,
        progress,
        checkpoint: { dir: stageDir, everyUpdates: config.ppo.checkpointEveryUpdates, settings },
        resume,
        onResume,
        ...(embedded === null
          ? {}
          : transferHooks(config, ppo!, embedded, numEnvs, extra.timesteps)),
      });
      steps += r.steps;
      meanEpisodeReturn = r.meanEpisodeReturn;
    }
    extra.stagesDone = stage + 1;
    run.update({ extra: { ...extra } });
  }
  const agentDir = run.path('agent');
  const saved: SavedAgentExtra = {
    algorithm: extra.algorithm,
    observation: observation!,
    levels: [...config.env.positionLevels],
    transfer,
  };
  if (dqn !== null) dqn.save(agentDir, { ...saved });
  else ppo!.save(agentDir, { ...saved });
  run.addArtifact('agent', 'agent');
  run.addArtifact('checkpoint', 'checkpoint');
  const lastScenario = extra.scenarios[extra.scenarios.length - 1];
  const valMarkets = await scenarioMarkets(config, lastScenario, 'validation', {
    ...(lastScenario === 'real' ? { indices: [extra.fold] } : {}),
    ...(extra.dataDir !== null ? { dataDir: extra.dataDir } : {}),
  });
  const validation = validateOnMarkets(
    config,
    await agentPolicy(agentDir, config.model.backend),
    valMarkets,
  );
  encoder?.dispose();
  run.writeMetrics({
    algorithm: extra.algorithm,
    scenarios: extra.scenarios,
    steps,
    meanEpisodeReturn,
    validation,
  });
  return { run, agentDir, steps, meanEpisodeReturn, validation, resumedFromStep };
}

/**
 * The frozen and fine-tuning phases of a transfer run: the encoder stays frozen (embeddings from
 * the cache) for `ppo.transfer.frozenTimesteps` env steps of the stage, then its optimizer group
 * is unfrozen at `finetuneLearningRate` and every update re-embeds its minibatches; the caches are
 * refreshed after each fine-tuning update.
 */
function transferHooks(
  config: Config,
  agent: PPOAgent,
  embedded: TransferEnvs,
  numEnvs: number,
  stageSteps: number,
): Pick<PpoLearnOptions<TradingEnvInfo>, 'inputHooks' | 'onUpdate'> {
  const frozenUpdates = Math.floor(
    Math.min(config.ppo.transfer.frozenTimesteps, stageSteps) / (config.ppo.nSteps * numEnvs),
  );
  const hooks = encoderInputHooks(
    embedded.encoder,
    embedded.caches,
    embedded.envs[0].accountFields,
    agent,
  );
  return {
    inputHooks: (update) => {
      const tune = update >= frozenUpdates;
      agent.optimizer.setTrainable('encoder', tune);
      return tune ? hooks : null;
    },
    onUpdate: (update) => {
      if (update > frozenUpdates) for (const c of new Set(embedded.caches)) c.invalidate();
    },
  };
}

/** The last training checkpoint of a finished curriculum stage. */
function stageCheckpoint(run: Run, stage: number): { dir: string; content: CheckpointContent } {
  const dir = run.path(`checkpoint/stage-${stage}`);
  const kind = run.info.kind === 'train-dqn' ? DQN_TRAINING_KIND : PPO_TRAINING_KIND;
  const content = readCheckpoint(dir, { kind });
  if (content === null) throw new CheckpointError(dir, 'a finished stage has no checkpoint');
  return { dir, content };
}
