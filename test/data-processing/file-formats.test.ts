// Candle file readers: every supported layout reads to the same candles, damaged files fail with
// typed errors naming line and field, and streaming gives the same result however bytes arrive.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync, constants as zlibConstants } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  detectCandleFileFormat,
  readCandleFile,
  readCandlesCsvStream,
  readCandlesJsonStream,
} from '../../src/data-processing/file-formats.js';
import { DataValidationError, UsageError } from '../../src/errors.js';
import { candleRows as rowsOf } from '../helpers/candles.js';

const GOOD = fileURLToPath(new URL('../fixtures/good', import.meta.url));
const BAD = fileURLToPath(new URL('../fixtures/bad', import.meta.url));
const opts = { symbol: 'BTC/USDT', timeframe: '15m' } as const;

// The eight candles every good fixture holds (test/fixtures/make-fixtures.mjs writes them):
// 15m candles from 2023-01-01T00:00Z, [open, high, low, close, volume].
const T0 = Date.UTC(2023, 0, 1);
const ROWS = [
  [16500.5, 16530, 16490.25, 16520, 120.5],
  [16520, 16560.75, 16515, 16550.5, 98.25],
  [16550.5, 16552, 16500, 16510, 150],
  [16510, 16525.5, 16480, 16490.75, 80.125],
  [16490.75, 16500, 16470.5, 16495, 60],
  [16495, 16540, 16495, 16535.25, 110.5],
  [16535.25, 16590, 16530, 16580, 200.75],
  [16580, 16581, 16560, 16565.5, 75],
];

const EXPECTED = ROWS.map((r, i) => [T0 + i * 900_000, ...r]);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-formats-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readCandleFile on every supported layout', () => {
  const cases: [string, string, string, number[]][] = [
    ['header-ms.csv', 'csv (header)', 'ms', [2, 3, 4, 5, 6, 7, 8, 9]],
    ['header-ms.csv.gz', 'csv (header)', 'ms', [2, 3, 4, 5, 6, 7, 8, 9]],
    ['noheader-ms.csv', 'csv (no header, 6 columns, first 6 used)', 'ms', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['seconds-semicolon.csv', 'csv (header)', 's', [2, 3, 4, 5, 6, 7, 8, 9]],
    ['iso-dates.csv', 'csv (header)', 'iso', [2, 3, 4, 5, 6, 7, 8, 9]],
    ['kline-ms.csv', 'csv (12-column kline export, no header)', 'ms', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['kline-us.csv', 'csv (12-column kline export, no header)', 'us', [1, 2, 3, 4, 5, 6, 7, 8]],
    [
      'freqtrade.json',
      'json (freqtrade [[time, open, high, low, close, volume], ...])',
      'ms',
      [1, 1, 1, 1, 1, 1, 1, 1],
    ],
    [
      'binance-klines.json',
      'json (candle arrays of 12 values, first 6 used)',
      'ms',
      [2, 3, 4, 5, 6, 7, 8, 9],
    ],
  ];
  it.each(cases)(
    'reads %s as the same eight candles, stating layout %s and time unit %s',
    async (file, layout, unit, lines) => {
      const r = await readCandleFile(join(GOOD, file), opts);
      expect(rowsOf(r.candles)).toEqual(EXPECTED);
      expect(r.layout).toBe(layout);
      expect(r.timeUnit).toBe(unit);
      expect(Array.from(r.lines)).toEqual(lines);
      expect(r.candles.symbol).toBe('BTC/USDT');
    },
  );

  it('reads gzipped JSON (freqtrade jsongz), and gzip without a .gz name, by its magic bytes', async () => {
    const gz = gzipSync(readFileSync(join(GOOD, 'freqtrade.json')));
    writeFileSync(join(dir, 'BTC_USDT-15m.json.gz'), gz);
    writeFileSync(join(dir, 'disguised.json'), gz);
    for (const f of ['BTC_USDT-15m.json.gz', 'disguised.json']) {
      const r = await readCandleFile(join(dir, f), opts);
      expect(r.format).toBe('json');
      expect(rowsOf(r.candles)).toEqual(EXPECTED);
    }
  });

  describe('Parquet, generated here from the CSV fixture by DuckDB', () => {
    const variants: [string, string, string][] = [
      ['bigint-ms.parquet', `SELECT open_time, open, high, low, close, volume FROM src`, 'ms'],
      [
        'timestamptz.parquet',
        `SELECT make_timestamptz(open_time * 1000) AS "Date", open AS "Open", high AS "High", low AS "Low",
                close AS "Close", volume AS "Volume", 42 AS extra FROM src`,
        'iso',
      ],
      [
        'micros-decimal.parquet',
        `SELECT open_time * 1000 AS timestamp, CAST(open AS DECIMAL(18,8)) AS open,
                CAST(high AS DECIMAL(18,8)) AS high, CAST(low AS DECIMAL(18,8)) AS low,
                CAST(close AS DECIMAL(18,8)) AS close, CAST(volume AS DECIMAL(18,8)) AS volume FROM src`,
        'us',
      ],
      [
        'positional.parquet',
        `SELECT open_time AS c0, open AS c1, high AS c2, low AS c3, close AS c4, volume AS c5 FROM src`,
        'ms',
      ],
    ];
    beforeAll(async () => {
      const db = await DuckDBInstance.create(':memory:');
      const con = await db.connect();
      await con.run(
        `CREATE TABLE src AS SELECT * FROM read_csv('${join(GOOD, 'header-ms.csv')}', header = true)`,
      );
      for (const [file, sql] of variants) {
        await con.run(`COPY (${sql}) TO '${join(dir, file)}' (FORMAT parquet)`);
      }
      await con.run(
        `COPY (SELECT open_time, open, high, low, CASE WHEN open_time = 1672533900000 THEN NULL ELSE close END AS close, volume FROM src)
         TO '${join(dir, 'null-close.parquet')}' (FORMAT parquet)`,
      );
      await con.run(
        `COPY (SELECT open_time, open, high, low, close FROM src) TO '${join(dir, 'no-volume.parquet')}' (FORMAT parquet)`,
      );
      con.closeSync();
      db.closeSync();
      writeFileSync(join(dir, 'not-parquet.parquet'), 'open_time,open\n1,2\n');
    });

    it.each(variants.map(([f, , u]) => [f, u]))('reads %s (time unit %s)', async (file, unit) => {
      const r = await readCandleFile(join(dir, file), opts);
      expect(r.format).toBe('parquet');
      expect(r.timeUnit).toBe(unit);
      expect(rowsOf(r.candles)).toEqual(EXPECTED);
      expect(Array.from(r.lines)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it('names the 0-based row and field of a missing value, a missing column and an unreadable file', async () => {
      const nullClose = await readCandleFile(join(dir, 'null-close.parquet'), opts).catch(
        (e: unknown) => e,
      );
      expect(nullClose).toBeInstanceOf(DataValidationError);
      expect(nullClose).toMatchObject({ row: 3, field: 'close', reason: 'missing value (NULL)' });
      const noVolume = await readCandleFile(join(dir, 'no-volume.parquet'), opts).catch(
        (e: unknown) => e,
      );
      expect(noVolume).toMatchObject({ field: 'volume' });
      expect((noVolume as Error).message).toMatch(/no column for volume/);
      const garbage = await readCandleFile(join(dir, 'not-parquet.parquet'), opts).catch(
        (e: unknown) => e,
      );
      expect(garbage).toBeInstanceOf(DataValidationError);
      expect((garbage as Error).message).toMatch(/not a readable Parquet file/);
    });
  });
});

describe('readCandleFile on damaged files', () => {
  // [file, line, field, reason]: every error names the 1-based file line and, for a value, its field.
  const cases: [string, number, string | undefined, RegExp][] = [
    ['malformed-number.csv', 4, 'high', /malformed number "16552.0x"/],
    ['nan.csv', 3, 'close', /not a finite number \(NaN\)/],
    ['infinity.csv', 5, 'volume', /not a finite number \(Infinity\)/],
    ['too-few-fields.csv', 7, 'volume', /expected at least 6 fields, found 5/],
    ['missing-column.csv', 1, 'volume', /header lacks column\(s\) volume/],
    ['not-gzip.csv.gz', 1, undefined, /not gzip data/],
    ['garbled.csv.gz', 1, undefined, /garbled gzip data/],
    ['missing-comma.json', 3, undefined, /expected "," or "\]" after a candle array/],
    ['word-for-number.json', 4, 'low', /malformed number "low"/],
    ['truncated.json', 6, undefined, /truncated JSON/],
  ];
  it.each(cases)(
    '%s: DataValidationError at line %i, field %s',
    async (file, line, field, reason) => {
      const err = await readCandleFile(join(BAD, file), opts).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataValidationError);
      const e = err as DataValidationError;
      expect(e.line).toBe(line);
      expect(e.field).toBe(field);
      expect(e.reason).toMatch(reason);
      expect(e.source).toBe(join(BAD, file));
      expect(e.exitCode).toBe(3);
      expect(e.message.split('\n')).toHaveLength(1);
    },
  );

  it('stops a truncated gzip at the first line it cannot read, after reading every complete one', async () => {
    const path = join(BAD, 'truncated.csv.gz');
    // Independent count: what zlib can inflate from the truncated stream, whole lines only.
    const readable = gunzipSync(readFileSync(path), {
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
    }).toString('latin1');
    const completeLines = readable.split('\n').length - 1;
    const err = (await readCandleFile(path, opts).catch((e: unknown) => e)) as DataValidationError;
    expect(err).toBeInstanceOf(DataValidationError);
    expect(err.reason).toMatch(/truncated gzip data/);
    expect(err.line).toBe(completeLines + 1);
    expect(err.field).toBeUndefined();
  });

  it('refuses a missing file and an unknown format as usage errors', async () => {
    await expect(readCandleFile(join(dir, 'nope.csv'), opts)).rejects.toThrow(UsageError);
    await expect(
      readCandleFile(join(GOOD, 'header-ms.csv'), { ...opts, format: 'xlsx' }),
    ).rejects.toThrow(/unknown format "xlsx"/);
  });
});

describe('detectCandleFileFormat', () => {
  it('goes by the extension unless --format says otherwise', () => {
    expect(detectCandleFileFormat('a/b.csv')).toBe('csv');
    expect(detectCandleFileFormat('a/b.CSV.GZ')).toBe('csv');
    expect(detectCandleFileFormat('BTC_USDT-15m.json')).toBe('json');
    expect(detectCandleFileFormat('BTC_USDT-15m.json.gz')).toBe('json');
    expect(detectCandleFileFormat('x.parquet')).toBe('parquet');
    expect(detectCandleFileFormat('x.dat', 'parquet')).toBe('parquet');
    expect(() => detectCandleFileFormat('x.dat')).toThrow(UsageError);
  });
});

describe('streaming readers (property)', () => {
  // Random valid candles; prices with up to 8 decimals, as exchanges print them.
  const candleRows = fc.array(
    fc.record({
      open: fc.integer({ min: 1, max: 10_000_000 }),
      close: fc.integer({ min: 1, max: 10_000_000 }),
      up: fc.integer({ min: 0, max: 1_000_000 }),
      down: fc.integer({ min: 0, max: 1_000_000 }),
      volume: fc.integer({ min: 0, max: 100_000_000 }),
      decimals: fc.integer({ min: 0, max: 8 }),
    }),
    { minLength: 1, maxLength: 60 },
  );
  // Integers scaled by 10^-decimals, like exchange prices; high/low bracket open and close.
  const toRows = (
    spec: {
      open: number;
      close: number;
      up: number;
      down: number;
      volume: number;
      decimals: number;
    }[],
  ): number[][] =>
    spec.map((s, i) => {
      const scale = 10 ** s.decimals;
      const hi = Math.max(s.open, s.close) + s.up;
      const lo = Math.max(0, Math.min(s.open, s.close) - s.down);
      return [
        T0 + i * 900_000,
        s.open / scale,
        hi / scale,
        lo / scale,
        s.close / scale,
        s.volume / 1000,
      ];
    });
  const chunked = (text: string, cuts: number[]): Readable => {
    const bytes = Buffer.from(text);
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const parts: Buffer[] = [];
    let last = 0;
    for (const p of [...points, bytes.length]) {
      if (p > last) parts.push(bytes.subarray(last, p));
      last = Math.max(last, p);
    }
    return Readable.from(parts);
  };

  it('reads the same candles however the bytes are split into chunks (CSV and JSON)', async () => {
    await fc.assert(
      fc.asyncProperty(
        candleRows,
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.constantFrom('header', 'plain', 'iso', 'json', 'json-strings'),
        async (spec, cuts, layout) => {
          const rows = toRows(spec);
          let text: string;
          if (layout === 'json' || layout === 'json-strings') {
            const q = layout === 'json' ? '' : '"';
            text = `[${rows
              .map(
                (r) =>
                  `[${r[0]},${r
                    .slice(1)
                    .map((v) => `${q}${v}${q}`)
                    .join(', ')}]`,
              )
              .join(',\n ')}]`;
          } else {
            const body = rows
              .map((r) =>
                [layout === 'iso' ? new Date(r[0]).toISOString() : r[0], ...r.slice(1)].join(','),
              )
              .join('\r\n');
            text = (layout === 'plain' ? '' : 'time,open,high,low,close,volume\n') + body;
          }
          const read = layout.startsWith('json') ? readCandlesJsonStream : readCandlesCsvStream;
          const r = await read(chunked(text, cuts), opts);
          expect(rowsOf(r.candles)).toEqual(rows);
        },
      ),
      { numRuns: 150 },
    );
  });
});
