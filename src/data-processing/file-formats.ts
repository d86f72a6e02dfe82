// Candle file readers, one per supported layout, all returning columnar Candles plus the file
// position of every row and what was detected (layout, time unit), for the user to see:
// - CSV and gzipped CSV (with or without header; the 6-column `open_time,open,high,low,close,volume`
//   layout and the exchange's 12-column kline export; epoch seconds, milliseconds or microseconds,
//   detected by magnitude; ISO-8601 dates);
// - JSON, freqtrade's layout `[[ms, o, h, l, c, v], ...]` and the exchange's raw kline arrays (numbers
//   or numeric strings), plain or gzipped;
// - Parquet, read column by column through DuckDB's `read_parquet`.
// Text files are streamed and parsed byte by byte straight into typed arrays, Parquet chunk by chunk:
// a million rows never become a million JS objects. Readers never repair: they return exactly what
// the file says, and `validateCandles` judges it. Damaged input (truncated or garbled gzip, broken
// JSON) is a DataValidationError naming the line where reading stopped.

import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import {
  type DuckDBDataChunk,
  DuckDBDoubleVector,
  DuckDBInstance,
  type DuckDBConnection,
} from '@duckdb/node-api';
import { DataValidationError, UsageError } from '../errors.js';
import { createProgress } from '../utils/progress.js';
import { CANDLE_FIELDS, makeCandles, type Candles, type Timeframe } from './candles.js';

/** How the time column of a file was read. */
export type TimeUnit = 'ms' | 'us' | 's' | 'iso';

/** Result of reading a candle file: candles plus what was detected, for the user to see. */
export interface ReadCandlesResult {
  /** The candles read, in file order (not validated or repaired). */
  candles: Candles;
  /**
   * 1-based position of each row in the file: the line for CSV and JSON (header and blank lines
   * counted; the line a JSON row starts on), the record number for Parquet (which has no lines).
   */
  lines: Int32Array;
  /** Detected layout, e.g. `csv (header)`, `csv (12-column kline export)`. */
  layout: string;
  /** Detected unit of the time column. */
  timeUnit: TimeUnit;
}

/** Options of the readers. */
export interface ReadCandlesOptions {
  /** Symbol put on the candles (ccxt unified, `BTC/USDT`). */
  symbol: string;
  /** Timeframe of the file's candles. */
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
  /** True when the line the layout came from is a header (not a candle). */
  header: boolean;
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
  return {
    idx: [t, rest[0], rest[1], rest[2], rest[3], rest[4]],
    name: 'csv (header)',
    header: true,
  };
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

/** The layout of a CSV file from its first non-blank line (a header, or the first candle). */
function detectCsvLayout(
  buf: Uint8Array,
  starts: Int32Array,
  ends: Int32Array,
  nf: number,
  source: string,
  line: number,
): Layout {
  const fields: string[] = [];
  for (let k = 0; k < Math.min(nf, 64); k++) fields.push(latin1(buf, starts[k], ends[k]));
  const fromHeader = layoutFromHeader(fields, source);
  if (fromHeader !== null) return fromHeader;
  if (nf === 12)
    return {
      idx: [0, 1, 2, 3, 4, 5],
      name: 'csv (12-column kline export, no header)',
      header: false,
    };
  if (nf >= 6)
    return {
      idx: [0, 1, 2, 3, 4, 5],
      name: `csv (no header, ${nf} columns, first 6 used)`,
      header: false,
    };
  throw new DataValidationError({
    source,
    line,
    reason: `expected at least 6 comma-separated fields, found ${nf}`,
  });
}

function throwTooFewFields(
  source: string,
  line: number,
  idx: readonly number[],
  nf: number,
  needed: number,
): never {
  throw new DataValidationError({
    source,
    line,
    field: CANDLE_FIELDS[idx.findIndex((col) => col >= nf)],
    reason: `expected at least ${needed} fields, found ${nf}`,
  });
}

function throwBadTime(
  source: string,
  line: number,
  buf: Uint8Array,
  start: number,
  end: number,
  unit: TimeUnit,
): never {
  throw new DataValidationError({
    source,
    line,
    field: 'open_time',
    reason: `malformed time "${latin1(buf, start, end)}" (expected ${unit === 'iso' ? 'an ISO-8601 date' : `epoch ${unit}`})`,
  });
}

function throwBadNumber(
  source: string,
  line: number,
  buf: Uint8Array,
  start: number,
  end: number,
  field: number,
  openTime: number,
): never {
  throw new DataValidationError({
    source,
    line,
    openTime,
    field: CANDLE_FIELDS[field],
    reason: describeBadNumber(latin1(buf, start, end)),
  });
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

  let needed = 6;

  // The hot path: one call per line, no allocation, no message building (errors are thrown by the
  // out-of-line helpers below, which keeps this function small enough for the optimiser).
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
      layout = detectCsvLayout(buf, starts, ends, nf, source, line);
      needed = Math.max(...layout.idx) + 1;
      if (layout.header) return;
    }
    const idx = layout.idx;
    if (nf < needed) throwTooFewFields(source, line, idx, nf, needed);
    if (b.n === b.cap) b.grow();
    const row = b.n;
    // Time column.
    const ts = starts[idx[0]];
    const te = ends[idx[0]];
    let t = parseDecimal(buf, ts, te);
    if (timeUnit === null) {
      timeUnit = Number.isNaN(t) ? 'iso' : detectEpochUnit(t);
      if (timeUnit !== 'iso') timeScale = UNIT_SCALE[timeUnit];
    }
    if (timeUnit === 'iso') t = parseIsoTime(buf, ts, te);
    else t = Number.isNaN(t) ? NaN : Math.round(t * timeScale);
    if (Number.isNaN(t)) throwBadTime(source, line, buf, ts, te, timeUnit);
    b.cols[0][row] = t;
    for (let f = 1; f < 6; f++) {
      const v = parseDecimal(buf, starts[idx[f]], ends[idx[f]]);
      if (Number.isNaN(v)) throwBadNumber(source, line, buf, starts[idx[f]], ends[idx[f]], f, t);
      b.cols[f][row] = v;
    }
    b.lines[row] = line;
    b.n++;
  };

  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf: Buffer = carry === null ? chunk : Buffer.concat([carry, chunk]);
      let ls = 0;
      for (let k = buf.indexOf(10, 0); k !== -1; k = buf.indexOf(10, ls)) {
        handleLine(buf, ls, k);
        ls = k + 1;
      }
      carry = ls < buf.length ? Buffer.from(buf.subarray(ls)) : null;
    }
  } catch (err) {
    throw asReadError(err, source, line);
  }
  if (carry !== null && carry.length > 0) handleLine(carry, 0, carry.length);
  if (layout === null || b.n === 0)
    throw new DataValidationError({ source, reason: 'no candle rows found' });
  const { candles, lines } = b.finish(options.symbol, options.timeframe);
  return { candles, lines, layout: (layout as Layout).name, timeUnit: timeUnit ?? 'ms' };
}

/** Scale from a detected epoch unit to milliseconds. */
const UNIT_SCALE: Readonly<Record<Exclude<TimeUnit, 'iso'>, number>> = { s: 1e3, ms: 1, us: 1e-3 };

/**
 * Detects the unit of an epoch time from its magnitude: seconds ~1e9, milliseconds ~1e12,
 * microseconds ~1e15 (unambiguous for the years 2001-2286).
 */
export function detectEpochUnit(value: number): Exclude<TimeUnit, 'iso'> {
  const a = Math.abs(value);
  if (a >= 1e14) return 'us';
  if (a >= 1e11) return 'ms';
  return 's';
}

/** The reason given for a number field that did not parse (NaN and Infinity are named as such). */
function describeBadNumber(text: string): string {
  const t = text.trim().replace(/^"|"$/g, '');
  if (/^[+-]?(nan|inf|infinity)$/i.test(t)) return `not a finite number (${t})`;
  return `malformed number "${text}"`;
}

/**
 * Turns a failure of the byte stream (truncated or garbled gzip, read error) into a
 * DataValidationError naming the line where reading stopped; validation errors pass through.
 */
function asReadError(err: unknown, source: string, linesRead: number): unknown {
  if (err instanceof DataValidationError) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const reason =
    code === 'Z_BUF_ERROR'
      ? `truncated gzip data (${message}): the file ends after line ${linesRead}`
      : code === 'Z_DATA_ERROR'
        ? `garbled gzip data (${message}) after line ${linesRead}`
        : `cannot read the file after line ${linesRead}: ${message}`;
  return new DataValidationError({ source, line: linesRead + 1, reason }, { cause: err });
}

/** True when the file name says it is gzip-compressed. */
export function isGzipPath(path: string): boolean {
  const p = path.toLowerCase();
  return p.endsWith('.gz') || p.endsWith('.jsongz');
}

/** True when the file starts with the gzip magic bytes. */
function hasGzipMagic(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a text candle file as a byte stream, decompressing gzip (recognised by its magic bytes, so
 * a gzipped file without `.gz` reads too).
 * @throws {DataValidationError} when the name ends in `.gz` but the content is not gzip.
 */
function openTextStream(path: string, source: string): Readable {
  const gz = hasGzipMagic(path);
  if (!gz && isGzipPath(path)) {
    throw new DataValidationError({
      source,
      line: 1,
      reason: 'not gzip data (no gzip header) although the name ends in .gz',
    });
  }
  // Progress by bytes of the file read (the only size known before a gzip stream is inflated).
  const megabytes = statSync(path).size / 1e6;
  const bar = createProgress(`read ${basename(path)}`, Math.max(1, Math.ceil(megabytes)), {
    unit: 'MB',
  });
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      bar.update(Math.floor(bytes / 1e6));
      done(null, chunk);
    },
  });
  counter.on('close', () => bar.stop());
  // pipeline() forwards a failure of any stage (read error, corrupt gzip) to the stream returned,
  // where the reader's loop sees it; the callback only has to exist.
  const noop = (): void => undefined;
  return gz
    ? pipeline(createReadStream(path), counter, createGunzip(), noop)
    : pipeline(createReadStream(path), counter, noop);
}

/**
 * Reads a candle CSV file (`.csv` or `.csv.gz`), streaming.
 * @throws {DataValidationError} for malformed content, naming the file, line and field.
 */
export async function readCandlesCsv(
  path: string,
  options: ReadCandlesOptions,
): Promise<ReadCandlesResult> {
  const source = options.source ?? path;
  return readCandlesCsvStream(openTextStream(path, source), { ...options, source });
}

// ---------------------------------------------------------------------------------------------
// JSON: `[[time, open, high, low, close, volume, ...], ...]`, values numbers or numeric strings.

const enum JsonState {
  BeforeArray,
  FirstRow,
  AfterRow,
  NeedRow,
  FirstValue,
  AfterValue,
  NeedValue,
  End,
}

function isJsonSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** End (exclusive) of a bare JSON scalar starting at `i`: up to a delimiter or whitespace. */
function scalarEnd(buf: Uint8Array, i: number, len: number): number {
  let e = i;
  while (e < len) {
    const c = buf[e];
    if (c === 44 || c === 93 || c === 91 || c === 123 || c === 125 || isJsonSpace(c)) break;
    e++;
  }
  return e;
}

/**
 * Reads candles from a JSON byte stream in freqtrade's layout (`[[ms, o, h, l, c, v], ...]`) or the
 * exchange's raw kline arrays (12 values, numeric strings; the first 6 are used). The time is epoch
 * s/ms/µs (detected) or an ISO-8601 string. Parsed byte by byte: no row becomes a JS array.
 * @throws {DataValidationError} naming the line (where the row starts) and field for malformed
 * values, and the line for broken JSON.
 */
export async function readCandlesJsonStream(
  stream: Readable,
  options: ReadCandlesOptions,
): Promise<ReadCandlesResult> {
  const source = options.source ?? 'stream';
  const b = new ColumnBuilder();
  let state = JsonState.BeforeArray as JsonState;
  let line = 1;
  let rowLine = 1;
  let field = 0;
  let firstRowFields = -1;
  let timeUnit: TimeUnit | null = null;
  let carry: Buffer | null = null;

  const fail = (reason: string, at = line, fieldName?: string, openTime?: number): never => {
    throw new DataValidationError({ source, line: at, field: fieldName, openTime, reason });
  };
  const describe = (buf: Uint8Array, s: number, e: number): string =>
    Buffer.from(buf.buffer, buf.byteOffset + s, Math.min(e - s, 40)).toString('latin1');

  // A value token occupies [s, e) (quotes included for strings). Stores it as field `field`.
  const takeValue = (buf: Uint8Array, s: number, e: number, quoted: boolean): void => {
    if (field >= 6) return; // extra columns (kline close time, trades, ...) are not used
    const row = b.n;
    if (!quoted) {
      const c = buf[s];
      if (c !== 45 && c !== 43 && c !== 46 && (c < 48 || c > 57)) {
        fail(
          `expected a number, found ${describe(buf, s, e)}`,
          rowLine,
          CANDLE_FIELDS[field],
          field > 0 ? b.cols[0][row] : undefined,
        );
      }
    }
    if (field === 0) {
      let t = parseDecimal(buf, s, e);
      if (timeUnit === null) timeUnit = Number.isNaN(t) && quoted ? 'iso' : detectEpochUnit(t);
      if (timeUnit === 'iso') t = parseIsoTime(buf, s, e);
      else if (!Number.isNaN(t)) t = Math.round(t * UNIT_SCALE[timeUnit]);
      if (Number.isNaN(t)) {
        fail(
          `malformed time ${describe(buf, s, e)} (expected ${timeUnit === 'iso' ? 'an ISO-8601 date' : `epoch ${timeUnit}`})`,
          rowLine,
          'open_time',
        );
      }
      b.cols[0][row] = t;
      return;
    }
    const v = parseDecimal(buf, s, e);
    if (Number.isNaN(v)) {
      const text = quoted ? describe(buf, s + 1, e - 1) : describe(buf, s, e);
      fail(describeBadNumber(text), rowLine, CANDLE_FIELDS[field], b.cols[0][row]);
    }
    b.cols[field][row] = v;
  };

  const closeRow = (): void => {
    if (field < 6) {
      fail(
        `expected at least 6 values [time, open, high, low, close, volume], found ${field}`,
        rowLine,
      );
    }
    if (firstRowFields < 0) firstRowFields = field;
    b.lines[b.n] = rowLine;
    b.n++;
  };

  /** Consumes `buf`; returns the index where an unfinished token starts (or buf.length). */
  const consume = (buf: Uint8Array, final: boolean): number => {
    const len = buf.length;
    let i = 0;
    while (i < len) {
      const c = buf[i];
      if (isJsonSpace(c)) {
        if (c === 10) line++;
        i++;
        continue;
      }
      switch (state) {
        case JsonState.BeforeArray:
          if (c === 0xef && i === 0 && buf[1] === 0xbb && buf[2] === 0xbf) {
            i += 3; // UTF-8 byte order mark
            continue;
          }
          if (c !== 91)
            fail(
              `expected "[" opening an array of candle arrays, found ${describe(buf, i, i + 1)}`,
            );
          state = JsonState.FirstRow;
          i++;
          continue;
        case JsonState.FirstRow:
        case JsonState.NeedRow:
          if (c === 93 && state === JsonState.FirstRow) {
            state = JsonState.End;
            i++;
            continue;
          }
          if (c !== 91) {
            fail(
              `expected "[" starting a candle array [time, open, high, low, close, volume], found ${describe(buf, i, i + 1)}`,
            );
          }
          if (b.n === b.cap) b.grow();
          rowLine = line;
          field = 0;
          state = JsonState.FirstValue;
          i++;
          continue;
        case JsonState.AfterRow:
          if (c === 44) state = JsonState.NeedRow;
          else if (c === 93) state = JsonState.End;
          else fail(`expected "," or "]" after a candle array, found ${describe(buf, i, i + 1)}`);
          i++;
          continue;
        case JsonState.AfterValue:
          if (c === 44) state = JsonState.NeedValue;
          else if (c === 93) {
            closeRow();
            state = JsonState.AfterRow;
          } else
            fail(`expected "," or "]" inside a candle array, found ${describe(buf, i, i + 1)}`);
          i++;
          continue;
        case JsonState.FirstValue:
        case JsonState.NeedValue: {
          if (c === 93 && state === JsonState.FirstValue) {
            closeRow();
            state = JsonState.AfterRow;
            i++;
            continue;
          }
          if (c === 91 || c === 123 || c === 93 || c === 44 || c === 125) {
            fail(
              `expected a value (number or numeric string) in a candle array, found ${describe(buf, i, i + 1)}`,
              line,
              CANDLE_FIELDS[Math.min(field, 5)],
            );
          }
          if (c === 34) {
            const q = buf.indexOf(34, i + 1);
            if (q < 0) {
              if (!final) return i;
              fail('unterminated string (the file ends inside a value)');
            }
            takeValue(buf, i, q + 1, true);
            i = q + 1;
          } else {
            const e = scalarEnd(buf, i, len);
            if (e === len && !final) return i;
            takeValue(buf, i, e, false);
            i = e;
          }
          field++;
          state = JsonState.AfterValue;
          continue;
        }
        case JsonState.End:
          fail(`unexpected content after the closing "]": ${describe(buf, i, i + 10)}`);
      }
    }
    return len;
  };

  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf: Buffer = carry === null ? chunk : Buffer.concat([carry, chunk]);
      const stop = consume(buf, false);
      carry = stop < buf.length ? Buffer.from(buf.subarray(stop)) : null;
    }
    if (carry !== null) consume(carry, true);
  } catch (err) {
    throw asReadError(err, source, line - 1);
  }
  if (state !== JsonState.End) {
    fail('unexpected end of the file (truncated JSON: the candle array is not closed)');
  }
  if (b.n === 0) throw new DataValidationError({ source, reason: 'no candle rows found' });
  const { candles, lines } = b.finish(options.symbol, options.timeframe);
  const layout =
    firstRowFields === 6
      ? 'json (freqtrade [[time, open, high, low, close, volume], ...])'
      : `json (candle arrays of ${firstRowFields} values, first 6 used)`;
  return { candles, lines, layout, timeUnit: timeUnit ?? 'ms' };
}

/**
 * Reads a JSON candle file (`.json`, `.json.gz`), streaming. See `readCandlesJsonStream`.
 * @throws {DataValidationError} for malformed content, naming the file, line and field.
 */
export async function readCandlesJson(
  path: string,
  options: ReadCandlesOptions,
): Promise<ReadCandlesResult> {
  const source = options.source ?? path;
  return readCandlesJsonStream(openTextStream(path, source), { ...options, source });
}

// ---------------------------------------------------------------------------------------------
// Parquet, through DuckDB's read_parquet: column by column into typed arrays.

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** SQL turning the time column into UTC epoch ms (DOUBLE), by its Parquet/DuckDB type. */
async function parquetTimeExpr(
  con: DuckDBConnection,
  from: string,
  col: string,
  type: string,
  source: string,
): Promise<{ expr: string; unit: TimeUnit }> {
  const q = quoteIdent(col);
  const t = type.toUpperCase();
  if (t === 'TIMESTAMP WITH TIME ZONE')
    return { expr: `CAST(epoch_ms(${q}) AS DOUBLE)`, unit: 'iso' };
  if (t.startsWith('TIMESTAMP') || t === 'DATE')
    return { expr: `CAST(epoch_ms(CAST(${q} AS TIMESTAMP)) AS DOUBLE)`, unit: 'iso' };
  const numeric =
    /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|DECIMAL)/.test(
      t,
    );
  const probeExpr = numeric ? `CAST(${q} AS DOUBLE)` : `TRY_CAST(${q} AS DOUBLE)`;
  const probe = await con.runAndReadAll(
    `SELECT ${probeExpr}, CAST(${q} AS VARCHAR) FROM ${from} WHERE ${q} IS NOT NULL LIMIT 1`,
  );
  const row = probe.getRows()[0];
  if (row === undefined) {
    throw new DataValidationError({
      source,
      field: 'open_time',
      reason: 'the time column holds no values',
    });
  }
  if (row[0] === null) {
    if (numeric)
      throw new DataValidationError({
        source,
        field: 'open_time',
        reason: 'unreadable time column',
      });
    return { expr: `CAST(epoch_ms(TRY_CAST(${q} AS TIMESTAMPTZ)) AS DOUBLE)`, unit: 'iso' };
  }
  const unit = detectEpochUnit(Number(row[0]));
  const scaled = unit === 'ms' ? probeExpr : `round(${probeExpr} * ${UNIT_SCALE[unit]})`;
  return { expr: scaled, unit };
}

/**
 * Reads a Parquet candle file through DuckDB (`read_parquet`), streamed chunk by chunk into typed
 * arrays. Columns are found by name (time: `open_time`, `timestamp`, `date`, ...; then `open`,
 * `high`, `low`, `close`, `volume`, any case), or by position when no name matches. The time column
 * may be a timestamp/date type or epoch s/ms/µs (detected). Errors name the 0-based row.
 * @throws {DataValidationError} for an unreadable file, a missing column, or a missing/malformed value.
 */
export async function readCandlesParquet(
  path: string,
  options: ReadCandlesOptions,
): Promise<ReadCandlesResult> {
  const source = options.source ?? path;
  const instance = await DuckDBInstance.create(':memory:');
  const con = await instance.connect();
  try {
    await con.run(`SET TimeZone = 'UTC'`);
    const from = `read_parquet(${sqlString(path)}, file_row_number = true)`;
    let described;
    try {
      described = await con.runAndReadAll(
        `DESCRIBE SELECT * FROM read_parquet(${sqlString(path)})`,
      );
    } catch (err) {
      const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
      throw new DataValidationError(
        { source, reason: `not a readable Parquet file: ${message}` },
        { cause: err },
      );
    }
    const columns = described.getRows().map((r) => ({ name: String(r[0]), type: String(r[1]) }));
    const lower = columns.map((c) => c.name.toLowerCase());
    let idx: number[];
    let layout: string;
    const t = lower.findIndex((n) => TIME_NAMES.has(n));
    const rest = FIELD_NAMES.map((n) => lower.indexOf(n));
    if (t >= 0 && rest.every((r) => r >= 0)) {
      idx = [t, ...rest];
      layout = 'parquet (named columns)';
    } else if (t < 0 && rest.every((r) => r < 0) && columns.length >= 6) {
      idx = [0, 1, 2, 3, 4, 5];
      layout = `parquet (no known column names, first 6 of ${columns.length} used)`;
    } else {
      const missing = [
        t < 0 ? 'open_time' : null,
        ...FIELD_NAMES.filter((_, k) => rest[k] < 0),
      ].filter((x): x is string => x !== null);
      throw new DataValidationError({
        source,
        field: missing[0],
        reason: `no column for ${missing.join(', ')} (columns: ${columns.map((c) => c.name).join(', ')})`,
      });
    }
    const time = await parquetTimeExpr(
      con,
      from,
      columns[idx[0]].name,
      columns[idx[0]].type,
      source,
    );
    const exprs = [
      time.expr,
      ...idx.slice(1).map((k) => `TRY_CAST(${quoteIdent(columns[k].name)} AS DOUBLE)`),
    ];
    const select = exprs.map((e, k) => `${e} AS c${k}`).join(', ');
    const bad = await con.runAndReadAll(
      `SELECT file_row_number, ${exprs.map((_, k) => `c${k} IS NULL`).join(', ')},
              ${idx.map((k) => `CAST(${quoteIdent(columns[k].name)} AS VARCHAR)`).join(', ')}, c0
       FROM (SELECT file_row_number, ${idx.map((k) => quoteIdent(columns[k].name)).join(', ')}, ${select} FROM ${from})
       WHERE ${exprs.map((_, k) => `c${k} IS NULL`).join(' OR ')}
       ORDER BY file_row_number LIMIT 1`,
    );
    const badRow = bad.getRows()[0];
    if (badRow !== undefined) {
      const k = badRow.slice(1, 7).findIndex((v) => v === true);
      const raw = badRow[7 + k];
      const openTime = badRow[13];
      throw new DataValidationError({
        source,
        row: Number(badRow[0]),
        field: CANDLE_FIELDS[k],
        openTime: typeof openTime === 'number' ? openTime : undefined,
        reason:
          raw === null
            ? 'missing value (NULL)'
            : k === 0
              ? `malformed time "${String(raw)}"`
              : describeBadNumber(String(raw)),
      });
    }
    const countRes = await con.runAndReadAll(
      `SELECT count(*) FROM read_parquet(${sqlString(path)})`,
    );
    const n = Number(countRes.getRows()[0][0]);
    const cols = Array.from({ length: 6 }, () => new Float64Array(n));
    const result = await con.stream(`SELECT ${select} FROM ${from} ORDER BY file_row_number`);
    let row = 0;
    for (;;) {
      const chunk: DuckDBDataChunk | null = await result.fetchChunk();
      if (chunk === null || chunk.rowCount === 0) break;
      const len = chunk.rowCount;
      for (let k = 0; k < 6; k++) {
        const vec = chunk.getColumnVector(k);
        if (!(vec instanceof DuckDBDoubleVector)) {
          throw new DataValidationError({
            source,
            field: CANDLE_FIELDS[k],
            reason: 'column did not convert to numbers',
          });
        }
        const col = cols[k];
        for (let i = 0; i < len; i++) col[row + i] = vec.getItem(i) ?? NaN;
      }
      row += len;
    }
    if (n === 0) throw new DataValidationError({ source, reason: 'no candle rows found' });
    const lines = new Int32Array(n);
    for (let i = 0; i < n; i++) lines[i] = i + 1;
    const [openTime, open, high, low, close, volume] = cols;
    return {
      candles: makeCandles(options.symbol, options.timeframe, {
        openTime,
        open,
        high,
        low,
        close,
        volume,
      }),
      lines,
      layout,
      timeUnit: time.unit,
    };
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

// ---------------------------------------------------------------------------------------------
// Any supported file.

/** The file formats `readCandleFile` reads. */
export type CandleFileFormat = 'csv' | 'json' | 'parquet';

/** The supported formats, for messages and option parsing. */
export const CANDLE_FILE_FORMATS: readonly CandleFileFormat[] = ['csv', 'json', 'parquet'];

/**
 * The format of a candle file: `format` when given (`--format`), else from the extension
 * (`.csv`, `.csv.gz`, `.txt`, `.tsv` → csv; `.json`, `.json.gz`, `.jsongz` → json; `.parquet`,
 * `.pq` → parquet).
 * @throws {UsageError} for an unknown `format` or an extension that says nothing.
 */
export function detectCandleFileFormat(path: string, format?: string): CandleFileFormat {
  if (format !== undefined) {
    const f = format.toLowerCase();
    if ((CANDLE_FILE_FORMATS as readonly string[]).includes(f)) return f as CandleFileFormat;
    throw new UsageError(`unknown format "${format}"`, {
      hint: `use one of ${CANDLE_FILE_FORMATS.join(', ')}`,
    });
  }
  const p = path.toLowerCase().replace(/\.gz$/, '');
  if (p.endsWith('.csv') || p.endsWith('.txt') || p.endsWith('.tsv')) return 'csv';
  if (p.endsWith('.json') || p.endsWith('.jsongz')) return 'json';
  if (p.endsWith('.parquet') || p.endsWith('.pq')) return 'parquet';
  throw new UsageError(`cannot tell the format of "${path}" from its name`, {
    hint: `pass --format ${CANDLE_FILE_FORMATS.join('|')}`,
  });
}

/** Options of `readCandleFile`. */
export interface ReadCandleFileOptions extends ReadCandlesOptions {
  /** `csv`, `json` or `parquet`; detected from the extension when omitted. */
  format?: CandleFileFormat | string;
}

/** `ReadCandlesResult` plus the format that was read. */
export interface CandleFileResult extends ReadCandlesResult {
  /** The format that was read. */
  format: CandleFileFormat;
}

/**
 * Reads a candle file of any supported format (detected from the extension unless `format` says),
 * returning the candles, each row's file position, and the detected layout and time unit.
 * @throws {UsageError} when the file is missing or its format unknown; {DataValidationError} for
 * malformed content, naming the file, line (row for Parquet) and field.
 */
export async function readCandleFile(
  path: string,
  options: ReadCandleFileOptions,
): Promise<CandleFileResult> {
  const format = detectCandleFileFormat(path, options.format);
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    isFile = false;
  }
  if (!isFile) throw new UsageError(`file not found: ${path}`);
  const opts: ReadCandlesOptions = {
    symbol: options.symbol,
    timeframe: options.timeframe,
    source: options.source ?? path,
  };
  const result =
    format === 'csv'
      ? await readCandlesCsv(path, opts)
      : format === 'json'
        ? await readCandlesJson(path, opts)
        : await readCandlesParquet(path, opts);
  return { ...result, format };
}
