// Indicators TA-Lib lacks (VWAP rolling and per UTC day, volume and rolling z-scores, realised
// volatility, Donchian and Keltner channels, swing support/resistance) against hand-computed
// values: test/fixtures/indicators/expected.json, derived from definitions by
// test/fixtures/indicators/derive.py (plain Python, no code under test).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  anchoredVwap,
  donchianChannel,
  keltnerChannels,
  realizedVolatility,
  rollingZScore,
  supportResistance,
  volumeZScore,
  vwap,
} from '../../src/data-processing/indicators.js';

type Column = (number | null)[];
interface Fixture {
  candles: Record<'openTime' | 'open' | 'high' | 'low' | 'close' | 'volume', number[]>;
  vwap4: Column;
  anchoredVwapDay: Column;
  volumeZScore5: Column;
  volumeZScore5Log: Column;
  closeZScore6Population: Column;
  realizedVol5Annual15m: Column;
  donchian5: Record<'upper' | 'middle' | 'lower', Column>;
  'keltner_5_4_1.5': Record<'upper' | 'middle' | 'lower', Column>;
  swings_2_2: [number, number, string][];
  supportResistance_default: Record<string, Column>;
  supportResistance_strict: Record<string, Column>;
}

const fx = JSON.parse(
  readFileSync(new URL('../fixtures/indicators/expected.json', import.meta.url), 'utf8'),
) as Fixture;
const col = (name: keyof Fixture['candles']): Float64Array => Float64Array.from(fx.candles[name]);
const time = col('openTime');
const high = col('high');
const low = col('low');
const close = col('close');
const volume = col('volume');

/** Hand values agree to 1e-10 × max(1, |expected|); NaN exactly where the fixture has null. */
function expectFixture(label: string, ours: Float64Array, expected: Column): void {
  expect(ours.length, label).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    if (e === null) {
      expect(ours[i], `${label} row ${i} is warm-up`).toBeNaN();
    } else {
      const err = Math.abs(ours[i] - e) / Math.max(1, Math.abs(e));
      expect(err, `${label} row ${i}: ${ours[i]} vs ${e}`).toBeLessThanOrEqual(1e-10);
    }
  }
}

describe('indicators without a TA-Lib counterpart, against hand-computed fixtures', () => {
  it('has a midnight, zero-volume bars and equal volumes in the fixture (what the cases rely on)', () => {
    expect(new Date(time[8]).toISOString()).toBe('2023-03-17T00:00:00.000Z');
    expect(Array.from(volume.subarray(20, 24))).toEqual([0, 0, 0, 0]);
    expect(new Set(volume.subarray(30, 35)).size).toBe(1);
  });

  it('rolling VWAP(4) weights typical prices by volume and falls back to their mean without volume', () => {
    const ours = vwap(high, low, close, volume, 4);
    expectFixture('vwap4', ours, fx.vwap4);
    // Rows 23: the window 20..23 has no volume at all.
    const tp = (k: number) => (high[k] + low[k] + close[k]) / 3;
    expect(ours[23]).toBeCloseTo((tp(20) + tp(21) + tp(22) + tp(23)) / 4, 12);
  });

  it('anchored VWAP restarts on the first bar of each UTC day', () => {
    const ours = anchoredVwap(time, high, low, close, volume);
    expectFixture('anchoredVwapDay', ours, fx.anchoredVwapDay);
    expect(ours[8]).toBeCloseTo((high[8] + low[8] + close[8]) / 3, 12);
  });

  it('volume z-score (ddof 1, optionally of log volume) is 0 over a constant window', () => {
    const raw = volumeZScore(volume, { period: 5 });
    expectFixture('volumeZScore5', raw, fx.volumeZScore5);
    expect(raw[34]).toBe(0);
    expectFixture(
      'volumeZScore5Log',
      volumeZScore(volume, { period: 5, log: true }),
      fx.volumeZScore5Log,
    );
  });

  it('rolling z-score with the population deviation', () => {
    expectFixture('closeZScore6', rollingZScore(close, 6, 0), fx.closeZScore6Population);
  });

  it('realised volatility: sample deviation of log returns, annualised for 15m bars', () => {
    const ours = realizedVolatility(close, { period: 5, barsPerYear: 35040 });
    expectFixture('realizedVol5', ours, fx.realizedVol5Annual15m);
  });

  it('Donchian channel: highest high, lowest low, midpoint', () => {
    const ours = donchianChannel(high, low, 5);
    expectFixture('donchian upper', ours.upper, fx.donchian5.upper);
    expectFixture('donchian middle', ours.middle, fx.donchian5.middle);
    expectFixture('donchian lower', ours.lower, fx.donchian5.lower);
  });

  it('Keltner channels: SMA-seeded EMA middle, Wilder ATR bands', () => {
    const ours = keltnerChannels(high, low, close, { emaPeriod: 5, atrPeriod: 4, multiplier: 1.5 });
    const k = fx['keltner_5_4_1.5'];
    expectFixture('keltner upper', ours.upper, k.upper);
    expectFixture('keltner middle', ours.middle, k.middle);
    expectFixture('keltner lower', ours.lower, k.lower);
  });

  it.each([
    ['default', { leftBars: 2, rightBars: 2, lookback: 20, atrPeriod: 4, touchTolerance: 0.5 }],
    [
      'strict',
      {
        leftBars: 2,
        rightBars: 2,
        lookback: 12,
        atrPeriod: 4,
        touchTolerance: 1,
        distanceUnit: 'fraction' as const,
        maxDistance: 0.02,
        roleReversal: false,
      },
    ],
  ])('support/resistance from confirmed swings (%s options)', (name, options) => {
    const ours = supportResistance(high, low, close, options);
    const expected =
      name === 'default' ? fx.supportResistance_default : fx.supportResistance_strict;
    for (const key of Object.keys(expected) as (keyof typeof ours)[]) {
      expectFixture(`${name} ${key}`, ours[key], expected[key]);
    }
  });

  it('a swing high is not a level before its confirmation bars have closed', () => {
    // The swing high at row 19 (100.5) is confirmed at row 21 (rightBars 2): at row 20 the
    // nearest resistance is still the older 105.9, at row 21 it is 100.5.
    expect(fx.swings_2_2).toContainEqual([19, 100.5, 'high']);
    const ours = supportResistance(high, low, close, {
      leftBars: 2,
      rightBars: 2,
      lookback: 20,
      atrPeriod: 4,
    });
    expect(ours.resistance[20]).toBe(105.9);
    expect(ours.resistance[21]).toBe(100.5);
  });
});
