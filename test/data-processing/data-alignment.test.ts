import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  makeCandles,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from '../../src/data-processing/candles.js';
import { alignTimeframes } from '../../src/data-processing/data-alignment.js';
import { randomCandles } from '../../src/data-processing/lookahead.js';
import { DataValidationError } from '../../src/errors.js';

const M15 = 900_000;
const H1 = 3_600_000;
const H4 = 14_400_000;
const DAY = 86_400_000;

/** Candles at the given open times; prices follow the row index so every candle is recognisable. */
function candlesAt(tf: Timeframe, times: number[]): Candles {
  const n = times.length;
  const col = (f: (i: number) => number) => Float64Array.from({ length: n }, (_, i) => f(i));
  return makeCandles('T/USDT', tf, {
    openTime: Float64Array.from(times),
    open: col((i) => 100 + i),
    high: col((i) => 102 + i),
    low: col((i) => 99 + i),
    close: col((i) => 101 + i),
    volume: col((i) => 1 + i),
  });
}

const iso = (t: number) => new Date(t).toISOString().slice(11, 16);

describe('alignTimeframes: the last closed higher candle', () => {
  it("reproduces freqtrade PR #4144's 15m/1h table: the 00:00 hourly candle first appears on the 00:45 row", () => {
    // freqtrade's test_merge_informative_pair: 40 15m candles and 40 1h candles from 2020-07-05
    // 00:00 UTC. Its asserted rows: 0-2 have no 1h candle (NaT); rows 3-6 carry the 00:00 1h
    // candle; rows 7-8 carry the 01:00 one. Derivation: the 15m row opening at 00:45 closes at
    // 01:00, which is when the 00:00-01:00 hourly candle closes.
    const t0 = Date.UTC(2020, 6, 5);
    const base = candlesAt(
      '15m',
      Array.from({ length: 40 }, (_, i) => t0 + i * M15),
    );
    const hourly = candlesAt(
      '1h',
      Array.from({ length: 40 }, (_, i) => t0 + i * H1),
    );
    const aligned = alignTimeframes(
      new Map([
        ['15m', base],
        ['1h', hourly],
      ]),
    );
    const h1 = aligned.higher[0];
    expect(h1.timeframe).toBe('1h');
    const table = Array.from({ length: 12 }, (_, i) => [
      iso(base.openTime[i]),
      h1.lastClosed[i] < 0 ? null : iso(hourly.openTime[h1.lastClosed[i]]),
    ]);
    expect(table).toEqual([
      ['00:00', null],
      ['00:15', null],
      ['00:30', null],
      ['00:45', '00:00'],
      ['01:00', '00:00'],
      ['01:15', '00:00'],
      ['01:30', '00:00'],
      ['01:45', '01:00'],
      ['02:00', '01:00'],
      ['02:15', '01:00'],
      ['02:30', '01:00'],
      ['02:45', '02:00'],
    ]);
    // The same rule on every one of the 40 rows, and the 1h candle's data travels with it.
    for (let i = 0; i < 40; i++) expect(h1.lastClosed[i]).toBe(Math.floor((i + 1) / 4) - 1);
    expect(hourly.close[h1.lastClosed[3]]).toBe(101);
  });

  it('shows the 08:00 4h candle first on the 15m row that opens at 11:45, not at 11:30', () => {
    const day = Date.UTC(2024, 0, 2);
    const base = candlesAt(
      '15m',
      Array.from({ length: 96 }, (_, i) => day + i * M15),
    );
    const h4 = candlesAt(
      '4h',
      Array.from({ length: 6 }, (_, i) => day + i * H4),
    );
    const { higher } = alignTimeframes({ '15m': base, '4h': h4 });
    const row = (hhmm: string) => {
      const [h, m] = hhmm.split(':').map(Number);
      return (h * 60 + m) / 15;
    };
    const known = (hhmm: string) => iso(h4.openTime[higher[0].lastClosed[row(hhmm)]]);
    expect(known('11:30')).toBe('04:00');
    expect(known('11:45')).toBe('08:00');
    expect(known('15:30')).toBe('08:00');
    expect(known('15:45')).toBe('12:00');
    expect(higher[0].lastClosed[row('03:30')]).toBe(-1);
    expect(higher[0].staleness[row('11:45')]).toBe(0);
    expect(higher[0].staleness[row('12:00')]).toBe(1);
    expect(higher[0].staleness[row('15:30')]).toBe(15);
  });

  it('never borrows a later candle across a missing 4h candle; staleness keeps growing', () => {
    const day = Date.UTC(2024, 0, 2);
    const base = candlesAt(
      '15m',
      Array.from({ length: 96 }, (_, i) => day + i * M15),
    );
    // The 08:00 4h candle is missing from the higher series.
    const h4 = candlesAt(
      '4h',
      [0, 1, 3, 4, 5].map((k) => day + k * H4),
    );
    const { higher } = alignTimeframes({ '15m': base, '4h': h4 });
    const a = higher[0];
    // From 11:45 to 15:30 the last known candle stays the 04:00 one (index 1), 16..31 bars stale.
    for (let i = 47; i <= 62; i++) {
      expect(a.lastClosed[i]).toBe(1);
      expect(a.staleness[i]).toBe(i - 31);
    }
    // The 12:00 candle (index 2) appears only when it closes, on the 15:45 row.
    expect(a.lastClosed[63]).toBe(2);
    expect(a.staleness[63]).toBe(0);
  });

  it('picks up a higher candle on the first base row after a base gap, stale by the bars missed', () => {
    const day = Date.UTC(2024, 0, 2);
    // 15m rows 11:15 to 12:00 (opens) are missing: no base row closes at 12:00.
    const times = Array.from({ length: 64 }, (_, i) => day + i * M15).filter(
      (t) => t < day + 11.25 * H1 || t > day + 12 * H1,
    );
    const base = candlesAt('15m', times);
    const h4 = candlesAt(
      '4h',
      [0, 1, 2, 3].map((k) => day + k * H4),
    );
    const a = alignTimeframes({ '15m': base, '4h': h4 }).higher[0];
    const first = times.findIndex((t) => t === day + 12.25 * H1);
    expect(a.lastClosed[first - 1]).toBe(1); // 11:00 row closes 11:15: the 04:00 candle
    expect(a.lastClosed[first]).toBe(2); // 12:15 row closes 12:30: the 08:00 candle, 2 bars old
    expect(a.staleness[first]).toBe(2);
  });

  it('takes the base as the finest timeframe whatever the key order, higher ones finest first', () => {
    const t0 = Date.UTC(2024, 0, 1);
    const base = candlesAt(
      '15m',
      Array.from({ length: 200 }, (_, i) => t0 + i * M15),
    );
    const aligned = alignTimeframes(
      new Map<Timeframe, Candles>([
        ['1d', candlesAt('1d', [t0, t0 + DAY])],
        ['15m', base],
        ['4h', candlesAt('4h', [t0, t0 + H4])],
      ]),
    );
    expect(aligned.base).toBe(base);
    expect(aligned.higher.map((h) => h.timeframe)).toEqual(['4h', '1d']);
    expect(aligned.mode).toBe('last-closed');
    expect(aligned.higher[0].forming).toBeUndefined();
  });

  it('rejects candles labelled with another timeframe than their key, naming both', () => {
    const t0 = Date.UTC(2024, 0, 1);
    const base = candlesAt('15m', [t0]);
    expect(() => alignTimeframes({ '15m': base, '4h': base })).toThrow(
      /candles keyed 4h are labelled 15m/,
    );
    expect(() => alignTimeframes({})).toThrow(DataValidationError);
  });
});

describe('alignTimeframes: forming mode', () => {
  const data = randomCandles({ seed: 7, rows: 3 * 96 + 40, gapProbability: 0.03 });

  it('builds the 4h candle in progress only from base rows of its bucket up to the row', () => {
    const aligned = alignTimeframes(data, { mode: 'forming' });
    const base = aligned.base;
    const h4 = aligned.higher[0];
    const f = h4.forming!;
    for (let i = 0; i < base.openTime.length; i++) {
      const bucket = base.openTime[i] - (base.openTime[i] % H4);
      const closesBucket = base.openTime[i] + M15 === bucket + H4;
      const exact = h4.candles.openTime.indexOf(bucket);
      expect(f.openTime[i]).toBe(bucket);
      if (closesBucket && exact >= 0) continue; // checked in the next test
      let first = i;
      while (first > 0 && base.openTime[first - 1] >= bucket) first--;
      const rows = Array.from({ length: i - first + 1 }, (_, r) => first + r);
      expect(f.open[i]).toBe(base.open[first]);
      expect(f.close[i]).toBe(base.close[i]);
      expect(f.high[i]).toBe(Math.max(...rows.map((r) => base.high[r])));
      expect(f.low[i]).toBe(Math.min(...rows.map((r) => base.low[r])));
      expect(f.volume[i]).toBeCloseTo(
        rows.reduce((s, r) => s + base.volume[r], 0),
        9,
      );
    }
  });

  it('agrees exactly with last-closed mode on the row where a higher candle closes', () => {
    const forming = alignTimeframes(data, { mode: 'forming' });
    const closed = alignTimeframes(data, { mode: 'last-closed' });
    let checked = 0;
    for (let h = 0; h < forming.higher.length; h++) {
      const fa = forming.higher[h];
      const ca = closed.higher[h];
      const tfMs = TIMEFRAME_MS[fa.timeframe];
      expect(Array.from(fa.lastClosed)).toEqual(Array.from(ca.lastClosed));
      for (let i = 0; i < forming.base.openTime.length; i++) {
        const k = ca.lastClosed[i];
        if (k < 0 || ca.candles.openTime[k] + tfMs !== forming.base.openTime[i] + M15) continue;
        const f = fa.forming!;
        const c = ca.candles;
        expect([f.openTime[i], f.open[i], f.high[i], f.low[i], f.close[i], f.volume[i]]).toEqual([
          c.openTime[k],
          c.open[k],
          c.high[k],
          c.low[k],
          c.close[k],
          c.volume[k],
        ]);
        // The window before the forming candle ends right before it: same window as last-closed.
        expect(fa.formingPrev![i]).toBe(k - 1);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
  });
});

describe('alignTimeframes: invariants (property)', () => {
  it('the aligned higher candle closes at or before the base row closes, and is the latest such', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.integer({ min: 1, max: 700 }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        fc.constantFrom<'last-closed' | 'forming'>('last-closed', 'forming'),
        (seed, rows, gapProbability, dropHigherProbability, mode) => {
          const data = randomCandles({ seed, rows, gapProbability, dropHigherProbability });
          const aligned = alignTimeframes(data, { mode });
          const b = aligned.base;
          for (const a of aligned.higher) {
            const tfMs = TIMEFRAME_MS[a.timeframe];
            const h = a.candles.openTime;
            for (let i = 0; i < b.openTime.length; i++) {
              const close = b.openTime[i] + M15;
              const k = a.lastClosed[i];
              if (k >= 0) {
                expect(h[k] + tfMs).toBeLessThanOrEqual(close);
                expect(a.staleness[i]).toBe((close - (h[k] + tfMs)) / M15);
              } else expect(a.staleness[i]).toBe(-1);
              if (k + 1 < h.length) expect(h[k + 1] + tfMs).toBeGreaterThan(close);
              if (mode === 'forming') {
                const p = a.formingPrev![i];
                if (p >= 0) expect(h[p] + tfMs).toBeLessThanOrEqual(a.forming!.openTime[i]);
                if (p + 1 < h.length)
                  expect(h[p + 1] + tfMs).toBeGreaterThan(a.forming!.openTime[i]);
              }
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
