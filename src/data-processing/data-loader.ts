// Getting candles into and out of the system: `importCandleFile` (file -> validated, optionally
// repaired -> store, in one transaction) and `loadHistoricalData` (store -> nested map of Candles per
// symbol and timeframe, deriving a timeframe that is not stored by exact aggregation of a finer
// stored one). Nothing here is silently dropped or repaired: repair happens only when asked and
// logs every row it drops; a derived bucket with missing finer candles is reported, not emitted.
// Also the one reader of a candle directory in the shared data layout (`loadCandleDirectory`) and
// the one data fingerprint runs record (`dataFingerprint`).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataValidationError, UsageError } from '../errors.js';
import { defaultConfig, parseDateMs } from '../utils/config.js';
import { logger } from '../utils/logger.js';
import { hashColumns, type DataFingerprint } from '../utils/runs.js';
import {
  findGaps,
  lowerBound,
  sliceCandles,
  validateCandles,
  parseTimeframe,
  repairCandles,
  TIMEFRAME_MS,
  TIMEFRAMES,
  type Candles,
  type GapReport,
  type RepairAction,
  type Timeframe,
} from './candles.js';
import { readCandleFile, type CandleFileFormat } from './file-formats.js';
import { resample, type IncompleteBucket } from './resample.js';
import { CandleStore, seriesName, type SeriesKey, type UpsertResult } from './store.js';

const log = logger.child({ module: 'data-loader' });

/** Options of `importCandleFile`. */
export interface ImportCandleFileOptions {
  /** ccxt exchange id the candles belong to. Default `binance`. */
  exchange?: string;
  /** ccxt unified symbol, e.g. `BTC/USDT`. */
  symbol: string;
  /** Timeframe of the file's candles (`15m`, `4h`, ...). */
  timeframe: Timeframe | string;
  /** `csv`, `json` or `parquet`; detected from the extension when omitted. */
  format?: CandleFileFormat | string;
  /** Drop exact duplicate rows and off-grid rows, logging each one (default false: they are errors). */
  repair?: boolean;
  /** Refuse files with gaps (default false: gaps are reported). */
  rejectGaps?: boolean;
}

/** A row `--repair` dropped, with its place in the file. */
export interface FileRepairAction extends RepairAction {
  /** 1-based file line (record number for Parquet) of the dropped row. */
  line: number;
}

/** What `importCandleFile` read and wrote. */
export interface ImportReport {
  /** The file read. */
  path: string;
  /** The series written. */
  key: SeriesKey;
  /** Detected format, layout and time unit of the file. */
  format: CandleFileFormat;
  /** Detected layout, e.g. `csv (header)`. */
  layout: string;
  /** Detected unit of the time column (`ms`, `us`, `s` or `iso`). */
  timeUnit: string;
  /** Candle rows in the file. */
  rowsRead: number;
  /** Rows dropped by `repair` (empty without it). */
  repairs: FileRepairAction[];
  /** What the store did (added / changed / unchanged counts and the gaps of the imported candles). */
  written: UpsertResult;
  /** Open time (UTC ms) of the first and last imported candle. */
  firstOpenTime: number;
  /** Open time (UTC ms) of the last imported candle. */
  lastOpenTime: number;
}

/**
 * Imports a candle file into the store: reads it (any supported format), repairs it only when
 * asked (logging each dropped row with its file line), validates it and upserts it in one
 * transaction. A file that fails leaves the store exactly as it was.
 * @throws {DataValidationError} naming the file, line (row for Parquet) and field of the first
 * invalid row, or field `timeframe` for an unknown timeframe; {UsageError} for a missing file or an
 * unknown format.
 */
export async function importCandleFile(
  store: CandleStore,
  path: string,
  options: ImportCandleFileOptions,
): Promise<ImportReport> {
  const timeframe = parseTimeframe(options.timeframe, path);
  const key: SeriesKey = {
    exchange: options.exchange ?? 'binance',
    symbol: options.symbol,
    timeframe,
  };
  const file = await readCandleFile(path, {
    symbol: key.symbol,
    timeframe,
    format: options.format,
  });
  let candles = file.candles;
  let lines = file.lines;
  const repairs: FileRepairAction[] = [];
  if (options.repair === true) {
    const repaired = repairCandles(candles);
    if (repaired.actions.length > 0) {
      const kept = new Int32Array(repaired.candles.openTime.length);
      let next = 0;
      let j = 0;
      for (let i = 0; i < lines.length; i++) {
        if (next < repaired.actions.length && repaired.actions[next].row === i) {
          const a = repaired.actions[next++];
          const action: FileRepairAction = { ...a, line: lines[i] };
          repairs.push(action);
          log.warn(
            {
              source: path,
              line: action.line,
              openTime: new Date(a.openTime).toISOString(),
              action: a.action,
              reason: a.reason,
            },
            'repair: dropped row',
          );
        } else {
          kept[j++] = lines[i];
        }
      }
      candles = repaired.candles;
      lines = kept;
    }
  }
  const lineOf = file.format === 'parquet' ? undefined : (row: number) => lines[row];
  let written: UpsertResult;
  try {
    written = await store.upsert(key, candles, {
      source: path,
      kind: 'import',
      lineOf,
      rejectGaps: options.rejectGaps,
    });
  } catch (err) {
    throw withRepairHint(err, options.repair === true);
  }
  const n = candles.openTime.length;
  log.debug(
    {
      series: seriesName(key),
      source: path,
      layout: file.layout,
      timeUnit: file.timeUnit,
      rows: n,
      added: written.added,
      changed: written.changed,
      gaps: written.gaps.count,
      repaired: repairs.length,
    },
    'imported',
  );
  return {
    path,
    key,
    format: file.format,
    layout: file.layout,
    timeUnit: file.timeUnit,
    rowsRead: file.candles.openTime.length,
    repairs,
    written,
    firstOpenTime: candles.openTime[0],
    lastOpenTime: candles.openTime[n - 1],
  };
}

/** Adds the `--repair` hint to the errors repair would fix (off-grid rows, duplicate timestamps). */
function withRepairHint(err: unknown, repairing: boolean): unknown {
  if (
    repairing ||
    !(err instanceof DataValidationError) ||
    !/^(off the .* grid|duplicate timestamp)/.test(err.reason)
  )
    return err;
  return new DataValidationError(
    {
      source: err.source,
      line: err.line,
      row: err.row,
      openTime: err.openTime,
      field: err.field,
      reason: err.reason,
    },
    {
      hint: '--repair (config data.repair) drops off-grid rows and exact duplicates, logging each',
      cause: err,
    },
  );
}

/** A date bound: `YYYY-MM-DD` (00:00 UTC), an ISO-8601 string, epoch ms, a Date, or null (open). */
export type DateBound = string | number | Date | null | undefined;

/** Options of `loadHistoricalData` (the spec's `load_historical_data`). */
export interface LoadHistoricalDataOptions {
  /** ccxt exchange id. Default `binance`. */
  exchange?: string;
  /** ccxt unified symbols, e.g. `['BTC/USDT', 'ETH/USDT']`. */
  symbols: readonly string[];
  /** Timeframes wanted, e.g. `['15m', '4h', '1d']`. */
  timeframes: readonly (Timeframe | string)[];
  /** First open time included (UTC). Default: from the first stored candle. */
  startDate?: DateBound;
  /** First open time excluded (UTC). Default: to the last stored candle. */
  endDate?: DateBound;
  /** An open store, or the path of one. Default: config `paths.store`. */
  store?: CandleStore | string;
}

/** How one loaded series was obtained. */
export interface SeriesLoadInfo extends SeriesKey {
  /** True when the candles were aggregated from a finer stored timeframe. */
  derived: boolean;
  /** The stored timeframe they were aggregated from (null when read as stored). */
  derivedFrom: Timeframe | null;
  /** Buckets not emitted because finer candles were missing (derived series only). */
  incomplete: IncompleteBucket[];
  /** Gaps in the returned candles. */
  gaps: GapReport;
  /** Candles returned. */
  rows: number;
}

/**
 * Candles per symbol and timeframe: `data.get('BTC/USDT')!.get('15m')`. `info(symbol, tf)` says
 * how each series was obtained (stored or derived, incomplete buckets, gaps).
 */
export class HistoricalData extends Map<string, Map<Timeframe, Candles>> {
  /** Load details per symbol and timeframe, parallel to the candles. */
  readonly details = new Map<string, Map<Timeframe, SeriesLoadInfo>>();

  /** The load details of one series, or undefined when it was not requested. */
  info(symbol: string, timeframe: Timeframe): SeriesLoadInfo | undefined {
    return this.details.get(symbol)?.get(timeframe);
  }
}

function toMs(bound: DateBound, name: string): number | undefined {
  if (bound === null || bound === undefined) return undefined;
  const ms =
    typeof bound === 'number'
      ? bound
      : bound instanceof Date
        ? bound.getTime()
        : parseDateMs(bound);
  if (!Number.isFinite(ms)) {
    throw new DataValidationError({
      field: name,
      reason: `not a date: ${String(bound)} (expected YYYY-MM-DD, ISO-8601 or epoch ms)`,
    });
  }
  return ms;
}

/** Rounds `ms` up to the next multiple of `step` (UTC grid). */
function alignUp(ms: number, step: number): number {
  const r = ms % step;
  return r === 0 ? ms : ms - r + (r > 0 ? step : 0);
}

/**
 * Loads OHLCV candles for every symbol and timeframe from the store, each in `[startDate, endDate)`
 * by open time. A timeframe that is not stored is derived by exact UTC aggregation (`resample`) from
 * the coarsest stored timeframe that divides it; the result's `info` says so and lists the buckets
 * left out because finer candles were missing. Derived series read exactly the rows a stored one
 * would: buckets whose open time lies in the range.
 * @throws {DataValidationError} when a series is neither stored nor derivable, or a date is invalid.
 * @example
 * const data = await loadHistoricalData({ symbols: ['BTC/USDT'], timeframes: ['15m', '4h'] });
 * const m15 = data.get('BTC/USDT')!.get('15m')!;
 */
export async function loadHistoricalData(
  options: LoadHistoricalDataOptions,
): Promise<HistoricalData> {
  const exchange = options.exchange ?? 'binance';
  const fromMs = toMs(options.startDate, 'startDate');
  const toMsExcl = toMs(options.endDate, 'endDate');
  const timeframes = options.timeframes.map((tf) => parseTimeframe(tf, 'loadHistoricalData'));
  const ownStore = !(options.store instanceof CandleStore);
  const store =
    options.store instanceof CandleStore
      ? options.store
      : await CandleStore.open(options.store ?? defaultConfig().paths.store, { readOnly: true });
  try {
    const data = new HistoricalData();
    for (const symbol of options.symbols) {
      const stored = new Set(
        (await store.listSeries({ exchange, symbol })).map((s) => s.timeframe),
      );
      const perTf = new Map<Timeframe, Candles>();
      const perInfo = new Map<Timeframe, SeriesLoadInfo>();
      for (const timeframe of timeframes) {
        const key: SeriesKey = { exchange, symbol, timeframe };
        let candles: Candles;
        let info: SeriesLoadInfo;
        if (stored.has(timeframe)) {
          candles = await store.read(key, { fromMs, toMs: toMsExcl });
          info = {
            ...key,
            derived: false,
            derivedFrom: null,
            incomplete: [],
            gaps: findGaps(candles.openTime, timeframe),
            rows: candles.openTime.length,
          };
        } else {
          const target = TIMEFRAME_MS[timeframe];
          const source = [...TIMEFRAMES]
            .reverse()
            .find(
              (tf) =>
                stored.has(tf) && TIMEFRAME_MS[tf] < target && target % TIMEFRAME_MS[tf] === 0,
            );
          if (source === undefined) {
            throw new DataValidationError(
              {
                source: `store:${seriesName(key)}`,
                field: 'timeframe',
                reason: `no ${timeframe} candles stored for ${exchange} ${symbol}, and no finer stored timeframe to derive them from (stored: ${[...stored].join(', ') || 'none'})`,
              },
              {
                hint: 'import or download this series first (ctm data import / ctm data download)',
              },
            );
          }
          // Read the finer rows of every bucket whose open time lies in the range.
          const fine = await store.read(
            { exchange, symbol, timeframe: source },
            {
              fromMs: fromMs === undefined ? undefined : alignUp(fromMs, target),
              toMs: toMsExcl === undefined ? undefined : alignUp(toMsExcl, target),
            },
          );
          const r = resample(fine, timeframe);
          candles = r.candles;
          info = {
            ...key,
            derived: true,
            derivedFrom: source,
            incomplete: r.incomplete,
            gaps: findGaps(candles.openTime, timeframe),
            rows: candles.openTime.length,
          };
          log.info(
            {
              series: seriesName(key),
              from: source,
              rows: info.rows,
              incompleteBuckets: r.incomplete.length,
            },
            'derived from a finer timeframe',
          );
        }
        perTf.set(timeframe, candles);
        perInfo.set(timeframe, info);
      }
      data.set(symbol, perTf);
      data.details.set(symbol, perInfo);
    }
    return data;
  } finally {
    if (ownStore) store.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Candle files and directories in the shared data layout

/** Options of `loadCandleFile`. */
export interface LoadCandleFileOptions {
  /** ccxt unified symbol the candles belong to. */
  readonly symbol: string;
  /** Timeframe of the file's candles. */
  readonly timeframe: Timeframe;
  /** Keep open times >= this, UTC ms (default: from the first candle). */
  readonly fromMs?: number;
  /** Keep open times < this, UTC ms (default: to the last candle). */
  readonly toMs?: number;
  /** Drop exact duplicates and off-grid rows, logging each with its line (config `data.repair`). */
  readonly repair: boolean;
}

/**
 * Reads one candle file (any supported format), keeps open times in `[fromMs, toMs)`, repairs when
 * asked (logging each dropped row with its line) and validates what it keeps, naming file and line
 * of a bad row. Rows outside the range are neither validated nor returned.
 * @throws {UsageError} when the file is missing; {DataValidationError} for invalid candles (with a
 *   `--repair` hint for off-grid rows and duplicates when repair is off).
 */
export async function loadCandleFile(
  path: string,
  options: LoadCandleFileOptions,
): Promise<Candles> {
  const file = await readCandleFile(path, { symbol: options.symbol, timeframe: options.timeframe });
  const all = file.candles;
  const start = options.fromMs === undefined ? 0 : lowerBound(all.openTime, options.fromMs);
  const end =
    options.toMs === undefined ? all.openTime.length : lowerBound(all.openTime, options.toMs);
  let candles = sliceCandles(all, start, end);
  let lines = file.lines.subarray(start, end);
  if (options.repair) {
    const r = repairCandles(candles);
    for (const a of r.actions)
      log.warn(
        { file: path, line: lines[a.row], openTime: a.openTime, action: a.action },
        a.reason,
      );
    if (r.actions.length > 0) {
      const dropped = new Set(r.actions.map((a) => a.row));
      lines = Int32Array.from(Array.from(lines).filter((_, row) => !dropped.has(row)));
    }
    candles = r.candles;
  }
  const kept = lines;
  try {
    validateCandles(candles, { source: path, lineOf: (row) => kept[row] });
  } catch (err) {
    if (
      options.repair ||
      !(err instanceof DataValidationError) ||
      !/^(off the .* grid|duplicate timestamp)/.test(err.reason)
    )
      throw err;
    throw new DataValidationError(
      {
        source: err.source,
        line: err.line,
        openTime: err.openTime,
        field: err.field,
        reason: err.reason,
      },
      {
        hint: '--repair (config data.repair) drops off-grid rows and exact duplicates, logging each',
        cause: err,
      },
    );
  }
  return candles;
}

/** `binance`, `BTC/USDT`, `15m` -> `binance-BTCUSDT-15m.csv.gz` (the shared data layout). */
export function candleFileName(exchange: string, symbol: string, tf: Timeframe): string {
  const pair = symbol.split(':')[0].replace('/', '');
  return `${exchange}-${pair}-${tf}.csv.gz`;
}

/** Options of `loadCandleDirectory`. */
export interface LoadCandleDirectoryOptions {
  /** Exchange part of the file names (`binance`). */
  readonly exchange: string;
  /** ccxt unified symbol (`BTC/USDT` -> files `...-BTCUSDT-...`). */
  readonly symbol: string;
  /** Timeframes to read. */
  readonly timeframes: readonly Timeframe[];
  /** Keep open times >= this, UTC ms. */
  readonly fromMs?: number;
  /** Keep open times < this, UTC ms. */
  readonly toMs?: number;
  /** Repair as `loadCandleFile` does (config `data.repair`). */
  readonly repair: boolean;
  /**
   * `all` (default): every timeframe's file must exist. `finest`: only the finest timeframe's;
   * missing coarser ones are left out of the result (the caller aggregates them).
   */
  readonly require?: 'all' | 'finest';
}

/**
 * Reads one symbol's candles per timeframe from a directory of files named like the shared data
 * (`<exchange>-<BASEQUOTE>-<tf>.csv.gz`, or `.csv`), each through `loadCandleFile`.
 * @throws {UsageError} when a required file is missing; {DataValidationError} for invalid candles.
 */
export async function loadCandleDirectory(
  dir: string,
  options: LoadCandleDirectoryOptions,
): Promise<Map<Timeframe, Candles>> {
  const out = new Map<Timeframe, Candles>();
  const finest = [...options.timeframes].sort((a, b) => TIMEFRAME_MS[a] - TIMEFRAME_MS[b])[0];
  for (const tf of options.timeframes) {
    const gz = join(dir, candleFileName(options.exchange, options.symbol, tf));
    const path = existsSync(gz) ? gz : gz.replace(/\.gz$/, '');
    if (!existsSync(path)) {
      if (options.require === 'finest' && tf !== finest) continue;
      throw new UsageError(`no ${options.symbol} ${tf} candles in ${dir} (expected ${gz})`, {
        hint: 'files are named <exchange>-<BASEQUOTE>-<tf>.csv.gz, e.g. binance-BTCUSDT-15m.csv.gz',
      });
    }
    out.set(tf, await loadCandleFile(path, { ...options, timeframe: tf }));
  }
  return out;
}

/**
 * The data fingerprint a run records (run.json `data`): the symbol, the timeframes, each series'
 * first and last open time and row count, and a sha256 over every OHLCV column, so that two runs
 * on the same candles have the same hash.
 */
export function dataFingerprint(
  symbol: string,
  candles: ReadonlyMap<Timeframe, Candles>,
): DataFingerprint {
  const ranges: DataFingerprint['ranges'] = {};
  const columns: Float64Array[] = [];
  for (const [tf, c] of candles) {
    const n = c.openTime.length;
    ranges[`${symbol} ${tf}`] = [c.openTime[0] ?? NaN, c.openTime[n - 1] ?? NaN, n];
    columns.push(c.openTime, c.open, c.high, c.low, c.close, c.volume);
  }
  return { symbols: [symbol], timeframes: [...candles.keys()], ranges, hash: hashColumns(columns) };
}
