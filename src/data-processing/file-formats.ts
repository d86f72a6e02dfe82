// Candle file readers: CSV and gzipped CSV (with or without header; the 6-column
// `open_time,open,high,low,close,volume` layout and the exchange's 12-column kline export; epoch
// seconds, milliseconds or microseconds, detected and stated; ISO-8601 dates). Files are streamed
// and parsed byte by byte straight into typed arrays: a million rows never become a million JS
// objects. Readers never repair: they return exactly what the file says, with the file line of
// every row, and `validateCandles` judges it.

import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { DataValidationError } from '../errors.js';
import { makeCandles, type Candles, type Timeframe } from './candles.js';

/** How the time column of a file was read. */
export type TimeUnit = 'ms' | 'us' | 's' | 'iso';

/** Result of reading a candle file: candles plus what was detected, for the user to see. */
export interface ReadCandlesResult {
  candles: Candles;
  /** 1-based file line of each row (header and blank lines counted). */
  lines: Int32Array;
  /** Detected layout, e.g. `csv (header)`, `csv (12-column kline export)`. */
  layout: string;
  /** Detected unit of the time column. */
  timeUnit: TimeUnit;
}

/** Options of the readers. */
export interface ReadCandlesOptions {
  symbol: string;
  timeframe: Timeframe;
  /** Name used in errors (default: the path). */
  source?: string;
}

/** Growable set of six Float64 columns plus line numbers. */
class ColumnBuilder {
  n = 0;
  cap: number;
  cols: Float64Array[];
  lines: Int32Array;

  constructor(capacity = 1 << 16) {
    this.cap = capacity;
    this.cols = Array.from({ length: 6 }, () => new Float64Array(capacity));
    this.lines = new Int32Array(capacity);
  }

  grow(): void {
    this.cap *= 2;
    this.cols = this.cols.map((c) => {
      const next = new Float64Array(this.cap);
      next.set(c);
      return next;
    });
    const l = new Int32Array(this.cap);
    l.set(this.lines);
    this.lines = l;
  }

  finish(symbol: string, timeframe: Timeframe): { candles: Candles; lines: Int32Array } {
    const n = this.n;
    const [openTime, open, high, low, close, volume] = this.cols.map((c) => c.slice(0, n));
    return {
      candles: makeCandles(symbol, timeframe, { openTime, open, high, low, close, volume }),
      lines: this.lines.slice(0, n),
    };
  }
}

const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * Parses a plain decimal number from bytes [start, end). Returns NaN when the bytes are not a
 * number. Exact (same double as `Number(text)`) for up to 15 significant digits; longer or
 * exponent forms fall back to `Number`.
 */
function parseDecimal(buf: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end && (buf[i] === 32 || buf[i] === 34)) i++; // spaces, quotes
  let e = end;
  while (e > i && (buf[e - 1] === 32 || buf[e - 1] === 34 || buf[e - 1] === 13)) e--;
  if (i >= e) return NaN;
  let neg = false;
  if (buf[i] === 45) {
    neg = true;
    i++;
  } else if (buf[i] === 43) i++;
  let mant = 0;
  let digits = 0;
  let frac = 0;
  let seenDot = false;
  const s = i;
  for (; i < e; i++) {
    const c = buf[i];
    if (c >= 48 && c <= 57) {
      if (mant === 0 && c === 48 && !seenDot) continue;
      mant = mant * 10 + (c - 48);
      digits++;
      if (seenDot) frac++;
    } else if (c === 46 && !seenDot) {
      seenDot = true;
    } else {
      return slowParse(buf, start, end);
    }
  }
  if (i === s || (seenDot && e - s === 1)) return NaN;
  if (digits > 15 || frac > 22) return slowParse(buf, start, end);
  const v = frac === 0 ? mant : mant / POW10[frac];
  return neg ? -v : v;
}

function slowParse(buf: Uint8Array, start: number, end: number): number {
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, end - start)
    .toString('latin1')
    .trim()
    .replace(/^"|"$/g, '');
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return NaN;
  return Number(text);
}

/** Reads an ISO-8601 date/time (UTC unless a zone is given) from bytes; NaN if it is not one. */
function parseIsoTime(buf: Uint8Array, start: number, end: number): number {
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, end - start)
    .toString('latin1')
    .trim()
    .replace(/^"|"$/g, '');
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(text))
    return NaN;
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/.test(text) && text.length > 10;
  const iso =
    text.length === 10 ? `${text}T00:00:00Z` : text.replace(' ', 'T') + (hasZone ? '' : 'Z');
  return Date.parse(iso);
}

const TIME_NAMES = new Set([
  'open_time',
  'opentime',
  'timestamp',
  'time',
  'date',
  'datetime',
  'open time',
  'ts',
]);
const FIELD_NAMES = ['open', 'high', 'low', 'close', 'volume'] as const;

/** Column positions of the six fields in a row. */
interface Layout {
  idx: [number, number, number, number, number, number];
  name: string;
}

function layoutFromHeader(fields: string[], source: string): Layout | null {
  const lower = fields.map((f) => f.trim().replace(/^"|"$/g, '').toLowerCase());
  const t = lower.findIndex((f) => TIME_NAMES.has(f));
  const rest = FIELD_NAMES.map((name) => lower.indexOf(name));
  if (t < 0 && rest.every((r) => r < 0)) return null; // not a header
  if (t < 0)
    throw new DataValidationError({
      source,
      line: 1,
      field: 'open_time',
      reason: `header has no time column (looked for ${[...TIME_NAMES].join(', ')})`,
    });
  const missing = FIELD_NAMES.filter((_, k) => rest[k] < 0);
  if (missing.length > 0)
    throw new DataValidationError({
      source,
      line: 1,
      field: missing[0],
      reason: `header lacks column(s) ${missing.join(', ')}`,
    });
  return { idx: [t, rest[0], rest[1], rest[2], rest[3], rest[4]], name: 'csv (header)' };
}

/**
 * Reads candles from a CSV or gzipped CSV stream. See the file comment for the layouts.
 * @throws {DataValidationError} naming the source, 1-based line and field for malformed rows.
 */
export async function readCandlesCsvStream(
  stream: Readable,
  options: ReadCandlesOptions,
): Promise<ReadCandlesResult> {
  const source = options.source ?? 'stream';
  const b = new ColumnBuilder();
  let layout: Layout | null = null;
  let timeUnit: TimeUnit | null = null;
  let timeScale = 1;
  let line = 0;
  let carry: Buffer | null = null;
  const starts = new Int32Array(64);
  const ends = new Int32Array(64);

  const handleLine = (buf: Uint8Array, ls: number, le: number): void => {
    line++;
    if (le > ls && buf[le - 1] === 13) le--;
    // Blank lines are skipped (they carry no data and are not an error).
    let nonBlank = false;
    for (let k = ls; k < le; k++)
      if (buf[k] !== 32 && buf[k] !== 9) {
        nonBlank = true;
        break;
      }
    if (!nonBlank) return;
    let nf = 0;
    let fs = ls;
    for (let k = ls; k <= le; k++) {
      if (k === le || buf[k] === 44 || buf[k] === 59 || buf[k] === 9) {
        if (nf < 64) {
          starts[nf] = fs;
          ends[nf] = k;
        }
        nf++;
        fs = k + 1;
      }
    }
    if (layout === null) {
      const fields: string[] = [];
      for (let k = 0; k < Math.min(nf, 64); k++)
        fields.push(
          Buffer.from(buf.buffer, buf.byteOffset + starts[k], ends[k] - starts[k]).toString(
            'latin1',
          ),
        );
      const fromHeader = layoutFromHeader(fields, source);
      if (fromHeader !== null) {
        layout = fromHeader;
        return;
      }
      if (nf === 12)
        layout = { idx: [0, 1, 2, 3, 4, 5], name: 'csv (12-column kline export, no header)' };
      else if (nf >= 6)
        layout = { idx: [0, 1, 2, 3, 4, 5], name: `csv (no header, ${nf} columns, first 6 used)` };
      else
        throw new DataValidationError({
          source,
          line,
          reason: `expected at least 6 comma-separated fields, found ${nf}`,
        });
    }
    const idx = layout.idx;
    const needed = Math.max(...idx) + 1;
    if (nf < needed)
      throw new DataValidationError({
        source,
        line,
        reason: `expected at least ${needed} fields, found ${nf}`,
      });
    if (b.n === b.cap) b.grow();
    const row = b.n;
    // Time column.
    const ts = starts[idx[0]];
    const te = ends[idx[0]];
    let t = parseDecimal(buf, ts, te);
    if (timeUnit === null) {
      if (Number.isNaN(t)) {
        timeUnit = 'iso';
      } else {
        const a = Math.abs(t);
        // Epoch magnitudes: seconds ~1e9, milliseconds ~1e12, microseconds ~1e15 (years 2001-2286).
        if (a >= 1e14) {
          timeUnit = 'us';
          timeScale = 1e-3;
        } else if (a >= 1e11) timeUnit = 'ms';
        else {
          timeUnit = 's';
          timeScale = 1e3;
        }
      }
    }
    if (timeUnit === 'iso') t = parseIsoTime(buf, ts, te);
    else t = Number.isNaN(t) ? NaN : Math.round(t * timeScale);
    if (Number.isNaN(t)) {
      const text = Buffer.from(buf.buffer, buf.byteOffset + ts, te - ts).toString('latin1');
      throw new DataValidationError({
        source,
        line,
        field: 'open_time',
        reason: `malformed time "${text}" (expected ${timeUnit === 'iso' ? 'an ISO-8601 date' : `epoch ${timeUnit}`})`,
      });
    }
    b.cols[0][row] = t;
    for (let f = 1; f < 6; f++) {
      const v = parseDecimal(buf, starts[idx[f]], ends[idx[f]]);
      if (Number.isNaN(v)) {
        const text = Buffer.from(
          buf.buffer,
          buf.byteOffset + starts[idx[f]],
          ends[idx[f]] - starts[idx[f]],
        ).toString('latin1');
        throw new DataValidationError({
          source,
          line,
          openTime: t,
          field: FIELD_NAMES[f - 1],
          reason: `malformed number "${text}"`,
        });
      }
      b.cols[f][row] = v;
    }
    b.lines[row] = line;
    b.n++;
  };

  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const buf: Buffer = carry === null ? chunk : Buffer.concat([carry, chunk]);
    let ls = 0;
    for (let k = buf.indexOf(10, 0); k !== -1; k = buf.indexOf(10, ls)) {
      handleLine(buf, ls, k);
      ls = k + 1;
    }
    carry = ls < buf.length ? Buffer.from(buf.subarray(ls)) : null;
  }
  if (carry !== null && carry.length > 0) handleLine(carry, 0, carry.length);
  if (layout === null || b.n === 0)
    throw new DataValidationError({ source, reason: 'no candle rows found' });
  const { candles, lines } = b.finish(options.symbol, options.timeframe);
  return { candles, lines, layout: (layout as Layout).name, timeUnit: timeUnit ?? 'ms' };
}

/** True when the file name says it is gzip-compressed. */
export function isGzipPath(path: string): boolean {
  return path.toLowerCase().endsWith('.gz');
}

/**
 * Reads a candle CSV file (`.csv` or `.csv.gz`), streaming.
 * @throws {DataValidationError} for malformed content, naming the file, line and field.
 */
export async function readCandlesCsv(
  path: string,
  options: ReadCandlesOptions,
): Promise<ReadCandlesResult> {
  const raw = createReadStream(path);
  const stream = isGzipPath(path) ? raw.pipe(createGunzip()) : raw;
  return readCandlesCsvStream(stream, { ...options, source: options.source ?? path });
}
