// The DuckDB candle store: exact round trips, idempotent keyed upserts, all-or-nothing writes (also
// under SIGKILL), coverage, export.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCandles, type Candles } from '../../src/data-processing/candles.js';
import { readCandleFile } from '../../src/data-processing/file-formats.js';
import { CandleStore, exportFormatOf, type SeriesKey } from '../../src/data-processing/store.js';
import { CtmError, DataValidationError, UsageError } from '../../src/errors.js';
import { setLogLevel } from '../../src/utils/logger.js';
import { candleRows } from '../helpers/candles.js';

const M15 = 900_000;
const T0 = Date.UTC(2024, 0, 1);
const key: SeriesKey = { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '15m' };

setLogLevel('error'); // "stored candles replaced" warnings are asserted through the counts

/** `n` 15m candles from `start` (index `i` of the whole grid, so overlapping calls agree). */
function series(start: number, n: number, bump = 0): Candles {
  const t = Float64Array.from({ length: n }, (_, i) => start + i * M15);
  const k = (x: number) => x / M15;
  const open = t.map((x) => 100 + (k(x) % 11) + bump);
  const close = t.map((x) => 100 + (k(x) % 5) + bump);
  return makeCandles('BTC/USDT', '15m', {
    openTime: t,
    open,
    high: open.map((o, i) => Math.max(o, close[i]) + 0.5),
    low: open.map((o, i) => Math.min(o, close[i]) - 0.25),
    close,
    volume: t.map((x) => (k(x) % 9) * 0.125),
  });
}

let dir: string;
let store: CandleStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-store-'));
  store = await CandleStore.open(join(dir, 'sub', 'store.duckdb'));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('CandleStore', () => {
  it('reads back exactly what it stored, sorted, and only the asked range', async () => {
    const c = series(T0, 500);
    const r = await store.upsert(key, c, { source: 'test' });
    expect(r).toMatchObject({ rows: 500, added: 500, changed: 0, unchanged: 0 });
    expect(candleRows(await store.read(key))).toEqual(candleRows(c));
    const part = await store.read(key, { fromMs: T0 + 10 * M15, toMs: T0 + 20 * M15 });
    expect(candleRows(part)).toEqual(candleRows(c).slice(10, 20));
    expect((await store.read({ ...key, symbol: 'ETH/USDT' })).openTime.length).toBe(0);
  });

  it('upserts idempotently: the same candles again change nothing; overlaps replace only their own open times', async () => {
    await store.upsert(key, series(T0, 100));
    const sum = await store.checksum();
    expect(await store.upsert(key, series(T0, 100))).toMatchObject({
      added: 0,
      changed: 0,
      unchanged: 100,
    });
    expect(await store.checksum()).toBe(sum);
    // Rows 50..149 again, with rows 50..99 carrying other prices.
    const r = await store.upsert(key, series(T0 + 50 * M15, 100, 1));
    expect(r).toMatchObject({ rows: 100, added: 50, changed: 50, unchanged: 0 });
    const all = candleRows(await store.read(key));
    expect(all).toHaveLength(150);
    expect(all.slice(0, 50)).toEqual(candleRows(series(T0, 50)));
    expect(all.slice(50)).toEqual(candleRows(series(T0 + 50 * M15, 100, 1)));
  });

  it('keeps series apart and keys them by exchange, symbol, timeframe and open time (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            exchange: fc.constantFrom('binance', 'kraken'),
            symbol: fc.constantFrom('BTC/USDT', 'ETH/USDT'),
            start: fc.integer({ min: 0, max: 40 }),
            n: fc.integer({ min: 0, max: 30 }),
            bump: fc.integer({ min: 0, max: 2 }),
          }),
          { maxLength: 8 },
        ),
        async (writes) => {
          const s = await CandleStore.open(
            join(dir, `p${Math.floor(performance.now() * 1000)}.duckdb`),
          );
          try {
            // Model: a map per series from open time to the last written row.
            const model = new Map<string, Map<number, number[]>>();
            for (const w of writes) {
              const c = series(T0 + w.start * M15, w.n, w.bump);
              await s.upsert({ exchange: w.exchange, symbol: w.symbol, timeframe: '15m' }, c);
              const m = model.get(`${w.exchange} ${w.symbol}`) ?? new Map<number, number[]>();
              for (const r of candleRows(c)) m.set(r[0], r);
              model.set(`${w.exchange} ${w.symbol}`, m);
            }
            for (const [name, m] of model) {
              const [exchange, symbol] = name.split(' ');
              const got = candleRows(await s.read({ exchange, symbol, timeframe: '15m' }));
              expect(got).toEqual([...m.values()].sort((a, b) => a[0] - b[0]));
            }
          } finally {
            s.close();
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it('refuses invalid candles whole, naming the source, row and field, and writes nothing', async () => {
    await store.upsert(key, series(T0, 10));
    const before = await store.checksum();
    const bad = series(T0 + 10 * M15, 10);
    (bad.high as Float64Array)[7] = bad.low[7] - 1;
    const err = await store.upsert(key, bad, { source: 'page 2' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataValidationError);
    expect(err).toMatchObject({ source: 'page 2', row: 7, field: 'high' });
    expect(await store.checksum()).toBe(before);
    const wrongTf = makeCandles('BTC/USDT', '4h', { ...columns(series(T0, 1)) });
    await expect(store.upsert(key, wrongTf)).rejects.toThrow(
      /candles are 4h but the series is 15m/,
    );
  });

  it('reports coverage: span, gaps, duplicates, the last write and an interrupted download', async () => {
    const c = series(T0, 40);
    const holed = makeCandles('BTC/USDT', '15m', {
      openTime: Float64Array.from([...c.openTime.subarray(0, 10), ...c.openTime.subarray(15)]),
      open: Float64Array.from([...c.open.subarray(0, 10), ...c.open.subarray(15)]),
      high: Float64Array.from([...c.high.subarray(0, 10), ...c.high.subarray(15)]),
      low: Float64Array.from([...c.low.subarray(0, 10), ...c.low.subarray(15)]),
      close: Float64Array.from([...c.close.subarray(0, 10), ...c.close.subarray(15)]),
      volume: Float64Array.from([...c.volume.subarray(0, 10), ...c.volume.subarray(15)]),
    });
    await store.upsert(key, holed, { source: 'file.csv' });
    await store.upsert(
      { ...key, timeframe: '4h' },
      makeCandles('BTC/USDT', '4h', columns(series(T0, 0))),
    );
    await store.setPendingDownload(key, { nextMs: T0 + 40 * M15, endMs: T0 + 99 * M15 });
    const [cov] = await store.coverage();
    expect(cov).toMatchObject({
      ...key,
      rows: 35,
      firstOpenTime: T0,
      lastOpenTime: T0 + 39 * M15,
      expectedRows: 40,
      duplicates: 0,
      pending: { nextMs: T0 + 40 * M15, endMs: T0 + 99 * M15 },
    });
    expect(cov.gaps).toMatchObject({ count: 1, missingBars: 5 });
    expect(cov.gaps.gaps[0]).toEqual({
      afterOpenTime: T0 + 9 * M15,
      nextOpenTime: T0 + 15 * M15,
      missingBars: 5,
    });
    expect(cov.lastIngest).toMatchObject({ kind: 'import', source: 'file.csv', rows: 35 });
    await store.setPendingDownload(key, null);
    expect(await store.pendingDownload(key)).toBeNull();
    expect((await store.listSeries()).map((s) => s.timeframe)).toEqual(['15m']); // empty writes add no series
  });

  it('orders series by timeframe length, not by name', async () => {
    for (const tf of ['1d', '4h', '15m'] as const) {
      const c = series(T0, 1);
      await store.upsert({ ...key, timeframe: tf }, makeCandles('BTC/USDT', tf, columns(c)));
    }
    expect((await store.listSeries()).map((s) => s.timeframe)).toEqual(['15m', '4h', '1d']);
  });

  it('exports CSV, gzipped CSV and Parquet that read back to the same candles, atomically', async () => {
    const c = series(T0, 300);
    await store.upsert(key, c);
    for (const out of ['x.csv', 'x.csv.gz', 'x.parquet']) {
      const path = join(dir, 'out', out);
      const r = await store.exportSeries(key, path, { fromMs: T0 + 100 * M15 });
      expect(r).toMatchObject({ rows: 200, format: exportFormatOf(out) });
      const back = await readCandleFile(path, { symbol: 'BTC/USDT', timeframe: '15m' });
      expect(candleRows(back.candles)).toEqual(candleRows(c).slice(100));
    }
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['x.csv', 'x.csv.gz', 'x.parquet']);
    await expect(store.exportSeries(key, join(dir, 'x.xlsx'))).rejects.toThrow(UsageError);
    await expect(
      store.exportSeries({ ...key, symbol: 'ETH/USDT' }, join(dir, 'e.csv')),
    ).rejects.toThrow(/no candles stored/);
    expect(existsSync(join(dir, 'e.csv'))).toBe(false);
  });

  it('opens read-only without creating anything, and refuses writes and foreign files', async () => {
    await expect(CandleStore.open(join(dir, 'absent.duckdb'), { readOnly: true })).rejects.toThrow(
      /no store at/,
    );
    expect(existsSync(join(dir, 'absent.duckdb'))).toBe(false);
    await store.upsert(key, series(T0, 3));
    store.close();
    const ro = await CandleStore.open(join(dir, 'sub', 'store.duckdb'), { readOnly: true });
    try {
      expect((await ro.read(key)).openTime.length).toBe(3);
      await expect(ro.upsert(key, series(T0, 1))).rejects.toThrow(/read-only/);
    } finally {
      ro.close();
    }
    writeFileSync(join(dir, 'junk.duckdb'), 'not a database');
    await expect(CandleStore.open(join(dir, 'junk.duckdb'))).rejects.toThrow(CtmError);
    store = await CandleStore.open(join(dir, 'sub', 'store.duckdb'));
  });

  it('survives a kill in the middle of a large write: the store holds the state before or after, never part', async () => {
    await store.upsert(key, series(T0, 1000));
    const before = await store.checksum();
    store.close();
    const storePath = join(dir, 'sub', 'store.duckdb');
    const storeModule = fileURLToPath(
      new URL('../../src/data-processing/store.ts', import.meta.url),
    );
    const candlesModule = fileURLToPath(
      new URL('../../src/data-processing/candles.ts', import.meta.url),
    );
    // The child overwrites 2,000,000 candles (prices bumped; about 1 s of writing, 8x the kill
    // delay below) and reports when the write begins.
    const script = `
      const { CandleStore } = await import(${JSON.stringify(storeModule)});
      const { allocateCandles } = await import(${JSON.stringify(candlesModule)});
      const n = 2000000, c = allocateCandles('BTC/USDT', '15m', n);
      for (let i = 0; i < n; i++) { c.openTime[i] = ${T0} + i * ${M15}; c.open[i] = c.close[i] = 7; c.high[i] = 8; c.low[i] = 6; c.volume[i] = 1; }
      const s = await CandleStore.open(${JSON.stringify(storePath)});
      process.stdout.write('writing\\n');
      await s.upsert(${JSON.stringify(key)}, c);
      process.stdout.write('done\\n');
      s.close();`;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    const killed = new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('writing')) setTimeout(() => child.kill('SIGKILL'), 100);
      });
      child.on('exit', () => resolve());
    });
    await killed;
    expect(out).toContain('writing');
    expect(out).not.toContain('done'); // killed mid-write
    store = await CandleStore.open(storePath);
    const after = await store.checksum();
    const span = await store.span(key);
    // All-or-nothing: either the 1000 original candles or all 2,000,000 new ones.
    if (after === before) expect(span?.rows).toBe(1000);
    else expect(span?.rows).toBe(2_000_000);
    expect((await store.coverage())[0].duplicates).toBe(0);
  });
});

function columns(c: Candles) {
  return {
    openTime: c.openTime,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volume,
  };
}
