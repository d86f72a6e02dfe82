import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { makeCandles, validateCandles } from '../../src/data-processing/candles.js';
import { resample } from '../../src/data-processing/resample.js';
import { readCandlesCsv } from '../../src/data-processing/file-formats.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';

const M15 = 900_000;
const H4 = 14_400_000;

function series(times: number[], seed = 1) {
  const n = times.length;
  const open = new Float64Array(n);
  const high = new Float64Array(n);
  const low = new Float64Array(n);
  const close = new Float64Array(n);
  const volume = new Float64Array(n);
  let p = 100;
  for (let i = 0; i < n; i++) {
    const step = Math.sin(i * 12.9898 + seed) * 0.5;
    open[i] = p;
    close[i] = p + step;
    high[i] = Math.max(open[i], close[i]) + 0.25;
    low[i] = Math.min(open[i], close[i]) - 0.25;
    volume[i] = 1 + (i % 7);
    p = close[i];
  }
  return makeCandles('X/Y', '15m', {
    openTime: Float64Array.from(times),
    open,
    high,
    low,
    close,
    volume,
  });
}

describe('resample', () => {
  it('aggregates complete UTC buckets exactly: first open, max high, min low, last close, summed volume', () => {
    const c = series(Array.from({ length: 32 }, (_, i) => i * M15));
    const { candles: r, incomplete, derived } = resample(c, '4h');
    expect(derived).toBe(true);
    expect(incomplete).toEqual([]);
    expect(Array.from(r.openTime)).toEqual([0, H4]);
    expect(r.open[1]).toBe(c.open[16]);
    expect(r.close[1]).toBe(c.close[31]);
    expect(r.high[0]).toBe(Math.max(...c.high.subarray(0, 16)));
    expect(r.low[0]).toBe(Math.min(...c.low.subarray(0, 16)));
    expect(r.volume[0]).toBe(c.volume.subarray(0, 16).reduce((a, b) => a + b, 0));
  });

  it('never emits a bucket with missing finer candles, and reports it', () => {
    const times = Array.from({ length: 48 }, (_, i) => i * M15).filter((t) => t !== 20 * M15);
    const { candles: r, incomplete } = resample(series(times), '4h');
    expect(Array.from(r.openTime)).toEqual([0, 2 * H4]);
    expect(incomplete).toEqual([{ openTime: H4, present: 15, expected: 16 }]);
  });

  it('produces valid candles whose buckets lie on the target grid (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 400 }),
        (idx) => {
          const times = [...idx].sort((a, b) => a - b).map((k) => k * M15);
          const { candles: r, incomplete } = resample(series(times), '4h');
          validateCandles(r);
          const buckets = new Set(times.map((t) => t - (t % H4)));
          return r.openTime.length + incomplete.length === buckets.size;
        },
      ),
    );
  });

  it('refuses a target that is not a multiple of the source', () => {
    expect(() => resample(series([0]), '1m')).toThrow(/whole multiple/);
  });
});

describe.skipIf(!hasSharedData)(`resample on real BTC data${SKIP_REASON}`, () => {
  it('reproduces the exchange 4h and 1d candles (OHLC exactly from 2019 on, volume within 1e-6 relative) where 15m is complete', async () => {
    const opts = { symbol: 'BTC/USDT' } as const;
    const m15 = (
      await readCandlesCsv(sharedFile('binance-BTCUSDT-15m.csv.gz'), { ...opts, timeframe: '15m' })
    ).candles;
    // The real 15m file holds 81 off-grid rows (Feb 2018); resampling needs on-grid rows.
    const onGrid = m15.openTime.findIndex((t) => t >= Date.UTC(2019, 0, 1));
    const sub = makeCandles('BTC/USDT', '15m', {
      openTime: m15.openTime.subarray(onGrid),
      open: m15.open.subarray(onGrid),
      high: m15.high.subarray(onGrid),
      low: m15.low.subarray(onGrid),
      close: m15.close.subarray(onGrid),
      volume: m15.volume.subarray(onGrid),
    });
    for (const tf of ['4h', '1d'] as const) {
      const exchange = (
        await readCandlesCsv(sharedFile(`binance-BTCUSDT-${tf}.csv.gz`), { ...opts, timeframe: tf })
      ).candles;
      const ours = resample(sub, tf).candles;
      const index = new Map<number, number>();
      exchange.openTime.forEach((t, i) => index.set(t, i));
      let compared = 0;
      const volumeMismatches: string[] = [];
      for (let i = 0; i < ours.openTime.length; i++) {
        const j = index.get(ours.openTime[i]);
        if (j === undefined) continue;
        compared++;
        expect([ours.open[i], ours.high[i], ours.low[i], ours.close[i]]).toEqual([
          exchange.open[j],
          exchange.high[j],
          exchange.low[j],
          exchange.close[j],
        ]);
        if (Math.abs(ours.volume[i] - exchange.volume[j]) > 1e-6 * exchange.volume[j])
          volumeMismatches.push(new Date(ours.openTime[i]).toISOString());
      }
      expect(compared).toBeGreaterThan(tf === '4h' ? 10_000 : 1_700);
      // The exchange's own few days whose volume differs from the sum of its 15m bars (data README).
      expect(volumeMismatches.length).toBeLessThan(tf === '4h' ? 10 : 15);
    }
  });
});
