// Candles: the columnar OHLCV type every module reads (with the timeframe table of
// utils/timeframes.ts re-exported), and the one place where candles are validated. Validation
// happens once, at the edge (import, download, generation); nothing here ever drops or repairs a
// row: `repairCandles` does that only when asked, and returns a log entry for every row it changed.

import { DataValidationError } from '../errors.js';

// The timeframe table lives in utils (config and reports name timeframes too); candles re-export it
// so that every reader of candles finds it here.
export {
  isTimeframe,
  parseTimeframe,
  timeframeMs,
  TIMEFRAME_MS,
  TIMEFRAMES,
  type Timeframe,
} from '../utils/timeframes.js';
import { TIMEFRAME_MS, type Timeframe } from '../utils/timeframes.js';

/**
 * Columnar, immutable OHLCV candles of one symbol and timeframe. All columns have equal length,
 * `openTime` (UTC epoch ms) is strictly ascending and on the timeframe grid. A candle's close time
 * is `openTime + timeframeMs(timeframe)`. Prices are in quote currency, volume in base currency.
 */
export interface Candles {
  /** Market symbol, ccxt unified (`BTC/USDT`). */
  readonly symbol: string;
  /** Bar length of every candle. */
  readonly timeframe: Timeframe;
  /** Open time of each candle, UTC epoch ms (strictly ascending, on the grid). */
  readonly openTime: Float64Array;
  /** Open price, quote currency. */
  readonly open: Float64Array;
  /** High price, quote currency. */
  readonly high: Float64Array;
  /** Low price, quote currency. */
  readonly low: Float64Array;
  /** Close price, quote currency. */
  readonly close: Float64Array;
  /** Traded volume, base currency. */
  readonly volume: Float64Array;
}

/** The numeric columns of a candle, in file order. */
export const CANDLE_FIELDS = ['open_time', 'open', 'high', 'low', 'close', 'volume'] as const;

/** Number of candles in a series. */
export function candleCount(c: Candles): number {
  return c.openTime.length;
}

/** Builds a Candles value from columns (no copy, no validation: call `validateCandles`). */
export function makeCandles(
  symbol: string,
  timeframe: Timeframe,
  columns: {
    openTime: Float64Array;
    open: Float64Array;
    high: Float64Array;
    low: Float64Array;
    close: Float64Array;
    volume: Float64Array;
  },
): Candles {
  const n = columns.openTime.length;
  for (const key of ['open', 'high', 'low', 'close', 'volume'] as const) {
    if (columns[key].length !== n) {
      throw new DataValidationError({
        source: symbol,
        field: key,
        reason: `column length ${columns[key].length} differs from open_time length ${n}`,
      });
    }
  }
  return Object.freeze({ symbol, timeframe, ...columns });
}

/** Allocates zero-filled columns for `n` candles. */
export function allocateCandles(symbol: string, timeframe: Timeframe, n: number): Candles {
  return makeCandles(symbol, timeframe, {
    openTime: new Float64Array(n),
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
    volume: new Float64Array(n),
  });
}

/** Returns candles `[start, end)` as views onto the same buffers (no copy). */
export function sliceCandles(c: Candles, start: number, end: number): Candles {
  return makeCandles(c.symbol, c.timeframe, {
    openTime: c.openTime.subarray(start, end),
    open: c.open.subarray(start, end),
    high: c.high.subarray(start, end),
    low: c.low.subarray(start, end),
    close: c.close.subarray(start, end),
    volume: c.volume.subarray(start, end),
  });
}

/**
 * Index of the first candle with `openTime >= timeMs` (binary search), or `length` if none.
 */
export function lowerBound(sorted: Float64Array, timeMs: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < timeMs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Index of the last candle closed by `closeMs` (`openTime + barMs <= closeMs`, binary search over
 * sorted open times), or -1 if none. All times in UTC epoch ms.
 */
export function lastClosedIndex(sorted: Float64Array, closeMs: number, barMs: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] + barMs <= closeMs) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Candles whose open time lies in `[fromMs, toMs)`, as views. */
export function sliceByTime(c: Candles, fromMs: number, toMs: number): Candles {
  return sliceCandles(c, lowerBound(c.openTime, fromMs), lowerBound(c.openTime, toMs));
}

/** One missing stretch of a series: candles expected between two present ones. */
export interface Gap {
  /** Open time (UTC ms) of the candle before the gap. */
  afterOpenTime: number;
  /** Open time (UTC ms) of the candle after the gap. */
  nextOpenTime: number;
  /** Number of missing candles on the grid. */
  missingBars: number;
}

/** Summary of the gaps in a series. */
export interface GapReport {
  /** Number of gaps. */
  count: number;
  /** Total missing candles. */
  missingBars: number;
  /** The largest gap, or null when there is none. */
  largest: Gap | null;
  /** Every gap, in time order. */
  gaps: Gap[];
}

/**
 * Finds the gaps in a sorted series: places where consecutive open times are more than one
 * timeframe apart. Works on any sorted series (also one with off-grid rows).
 */
export function findGaps(openTime: Float64Array, tf: Timeframe): GapReport {
  const step = TIMEFRAME_MS[tf];
  const gaps: Gap[] = [];
  let missing = 0;
  let largest: Gap | null = null;
  for (let i = 1; i < openTime.length; i++) {
    const d = openTime[i] - openTime[i - 1];
    if (d > step) {
      const gap: Gap = {
        afterOpenTime: openTime[i - 1],
        nextOpenTime: openTime[i],
        missingBars: Math.ceil(d / step) - 1,
      };
      gaps.push(gap);
      missing += gap.missingBars;
      if (largest === null || gap.missingBars > largest.missingBars) largest = gap;
    }
  }
  return { count: gaps.length, missingBars: missing, largest, gaps };
}

/**
 * Scans for the first invalid row; returns `row * 16 + code` (codes in check order, see
 * `validateCandles`) or -1. Pure numeric loop: no strings, no closures, no float modulo.
 */
function firstInvalidRow(c: Candles, step: number): number {
  const { openTime, open, high, low, close, volume } = c;
  const n = openTime.length;
  let prev = -Infinity;
  for (let i = 0; i < n; i++) {
    const t = openTime[i];
    if (!Number.isFinite(t)) return i * 16;
    if (Math.floor(t / step) * step !== t) return i * 16 + 1;
    if (t === prev) return i * 16 + 2;
    if (t < prev) return i * 16 + 3;
    prev = t;
    const o = open[i];
    const h = high[i];
    const l = low[i];
    const cl = close[i];
    const v = volume[i];
    if (!Number.isFinite(o)) return i * 16 + 4;
    if (!Number.isFinite(h)) return i * 16 + 5;
    if (!Number.isFinite(l)) return i * 16 + 6;
    if (!Number.isFinite(cl)) return i * 16 + 7;
    if (!Number.isFinite(v)) return i * 16 + 8;
    if (h < o || h < cl) return i * 16 + 9;
    if (l > o || l > cl) return i * 16 + 10;
    if (l < 0) return i * 16 + 11;
    if (v < 0) return i * 16 + 12;
  }
  return -1;
}

/** Options of `validateCandles`. */
export interface ValidateOptions {
  /** Name of the source for error messages (file path, store key, ...). */
  source?: string;
  /**
   * Maps a 0-based row index to the 1-based line in the source file, so errors name the line.
   * Defaults to "no file": errors name the row instead.
   */
  lineOf?: (row: number) => number;
}

/**
 * Validates candles: finite numbers, high >= max(open, close), low <= min(open, close), low >= 0,
 * volume >= 0, open times strictly ascending (no duplicates) and on the timeframe's UTC grid.
 * Returns the gap report (gaps are not errors).
 * @throws {DataValidationError} at the first invalid row, naming source, line/row, open time and field.
 */
export function validateCandles(c: Candles, options: ValidateOptions = {}): GapReport {
  const { source, lineOf } = options;
  const step = TIMEFRAME_MS[c.timeframe];
  if (step === undefined) {
    throw new DataValidationError({
      source,
      field: 'timeframe',
      reason: `unknown timeframe "${String(c.timeframe)}"`,
    });
  }
  const { openTime, open, high, low, close, volume } = c;
  const bad = firstInvalidRow(c, step);
  if (bad >= 0) {
    const i = Math.floor(bad / 16);
    const code = bad % 16;
    const t = openTime[i];
    const [o, h, l, cl, v] = [open[i], high[i], low[i], close[i], volume[i]];
    const fields = [
      'open_time',
      'open_time',
      'open_time',
      'open_time',
      'open',
      'high',
      'low',
      'close',
      'volume',
      'high',
      'low',
      'low',
      'volume',
    ];
    const reasons = [
      `not a finite time (${t})`,
      `off the ${c.timeframe} grid (${t} ms is not a multiple of ${step})`,
      'duplicate timestamp (same as the previous row)',
      `unsorted: earlier than the previous row (${i > 0 ? new Date(openTime[i - 1]).toISOString() : ''})`,
      `not a finite number (${o})`,
      `not a finite number (${h})`,
      `not a finite number (${l})`,
      `not a finite number (${cl})`,
      `not a finite number (${v})`,
      `high ${h} < max(open ${o}, close ${cl})`,
      `low ${l} > min(open ${o}, close ${cl})`,
      `negative price ${l}`,
      `negative volume ${v}`,
    ];
    throw new DataValidationError({
      source,
      line: lineOf?.(i),
      row: lineOf === undefined ? i : undefined,
      openTime: t,
      field: fields[code],
      reason: reasons[code],
    });
  }
  return findGaps(openTime, c.timeframe);
}

/** One row changed by `repairCandles`. */
export interface RepairAction {
  /** 0-based row index in the input series. */
  row: number;
  /** The row's open time (UTC ms). */
  openTime: number;
  /** What was done. */
  action: 'dropped-duplicate' | 'dropped-off-grid';
  /** Why, in words. */
  reason: string;
}

/**
 * Repairs what `--repair` is allowed to repair, and nothing else: drops rows that exactly
 * duplicate the previous row (all six fields equal) and rows whose open time is off the timeframe
 * grid. Returns the repaired candles (new buffers) and one action per changed row. Other problems
 * (conflicting duplicates, bad prices) are left for `validateCandles` to reject.
 */
export function repairCandles(c: Candles): { candles: Candles; actions: RepairAction[] } {
  const step = TIMEFRAME_MS[c.timeframe];
  const n = c.openTime.length;
  const keep = new Uint8Array(n);
  const actions: RepairAction[] = [];
  let kept = 0;
  let lastKept = -1;
  for (let i = 0; i < n; i++) {
    const t = c.openTime[i];
    if (Number.isFinite(t) && Math.floor(t / step) * step !== t) {
      actions.push({
        row: i,
        openTime: t,
        action: 'dropped-off-grid',
        reason: `open_time not a multiple of ${c.timeframe}`,
      });
      continue;
    }
    if (
      lastKept >= 0 &&
      c.openTime[lastKept] === t &&
      c.open[lastKept] === c.open[i] &&
      c.high[lastKept] === c.high[i] &&
      c.low[lastKept] === c.low[i] &&
      c.close[lastKept] === c.close[i] &&
      c.volume[lastKept] === c.volume[i]
    ) {
      actions.push({
        row: i,
        openTime: t,
        action: 'dropped-duplicate',
        reason: 'exact duplicate of the previous row',
      });
      continue;
    }
    keep[i] = 1;
    kept++;
    lastKept = i;
  }
  if (actions.length === 0) return { candles: c, actions };
  const out = allocateCandles(c.symbol, c.timeframe, kept);
  let j = 0;
  for (let i = 0; i < n; i++) {
    if (keep[i] === 0) continue;
    out.openTime[j] = c.openTime[i];
    out.open[j] = c.open[i];
    out.high[j] = c.high[i];
    out.low[j] = c.low[i];
    out.close[j] = c.close[i];
    out.volume[j] = c.volume[i];
    j++;
  }
  return { candles: out, actions };
}
