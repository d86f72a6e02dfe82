// Invariants every indicator keeps, checked through one registry of all of them: batch == streaming
// bit for bit (random candles and every row of the real BTC data), truncation invariance and a
// poisoned future (rows <= k never change when candles after k are removed or replaced by NaN or
// 1e9), warm-up rows NaN and exactly `lookback` of them, argument errors, `out` buffers, and no
// drift of rolling sums over long series.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readCandlesCsv } from '../../src/data-processing/file-formats.js';
import { sliceByTime } from '../../src/data-processing/candles.js';
import { Rng } from '../../src/utils/random.js';
import {
  AdxStream,
  AnchoredVwapStream,
  AtrStream,
  BollingerStream,
  CciStream,
  DonchianStream,
  EmaStream,
  KeltnerStream,
  MacdStream,
  MfiStream,
  ObvStream,
  RealizedVolatilityStream,
  RocStream,
  RollingMax,
  RollingMin,
  RollingMoments,
  RollingSum,
  RsiStream,
  SmaStream,
  StdDevStream,
  StochasticStream,
  SupportResistanceStream,
  TrueRangeStream,
  VolumeZScoreStream,
  VwapStream,
  WilliamsRStream,
  WmaStream,
  ZScoreStream,
  adx,
  anchoredVwap,
  atr,
  bollingerBands,
  cci,
  donchianChannel,
  ema,
  keltnerChannels,
  macd,
  mfi,
  obv,
  realizedVolatility,
  roc,
  rollingStdDev,
  rollingZScore,
  rsi,
  sma,
  stochastic,
  supportResistance,
  trueRange,
  volumeZScore,
  vwap,
  williamsR,
  wma,
  type SupportResistanceOptions,
  type SupportResistanceOutput,
} from '../../src/data-processing/indicators.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';

/** Candle columns as the indicators take them. */
interface Cols {
  t: Float64Array;
  h: Float64Array;
  l: Float64Array;
  c: Float64Array;
  v: Float64Array;
}

/** One indicator: its batch outputs, the same through its stream, and its declared warm-up. */
interface Case {
  name: string;
  lookback: number;
  batch(x: Cols): Float64Array[];
  stream(x: Cols): Float64Array[];
}

/** Runs `step(i, outputs)` for every row, into `width` fresh output columns. */
function run(n: number, width: number, step: (i: number, o: Float64Array[]) => void) {
  const o = Array.from({ length: width }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) step(i, o);
  return o;
}

const SR_ATR: SupportResistanceOptions = {};
const SR_FRACTION: SupportResistanceOptions = {
  leftBars: 3,
  rightBars: 7,
  lookback: 50,
  distanceUnit: 'fraction',
  roleReversal: false,
};
const srOut = (r: SupportResistanceOutput) => [
  r.resistance,
  r.support,
  r.resistanceTouches,
  r.supportTouches,
  r.resistanceDistance,
  r.supportDistance,
];
const srCase = (name: string, options: SupportResistanceOptions): Case => ({
  name,
  lookback: new SupportResistanceStream(options).lookback,
  batch: (x) => srOut(supportResistance(x.h, x.l, x.c, options)),
  stream: (x) => {
    const s = new SupportResistanceStream(options);
    return run(x.c.length, 6, (i, o) => {
      o[4][i] = s.update(x.h[i], x.l[i], x.c[i]);
      o[0][i] = s.resistance;
      o[1][i] = s.support;
      o[2][i] = s.resistanceTouches;
      o[3][i] = s.supportTouches;
      o[5][i] = s.supportDistance;
    });
  },
});

/** A single-output indicator of the close. */
const closeCase = (
  name: string,
  lookback: number,
  batch: (c: Float64Array) => Float64Array,
  make: () => { update(x: number): number },
): Case => ({
  name,
  lookback,
  batch: (x) => [batch(x.c)],
  stream: (x) => {
    const s = make();
    return run(x.c.length, 1, (i, o) => (o[0][i] = s.update(x.c[i])));
  },
});

/** A single-output indicator of high, low, close. */
const hlcCase = (
  name: string,
  lookback: number,
  batch: (h: Float64Array, l: Float64Array, c: Float64Array) => Float64Array,
  make: () => { update(h: number, l: number, c: number): number },
): Case => ({
  name,
  lookback,
  batch: (x) => [batch(x.h, x.l, x.c)],
  stream: (x) => {
    const s = make();
    return run(x.c.length, 1, (i, o) => (o[0][i] = s.update(x.h[i], x.l[i], x.c[i])));
  },
});

const CASES: Case[] = [
  closeCase(
    'sma(20)',
    19,
    (c) => sma(c, 20),
    () => new SmaStream(20),
  ),
  closeCase(
    'ema(20)',
    19,
    (c) => ema(c, 20),
    () => new EmaStream(20),
  ),
  closeCase(
    'wma(10)',
    9,
    (c) => wma(c, 10),
    () => new WmaStream(10),
  ),
  closeCase(
    'rsi(14)',
    14,
    (c) => rsi(c, 14),
    () => new RsiStream(14),
  ),
  closeCase(
    'roc(10)',
    10,
    (c) => roc(c, 10),
    () => new RocStream(10),
  ),
  closeCase(
    'stdDev(20)',
    19,
    (c) => rollingStdDev(c, 20),
    () => new StdDevStream(20),
  ),
  closeCase(
    'zScore(30)',
    29,
    (c) => rollingZScore(c, 30),
    () => new ZScoreStream(30),
  ),
  closeCase(
    'realizedVolatility(20)',
    20,
    (c) => realizedVolatility(c, { period: 20, barsPerYear: 35040 }),
    () => new RealizedVolatilityStream({ period: 20, barsPerYear: 35040 }),
  ),
  {
    name: 'macd(12,26,9)',
    lookback: 33,
    batch: (x) => {
      const r = macd(x.c);
      return [r.macd, r.signal, r.histogram];
    },
    stream: (x) => {
      const s = new MacdStream();
      return run(x.c.length, 3, (i, o) => {
        o[0][i] = s.update(x.c[i]);
        o[1][i] = s.signal;
        o[2][i] = s.histogram;
      });
    },
  },
  {
    name: 'bollinger(20,2)',
    lookback: 19,
    batch: (x) => {
      const r = bollingerBands(x.c);
      return [r.middle, r.upper, r.lower, r.percentB, r.bandwidth];
    },
    stream: (x) => {
      const s = new BollingerStream();
      return run(x.c.length, 5, (i, o) => {
        o[0][i] = s.update(x.c[i]);
        o[1][i] = s.upper;
        o[2][i] = s.lower;
        o[3][i] = s.percentB;
        o[4][i] = s.bandwidth;
      });
    },
  },
  hlcCase(
    'trueRange',
    1,
    (h, l, c) => trueRange(h, l, c),
    () => new TrueRangeStream(),
  ),
  hlcCase(
    'atr(14)',
    14,
    (h, l, c) => atr(h, l, c, 14),
    () => new AtrStream(14),
  ),
  hlcCase(
    'williamsR(14)',
    13,
    (h, l, c) => williamsR(h, l, c, 14),
    () => new WilliamsRStream(14),
  ),
  hlcCase(
    'cci(20)',
    19,
    (h, l, c) => cci(h, l, c, 20),
    () => new CciStream(20),
  ),
  {
    name: 'adx(14)',
    lookback: 27,
    batch: (x) => {
      const r = adx(x.h, x.l, x.c, 14);
      return [r.adx, r.plusDi, r.minusDi];
    },
    stream: (x) => {
      const s = new AdxStream(14);
      return run(x.c.length, 3, (i, o) => {
        o[0][i] = s.update(x.h[i], x.l[i], x.c[i]);
        o[1][i] = s.plusDi;
        o[2][i] = s.minusDi;
      });
    },
  },
  {
    name: 'stochastic(5,3,3)',
    lookback: 8,
    batch: (x) => {
      const r = stochastic(x.h, x.l, x.c);
      return [r.k, r.d];
    },
    stream: (x) => {
      const s = new StochasticStream();
      return run(x.c.length, 2, (i, o) => {
        o[0][i] = s.update(x.h[i], x.l[i], x.c[i]);
        o[1][i] = s.d;
      });
    },
  },
  {
    name: 'keltner(20,10,2)',
    lookback: 19,
    batch: (x) => {
      const r = keltnerChannels(x.h, x.l, x.c);
      return [r.middle, r.upper, r.lower];
    },
    stream: (x) => {
      const s = new KeltnerStream();
      return run(x.c.length, 3, (i, o) => {
        o[0][i] = s.update(x.h[i], x.l[i], x.c[i]);
        o[1][i] = s.upper;
        o[2][i] = s.lower;
      });
    },
  },
  {
    name: 'donchian(20)',
    lookback: 19,
    batch: (x) => {
      const r = donchianChannel(x.h, x.l, 20);
      return [r.middle, r.upper, r.lower];
    },
    stream: (x) => {
      const s = new DonchianStream(20);
      return run(x.c.length, 3, (i, o) => {
        o[0][i] = s.update(x.h[i], x.l[i]);
        o[1][i] = s.upper;
        o[2][i] = s.lower;
      });
    },
  },
  {
    name: 'obv',
    lookback: 0,
    batch: (x) => [obv(x.c, x.v)],
    stream: (x) => {
      const s = new ObvStream();
      return run(x.c.length, 1, (i, o) => (o[0][i] = s.update(x.c[i], x.v[i])));
    },
  },
  {
    name: 'mfi(14)',
    lookback: 14,
    batch: (x) => [mfi(x.h, x.l, x.c, x.v, 14)],
    stream: (x) => {
      const s = new MfiStream(14);
      return run(x.c.length, 1, (i, o) => (o[0][i] = s.update(x.h[i], x.l[i], x.c[i], x.v[i])));
    },
  },
  {
    name: 'vwap(96)',
    lookback: 95,
    batch: (x) => [vwap(x.h, x.l, x.c, x.v, 96)],
    stream: (x) => {
      const s = new VwapStream(96);
      return run(x.c.length, 1, (i, o) => (o[0][i] = s.update(x.h[i], x.l[i], x.c[i], x.v[i])));
    },
  },
  {
    name: 'anchoredVwap(UTC day)',
    lookback: 0,
    batch: (x) => [anchoredVwap(x.t, x.h, x.l, x.c, x.v)],
    stream: (x) => {
      const s = new AnchoredVwapStream();
      return run(
        x.c.length,
        1,
        (i, o) => (o[0][i] = s.update(x.t[i], x.h[i], x.l[i], x.c[i], x.v[i])),
      );
    },
  },
  {
    name: 'volumeZScore(20, log)',
    lookback: 19,
    batch: (x) => [volumeZScore(x.v, { period: 20, log: true })],
    stream: (x) => {
      const s = new VolumeZScoreStream({ period: 20, log: true });
      return run(x.c.length, 1, (i, o) => (o[0][i] = s.update(x.v[i])));
    },
  },
  srCase('supportResistance(default)', SR_ATR),
  srCase('supportResistance(3/7, fraction, no role reversal)', SR_FRACTION),
];

/** Random-walk 15m candles with valid OHLC, some zero-volume and some flat bars. */
function randomCandles(seed: number, n: number): Cols {
  const rng = new Rng(seed);
  const x: Cols = {
    t: new Float64Array(n),
    h: new Float64Array(n),
    l: new Float64Array(n),
    c: new Float64Array(n),
    v: new Float64Array(n),
  };
  let price = 100 * Math.exp(rng.normal());
  const start = 1_600_000_000_000 - (1_600_000_000_000 % 900_000) + 900_000 * rng.int(96);
  for (let i = 0; i < n; i++) {
    const open = price;
    const flat = rng.next() < 0.05;
    if (!flat) price *= Math.exp(0.01 * rng.studentT(4));
    const wick = flat ? 0 : price * 0.004 * Math.abs(rng.normal());
    x.t[i] = start + i * 900_000;
    x.c[i] = price;
    x.h[i] = Math.max(open, price) + wick;
    x.l[i] = Math.min(open, price) - wick * rng.next();
    x.v[i] = rng.next() < 0.1 ? 0 : Math.round(rng.exponential() * 1000) / 100;
  }
  return x;
}

const prefix = (x: Cols, end: number): Cols => ({
  t: x.t.slice(0, end),
  h: x.h.slice(0, end),
  l: x.l.slice(0, end),
  c: x.c.slice(0, end),
  v: x.v.slice(0, end),
});

/** Copies `x` with every value after row k replaced by `poison` (times too). */
function poisoned(x: Cols, k: number, poison: number): Cols {
  const y = prefix(x, x.c.length);
  for (const col of [y.t, y.h, y.l, y.c, y.v]) col.fill(poison, k + 1);
  return y;
}

/** Index of the first row that differs (Object.is) in rows [0, upTo), or -1. */
function firstDifference(a: Float64Array, b: Float64Array, upTo: number): number {
  for (let i = 0; i < upTo; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

/** Asserts the outputs of `a` and `b` agree bit for bit on rows [0, upTo). */
function expectSameRows(label: string, a: Float64Array[], b: Float64Array[], upTo: number) {
  expect(a.length, label).toBe(b.length);
  for (let k = 0; k < a.length; k++) {
    const at = firstDifference(a[k], b[k], upTo);
    if (at >= 0)
      expect.fail(`${label}: output ${k} differs at row ${at}: ${a[k][at]} vs ${b[k][at]}`);
  }
}

describe('every indicator, on random candles', () => {
  it.each(CASES.map((c) => [c.name, c] as const))(
    '%s: batch == streaming bit for bit, and rows <= k ignore everything after k',
    (_name, ind) => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          fc.integer({ min: 1, max: 400 }),
          fc.double({ min: 0, max: 1, noNaN: true }),
          (seed, n, at) => {
            const x = randomCandles(seed, n);
            const full = ind.batch(x);
            expectSameRows('batch vs stream', full, ind.stream(x), n);
            const k = Math.min(n - 1, Math.floor(at * n));
            expectSameRows(`truncated at ${k}`, full, ind.batch(prefix(x, k + 1)), k + 1);
            expectSameRows(`NaN after ${k}`, full, ind.batch(poisoned(x, k, NaN)), k + 1);
            expectSameRows(`1e9 after ${k}`, full, ind.batch(poisoned(x, k, 1e9)), k + 1);
          },
        ),
        { numRuns: 40, seed: 4 },
      );
    },
  );

  it.each(CASES.map((c) => [c.name, c] as const))(
    '%s: exactly `lookback` leading NaN rows, then finite values (never zero-filled warm-up)',
    (_name, ind) => {
      const x = randomCandles(7, 600);
      // Support/resistance prices are NaN where no level is known; everything else is finite.
      const sparse = ind.name.startsWith('supportResistance') ? [0, 1] : [];
      for (const [k, out] of ind.batch(x).entries()) {
        if (sparse.includes(k)) continue;
        // Each output's warm-up is at most the declared one (ADX's DI start before the ADX).
        let lead = 0;
        while (lead < out.length && Number.isNaN(out[lead])) lead++;
        expect(lead).toBeLessThanOrEqual(ind.lookback);
      }
      const first = ind.batch(x)[0];
      for (let i = 0; i < ind.lookback; i++) expect(first[i]).toBeNaN();
      ind.batch(x).forEach((out, k) => {
        if (sparse.includes(k)) return;
        for (let i = ind.lookback; i < out.length; i++) {
          if (!Number.isFinite(out[i])) expect.fail(`output ${k} row ${i} is ${out[i]}`);
        }
      });
    },
  );
});

describe('rolling window helpers', () => {
  it('RollingMax / RollingMin equal the window max / min exactly, ties and runs included', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 12 }),
        (xs, size) => {
          const hi = new RollingMax(size);
          const lo = new RollingMin(size);
          xs.forEach((x, i) => {
            const w = xs.slice(Math.max(0, i - size + 1), i + 1);
            expect(hi.push(x)).toBe(Math.max(...w));
            expect(lo.push(x)).toBe(Math.min(...w));
          });
        },
      ),
      { numRuns: 200, seed: 5 },
    );
  });

  it('RollingSum and RollingMoments match the window sum, mean and variances', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 150 }),
        fc.integer({ min: 2, max: 10 }),
        (xs, size) => {
          const sum = new RollingSum(size);
          const moments = new RollingMoments(size);
          xs.forEach((x, i) => {
            const w = xs.slice(Math.max(0, i - size + 1), i + 1);
            const exactSum = w.reduce((a, b) => a + b, 0);
            const mean = exactSum / w.length;
            const ss = w.reduce((a, b) => a + (b - mean) ** 2, 0);
            const scale = w.reduce((a, b) => Math.max(a, Math.abs(b)), 1);
            expect(Math.abs(sum.push(x) - exactSum)).toBeLessThan(1e-12 * scale * size);
            moments.push(x);
            expect(moments.sum).toBe(sum.sum);
            expect(moments.count).toBe(w.length);
            expect(Math.abs(moments.variance(0) - ss / w.length)).toBeLessThan(
              1e-9 * scale * scale,
            );
            if (w.length > 1) {
              expect(Math.abs(moments.variance(1) - ss / (w.length - 1))).toBeLessThan(
                1e-9 * scale * scale,
              );
            } else {
              expect(moments.variance(1)).toBeNaN();
            }
          });
        },
      ),
      { numRuns: 200, seed: 6 },
    );
  });
});

describe('range kernels (the batch path) mixed with single updates', () => {
  it('update() on some rows then updateRange() on the rest equals the batch, bit for bit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 300 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (seed, n, at) => {
          const x = randomCandles(seed, n);
          const k = Math.floor(at * n);
          const rsiOut = new Float64Array(n);
          const rsiStream = new RsiStream(14);
          for (let i = 0; i < k; i++) rsiOut[i] = rsiStream.update(x.c[i]);
          rsiStream.updateRange(x.c, rsiOut, k, n);
          expectSameRows('rsi', [rsiOut], [rsi(x.c, 14)], n);

          const atrOut = new Float64Array(n);
          const atrStream = new AtrStream(14);
          for (let i = 0; i < k; i++) atrOut[i] = atrStream.update(x.h[i], x.l[i], x.c[i]);
          atrStream.updateRange(x.h, x.l, x.c, atrOut, k, n);
          expectSameRows('atr', [atrOut], [atr(x.h, x.l, x.c, 14)], n);

          const m = { macd: new Float64Array(n), signal: new Float64Array(n) };
          const macdStream = new MacdStream();
          for (let i = 0; i < k; i++) {
            m.macd[i] = macdStream.update(x.c[i]);
            m.signal[i] = macdStream.signal;
          }
          macdStream.updateRange(x.c, k, n, m.macd, m.signal);
          const mb = macd(x.c);
          expectSameRows('macd', [m.macd, m.signal], [mb.macd, mb.signal], n);

          const b = { upper: new Float64Array(n), percentB: new Float64Array(n) };
          const bbStream = new BollingerStream({ period: 7 });
          for (let i = 0; i < k; i++) {
            bbStream.update(x.c[i]);
            b.upper[i] = bbStream.upper;
            b.percentB[i] = bbStream.percentB;
          }
          bbStream.updateRange(x.c, k, n, b.upper, undefined, undefined, b.percentB);
          const bb = bollingerBands(x.c, { period: 7 });
          expectSameRows('bollinger', [b.upper, b.percentB], [bb.upper, bb.percentB], n);
        },
      ),
      { numRuns: 60, seed: 9 },
    );
  });
});

describe('arguments and buffers', () => {
  const x = randomCandles(3, 50);

  it('rejects a period below the minimum or not an integer with a RangeError', () => {
    expect(() => sma(x.c, 0)).toThrow(RangeError);
    expect(() => ema(x.c, 2.5)).toThrow(RangeError);
    expect(() => rsi(x.c, 1)).toThrow(/rsi period must be an integer >= 2/);
    expect(() => adx(x.h, x.l, x.c, 1)).toThrow(RangeError);
    expect(() => new MacdStream({ fastPeriod: 26, slowPeriod: 12 })).toThrow(/below slowPeriod/);
    expect(() => bollingerBands(x.c, { stdDevUp: NaN })).toThrow(RangeError);
    expect(() => realizedVolatility(x.c, { barsPerYear: 0 })).toThrow(RangeError);
    expect(() => new SupportResistanceStream({ lookback: 3, rightBars: 5 })).toThrow(RangeError);
    expect(() => rollingZScore(x.c, 1, 1)).toThrow(RangeError);
  });

  it('rejects columns of different lengths and out buffers of the wrong length', () => {
    expect(() => atr(x.h, x.l.subarray(1), x.c)).toThrow(/differ in length/);
    expect(() => sma(x.c, 5, new Float64Array(49))).toThrow(/out has length 49, expected 50/);
    expect(() => macd(x.c, {}, { signal: new Float64Array(3) })).toThrow(/macd.signal/);
  });

  it('fills and returns the caller’s buffers instead of allocating', () => {
    const out = new Float64Array(50).fill(123);
    expect(rsi(x.c, 14, out)).toBe(out);
    expect(out[0]).toBeNaN();
    const record = {
      macd: new Float64Array(50),
      signal: new Float64Array(50),
      histogram: new Float64Array(50),
    };
    const r = macd(x.c, {}, record);
    expect(r).toBe(record);
    expect(r.macd).toBe(record.macd);
    // A partial record: only the given outputs are computed and filled, nothing else allocated.
    const partial = { percentB: new Float64Array(50) };
    const bb = bollingerBands(x.c, {}, partial);
    expect(bb).toBe(partial);
    expect(Object.keys(bb)).toEqual(['percentB']);
    expect(Array.from(bb.percentB)).toEqual(Array.from(bollingerBands(x.c).percentB));
  });

  it('handles empty input and series shorter than the warm-up', () => {
    expect(sma(new Float64Array(0), 3).length).toBe(0);
    expect(Array.from(rsi(x.c.subarray(0, 5), 14))).toEqual([NaN, NaN, NaN, NaN, NaN]);
  });
});

describe('numerical care over long series', () => {
  it('rolling mean and standard deviation stay exact after a million values with outliers', () => {
    const n = 1_000_000;
    const rng = new Rng(11);
    const values = new Float64Array(n);
    let level = 1e6;
    for (let i = 0; i < n; i++) {
      level += rng.normal() * 50;
      // Rare 1e9 spikes: a running sum of squares loses most of its digits when one leaves.
      values[i] = level + (rng.next() < 1e-3 ? 1e9 : 0);
    }
    const period = 20;
    const mean = sma(values, period);
    const sd = rollingStdDev(values, period);
    let naiveSum = 0;
    let naiveSquares = 0;
    const naiveSd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      naiveSum += values[i];
      naiveSquares += values[i] ** 2;
      if (i >= period) {
        naiveSum -= values[i - period];
        naiveSquares -= values[i - period] ** 2;
      }
      naiveSd[i] = Math.sqrt(Math.max(0, naiveSquares / period - (naiveSum / period) ** 2));
    }
    let worstMean = 0;
    let worstSd = 0;
    let worstNaiveSd = 0;
    for (let i = n - 5000; i < n; i++) {
      const w = values.subarray(i - period + 1, i + 1);
      let m = 0;
      for (const v of w) m += v;
      m /= period;
      let ss = 0;
      for (const v of w) ss += (v - m) ** 2;
      const s = Math.sqrt(ss / period);
      worstMean = Math.max(worstMean, Math.abs(mean[i] - m) / Math.abs(m));
      worstSd = Math.max(worstSd, Math.abs(sd[i] - s) / s);
      worstNaiveSd = Math.max(worstNaiveSd, Math.abs(naiveSd[i] - s) / s);
    }
    expect(worstNaiveSd).toBeGreaterThan(1e-3); // the series does defeat the naive method
    expect(worstMean).toBeLessThan(1e-13);
    expect(worstSd).toBeLessThan(1e-12);
  });
});

describe.skipIf(!hasSharedData)(`every indicator on real BTC/USDT 15m${SKIP_REASON}`, () => {
  it('batch == streaming on every row, and truncation or a poisoned future never changes earlier rows', async () => {
    const { candles } = await readCandlesCsv(sharedFile('binance-BTCUSDT-15m.csv.gz'), {
      symbol: 'BTC/USDT',
      timeframe: '15m',
    });
    const c = sliceByTime(candles, Date.UTC(2018, 2, 1), Infinity);
    const x: Cols = { t: c.openTime, h: c.high, l: c.low, c: c.close, v: c.volume };
    const n = x.c.length;
    const rng = new Rng(2024);
    const cuts = [rng.int(n), rng.int(n)];
    for (const ind of CASES) {
      const full = ind.batch(x);
      expectSameRows(`${ind.name} batch vs stream`, full, ind.stream(x), n);
      for (const k of cuts) {
        expectSameRows(`${ind.name} truncated at ${k}`, full, ind.batch(prefix(x, k + 1)), k + 1);
        expectSameRows(`${ind.name} 1e9 after ${k}`, full, ind.batch(poisoned(x, k, 1e9)), k + 1);
      }
    }
  });
});
