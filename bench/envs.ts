// Environments shared by the benchmarks: the base candles (real BTC/USDT 15m when ../shared/data
// exists, else a seeded random walk of the same length), Gym-Trading-Env's example features and the
// `env.steps.gte_setting` env built on them, so the env and agent benchmarks measure one setting.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  allocateCandles,
  sliceByTime,
  TIMEFRAME_MS,
  type Candles,
} from '../src/data-processing/candles.js';
import { readCandlesCsv } from '../src/data-processing/file-formats.js';
import { alignTimeframes } from '../src/data-processing/data-alignment.js';
import type {
  FeatureMatrix,
  MultiTimeframeFeatures,
} from '../src/data-processing/feature-engineering.js';
import { CryptoTradingEnv } from '../src/models/reinforcement/trading-env.js';
import { Rng } from '../src/utils/random.js';

const DATA =
  process.env.CTM_SHARED_DATA ?? fileURLToPath(new URL('../../shared/data/', import.meta.url));

/** The base candles and where they came from. */
export async function loadBase(): Promise<{ candles: Candles; source: string }> {
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
export function gteFeatures(c: Candles): MultiTimeframeFeatures {
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

/**
 * The `env.steps.gte_setting` env: obs = the current row of the 5 GTE features + position,
 * positions [-1, 0, 1], fee 0.001, no funding, no slippage.
 */
export function gteEnv(features: MultiTimeframeFeatures): CryptoTradingEnv {
  const tf = features.base;
  return new CryptoTradingEnv(features, {
    observation: {
      timeframes: [tf],
      windows: { [tf]: 1 },
      features: { [tf]: features.perTimeframe.get(tf)!.names },
      account: ['position'],
    },
    transactionCost: 0.001,
    env: { positionLevels: [-1, 0, 1], actionType: 'discrete', maxEpisodeSteps: null },
    broker: { funding: { enabled: false }, slippage: { model: 'fixed', fixedBps: 0 } },
  });
}
