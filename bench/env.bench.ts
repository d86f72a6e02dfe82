// Trading-env throughput with random actions, through the public CryptoTradingEnv and its full
// Broker (no benchmark-only path): `env.steps.gte_setting` (Gym-Trading-Env's benchmark setting:
// obs = the current row of 5 features + position, positions [-1, 0, 1], fee 0.001),
// `env.steps.realistic` (default windows 64/32/16 on the default 15m/4h/1d features) and
// `env.steps.vec8` (VecEnv(8) of the realistic env). Real BTC candles when ../shared/data exists,
// else a seeded random walk of the same length.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  allocateCandles,
  sliceByTime,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from '../src/data-processing/candles.js';
import { readCandlesCsv } from '../src/data-processing/file-formats.js';
import { resample } from '../src/data-processing/resample.js';
import { alignTimeframes } from '../src/data-processing/data-alignment.js';
import {
  buildFeatures,
  type FeatureMatrix,
  type MultiTimeframeFeatures,
} from '../src/data-processing/feature-engineering.js';
import { CryptoTradingEnv, type TradingEnvInfo } from '../src/models/reinforcement/trading-env.js';
import { VecEnv } from '../src/models/reinforcement/vec-env.js';
import { Rng } from '../src/utils/random.js';
import { report } from './lib.js';

const DATA =
  process.env.CTM_SHARED_DATA ?? fileURLToPath(new URL('../../shared/data/', import.meta.url));

async function loadBase(): Promise<{ candles: Candles; source: string }> {
  const file = join(DATA, 'binance-BTCUSDT-15m.csv.gz');
  if (existsSync(file)) {
    const { candles } = await readCandlesCsv(file, { symbol: 'BTC/USDT', timeframe: '15m' });
    return {
      candles: sliceByTime(candles, Date.UTC(2018, 2, 1), Date.UTC(2024, 0, 1)),
      source: 'binance BTC/USDT 15m 2018-03..2023',
    };
  }
  const n = 200_000;
  const rng = new Rng(1);
  const cols = allocateCandles('SYN/USDT', '15m', n);
  let p = 10_000;
  for (let i = 0; i < n; i++) {
    const c = p * Math.exp(0.004 * rng.normal());
    cols.openTime[i] = Date.UTC(2018, 2, 1) + i * TIMEFRAME_MS['15m'];
    cols.open[i] = p;
    cols.close[i] = c;
    cols.high[i] = Math.max(p, c) * 1.001;
    cols.low[i] = Math.min(p, c) * 0.999;
    cols.volume[i] = 100 * (1 + rng.exponential());
    p = c;
  }
  return { candles: cols, source: 'random walk 200k 15m' };
}

/**
 * Gym-Trading-Env's example features on one timeframe: close pct change, open/close, high/close,
 * low/close, volume / rolling max(volume, 7 x 24 bars).
 */
function gteFeatures(c: Candles): MultiTimeframeFeatures {
  const n = c.openTime.length;
  const names = ['close_pct', 'open_close', 'high_close', 'low_close', 'volume_max'];
  const values = new Float32Array(n * 5);
  const time = new Float64Array(n);
  const win = 7 * 24;
  for (let i = 0; i < n; i++) {
    time[i] = c.openTime[i] + TIMEFRAME_MS[c.timeframe];
    let vmax = 0;
    for (let k = Math.max(0, i - win + 1); k <= i; k++) if (c.volume[k] > vmax) vmax = c.volume[k];
    values[i * 5] = i === 0 ? NaN : c.close[i] / c.close[i - 1] - 1;
    values[i * 5 + 1] = c.open[i] / c.close[i];
    values[i * 5 + 2] = c.high[i] / c.close[i];
    values[i * 5 + 3] = c.low[i] / c.close[i];
    values[i * 5 + 4] = i < win - 1 || vmax === 0 ? NaN : c.volume[i] / vmax;
  }
  const m: FeatureMatrix = { timeframe: c.timeframe, names, time, values, rows: n, cols: 5 };
  const tf = c.timeframe;
  return {
    base: tf,
    timeframes: [tf],
    perTimeframe: new Map([[tf, m]]),
    rowIndex: new Map([[tf, Int32Array.from({ length: n }, (_, i) => i)]]),
    aligned: alignTimeframes(new Map([[tf, c]])),
    decisionRows: m,
    firstValidRow: win,
    windows: { [tf]: 1 },
  };
}

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
  const features = gteFeatures(candles);
  const env = new CryptoTradingEnv(features, {
    observation: {
      timeframes: [candles.timeframe],
      windows: { [candles.timeframe]: 1 },
      features: { [candles.timeframe]: features.perTimeframe.get(candles.timeframe)!.names },
      account: ['position'],
    },
    transactionCost: 0.001,
    env: { positionLevels: [-1, 0, 1], actionType: 'discrete', maxEpisodeSteps: null },
    broker: { funding: { enabled: false }, slippage: { model: 'fixed', fixedBps: 0 } },
  });
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
