// Trading-env throughput with random actions, through the public CryptoTradingEnv and its full
// Broker (no benchmark-only path): `env.steps.gte_setting` (Gym-Trading-Env's benchmark setting:
// obs = the current row of 5 features + position, positions [-1, 0, 1], fee 0.001),
// `env.steps.realistic` (default windows 64/32/16 on the default 15m/4h/1d features) and
// `env.steps.vec8` (VecEnv(8) of the realistic env). Real BTC candles when ../shared/data exists,
// else a seeded random walk of the same length.

import type { Candles, Timeframe } from '../src/data-processing/candles.js';
import { resample } from '../src/data-processing/resample.js';
import { buildFeatures } from '../src/data-processing/feature-engineering.js';
import { CryptoTradingEnv, type TradingEnvInfo } from '../src/models/reinforcement/trading-env.js';
import { VecEnv } from '../src/models/reinforcement/vec-env.js';
import { Rng } from '../src/utils/random.js';
import { gteEnv, gteFeatures, loadBase } from './envs.js';
import { report } from './lib.js';

/** Steps `env` `steps` times with uniform random discrete actions, resetting at episode ends. */
function runRandom(env: CryptoTradingEnv, steps: number, rng: Rng): number {
  const n = (env.actionSpace as { n: number }).n;
  env.reset({ seed: 1 });
  let acc = 0;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const r = env.step(rng.int(n));
    acc += r[1];
    if (r[2] || r[3]) env.reset();
  }
  const ms = performance.now() - t0;
  if (!Number.isFinite(acc)) throw new Error('non-finite reward sum');
  return steps / (ms / 1000);
}

function runVec(vec: VecEnv<TradingEnvInfo>, steps: number, rng: Rng): number {
  const nEnv = vec.numEnvs;
  const actions = new Int32Array(nEnv);
  vec.reset(1);
  const t0 = performance.now();
  const iters = Math.ceil(steps / nEnv);
  for (let s = 0; s < iters; s++) {
    for (let e = 0; e < nEnv; e++) actions[e] = rng.int(3);
    vec.step(actions);
  }
  const ms = performance.now() - t0;
  return (iters * nEnv) / (ms / 1000);
}

function best(fn: () => number, reps: number): number {
  let b = 0;
  for (let i = 0; i < reps; i++) b = Math.max(b, fn());
  return b;
}

const { candles, source } = await loadBase();

// Gym-Trading-Env setting.
{
  const env = gteEnv(gteFeatures(candles));
  const rng = new Rng(7);
  runRandom(env, 2_000_000, rng); // warm-up
  const sps = best(() => runRandom(env, 5_000_000, rng), 5);
  report('env.steps.gte_setting', sps, 'steps/s', true, {
    data: source,
    obs: env.observationSize,
    positions: [-1, 0, 1],
    fee: 0.001,
  });
}

// Default features and windows on 15m / 4h / 1d.
{
  const byTf = new Map<Timeframe, Candles>([
    ['15m', candles],
    ['4h', resample(candles, '4h').candles],
    ['1d', resample(candles, '1d').candles],
  ]);
  const windows = { '15m': 64, '4h': 32, '1d': 16 };
  const features = buildFeatures(byTf, { windows });
  const env = new CryptoTradingEnv(features, { windows });
  const rng = new Rng(8);
  runRandom(env, 200_000, rng);
  const sps = best(() => runRandom(env, 1_000_000, rng), 5);
  report('env.steps.realistic', sps, 'steps/s', true, {
    data: source,
    obs: env.observationSize,
    windows,
  });

  const vec = new VecEnv(
    Array.from({ length: 8 }, () => new CryptoTradingEnv(features, { windows })),
  );
  runVec(vec, 200_000, rng);
  const vps = best(() => runVec(vec, 1_000_000, rng), 5);
  report('env.steps.vec8', vps, 'steps/s', true, {
    data: source,
    envs: 8,
    obs: env.observationSize,
    windows,
  });
}
