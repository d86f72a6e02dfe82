import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  aggregateFineCandles,
  buildCandlesFromPath,
  conditionOnWaypoints,
  generateBaseMarket,
  simulateBasePath,
  type BaseProcessParams,
} from '../../src/synthetic-data/base-process.js';
import { loadCalibration } from '../../src/synthetic-data/calibration.js';
import { validateCandles, type Candles } from '../../src/data-processing/candles.js';
import { resample } from '../../src/data-processing/resample.js';
import { DataValidationError } from '../../src/errors.js';
import { Rng } from '../../src/utils/random.js';

const btc: BaseProcessParams = loadCalibration('btc');

function digest(c: Candles): string {
  const h = createHash('sha256');
  for (const col of [c.openTime, c.open, c.high, c.low, c.close, c.volume])
    h.update(new Uint8Array(col.buffer, col.byteOffset, col.byteLength));
  return h.digest('hex');
}

function expectSameCandles(a: Candles, b: Candles): void {
  expect(a.openTime.length).toBe(b.openTime.length);
  expect(digest(a)).toBe(digest(b));
}

describe('generateBaseMarket', () => {
  it('produces valid candles on every timeframe, with 4h and 1d exactly aggregating 15m', () => {
    const mkt = generateBaseMarket(btc, { seed: 11, days: 60 });
    expect(mkt.m15.openTime.length).toBe(60 * 96);
    expect(mkt.h4.openTime.length).toBe(60 * 6);
    expect(mkt.d1.openTime.length).toBe(60);
    for (const c of [mkt.fine, mkt.m15, mkt.h4, mkt.d1]) {
      const gaps = validateCandles(c);
      expect(gaps.count).toBe(0);
    }
    expectSameCandles(mkt.h4, resample(mkt.m15, '4h').candles);
    expectSameCandles(mkt.d1, resample(mkt.m15, '1d').candles);
    expectSameCandles(mkt.m15, resample(mkt.fine, '15m').candles);
  });

  it('is deterministic: same seed, same bytes; another seed, other bytes', () => {
    const a = generateBaseMarket(btc, { seed: 5, days: 20 });
    const b = generateBaseMarket(btc, { seed: 5, days: 20 });
    const c = generateBaseMarket(btc, { seed: 6, days: 20 });
    expect(digest(a.m15)).toBe(digest(b.m15));
    expect(a.path.regimes).toEqual(b.path.regimes);
    expect(a.path.jumps).toEqual(b.path.jumps);
    expect(digest(a.m15)).not.toBe(digest(c.m15));
  });

  it('stays valid and exactly aggregated for any seed, length, price level and volatility scale', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e9 }),
        fc.integer({ min: 1, max: 6 }),
        fc.double({ min: 0.5, max: 1e5, noNaN: true }),
        fc.double({ min: 0.2, max: 4, noNaN: true }),
        (seed, days, initialPrice, volatilityScale) => {
          const mkt = generateBaseMarket(btc, { seed, days, initialPrice, volatilityScale });
          validateCandles(mkt.fine);
          expect(mkt.d1.openTime.length).toBe(days);
          expectSameCandles(mkt.h4, resample(mkt.m15, '4h').candles);
          expect(mkt.fine.open[0]).toBeCloseTo(initialPrice, 2);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('rejects a start off UTC midnight and a non-positive length, naming the field', () => {
    expect(() => generateBaseMarket(btc, { seed: 1, days: 1, startTimeMs: 900_000 })).toThrow(
      /startTimeMs/,
    );
    expect(() => generateBaseMarket(btc, { seed: 1, steps: 0 })).toThrow(DataValidationError);
  });
});

describe('conditionOnWaypoints and buildCandlesFromPath', () => {
  it('passes exactly through the waypoints and keeps the shocks between them', () => {
    const path = simulateBasePath(btc, { seed: 3, days: 10 });
    const target = [
      { step: 500, logPrice: path.initialLogPrice + 0.08 },
      { step: 1500, logPrice: path.initialLogPrice - 0.05 },
    ];
    const r = conditionOnWaypoints(path, target);
    let x = path.initialLogPrice;
    for (let i = 0; i < r.length; i++) {
      x += r[i];
      if (i === 500) expect(x).toBeCloseTo(target[0].logPrice, 10);
      if (i === 1500) expect(x).toBeCloseTo(target[1].logPrice, 10);
    }
    // The correction is a smooth drift: step-to-step differences of the returns are unchanged up
    // to a share proportional to the step variance.
    let maxShift = 0;
    for (let i = 0; i < 500; i++) maxShift = Math.max(maxShift, Math.abs(r[i] - path.logReturn[i]));
    let moved = 0;
    for (let i = 0; i <= 500; i++) moved += r[i] - path.logReturn[i];
    expect(maxShift).toBeLessThan(Math.abs(moved));
    for (let i = 1501; i < r.length; i++) expect(r[i]).toBe(path.logReturn[i]);
    const fine = buildCandlesFromPath({ ...path, logReturn: r }, btc, new Rng(9));
    validateCandles(fine);
    expect(Math.log(fine.close[1500])).toBeCloseTo(target[1].logPrice, 3);
    const { d1 } = aggregateFineCandles(fine);
    expect(d1.openTime.length).toBe(10);
  });

  it('rejects waypoints out of order, naming the field', () => {
    const path = simulateBasePath(btc, { seed: 3, days: 1 });
    expect(() =>
      conditionOnWaypoints(path, [
        { step: 10, logPrice: 1 },
        { step: 5, logPrice: 1 },
      ]),
    ).toThrow(/waypoints/);
  });

  it('names the step of a non-finite return', () => {
    const path = simulateBasePath(btc, { seed: 3, days: 1 });
    const r = Float64Array.from(path.logReturn);
    r[17] = NaN;
    expect(() => buildCandlesFromPath({ ...path, logReturn: r }, btc, new Rng(1))).toThrow(
      /row 17/,
    );
  });
});
