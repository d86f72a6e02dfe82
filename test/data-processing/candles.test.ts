import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DataValidationError } from '../../src/errors.js';
import {
  findGaps,
  lastClosedIndex,
  makeCandles,
  parseTimeframe,
  repairCandles,
  validateCandles,
  type Candles,
} from '../../src/data-processing/candles.js';

const H = 900_000;

function candles(rows: number[][]): Candles {
  const col = (k: number) => Float64Array.from(rows.map((r) => r[k]));
  return makeCandles('BTC/USDT', '15m', {
    openTime: col(0),
    open: col(1),
    high: col(2),
    low: col(3),
    close: col(4),
    volume: col(5),
  });
}

function errorOf(fn: () => unknown): DataValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DataValidationError) return err;
    throw err;
  }
  throw new Error('expected a DataValidationError');
}

const good = [
  [0, 10, 11, 9, 10.5, 1],
  [H, 10.5, 12, 10, 11, 2],
  [2 * H, 11, 11.5, 10.8, 11.2, 0],
];

describe('validateCandles', () => {
  it('accepts valid candles and reports no gaps', () => {
    expect(validateCandles(candles(good)).count).toBe(0);
  });

  const cases: Array<[string, number, number, string, string]> = [
    ['high below the close', 1, 2, '10.9', 'high'],
    ['low above the open', 1, 3, '10.6', 'low'],
    ['negative volume', 2, 5, '-1', 'volume'],
    ['NaN close', 0, 4, 'NaN', 'close'],
    ['infinite open', 1, 1, 'Infinity', 'open'],
    ['off-grid open time', 1, 0, String(H + 1000), 'open_time'],
    ['duplicate open time', 2, 0, String(H), 'open_time'],
    ['unsorted open time', 2, 0, '0', 'open_time'],
  ];
  for (const [what, row, col, value, field] of cases) {
    it(`rejects ${what}, naming the line and the field`, () => {
      const rows = good.map((r) => [...r]);
      rows[row][col] = Number(value);
      const err = errorOf(() =>
        validateCandles(candles(rows), { source: 'f.csv', lineOf: (i) => i + 2 }),
      );
      expect(err.field).toBe(field);
      expect(err.line).toBe(row + 2);
      expect(err.source).toBe('f.csv');
      expect(err.message).toContain(`line ${row + 2}`);
    });
  }

  it('rejects an unknown timeframe by name', () => {
    const err = errorOf(() => parseTimeframe('3m', 'cli'));
    expect(err.field).toBe('timeframe');
    expect(err.message).toContain('3m');
  });

  it('reports gaps with count, largest and where', () => {
    const report = findGaps(Float64Array.from([0, H, 5 * H, 6 * H, 8 * H]), '15m');
    expect(report.count).toBe(2);
    expect(report.missingBars).toBe(4);
    expect(report.largest).toEqual({ afterOpenTime: H, nextOpenTime: 5 * H, missingBars: 3 });
  });
});

describe('repairCandles', () => {
  it('drops exact duplicates and off-grid rows, logging each, and nothing else', () => {
    const rows = [good[0], good[0], [H + 5, 1, 1, 1, 1, 1], good[1], good[2]];
    const { candles: fixed, actions } = repairCandles(candles(rows));
    expect(actions.map((a) => [a.row, a.action])).toEqual([
      [1, 'dropped-duplicate'],
      [2, 'dropped-off-grid'],
    ]);
    expect(Array.from(fixed.openTime)).toEqual([0, H, 2 * H]);
    expect(validateCandles(fixed).count).toBe(0);
  });

  it('keeps a conflicting duplicate for validation to reject', () => {
    const rows = [good[0], [0, 10, 11, 9, 10.4, 1]];
    const { candles: fixed, actions } = repairCandles(candles(rows));
    expect(actions).toHaveLength(0);
    expect(() => validateCandles(fixed)).toThrow(DataValidationError);
  });

  it('never changes a valid series (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 1e5, noNaN: true }), { minLength: 1, maxLength: 50 }),
        (prices) => {
          const rows = prices.map((p, i) => [i * H, p, p * 1.01, p * 0.99, p, 1]);
          const c = candles(rows);
          return repairCandles(c).candles === c;
        },
      ),
    );
  });
});

describe('lastClosedIndex', () => {
  it('finds the last candle whose close time is at or before the given time, -1 before the first', () => {
    const openTime = Float64Array.from([0, H, 2 * H, 3 * H]);
    expect(lastClosedIndex(openTime, H - 1, H)).toBe(-1);
    expect(lastClosedIndex(openTime, H, H)).toBe(0); // candle 0 closes exactly at H
    expect(lastClosedIndex(openTime, 3 * H - 1, H)).toBe(1);
    expect(lastClosedIndex(openTime, 10 * H, H)).toBe(3);
    expect(lastClosedIndex(new Float64Array(0), H, H)).toBe(-1);
  });

  it('agrees with a scan from the end on sorted grids with gaps (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 200 }), { maxLength: 40 }),
        fc.integer({ min: -5, max: 210 }),
        (slots, t) => {
          const openTime = Float64Array.from(slots.sort((a, b) => a - b).map((k) => k * H));
          let expected = -1;
          for (let i = openTime.length - 1; i >= 0; i--)
            if (openTime[i] + H <= t * H) {
              expected = i;
              break;
            }
          expect(lastClosedIndex(openTime, t * H, H)).toBe(expected);
        },
      ),
    );
  });
});
