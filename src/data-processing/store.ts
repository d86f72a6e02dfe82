// The candle store: one embedded DuckDB file (config `paths.store`) holding every series, read as one
// `candles` table keyed by (exchange, symbol, timeframe, open_time). Writes are validated upserts,
// each inside one transaction, so a crash or a kill mid-write leaves the previous state intact and a
// re-run never duplicates a row. Reads come back as columnar Candles, streamed chunk by chunk into
// typed arrays (no per-row objects). This file never decides what data is right: it validates
// through `validateCandles` and refuses, it never repairs.

import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  DOUBLE,
  DuckDBConnection,
  DuckDBDataChunk,
  DuckDBDoubleVector,
  DuckDBInstance,
  DuckDBIntegerVector,
  INTEGER,
  type DuckDBResult,
  type DuckDBValue,
} from '@duckdb/node-api';
import { CtmError, DataValidationError, UsageError } from '../errors.js';
import { logger } from '../utils/logger.js';
import {
  allocateCandles,
  findGaps,
  isTimeframe,
  TIMEFRAME_MS,
  validateCandles,
  type Candles,
  type GapReport,
  type Timeframe,
} from './candles.js';

const log = logger.child({ module: 'store' });

/** Version of the table layout written by this code; a store with another version is refused. */
export const STORE_SCHEMA_VERSION = 2;

/** Identifies one series in the store. Symbols are ccxt unified (`BTC/USDT`). */
export interface SeriesKey {
  /** ccxt exchange id, e.g. `binance`. */
  readonly exchange: string;
  /** ccxt unified symbol, e.g. `BTC/USDT`. */
  readonly symbol: string;
  /** Candle timeframe. */
  readonly timeframe: Timeframe;
}

/** A half-open time range `[fromMs, toMs)` in UTC epoch ms; a missing end is unbounded. */
export interface TimeRange {
  /** Inclusive start, UTC ms (omitted: unbounded). */
  fromMs?: number;
  /** Exclusive end, UTC ms (omitted: unbounded). */
  toMs?: number;
}

/** Options of `CandleStore.open`. */
export interface OpenStoreOptions {
  /**
   * Open without write access (several readers may share the file; a writer may not run
   * meanwhile). A missing file is an error in this mode instead of being created.
   */
  readOnly?: boolean;
}

/** A pending stretch of a download: `[nextMs, endMs)` still has to be fetched. */
export interface PendingDownload {
  /** Open time (UTC ms) of the next candle to fetch. */
  nextMs: number;
  /** Exclusive end of the stretch, UTC ms. */
  endMs: number;
}

/** Options of `CandleStore.upsert`. */
export interface UpsertOptions {
  /** Where the candles came from (file path, exchange URL); named in errors and in the ingest log. */
  source?: string;
  /** What wrote them. Default `import`. */
  kind?: 'import' | 'download';
  /** Maps a row index to its 1-based file line, so validation errors name the line. */
  lineOf?: (row: number) => number;
  /** Refuse candles with gaps (default false: gaps are reported, not errors). */
  rejectGaps?: boolean;
  /**
   * Download journal update committed in the same transaction: a pending stretch to record, or
   * `null` to clear the series' journal entry. Omitted: the journal is left alone.
   */
  pending?: PendingDownload | null;
}

/** What an upsert did. Every count is in candles. */
export interface UpsertResult {
  /** Candles given. */
  rows: number;
  /** Candles whose open time was not stored before. */
  added: number;
  /** Candles that replaced a stored candle with different values. */
  changed: number;
  /** Candles identical to the stored ones (a re-import of the same data changes nothing). */
  unchanged: number;
  /** Gaps inside the given candles. */
  gaps: GapReport;
}

/** One series as stored. */
export interface SeriesSummary extends SeriesKey {
  /** Candles stored. */
  rows: number;
  /** Open time (UTC ms) of the first and last stored candle. */
  firstOpenTime: number;
  /** Open time (UTC ms) of the last stored candle. */
  lastOpenTime: number;
}

/** The last write of a series, from the ingest log. */
export interface IngestRecord {
  /** Whether the write was a file import or an exchange download. */
  kind: 'import' | 'download';
  /** Where the candles came from (file path or exchange URL). */
  source: string;
  /** When it was written (UTC ms). */
  atMs: number;
  /** Candles given in that write. */
  rows: number;
}

/** Coverage of one stored series: its span, its gaps and its last write. */
export interface SeriesCoverage extends SeriesSummary {
  /** Candles a gap-free series over the same span would hold. */
  expectedRows: number;
  /** Gaps between the first and the last stored candle. */
  gaps: GapReport;
  /** Rows sharing an open time with another row (always 0 unless the file was edited by hand). */
  duplicates: number;
  /** Last import or download, when the ingest log has one. */
  lastIngest: IngestRecord | null;
  /** A download that was interrupted and will be resumed by the next `ctm data download`. */
  pending: PendingDownload | null;
}

/** Formats `exportSeries` can write, chosen by the output file's extension. */
export type ExportFormat = 'csv' | 'csv.gz' | 'parquet';

/** Chooses the export format from a file name (`.csv`, `.csv.gz`, `.parquet`). */
export function exportFormatOf(path: string): ExportFormat {
  const p = path.toLowerCase();
  if (p.endsWith('.csv.gz')) return 'csv.gz';
  if (p.endsWith('.csv')) return 'csv';
  if (p.endsWith('.parquet') || p.endsWith('.pq')) return 'parquet';
  throw new UsageError(`cannot tell the export format of "${path}" from its extension`, {
    hint: 'name the output .csv, .csv.gz or .parquet',
  });
}

/** `exchange/symbol/timeframe`, the name a series goes by in messages. */
export function seriesName(key: SeriesKey): string {
  return `${key.exchange}/${key.symbol}/${key.timeframe}`;
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

// Layout. `candles` is what users query: a view keyed by (exchange, symbol, timeframe, open_time).
// Underneath, the series names live once in `series` and the rows in `candle_data` under an
// integer series id: repeating three strings per row made bulk inserts three times slower
// (measured: 1.65 s vs 0.5 s per million rows) for no gain in what can be asked.
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS series (
     series_id INTEGER PRIMARY KEY, exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
     timeframe VARCHAR NOT NULL, UNIQUE (exchange, symbol, timeframe))`,
  // open_time: UTC epoch ms of the candle open. Prices in quote currency, volume in base currency.
  `CREATE TABLE IF NOT EXISTS candle_data (
     series_id INTEGER NOT NULL, open_time BIGINT NOT NULL,
     open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
     volume DOUBLE NOT NULL)`,
  `CREATE VIEW IF NOT EXISTS candles AS
     SELECT s.exchange, s.symbol, s.timeframe, d.open_time, d.open, d.high, d.low, d.close, d.volume
     FROM candle_data d JOIN series s USING (series_id)`,
  `CREATE TABLE IF NOT EXISTS ingest_log (
     at_ms BIGINT NOT NULL, exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
     timeframe VARCHAR NOT NULL, kind VARCHAR NOT NULL, source VARCHAR NOT NULL,
     rows BIGINT NOT NULL, added BIGINT NOT NULL, changed BIGINT NOT NULL,
     first_open_time BIGINT, last_open_time BIGINT)`,
  `CREATE TABLE IF NOT EXISTS download_journal (
     exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,
     next_ms BIGINT NOT NULL, end_ms BIGINT NOT NULL, PRIMARY KEY (exchange, symbol, timeframe))`,
];

const KEY_WHERE = 'exchange = $exchange AND symbol = $symbol AND timeframe = $timeframe';

function keyParams(key: SeriesKey): Record<string, DuckDBValue> {
  return { exchange: key.exchange, symbol: key.symbol, timeframe: key.timeframe };
}

function toNumber(v: DuckDBValue): number {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  if (v === null) return NaN;
  return Number(String(v));
}

/** Translates DuckDB's open errors into one-line messages with a hint. */
function openError(path: string, err: unknown): CtmError {
  const message = err instanceof Error ? err.message : String(err);
  if (/lock/i.test(message)) {
    return new CtmError(`store ${path} is in use by another process`, {
      hint: 'wait for the other ctm command to finish, or point --set paths.store=... elsewhere',
      cause: err,
    });
  }
  return new CtmError(`cannot open store ${path}: ${message.split('\n')[0]}`, {
    hint: 'is it a DuckDB file written by ctm? move it away to start a fresh store',
    cause: err,
  });
}

/**
 * The candle store (embedded DuckDB). Open it with `CandleStore.open`, close it with `close`.
 * Calls on one store are serialised; one process at a time may hold a store open for writing.
 */
export class CandleStore {
  /** Absolute path of the DuckDB file. */
  readonly path: string;
  /** True when opened without write access. */
  readonly readOnly: boolean;
  private readonly instance: DuckDBInstance;
  private readonly con: DuckDBConnection;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private stageReady = false;
  /** Series ids known to exist (committed). */
  private readonly ids = new Map<string, number>();

  private constructor(
    path: string,
    readOnly: boolean,
    instance: DuckDBInstance,
    con: DuckDBConnection,
  ) {
    this.path = path;
    this.readOnly = readOnly;
    this.instance = instance;
    this.con = con;
  }

  /**
   * Opens (creating when needed) the store at `path`.
   * @throws {CtmError} when the file is locked by another process, is not a ctm store, or (read-only)
   * does not exist.
   */
  static async open(path: string, options: OpenStoreOptions = {}): Promise<CandleStore> {
    const abs = resolve(path);
    const readOnly = options.readOnly === true;
    if (readOnly && !existsSync(abs)) {
      throw new CtmError(`no store at ${abs}`, {
        hint: 'import a file (ctm data import) or download (ctm data download) first',
      });
    }
    if (!readOnly) mkdirSync(dirname(abs), { recursive: true });
    let instance: DuckDBInstance;
    let con: DuckDBConnection;
    try {
      instance = await DuckDBInstance.create(abs, readOnly ? { access_mode: 'READ_ONLY' } : {});
      con = await instance.connect();
    } catch (err) {
      throw openError(abs, err);
    }
    const store = new CandleStore(abs, readOnly, instance, con);
    try {
      await store.initSchema();
    } catch (err) {
      store.close();
      throw err instanceof CtmError ? err : openError(abs, err);
    }
    return store;
  }

  private async initSchema(): Promise<void> {
    const tables = await this.con.runAndReadAll(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'`,
    );
    const names = tables.getRows().map((r) => String(r[0]));
    if (names.length > 0 && !names.includes('store_meta')) {
      throw new CtmError(`${this.path} is not a ctm store (no store_meta table)`, {
        hint: 'point --set paths.store=... at a store written by ctm',
      });
    }
    if (names.length === 0) {
      if (this.readOnly) throw new CtmError(`${this.path} is an empty database, not a ctm store`);
      await this.con.run('BEGIN TRANSACTION');
      for (const sql of SCHEMA) await this.con.run(sql);
      await this.con.run(
        `INSERT INTO store_meta VALUES ('schema_version', '${STORE_SCHEMA_VERSION}')`,
      );
      await this.con.run('COMMIT');
      return;
    }
    const r = await this.con.runAndReadAll(
      `SELECT value FROM store_meta WHERE key = 'schema_version'`,
    );
    const version = r.getRows()[0]?.[0];
    if (Number(version) !== STORE_SCHEMA_VERSION) {
      throw new CtmError(
        `${this.path} has store schema version ${String(version)}; this ctm reads version ${STORE_SCHEMA_VERSION}`,
        { hint: 'use the ctm version that wrote it, or export and re-import the data' },
      );
    }
  }

  /** The integer id of a series, or null when it was never written. */
  private async seriesId(key: SeriesKey): Promise<number | null> {
    const cached = this.ids.get(seriesName(key));
    if (cached !== undefined) return cached;
    const r = await this.con.runAndReadAll(
      `SELECT series_id FROM series WHERE ${KEY_WHERE}`,
      keyParams(key),
    );
    const row = r.getRows()[0];
    if (row === undefined) return null;
    const id = toNumber(row[0]);
    this.ids.set(seriesName(key), id);
    return id;
  }

  /** Runs `fn` after every earlier call on this store has finished (one connection, no overlap). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new CtmError(`store ${this.path} is closed`));
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private assertWritable(): void {
    if (this.readOnly) throw new CtmError(`store ${this.path} was opened read-only`);
  }

  /** Closes the connection and the database (a clean close checkpoints the write-ahead log). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.con.closeSync();
    this.instance.closeSync();
  }

  /**
   * Validates `candles` (see `validateCandles`) and writes them into the series `key`, replacing
   * stored candles with the same open time, in one transaction (all or nothing). Stored candles at
   * other times are kept. Re-writing identical candles changes nothing.
   * @throws {DataValidationError} naming source, line/row and field for invalid candles (nothing written).
   */
  upsert(key: SeriesKey, candles: Candles, options: UpsertOptions = {}): Promise<UpsertResult> {
    return this.serial(() => this.upsertNow(key, candles, options));
  }

  private async upsertNow(
    key: SeriesKey,
    candles: Candles,
    options: UpsertOptions,
  ): Promise<UpsertResult> {
    this.assertWritable();
    const source = options.source ?? `store:${seriesName(key)}`;
    if (candles.timeframe !== key.timeframe) {
      throw new DataValidationError({
        source,
        field: 'timeframe',
        reason: `candles are ${candles.timeframe} but the series is ${key.timeframe}`,
      });
    }
    const gaps = validateCandles(candles, { source, lineOf: options.lineOf });
    if (options.rejectGaps === true && gaps.count > 0) {
      const g = gaps.gaps[0];
      const row = candles.openTime.indexOf(g.nextOpenTime);
      throw new DataValidationError({
        source,
        line: options.lineOf?.(row),
        row: options.lineOf === undefined ? row : undefined,
        openTime: g.nextOpenTime,
        field: 'open_time',
        reason: `gap of ${g.missingBars} missing ${key.timeframe} candles after ${new Date(g.afterOpenTime).toISOString()} (gaps are rejected by data.rejectGaps)`,
      });
    }
    const n = candles.openTime.length;
    const params = keyParams(key);
    const knownId = await this.seriesId(key);
    const first = n > 0 ? candles.openTime[0] : NaN;
    const last = n > 0 ? candles.openTime[n - 1] : NaN;
    // Stored candles inside the new span decide the path: none (a fresh series, the next page of a
    // download) appends straight into the table; some go through staging, compare and replace.
    const overlap =
      knownId === null || n === 0
        ? 0
        : await this.count(`series_id = ${knownId} AND open_time BETWEEN ${first} AND ${last}`);
    if (overlap > 0) await this.stage(candles);
    let newId: number | null = null;
    await this.con.run('BEGIN TRANSACTION');
    try {
      let added = 0;
      let changed = 0;
      let unchanged = 0;
      if (n > 0) {
        let id = knownId;
        if (id === null) {
          const next = await this.con.runAndReadAll(
            `SELECT coalesce(max(series_id), 0) + 1 FROM series`,
          );
          id = newId = toNumber(next.getRows()[0][0]);
          await this.con.run(
            `INSERT INTO series VALUES (${id}, $exchange, $symbol, $timeframe)`,
            params,
          );
        }
        if (overlap === 0) {
          await this.appendRows('candle_data', candles, id);
          added = n;
        } else {
          ({ added, changed, unchanged } = await this.replaceStaged(
            key,
            id,
            n,
            first,
            last,
            source,
          ));
        }
        await this.con.run(
          `INSERT INTO ingest_log VALUES ($at, $exchange, $symbol, $timeframe, $kind, $source,
             ${n}, ${added}, ${changed}, ${first}, ${last})`,
          { ...params, at: Date.now(), kind: options.kind ?? 'import', source },
        );
      }
      if (options.pending !== undefined) {
        await this.con.run(`DELETE FROM download_journal WHERE ${KEY_WHERE}`, params);
        if (options.pending !== null) {
          await this.con.run(
            `INSERT INTO download_journal VALUES ($exchange, $symbol, $timeframe, ${options.pending.nextMs}, ${options.pending.endMs})`,
            params,
          );
        }
      }
      await this.con.run('COMMIT');
      if (newId !== null) this.ids.set(seriesName(key), newId);
      return { rows: n, added, changed, unchanged, gaps };
    } catch (err) {
      await this.con.run('ROLLBACK');
      throw err;
    }
  }

  /**
   * Inside the open transaction: compares the staged candles with the stored ones of series `id`,
   * then deletes and re-inserts what changed and inserts what is new. Identical rows stay untouched.
   */
  private async replaceStaged(
    key: SeriesKey,
    id: number,
    n: number,
    first: number,
    last: number,
    source: string,
  ): Promise<{ added: number; changed: number; unchanged: number }> {
    const differs = `c.open <> s.open OR c.high <> s.high OR c.low <> s.low
                     OR c.close <> s.close OR c.volume <> s.volume`;
    const cmp = await this.con.runAndReadAll(
      `SELECT count(*), count(*) FILTER (WHERE ${differs}), min(c.open_time) FILTER (WHERE ${differs})
       FROM candle_data c JOIN stage s ON c.open_time = CAST(s.open_time AS BIGINT)
       WHERE c.series_id = ${id} AND c.open_time BETWEEN ${first} AND ${last}`,
    );
    const [matchedV, changedV, firstChangedV] = cmp.getRows()[0];
    const matched = toNumber(matchedV);
    const changed = toNumber(changedV);
    const added = n - matched;
    if (changed > 0) {
      log.warn(
        {
          series: seriesName(key),
          source,
          changed,
          firstChanged: new Date(toNumber(firstChangedV)).toISOString(),
        },
        'stored candles replaced by different values',
      );
      await this.con.run(
        `DELETE FROM candle_data WHERE series_id = ${id} AND open_time BETWEEN ${first} AND ${last}
           AND open_time IN (SELECT CAST(open_time AS BIGINT) FROM stage)`,
      );
      await this.con.run(
        `INSERT INTO candle_data SELECT ${id}, CAST(open_time AS BIGINT), open, high, low, close,
           volume FROM stage`,
      );
    } else if (added > 0) {
      await this.con.run(
        `INSERT INTO candle_data SELECT ${id}, CAST(s.open_time AS BIGINT), s.open, s.high, s.low,
           s.close, s.volume FROM stage s
         ANTI JOIN (SELECT open_time FROM candle_data WHERE series_id = ${id}
                      AND open_time BETWEEN ${first} AND ${last}) c
           ON c.open_time = CAST(s.open_time AS BIGINT)`,
      );
    }
    return { added, changed, unchanged: matched - changed };
  }

  /** Loads `candles` into the connection's temporary staging table. */
  private async stage(candles: Candles): Promise<void> {
    if (!this.stageReady) {
      await this.con.run(
        `CREATE OR REPLACE TEMP TABLE stage (open_time DOUBLE, open DOUBLE, high DOUBLE,
           low DOUBLE, close DOUBLE, volume DOUBLE)`,
      );
      this.stageReady = true;
    } else {
      await this.con.run('DELETE FROM stage');
    }
    await this.appendRows('stage', candles, null);
  }

  /**
   * Appends candles to `table` through DuckDB's appender, one vector-sized chunk at a time, copied
   * column by column from the typed arrays; with a series id, that id leads every row. The
   * appender writes inside the connection's open transaction, if any.
   */
  private async appendRows(
    table: 'stage' | 'candle_data',
    candles: Candles,
    seriesId: number | null,
  ): Promise<void> {
    const n = candles.openTime.length;
    if (n === 0) return;
    const cols = [
      candles.openTime,
      candles.open,
      candles.high,
      candles.low,
      candles.close,
      candles.volume,
    ];
    const lead = seriesId === null ? 0 : 1;
    const appender =
      table === 'stage'
        ? await this.con.createAppender('stage', 'main', 'temp')
        : await this.con.createAppender(table);
    try {
      const types = [DOUBLE, DOUBLE, DOUBLE, DOUBLE, DOUBLE, DOUBLE];
      const chunk = DuckDBDataChunk.create(seriesId === null ? types : [INTEGER, ...types]);
      const size = 2048;
      for (let start = 0; start < n; start += size) {
        const len = Math.min(size, n - start);
        chunk.rowCount = len; // (re)sizes the vectors: every column is written below
        if (seriesId !== null) {
          const ids = chunk.getColumnVector(0) as DuckDBIntegerVector;
          for (let i = 0; i < len; i++) ids.setItem(i, seriesId);
          ids.flush();
        }
        for (let k = 0; k < 6; k++) {
          const vec = chunk.getColumnVector(lead + k) as DuckDBDoubleVector;
          const col = cols[k];
          for (let i = 0; i < len; i++) vec.setItem(i, col[start + i]);
          vec.flush();
        }
        appender.appendDataChunk(chunk);
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  /** The `candle_data` filter of a series and range (literals only), or null for an unknown series. */
  private async dataWhere(key: SeriesKey, range: TimeRange): Promise<string | null> {
    const id = await this.seriesId(key);
    return id === null ? null : `series_id = ${id}${rangeSql(range)}`;
  }

  private async count(where: string): Promise<number> {
    const r = await this.con.runAndReadAll(`SELECT count(*) FROM candle_data WHERE ${where}`);
    return toNumber(r.getRows()[0][0]);
  }

  /**
   * Reads a series (optionally only open times in `[fromMs, toMs)`) as Candles, sorted by open time.
   * An absent series reads as zero candles.
   */
  read(key: SeriesKey, range: TimeRange = {}): Promise<Candles> {
    return this.serial(async () => {
      const where = await this.dataWhere(key, range);
      const n = where === null ? 0 : await this.count(where);
      const out = allocateCandles(key.symbol, key.timeframe, n);
      if (where === null || n === 0) return out;
      const result = await this.con.stream(
        `SELECT CAST(open_time AS DOUBLE), open, high, low, close, volume FROM candle_data
         WHERE ${where} ORDER BY open_time`,
      );
      const got = await readDoubleColumns(
        result,
        [out.openTime, out.open, out.high, out.low, out.close, out.volume],
        seriesName(key),
      );
      if (got !== n) {
        throw new CtmError(`store changed while reading ${seriesName(key)} (${got} of ${n} rows)`);
      }
      return out;
    });
  }

  /** Stored open times of a series (ascending), e.g. to find its gaps cheaply. */
  openTimes(key: SeriesKey, range: TimeRange = {}): Promise<Float64Array> {
    return this.serial(async () => {
      const where = await this.dataWhere(key, range);
      const n = where === null ? 0 : await this.count(where);
      const out = new Float64Array(n);
      if (where === null || n === 0) return out;
      const result = await this.con.stream(
        `SELECT CAST(open_time AS DOUBLE) FROM candle_data WHERE ${where} ORDER BY open_time`,
      );
      await readDoubleColumns(result, [out], seriesName(key));
      return out;
    });
  }

  /** Every stored series (optionally filtered), with its row count and span, sorted by name. */
  listSeries(filter: Partial<SeriesKey> = {}): Promise<SeriesSummary[]> {
    return this.serial(async () => {
      const { sql, params } = filterSql(filter);
      const r = await this.con.runAndReadAll(
        `SELECT exchange, symbol, timeframe, n, first, last
         FROM (SELECT series_id, count(*) AS n, min(open_time) AS first, max(open_time) AS last
               FROM candle_data GROUP BY series_id)
         JOIN series USING (series_id) ${sql}`,
        params,
      );
      const out: SeriesSummary[] = [];
      for (const [exchange, symbol, timeframe, rows, first, last] of r.getRows()) {
        const tf = String(timeframe);
        if (!isTimeframe(tf)) continue;
        out.push({
          exchange: String(exchange),
          symbol: String(symbol),
          timeframe: tf,
          rows: toNumber(rows),
          firstOpenTime: toNumber(first),
          lastOpenTime: toNumber(last),
        });
      }
      // Sort by timeframe length inside a symbol, not alphabetically (15m before 1d before 4h).
      out.sort(
        (a, b) =>
          a.exchange.localeCompare(b.exchange) ||
          a.symbol.localeCompare(b.symbol) ||
          TIMEFRAME_MS[a.timeframe] - TIMEFRAME_MS[b.timeframe],
      );
      return out;
    });
  }

  /** Span, gaps, duplicates, last write and pending download of every stored series (optionally filtered). */
  async coverage(filter: Partial<SeriesKey> = {}): Promise<SeriesCoverage[]> {
    const series = await this.listSeries(filter);
    const out: SeriesCoverage[] = [];
    for (const s of series) {
      const times = await this.openTimes(s);
      const step = TIMEFRAME_MS[s.timeframe];
      let duplicates = 0;
      for (let i = 1; i < times.length; i++) if (times[i] === times[i - 1]) duplicates++;
      const extra = await this.serial(async () => {
        const params = keyParams(s);
        const ingest = await this.con.runAndReadAll(
          `SELECT kind, source, at_ms, rows FROM ingest_log WHERE ${KEY_WHERE}
           ORDER BY at_ms DESC LIMIT 1`,
          params,
        );
        const journal = await this.con.runAndReadAll(
          `SELECT next_ms, end_ms FROM download_journal WHERE ${KEY_WHERE}`,
          params,
        );
        return { ingest: ingest.getRows()[0], journal: journal.getRows()[0] };
      });
      out.push({
        ...s,
        expectedRows: Math.floor((s.lastOpenTime - s.firstOpenTime) / step) + 1,
        gaps: findGaps(times, s.timeframe),
        duplicates,
        lastIngest:
          extra.ingest === undefined
            ? null
            : {
                kind: String(extra.ingest[0]) === 'download' ? 'download' : 'import',
                source: String(extra.ingest[1]),
                atMs: toNumber(extra.ingest[2]),
                rows: toNumber(extra.ingest[3]),
              },
        pending:
          extra.journal === undefined
            ? null
            : { nextMs: toNumber(extra.journal[0]), endMs: toNumber(extra.journal[1]) },
      });
    }
    return out;
  }

  /** First/last stored open time and row count of a series, or null when it holds nothing. */
  async span(key: SeriesKey): Promise<SeriesSummary | null> {
    const list = await this.listSeries(key);
    return list[0] ?? null;
  }

  /** The interrupted download of a series, if one is recorded. */
  pendingDownload(key: SeriesKey): Promise<PendingDownload | null> {
    return this.serial(async () => {
      const r = await this.con.runAndReadAll(
        `SELECT next_ms, end_ms FROM download_journal WHERE ${KEY_WHERE}`,
        keyParams(key),
      );
      const row = r.getRows()[0];
      return row === undefined ? null : { nextMs: toNumber(row[0]), endMs: toNumber(row[1]) };
    });
  }

  /** Records (or, with null, clears) the pending download of a series, in its own transaction. */
  setPendingDownload(key: SeriesKey, pending: PendingDownload | null): Promise<void> {
    return this.upsert(key, allocateCandles(key.symbol, key.timeframe, 0), { pending }).then(
      () => undefined,
    );
  }

  /**
   * A content hash of the store (or of one series): equal hashes mean equal candles. Order-free;
   * used to show that a failed write left the store unchanged, and as the data fingerprint of runs.
   */
  checksum(filter: Partial<SeriesKey> = {}): Promise<string> {
    return this.serial(async () => {
      const { sql, params } = filterSql(filter);
      const r = await this.con.runAndReadAll(
        `SELECT count(*), coalesce(sum(hash(exchange, symbol, timeframe, open_time, open, high, low,
           close, volume)::HUGEINT), 0) FROM candles ${sql}`,
        params,
      );
      const [rows, sum] = r.getRows()[0];
      return `${String(rows)}:${String(sum)}`;
    });
  }

  /**
   * Writes a series (optionally a time range) to `outPath` as CSV, gzipped CSV or Parquet (chosen by
   * the extension), with columns `open_time` (UTC epoch ms), `open`, `high`, `low`, `close`,
   * `volume`, sorted by time: the layout `ctm data import` reads back unchanged. Written to a
   * temporary file and renamed, so a crash never leaves half a file.
   * @throws {UsageError} for an unknown extension; {DataValidationError} when the series is empty.
   */
  exportSeries(
    key: SeriesKey,
    outPath: string,
    range: TimeRange = {},
  ): Promise<{ rows: number; format: ExportFormat; path: string }> {
    return this.serial(async () => {
      const format = exportFormatOf(outPath);
      const where = await this.dataWhere(key, range);
      const rows = where === null ? 0 : await this.count(where);
      if (where === null || rows === 0) {
        throw new DataValidationError({
          source: `store:${seriesName(key)}`,
          reason: 'no candles stored for this series and range',
        });
      }
      const abs = resolve(outPath);
      mkdirSync(dirname(abs), { recursive: true });
      const tmp = `${abs}.${process.pid}.tmp`;
      const options =
        format === 'parquet'
          ? 'FORMAT parquet, COMPRESSION zstd'
          : `FORMAT csv, HEADER true${format === 'csv.gz' ? ', COMPRESSION gzip' : ''}`;
      try {
        await this.con.run(
          `COPY (SELECT open_time, open, high, low, close, volume FROM candle_data
                 WHERE ${where} ORDER BY open_time)
           TO ${sqlString(tmp)} (${options})`,
        );
        renameSync(tmp, abs);
      } catch (err) {
        rmSync(tmp, { force: true });
        throw err;
      }
      return { rows, format, path: abs };
    });
  }
}

function rangeSql(range: TimeRange): string {
  let sql = '';
  if (range.fromMs !== undefined && Number.isFinite(range.fromMs))
    sql += ` AND open_time >= ${Math.ceil(range.fromMs)}`;
  if (range.toMs !== undefined && Number.isFinite(range.toMs))
    sql += ` AND open_time < ${Math.ceil(range.toMs)}`;
  return sql;
}

function filterSql(filter: Partial<SeriesKey>): {
  sql: string;
  params: Record<string, DuckDBValue>;
} {
  const parts: string[] = [];
  const params: Record<string, DuckDBValue> = {};
  for (const k of ['exchange', 'symbol', 'timeframe'] as const) {
    const v = filter[k];
    if (v !== undefined) {
      parts.push(`${k} = $${k}`);
      params[k] = v;
    }
  }
  return { sql: parts.length > 0 ? `WHERE ${parts.join(' AND ')}` : '', params };
}

/**
 * Streams a result whose columns are all DOUBLE into `out` (one Float64Array per column, each
 * pre-sized). Returns the number of rows read. NULLs are refused (the tables are NOT NULL).
 */
async function readDoubleColumns(
  result: DuckDBResult,
  out: Float64Array[],
  what: string,
): Promise<number> {
  let n = 0;
  for (;;) {
    const chunk = await result.fetchChunk();
    if (chunk === null || chunk.rowCount === 0) break;
    const len = chunk.rowCount;
    if (n + len > out[0].length) {
      throw new CtmError(`store changed while reading ${what} (more rows than counted)`);
    }
    for (let k = 0; k < out.length; k++) {
      const vec = chunk.getColumnVector(k);
      if (!(vec instanceof DuckDBDoubleVector))
        throw new CtmError(`store column ${k} of ${what} is not DOUBLE`);
      const col = out[k];
      for (let i = 0; i < len; i++) {
        const v = vec.getItem(i);
        if (v === null) throw new CtmError(`store holds a NULL in ${what}`);
        col[n + i] = v;
      }
    }
    n += len;
  }
  return n;
}
