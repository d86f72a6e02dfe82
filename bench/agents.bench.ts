// End-to-end training throughput of the agents (env steps per second, training included) on the
// `env.steps.gte_setting` env (bench/envs.ts), with an MLP 64x64:
//   dqn.env_steps           SB3's DQN settings: vanilla (1-step, uniform replay, no double, no
//                           dueling, no observation normalisation), batch 32, learning_starts 1000,
//                           train_freq 4, 30,000 steps;
//   dqn.env_steps_default   the shipped defaults (3-step, prioritised, double, dueling, normalised);
//   ppo.env_steps           SB3's PPO settings: n_steps 2048, batch 64, 10 epochs, one env, 20,480
//                           steps, tanh 64x64 actor and critic;
//   ppo.env_steps_transfer  PPO on frozen, cached encoders of a sequence model (default windows
//                           64/32/16 on the default features; embeddings filled before timing, their
//                           fill rate reported beside).
// Each figure carries the split between acting (env steps, action selection) and learning
// (gradient steps). Stable-Baselines3 cannot be installed here (no PyPI); the figures for
// SB3 2.4 on this kind of machine are quoted in `params.sb3`.

import { resample } from '../src/data-processing/resample.js';
import { sliceByTime, type Candles, type Timeframe } from '../src/data-processing/candles.js';
import { buildFeatures } from '../src/data-processing/feature-engineering.js';
import { initTensorflow } from '../src/models/common/backend.js';
import { DQNAgent, type DqnBatch } from '../src/models/reinforcement/dqn-agent.js';
import { PPOAgent, type Rollout } from '../src/models/reinforcement/ppo-agent.js';
import { CryptoTradingEnv } from '../src/models/reinforcement/trading-env.js';
import { embeddingEnvs } from '../src/models/reinforcement/transfer.js';
import { VecEnv } from '../src/models/reinforcement/vec-env.js';
import { MultiTimeframeModel, modelConfigFromSection } from '../src/models/time-series/model.js';
import { defaultConfig } from '../src/utils/config.js';
import { gteEnv, gteFeatures, loadBase } from './envs.js';
import { report } from './lib.js';

const { candles, source } = await loadBase();
const features = gteFeatures(candles);

/** Times `fn`, returning [result, ms]. */
function timed<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, performance.now() - t0];
}

function dqnRun(options: ConstructorParameters<typeof DQNAgent>[4], steps: number): void {
  const vec = new VecEnv([gteEnv(features)]);
  const agent = new DQNAgent(vec.observationSize, 3, 64, 1e-4, options);
  let learnMs = 0;
  const train = agent.train.bind(agent);
  agent.train = (batch: DqnBatch) => {
    const [r, ms] = timed(() => train(batch));
    learnMs += ms;
    return r;
  };
  const [, ms] = timed(() => agent.learn({ env: vec, totalTimesteps: steps, logEvery: steps }));
  return void (lastSplit = { totalMs: ms, learnMs });
}
let lastSplit = { totalMs: 0, learnMs: 0 };

const SB3_DQN = {
  nSteps: 1,
  prioritizedReplay: false,
  doubleQ: false,
  dueling: false,
  normalizeObservations: false,
  batchSize: 32,
  learningStarts: 1000,
  trainFrequency: 4,
  gradientSteps: 1,
  targetUpdateInterval: 10_000,
  bufferSize: 1_000_000,
  seed: 1,
};
const DQN_STEPS = 30_000;
dqnRun(SB3_DQN, 3_000); // warm-up
for (const [name, opts, what] of [
  ['dqn.env_steps', SB3_DQN, 'SB3 DQN settings (vanilla)'],
  [
    'dqn.env_steps_default',
    { seed: 1, learningStarts: 1000 },
    'shipped defaults (3-step, PER, double, dueling)',
  ],
] as const) {
  let best = { sps: 0, learnShare: 0 };
  for (let rep = 0; rep < 3; rep++) {
    dqnRun(opts, DQN_STEPS);
    const sps = DQN_STEPS / (lastSplit.totalMs / 1000);
    if (sps > best.sps) best = { sps, learnShare: lastSplit.learnMs / lastSplit.totalMs };
  }
  report(name, best.sps, 'env-steps/s', true, {
    setting: what,
    env: 'env.steps.gte_setting',
    data: source,
    mlp: '64x64 relu',
    steps: DQN_STEPS,
    learningShare: Number(best.learnShare.toFixed(3)),
    actingShare: Number((1 - best.learnShare).toFixed(3)),
    sb3: 'SB3 2.4 DQN, torch 1 thread: 1,739-2,204 env-steps/s (issue 20); goal >= 4,400',
    note: 'best of 3 runs; the machine is shared',
  });
}

function ppoRun(
  vec: VecEnv<object>,
  steps: number,
  stateDim: number,
): { totalMs: number; learnMs: number } {
  const agent = new PPOAgent(stateDim, 3, 64, 3e-4, {
    seed: 1,
    nSteps: 2048,
    batchSize: 64,
    nEpochs: 10,
    normalizeObservations: false,
  });
  let learnMs = 0;
  const update = agent.update.bind(agent);
  agent.update = (roll: Rollout, last: Float32Array, hooks) => {
    const [r, ms] = timed(() => update(roll, last, hooks));
    learnMs += ms;
    return r;
  };
  const [, totalMs] = timed(() => agent.learn({ env: vec, totalTimesteps: steps }));
  return { totalMs, learnMs };
}

const PPO_STEPS = 20_480;
{
  const make = (): VecEnv<object> => new VecEnv([gteEnv(features)]);
  ppoRun(make(), 4096, make().observationSize); // warm-up
  let best = { sps: 0, learnShare: 0 };
  for (let rep = 0; rep < 3; rep++) {
    const vec = make();
    const r = ppoRun(vec, PPO_STEPS, vec.observationSize);
    const sps = PPO_STEPS / (r.totalMs / 1000);
    if (sps > best.sps) best = { sps, learnShare: r.learnMs / r.totalMs };
  }
  report('ppo.env_steps', best.sps, 'env-steps/s', true, {
    setting: 'SB3 PPO settings: n_steps 2048, batch 64, 10 epochs, 1 env',
    env: 'env.steps.gte_setting',
    data: source,
    mlp: '64x64 tanh actor and critic',
    steps: PPO_STEPS,
    learningShare: Number(best.learnShare.toFixed(3)),
    actingShare: Number((1 - best.learnShare).toFixed(3)),
    sb3: 'SB3 2.4 PPO, torch 1 thread: 1,217-1,770 env-steps/s (issue 21); goal >= 3,540',
    note: 'best of 3 runs; the machine is shared',
  });
}

// Transfer: frozen encoders of a sequence model (default model and windows), embeddings cached.
{
  await initTensorflow('wasm');
  const config = defaultConfig();
  const recent = sliceByTime(
    candles,
    candles.openTime[candles.openTime.length - 1] - 400 * 86_400_000,
    Infinity,
  );
  const byTf = new Map<Timeframe, Candles>([
    ['15m', recent],
    ['4h', resample(recent, '4h').candles],
    ['1d', resample(recent, '1d').candles],
  ]);
  const windows = config.windows;
  const f = buildFeatures(byTf, { windows });
  const env = new CryptoTradingEnv(f, { windows, env: { maxEpisodeSteps: 4096 } });
  const spec = {
    timeframes: env.builder.spec.timeframes,
    windows: env.builder.spec.windows,
    features: env.builder.spec.features,
  };
  const model = MultiTimeframeModel.create(modelConfigFromSection(config.model, spec), 1);
  const encoder = model.featureExtractor('encoders');
  const t = embeddingEnvs(
    encoder,
    [f],
    [env],
    ['position', 'unrealizedPnl', 'timeInPosition', 'drawdown'],
  );
  const rows = f.rowIndex.get(f.base)!.length;
  const [, fillMs] = timed(() => t.caches[0].fill(env.rangeStart, env.rangeEnd));
  const filled = env.rangeEnd - env.rangeStart;
  const vec = new VecEnv<object>([t.envs[0]]);
  const r = ppoRun(vec, PPO_STEPS, vec.observationSize);
  report('ppo.env_steps_transfer', PPO_STEPS / (r.totalMs / 1000), 'env-steps/s', true, {
    setting: 'SB3 PPO settings on frozen cached encoder embeddings + account fields',
    encoder: `${config.model.cell} ${config.model.hiddenDims} per timeframe, encoders level (${encoder.outputSize} floats)`,
    windows,
    data: `${source}, last 400 days (${rows} rows)`,
    steps: PPO_STEPS,
    learningShare: Number((r.learnMs / r.totalMs).toFixed(3)),
    cacheFillWindowsPerSecond: Math.round(filled / (fillMs / 1000)),
    cacheFillSeconds: Number((fillMs / 1000).toFixed(1)),
  });
  encoder.dispose();
  model.dispose();
}
