// importCandleFile (bad corpus, repair, the real BTC 15m file) and loadHistoricalData (nested map,
// ranges, exact derivation of missing timeframes, checked against the exchange's own 4h and 1d).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importCandleFile, loadHistoricalData } from '../../src/data-processing/data-loader.js';
import { makeCandles, type Candles, type Timeframe } from '../../src/data-processing/candles.js';
import { resample } from '../../src/data-processing/resample.js';
import { CandleStore } from '../../src/data-processing/store.js';
import { DataValidationError } from '../../src/errors.js';
import { setLogLevel } from '../../src/utils/logger.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';

const GOOD = fileURLToPath(new URL('../fixtures/good', import.meta.url));
const BAD = fileURLToPath(new URL('../fixtures/bad', import.meta.url));
const M15 = 900_000;
const H4 = 14_400_000;
const D1 = 86_400_000;

setLogLevel('error'); // repair logs one warning per dropped row; the reports below carry them

let dir: string;
let store: CandleStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-loader-'));
  store = await CandleStore.open(join(dir, 'store.duckdb'));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const btc = { symbol: 'BTC/USDT', timeframe: '15m' } as const;

describe('importCandleFile', () => {
  it('imports every good layout into the same series, idempotently', async () => {
    const files = readdirSync(GOOD);
    expect(files.length).toBeGreaterThanOrEqual(9);
    let checksum: string | null = null;
    for (const f of files) {
      const r = await importCandleFile(store, join(GOOD, f), btc);
      expect(r.rowsRead).toBe(8);
      expect(r.key).toEqual({ exchange: 'binance', ...btc });
      // The first file adds the eight candles; every other layout finds them identical.
      expect(r.written.added + r.written.unchanged).toBe(8);
      expect(r.written.changed).toBe(0);
      const now = await store.checksum();
      if (checksum !== null) expect(now).toBe(checksum);
      checksum = now;
    }
    expect((await store.span({ exchange: 'binance', ...btc }))?.rows).toBe(8);
  });

  // Each bad file: the typed error names its 1-based line and field, and the store is unchanged.
  const bad: [string, number, string | undefined, RegExp][] = [
    ['malformed-number.csv', 4, 'high', /malformed number/],
    ['nan.csv', 3, 'close', /not a finite number \(NaN\)/],
    ['infinity.csv', 5, 'volume', /not a finite number \(Infinity\)/],
    ['high-below-max.csv', 6, 'high', /high 16494 < max\(open 16490.75, close 16495\)/],
    ['low-above-min.csv', 7, 'low', /low 16500 > min\(open 16495, close 16535.25\)/],
    ['negative-volume.csv', 8, 'volume', /negative volume -1.5/],
    ['unsorted.csv', 6, 'open_time', /unsorted/],
    ['duplicate.csv', 6, 'open_time', /duplicate timestamp/],
    ['conflicting-duplicate.csv', 6, 'open_time', /duplicate timestamp/],
    ['off-grid.csv', 4, 'open_time', /off the 15m grid/],
    ['too-few-fields.csv', 7, 'volume', /expected at least 6 fields/],
    ['missing-column.csv', 1, 'volume', /header lacks column/],
    ['truncated.csv.gz', 211, undefined, /truncated gzip/],
    ['garbled.csv.gz', 1, undefined, /garbled gzip/],
    ['not-gzip.csv.gz', 1, undefined, /not gzip data/],
    ['missing-comma.json', 3, undefined, /expected ","/],
    ['word-for-number.json', 4, 'low', /malformed number "low"/],
    ['truncated.json', 6, undefined, /truncated JSON/],
  ];
  it.each(bad)(
    'refuses %s at line %i, field %s, leaving the store unchanged',
    async (file, line, field, reason) => {
      await importCandleFile(store, join(GOOD, 'header-ms.csv'), btc);
      const before = await store.checksum();
      const err = await importCandleFile(store, join(BAD, file), {
        ...btc,
        exchange: 'binance',
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataValidationError);
      expect(err).toMatchObject({ line, field, source: join(BAD, file) });
      expect((err as DataValidationError).reason).toMatch(reason);
      expect(await store.checksum()).toBe(before);
    },
  );

  it('covers every bad fixture in the table above', () => {
    expect(readdirSync(BAD).sort()).toEqual(bad.map((b) => b[0]).sort());
  });

  it('refuses an unknown timeframe naming the field, before reading the file', async () => {
    const err = await importCandleFile(store, join(GOOD, 'header-ms.csv'), {
      symbol: 'BTC/USDT',
      timeframe: '7m',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataValidationError);
    expect(err).toMatchObject({ field: 'timeframe' });
    expect((err as Error).message).toMatch(/unknown timeframe "7m"/);
    expect(await store.listSeries()).toEqual([]);
  });

  it('with repair drops exact duplicates and off-grid rows, reporting each with its line; never conflicting twins', async () => {
    const dup = await importCandleFile(store, join(BAD, 'duplicate.csv'), { ...btc, repair: true });
    expect(dup.repairs).toEqual([
      expect.objectContaining({ line: 6, row: 4, action: 'dropped-duplicate' }),
    ]);
    expect(dup.written.rows).toBe(8);
    const off = await importCandleFile(store, join(BAD, 'off-grid.csv'), {
      ...btc,
      exchange: 'other',
      repair: true,
    });
    expect(off.repairs).toEqual([
      expect.objectContaining({
        line: 4,
        openTime: Date.UTC(2023, 0, 1, 0, 30, 58, 789),
        action: 'dropped-off-grid',
      }),
    ]);
    expect(off.written.rows).toBe(7);
    const before = await store.checksum();
    await expect(
      importCandleFile(store, join(BAD, 'conflicting-duplicate.csv'), { ...btc, repair: true }),
    ).rejects.toMatchObject({ line: 6, field: 'open_time' });
    expect(await store.checksum()).toBe(before);
  });

  it('refuses gaps only when asked, naming the row after the gap', async () => {
    const err = await importCandleFile(store, join(BAD, 'off-grid.csv'), {
      ...btc,
      repair: true,
      rejectGaps: true,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ line: 5, field: 'open_time' });
    expect((err as Error).message).toMatch(/gap of 1 missing 15m candles/);
  });
});

/** A 15m series from `start` with `n` candles, skipping the open times in `missing`. */
function m15Series(start: number, n: number, missing: number[] = [], symbol = 'BTC/USDT'): Candles {
  const times: number[] = [];
  for (let i = 0; i < n; i++) if (!missing.includes(start + i * M15)) times.push(start + i * M15);
  const col = (f: (t: number, i: number) => number) => Float64Array.from(times, f);
  const open = col((t) => 100 + ((t / M15) % 13));
  const close = col((t) => 100 + ((t / M15) % 7));
  return makeCandles(symbol, '15m', {
    openTime: Float64Array.from(times),
    open,
    high: col((_, i) => Math.max(open[i], close[i]) + 1),
    low: col((_, i) => Math.min(open[i], close[i]) - 1),
    close,
    volume: col((t) => (t / M15) % 5),
  });
}

describe('loadHistoricalData', () => {
  const day = Date.UTC(2024, 0, 1);

  it('returns a nested map per symbol and timeframe, with [startDate, endDate) by open time', async () => {
    await store.upsert({ exchange: 'binance', ...btc }, m15Series(day, 96 * 3));
    await store.upsert(
      { exchange: 'binance', symbol: 'ETH/USDT', timeframe: '15m' },
      m15Series(day, 10, [], 'ETH/USDT'),
    );
    const data = await loadHistoricalData({
      symbols: ['BTC/USDT', 'ETH/USDT'],
      timeframes: ['15m'],
      startDate: '2024-01-02',
      endDate: '2024-01-03T06:00:00Z',
      store,
    });
    const b = data.get('BTC/USDT')!.get('15m')!;
    expect(b.openTime[0]).toBe(day + D1);
    expect(b.openTime[b.openTime.length - 1]).toBe(day + D1 + 30 * 3_600_000 - M15);
    expect(b.openTime.length).toBe(96 + 24);
    expect(data.get('ETH/USDT')!.get('15m')!.openTime.length).toBe(0); // ETH ends on day 1
    expect(data.info('BTC/USDT', '15m')).toMatchObject({
      derived: false,
      derivedFrom: null,
      rows: 120,
    });
  });

  it('derives a missing timeframe exactly from a finer stored one, reporting incomplete buckets instead of emitting them', async () => {
    const missing = day + 20 * M15; // inside the second 4h bucket
    const fine = m15Series(day, 96 * 2, [missing]);
    await store.upsert({ exchange: 'binance', ...btc }, fine);
    const data = await loadHistoricalData({
      symbols: ['BTC/USDT'],
      timeframes: ['15m', '4h', '1d'],
      store,
    });
    const h4 = data.get('BTC/USDT')!.get('4h')!;
    const info = data.info('BTC/USDT', '4h')!;
    expect(info).toMatchObject({ derived: true, derivedFrom: '15m', rows: 11 });
    expect(info.incomplete).toEqual([{ openTime: day + H4, present: 15, expected: 16 }]);
    expect(Array.from(h4.openTime)).not.toContain(day + H4);
    // Exact aggregation, checked by hand on the first bucket: rows 0..15 of the 15m series.
    expect(h4.open[0]).toBe(fine.open[0]);
    expect(h4.close[0]).toBe(fine.close[15]);
    expect(h4.high[0]).toBe(Math.max(...fine.high.subarray(0, 16)));
    expect(h4.low[0]).toBe(Math.min(...fine.low.subarray(0, 16)));
    expect(h4.volume[0]).toBe(fine.volume.subarray(0, 16).reduce((a, v) => a + v, 0));
    expect(data.info('BTC/USDT', '1d')).toMatchObject({ derived: true, rows: 1 });
    expect(data.info('BTC/USDT', '1d')!.incomplete).toEqual([
      { openTime: day, present: 95, expected: 96 },
    ]);
  });

  it('derives from the coarsest stored divisor and reads the same buckets a stored series would', async () => {
    await store.upsert({ exchange: 'binance', ...btc }, m15Series(day, 96 * 3));
    const h1 = resample(m15Series(day, 96 * 3), '1h').candles;
    await store.upsert({ exchange: 'binance', symbol: 'BTC/USDT', timeframe: '1h' }, h1);
    const range = { startDate: day + 3_600_000, endDate: day + 2 * D1 + 3_600_000 };
    const data = await loadHistoricalData({
      symbols: ['BTC/USDT'],
      timeframes: ['4h', '1d'],
      store,
      ...range,
    });
    expect(data.info('BTC/USDT', '4h')?.derivedFrom).toBe('1h');
    // Buckets whose open time lies in [start, end): 4h from 04:00 on day 1 to 00:00 on day 3.
    const h4 = data.get('BTC/USDT')!.get('4h')!;
    expect(h4.openTime[0]).toBe(day + H4);
    expect(h4.openTime[h4.openTime.length - 1]).toBe(day + 2 * D1);
    // The bucket at day 3 00:00 extends past endDate; it is complete, so it is emitted, like a stored one.
    const d1 = data.get('BTC/USDT')!.get('1d')!;
    expect(Array.from(d1.openTime)).toEqual([day + D1, day + 2 * D1]);
    const ref = resample(m15Series(day, 96 * 3), '4h').candles;
    const k = ref.openTime.indexOf(day + H4);
    expect(Array.from(h4.close.subarray(0, 5))).toEqual(Array.from(ref.close.subarray(k, k + 5)));
  });

  it('refuses a series that is neither stored nor derivable, naming the store series', async () => {
    await store.upsert(
      { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '4h' },
      resample(m15Series(day, 96), '4h').candles,
    );
    const err = await loadHistoricalData({
      symbols: ['BTC/USDT'],
      timeframes: ['15m'],
      store,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataValidationError);
    expect((err as Error).message).toMatch(
      /store:binance\/BTC\/USDT\/15m.*no 15m candles stored.*stored: 4h/,
    );
  });

  it('opens the store at a path read-only and closes it again', async () => {
    await store.upsert({ exchange: 'binance', ...btc }, m15Series(day, 8));
    store.close();
    const data = await loadHistoricalData({
      symbols: ['BTC/USDT'],
      timeframes: ['15m'],
      store: join(dir, 'store.duckdb'),
    });
    expect(data.get('BTC/USDT')!.get('15m')!.openTime.length).toBe(8);
    store = await CandleStore.open(join(dir, 'store.duckdb')); // writable again: nothing kept it open
  });
});

describe.skipIf(!hasSharedData)(
  `real BTC candles through import and loadHistoricalData${SKIP_REASON}`,
  () => {
    let realDir: string;
    let real: CandleStore;
    beforeAll(async () => {
      realDir = mkdtempSync(join(tmpdir(), 'ctm-real-'));
      real = await CandleStore.open(join(realDir, 'store.duckdb'));
    });
    afterAll(() => {
      real.close();
      rmSync(realDir, { recursive: true, force: true });
    });

    it('a strict import of the 15m file fails at its first off-grid row and writes nothing; --repair drops the 81', async () => {
      const file = sharedFile('binance-BTCUSDT-15m.csv.gz');
      const err = await importCandleFile(real, file, btc).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataValidationError);
      expect(err).toMatchObject({
        line: 16749,
        field: 'open_time',
        openTime: Date.parse('2018-02-09T09:58:14.789Z'),
      });
      expect((err as Error).message).toContain('line 16749');
      expect((err as Error).message).toContain('2018-02-09T09:58:14.789Z');
      expect((err as DataValidationError).hint).toMatch(/--repair/);
      expect(await real.listSeries()).toEqual([]);
      const r = await importCandleFile(real, file, { ...btc, repair: true });
      expect(r.repairs).toHaveLength(81);
      expect(r.repairs.every((a) => a.action === 'dropped-off-grid')).toBe(true);
      expect(r.repairs.map((a) => a.line)).toEqual(Array.from({ length: 81 }, (_, i) => 16749 + i));
      expect(r.repairs[80].openTime).toBe(Date.parse('2018-02-10T05:58:14.789Z'));
      expect(r.written.rows).toBe(222_910 - 81);
    });

    it('deriving 4h and 1d from the stored 15m reproduces the exchange candles: OHLC exactly from 2019, volume but for a few reported days', async () => {
      const from = Date.UTC(2019, 0, 1);
      // The exchange's own 4h and 1d, imported under their own exchange name for comparison.
      for (const tf of ['4h', '1d'] as const) {
        await importCandleFile(real, sharedFile(`binance-BTCUSDT-${tf}.csv.gz`), {
          exchange: 'binance-klines',
          symbol: 'BTC/USDT',
          timeframe: tf,
        });
      }
      if ((await real.span({ exchange: 'binance', ...btc })) === null)
        await importCandleFile(real, sharedFile('binance-BTCUSDT-15m.csv.gz'), {
          ...btc,
          repair: true,
        });
      const derived = await loadHistoricalData({
        symbols: ['BTC/USDT'],
        timeframes: ['4h', '1d'],
        startDate: from,
        store: real,
      });
      const exchange = await loadHistoricalData({
        exchange: 'binance-klines',
        symbols: ['BTC/USDT'],
        timeframes: ['4h', '1d'],
        startDate: from,
        store: real,
      });
      const volumeMismatchYears: Record<string, Record<string, number>> = {};
      for (const tf of ['4h', '1d'] as Timeframe[]) {
        const ours = derived.get('BTC/USDT')!.get(tf)!;
        const theirs = exchange.get('BTC/USDT')!.get(tf)!;
        expect(derived.info('BTC/USDT', tf)).toMatchObject({ derived: true, derivedFrom: '15m' });
        expect(exchange.info('BTC/USDT', tf)).toMatchObject({ derived: false });
        const index = new Map<number, number>();
        theirs.openTime.forEach((t, j) => index.set(t, j));
        let compared = 0;
        const years: Record<string, number> = {};
        for (let i = 0; i < ours.openTime.length; i++) {
          const j = index.get(ours.openTime[i]);
          if (j === undefined) continue;
          compared++;
          expect([ours.open[i], ours.high[i], ours.low[i], ours.close[i]]).toEqual([
            theirs.open[j],
            theirs.high[j],
            theirs.low[j],
            theirs.close[j],
          ]);
          // Float sums of decimal volumes: 1e-9 relative is far above rounding, far below real differences.
          if (Math.abs(ours.volume[i] - theirs.volume[j]) > 1e-9 * theirs.volume[j]) {
            const y = new Date(ours.openTime[i]).toISOString().slice(0, 4);
            years[y] = (years[y] ?? 0) + 1;
          }
        }
        // Every exchange bar from 2019 on is compared except where the 15m data has holes.
        const incomplete = derived.info('BTC/USDT', tf)!.incomplete.length;
        expect(compared).toBeGreaterThan(theirs.openTime.length - incomplete - 2);
        expect(incomplete).toBeGreaterThan(0);
        volumeMismatchYears[tf] = years;
      }
      // The data README lists the exchange's own volume mismatches (15m sum vs 4h/1d bar) by year.
      expect(volumeMismatchYears).toEqual({
        '4h': { '2021': 4, '2022': 1 },
        '1d': { '2019': 3, '2020': 1, '2021': 5, '2022': 1 },
      });
    });
  },
);
