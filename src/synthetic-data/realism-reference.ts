// Reference processes a capable discriminator must tell from real markets: a Gaussian walk, a
// GARCH(1,1)-t walk and real candles shuffled in time. Seeded; never used to generate training data.

import {
  allocateCandles,
  type Candles,
  sliceCandles,
  TIMEFRAME_MS,
} from '../data-processing/candles.js';
import { resample } from '../data-processing/resample.js';
import { Rng } from '../utils/random.js';
import {
  aggregateFineCandles,
  type BaseProcessParams,
  buildCandlesFromPath,
} from './base-process.js';
import { type MarketSeries } from './realism-windows.js';

/** Options of the reference processes. */
export interface ReferenceProcessOptions {
  /** Seed of the returns and volumes. */
  seed: number;
  /** Length in days. */
  days: number;
  /** Open time of the first bar (UTC midnight). */
  startTimeMs: number;
  /** Unconditional std of 15m log returns. */
  sigma15m: number;
  /** Mean and std of log 15m volume. */
  logVolumeMean: number;
  /** Std of log 15m volume. */
  logVolumeStd: number;
  /** Price at the start, quote currency. */
  initialPrice: number;
  /** Candle microstructure (gaps, wicks, tick) shared with the base process. */
  microstructure: BaseProcessParams['microstructure'];
  /** Symbol put on the candles. */
  symbol: string;
}

function referenceMarket(
  o: ReferenceProcessOptions,
  fill: (rng: Rng, logReturn: Float64Array, sigma: Float64Array) => void,
): MarketSeries {
  const steps = o.days * 288;
  const rng = new Rng(o.seed);
  const logReturn = new Float64Array(steps);
  const sigma = new Float64Array(steps);
  fill(rng.fork('returns'), logReturn, sigma);
  const vr = rng.fork('volume');
  const volume = new Float64Array(steps);
  // Lognormal i.i.d. 15m volume split evenly over its three 5m steps.
  for (let i = 0; i < steps; i += 3) {
    const v = Math.exp(o.logVolumeMean + o.logVolumeStd * vr.normal()) / 3;
    for (let k = i; k < Math.min(steps, i + 3); k++) volume[k] = v;
  }
  const fine = buildCandlesFromPath(
    {
      fineTimeframe: '5m',
      startTimeMs: o.startTimeMs,
      initialLogPrice: Math.log(o.initialPrice),
      logReturn,
      sigma,
      volume,
    },
    { symbol: o.symbol, microstructure: o.microstructure },
    rng.fork('candles'),
  );
  return aggregateFineCandles(fine);
}

/** A Gaussian random walk at 5m with constant volatility and lognormal volume. */
export function gaussianWalkMarket(o: ReferenceProcessOptions): MarketSeries {
  const s = o.sigma15m / Math.sqrt(3);
  return referenceMarket(o, (rng, r, sigma) => {
    for (let i = 0; i < r.length; i++) {
      r[i] = s * rng.normal();
      sigma[i] = s;
    }
  });
}

/**
 * A GARCH(1,1) walk with Student-t(4) shocks at 5m (alpha 0.05, beta 0.94; unconditional
 * variance matching `sigma15m`) and lognormal volume.
 */
export function garchMarket(o: ReferenceProcessOptions): MarketSeries {
  const alpha = 0.05;
  const beta = 0.94;
  const nu = 4;
  const unconditional = (o.sigma15m * o.sigma15m) / 3;
  const omega = unconditional * (1 - alpha - beta);
  const tScale = Math.sqrt((nu - 2) / nu);
  return referenceMarket(o, (rng, r, sigma) => {
    let v = unconditional;
    let prev = 0;
    for (let i = 0; i < r.length; i++) {
      v = omega + alpha * prev * prev + beta * v;
      const s = Math.sqrt(v);
      prev = s * rng.studentT(nu) * tScale;
      r[i] = prev;
      sigma[i] = s;
    }
  });
}

/**
 * Real 15m candles shuffled in time: each candle keeps its shape relative to the previous close
 * (gap, high, low, close) and its volume, but candles are put in random order, destroying
 * volatility clustering and seasonality. Timestamps stay on the original grid; 4h and 1d are
 * aggregated from the shuffled 15m. Gaps in the input are closed up.
 */
export function shuffledMarket(m15: Candles, seed: number): MarketSeries {
  const n = m15.openTime.length;
  const rng = new Rng(seed);
  const order = Int32Array.from({ length: n - 1 }, (_, i) => i + 1);
  rng.shuffle(order);
  const out = allocateCandles(m15.symbol, '15m', n - 1);
  const start = m15.openTime[0] - (m15.openTime[0] % TIMEFRAME_MS['1d']) + TIMEFRAME_MS['1d'];
  let prev = m15.close[0];
  for (let j = 0; j < n - 1; j++) {
    const i = order[j];
    const pc = m15.close[i - 1];
    out.openTime[j] = start + j * TIMEFRAME_MS['15m'];
    out.open[j] = (prev * m15.open[i]) / pc;
    out.high[j] = (prev * m15.high[i]) / pc;
    out.low[j] = (prev * m15.low[i]) / pc;
    out.close[j] = (prev * m15.close[i]) / pc;
    out.volume[j] = m15.volume[i];
    prev = out.close[j];
  }
  const whole = Math.floor((n - 1) / 96) * 96;
  const c = sliceCandles(out, 0, whole);
  return { m15: c, h4: resample(c, '4h').candles, d1: resample(c, '1d').candles };
}
