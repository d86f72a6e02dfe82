// Reports of runs: one self-contained HTML file (the chart library and every number inlined, no
// network needed to view it) with interactive candles, the higher-timeframe candles as they were
// known at each decision time, trades, position, equity versus buy-and-hold, drawdown, monthly
// returns, return distribution, trade scatter, metrics and training curves; the key plots also as
// PNG. Draws what it is given: never recomputes a backtest, never moves money.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Resvg } from '@resvg/resvg-js';
import { timeframeMs, type Candles, type Timeframe } from '../data-processing/candles.js';
import {
  drawdownEpisodes,
  type PerformanceMetrics,
  type PeriodReturn,
} from '../evaluation/metrics.js';
import { CheckpointError } from '../errors.js';
import { writeFileAtomicSync } from './fs.js';
import { logger } from './logger.js';
import { readHistory, type Run } from './runs.js';

const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Inputs

/** A round-trip trade as the report draws it. */
export interface ReportTrade {
  /** Direction of the trade. */
  readonly side: 'long' | 'short';
  /** Open time (UTC ms) of the bar of the entry fill. */
  readonly entryTimeMs: number;
  /** Volume-weighted entry price, quote currency. */
  readonly entryPrice: number;
  /** Null while the trade is still open at the end of the backtest. */
  readonly exitTimeMs: number | null;
  /** Volume-weighted exit price (quote currency), or null while open. */
  readonly exitPrice: number | null;
  /** Net pnl (quote currency). */
  readonly pnl: number;
  /** Net pnl / entry notional. */
  readonly returnFraction: number;
  /** Bars the position was held. */
  readonly barsHeld: number;
}

/** One higher timeframe as the backtest saw it. */
export interface ReportHigherTimeframe {
  /** The higher timeframe. */
  readonly timeframe: Timeframe;
  /** Its candles (complete candles only). */
  readonly candles: Candles;
  /** Per base row of the backtest: index into `candles` of the last closed candle, or -1. */
  readonly lastClosed: Int32Array;
}

/** What a backtest gives the report. All per-row arrays have one entry per base row. */
export interface ReportBacktestInput {
  /** Page title. */
  readonly title: string;
  /** Symbol traded, ccxt unified. */
  readonly symbol: string;
  /** Base candles of the backtest rows (decisions at their closes). */
  readonly candles: Candles;
  /** Higher timeframes as the backtest saw them. */
  readonly higher: readonly ReportHigherTimeframe[];
  /** Equity marked at each row's close (quote currency). */
  readonly equity: ArrayLike<number>;
  /** Buy-and-hold equity through the same broker, when computed. */
  readonly benchmarkEquity?: ArrayLike<number>;
  /** Signed exposure held after each row's fills, in [-1, 1]. */
  readonly position: ArrayLike<number>;
  /** Round trips, the one still open at the end included. */
  readonly trades: readonly ReportTrade[];
  /** Metrics of the strategy. */
  readonly metrics: PerformanceMetrics;
  /** Metrics of buy-and-hold, when computed. */
  readonly benchmarkMetrics?: PerformanceMetrics;
  /** Policy name, costs and other facts printed in the header. */
  readonly facts?: Readonly<Record<string, string | number>>;
}

/** Options of the report's drawing (the `report` config section). */
export interface ReportOptions {
  /** Most candles (and points of every time series) the page draws; longer runs are grouped. */
  readonly maxCandles: number;
  /** Bins of the daily-return histogram. */
  readonly histogramBins: number;
  /** Size of each PNG in pixels. */
  readonly pngWidth: number;
  /** Height of each PNG in pixels. */
  readonly pngHeight: number;
  /** Trades beyond this count are drawn without text labels. */
  readonly markerLabelLimit: number;
}

/** Default drawing options (config/default.yaml `report` carries the same values). */
export const DEFAULT_REPORT_OPTIONS: ReportOptions = {
  maxCandles: 20_000,
  histogramBins: 60,
  pngWidth: 1200,
  pngHeight: 500,
  markerLabelLimit: 200,
};

/** A sequence model's confusion matrix: `matrix[true][predicted]` counts. */
export interface ConfusionMatrix {
  /** Class names, in row and column order. */
  readonly labels: readonly string[];
  /** Counts, `matrix[true][predicted]`. */
  readonly matrix: readonly (readonly number[])[];
}

/** A confusion matrix found in a run's metrics, named by where it was found (`test`, ...). */
export interface NamedConfusionMatrix extends ConfusionMatrix {
  /** Where the matrix was found, e.g. `validation` or `test`. */
  readonly name: string;
}

// ---------------------------------------------------------------------------------------------
// The serialisable payload (report-data.json) the page is drawn from

/** Candles as columns; times in UTC seconds (the chart library's unit). */
export interface CandleColumns {
  /** Time of each candle, UTC seconds. */
  t: number[];
  /** Open prices. */
  o: number[];
  /** High prices. */
  h: number[];
  /** Low prices. */
  l: number[];
  /** Close prices. */
  c: number[];
}

/** Price section of the payload. */
export interface PricePayload {
  /** Symbol traded. */
  symbol: string;
  /** Base timeframe. */
  timeframe: Timeframe;
  /** Base rows in the backtest. */
  rows: number;
  /** Base rows per drawn candle (1 = every candle drawn as is). */
  group: number;
  /** Drawn base candles (grouped by `group`). */
  candles: CandleColumns;
  /**
   * Per higher timeframe: the last closed candle known at the end of each drawn bar, placed at the
   * bar where it first became known (`t`), with its real open time (`openMs`).
   */
  higher: Array<{ timeframe: Timeframe; openMs: number[] } & CandleColumns>;
  /** Position after each drawn bar. */
  position: { t: number[]; v: number[] };
  /** Trade markers: drawn bar time, exact fill time and price, kind. */
  markers: { t: number[]; ms: number[]; price: number[]; kind: MarkerKind[] };
}

/** Entry and exit markers. */
export type MarkerKind = 'long-entry' | 'long-exit' | 'short-entry' | 'short-exit';

/** Everything the page draws. */
export interface ReportPayload {
  /** Page title. */
  title: string;
  /** When the payload was made, ISO 8601 UTC. */
  created: string;
  /** Facts printed in the header (policy, costs, ...). */
  facts: Record<string, string | number>;
  /** Candles, higher timeframes, position and trade markers, or null without a backtest. */
  price: PricePayload | null;
  /**
   * Equity curves (quote currency) at drawn-bar times `t` (UTC seconds), with drawdown and rolling
   * Sharpe; null without a backtest.
   */
  equity: {
    t: number[];
    strategy: number[];
    benchmark: number[] | null;
    /** Drawdown in percent (<= 0), deepest point of each drawn bar. */
    underwater: number[];
    /** Annualised Sharpe ratio of the last 30 days of bar returns at each drawn bar's end (null while warming up). */
    rollingSharpe: Array<number | null>;
  } | null;
  /** The deepest drawdown episodes (at most 5), with UTC ms times of peak, valley and recovery. */
  drawdowns: Array<{ peakMs: number; valleyMs: number; recoveryMs: number | null; depth: number }>;
  /** Monthly compounded returns. */
  monthly: PeriodReturn[];
  /** Yearly compounded returns. */
  yearly: PeriodReturn[];
  /** Compounded daily returns (fractions) for the distribution. */
  dailyReturns: number[];
  /** Closed trades: exit time (UTC ms), return fraction, pnl (quote currency), side, bars held. */
  trades: Array<{ exitMs: number; ret: number; pnl: number; side: 'long' | 'short'; bars: number }>;
  /** Strategy metrics, or null (non-backtest runs). */
  metrics: PerformanceMetrics | null;
  /** Buy-and-hold metrics, or null. */
  benchmarkMetrics: PerformanceMetrics | null;
  /** Training history rows (`step` plus numeric metrics). */
  history: Array<Record<string, number | string | null>>;
  /** Confusion matrices of a sequence-model run (validation, test, ...). */
  confusion: NamedConfusionMatrix[];
  /** Other runs' metrics.json, flattened to `a.b.c` keys (shown when `metrics` is null). */
  summary: Record<string, number | string>;
}

/** A payload with nothing to draw yet (training runs start from it). */
export function emptyReportPayload(title: string): ReportPayload {
  return {
    title,
    created: new Date().toISOString(),
    facts: {},
    price: null,
    equity: null,
    drawdowns: [],
    monthly: [],
    yearly: [],
    dailyReturns: [],
    trades: [],
    metrics: null,
    benchmarkMetrics: null,
    history: [],
    confusion: [],
    summary: {},
  };
}

function pushCandle(
  cols: CandleColumns,
  t: number,
  o: number,
  h: number,
  l: number,
  c: number,
): void {
  cols.t.push(t);
  cols.o.push(r10(o));
  cols.h.push(r10(h));
  cols.l.push(r10(l));
  cols.c.push(r10(c));
}

function emptyColumns(): CandleColumns {
  return { t: [], o: [], h: [], l: [], c: [] };
}

/** Rounds to 10 significant digits so that the payload stays compact (exact enough to draw). */
function r10(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(10)) : 0;
}

/**
 * Turns a backtest into the payload the page draws. Long runs are grouped `group` base rows per
 * drawn bar (OHLC aggregated exactly, equity and position at the bar's end, drawdown at its
 * deepest); trade markers keep their exact time and price and sit on the drawn bar containing them.
 */
export function buildBacktestPayload(
  input: ReportBacktestInput,
  options: ReportOptions = DEFAULT_REPORT_OPTIONS,
): ReportPayload {
  const c = input.candles;
  const n = c.openTime.length;
  const group = Math.max(1, Math.ceil(n / Math.max(1, options.maxCandles)));
  const candles = emptyColumns();
  const position = { t: [] as number[], v: [] as number[] };
  const eq = {
    t: [] as number[],
    strategy: [] as number[],
    underwater: [] as number[],
    rollingSharpe: [] as Array<number | null>,
  };
  // Rolling Sharpe over the last 30 days of bar returns (running sums; O(rows)).
  const barMs = timeframeMs(c.timeframe);
  const window = Math.max(2, Math.round((30 * DAY_MS) / barMs));
  const annualise = Math.sqrt((365 * DAY_MS) / barMs);
  let sum = 0;
  let sumSq = 0;
  const ret = (i: number): number =>
    i > 0 && input.equity[i - 1] > 0 ? input.equity[i] / input.equity[i - 1] - 1 : 0;
  const bench: number[] = [];
  const higher = input.higher.map((h) => ({
    timeframe: h.timeframe,
    openMs: [] as number[],
    ...emptyColumns(),
  }));
  const lastEmitted = input.higher.map(() => -1);
  let peak = -Infinity;
  for (let g = 0; g * group < n; g++) {
    const a = g * group;
    const b = Math.min(n, a + group) - 1;
    const t = c.openTime[a] / 1000;
    let hi = -Infinity;
    let lo = Infinity;
    let worstDd = 0;
    for (let i = a; i <= b; i++) {
      if (c.high[i] > hi) hi = c.high[i];
      if (c.low[i] < lo) lo = c.low[i];
      const r = ret(i);
      sum += r;
      sumSq += r * r;
      if (i >= window) {
        const old = ret(i - window);
        sum -= old;
        sumSq -= old * old;
      }
      const e = input.equity[i];
      if (e > peak) peak = e;
      const dd = peak > 0 ? e / peak - 1 : 0;
      if (dd < worstDd) worstDd = dd;
    }
    pushCandle(candles, t, c.open[a], hi, lo, c.close[b]);
    position.t.push(t);
    position.v.push(r10(input.position[b]));
    eq.t.push(t);
    eq.strategy.push(r10(input.equity[b]));
    eq.underwater.push(r10(worstDd * 100));
    const mean = sum / window;
    const variance = (sumSq - window * mean * mean) / (window - 1);
    eq.rollingSharpe.push(
      b >= window && variance > 1e-24 ? r10((mean / Math.sqrt(variance)) * annualise) : null,
    );
    if (input.benchmarkEquity !== undefined) bench.push(r10(input.benchmarkEquity[b]));
    for (let k = 0; k < input.higher.length; k++) {
      const h = input.higher[k];
      const j = h.lastClosed[b];
      if (j < 0 || j === lastEmitted[k]) continue;
      lastEmitted[k] = j;
      const hc = h.candles;
      pushCandle(higher[k], t, hc.open[j], hc.high[j], hc.low[j], hc.close[j]);
      higher[k].openMs.push(hc.openTime[j]);
    }
  }

  // Markers: one per entry and one per exit, on the drawn bar that contains the fill.
  const barOf = (ms: number): number => {
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (c.openTime[mid] <= ms) lo = mid;
      else hi = mid - 1;
    }
    return candles.t[Math.floor(lo / group)];
  };
  const raw: Array<{ t: number; ms: number; price: number; kind: MarkerKind }> = [];
  for (const tr of input.trades) {
    raw.push({
      t: barOf(tr.entryTimeMs),
      ms: tr.entryTimeMs,
      price: tr.entryPrice,
      kind: tr.side === 'long' ? 'long-entry' : 'short-entry',
    });
    if (tr.exitTimeMs !== null && tr.exitPrice !== null)
      raw.push({
        t: barOf(tr.exitTimeMs),
        ms: tr.exitTimeMs,
        price: tr.exitPrice,
        kind: tr.side === 'long' ? 'long-exit' : 'short-exit',
      });
  }
  raw.sort((x, y) => x.ms - y.ms || (x.kind.endsWith('exit') ? -1 : 1));
  const markers = {
    t: [] as number[],
    ms: [] as number[],
    price: [] as number[],
    kind: [] as MarkerKind[],
  };
  for (const m of raw) {
    markers.t.push(m.t);
    markers.ms.push(m.ms);
    markers.price.push(m.price);
    markers.kind.push(m.kind);
  }

  return {
    title: input.title,
    created: new Date().toISOString(),
    facts: { ...(input.facts ?? {}) },
    price:
      n === 0
        ? null
        : {
            symbol: input.symbol,
            timeframe: c.timeframe,
            rows: n,
            group,
            candles,
            higher,
            position,
            markers,
          },
    equity:
      n === 0 ? null : { ...eq, benchmark: input.benchmarkEquity === undefined ? null : bench },
    drawdowns: drawdownEpisodes(input.equity, 5).map((d) => ({
      peakMs: c.openTime[d.peak] + barMs,
      valleyMs: c.openTime[d.valley] + barMs,
      recoveryMs: d.recovery === null ? null : c.openTime[d.recovery] + barMs,
      depth: r10(d.depth),
    })),
    monthly: input.metrics.monthly,
    yearly: input.metrics.yearly,
    dailyReturns: dailyReturns(c, input.equity, c.timeframe),
    trades: input.trades
      .filter((t) => t.exitTimeMs !== null)
      .map((t) => ({
        exitMs: t.exitTimeMs as number,
        ret: r10(t.returnFraction),
        pnl: r10(t.pnl),
        side: t.side,
        bars: t.barsHeld,
      })),
    metrics: input.metrics,
    benchmarkMetrics: input.benchmarkMetrics ?? null,
    history: [],
    confusion: [],
    summary: {},
  };
}

/** Compounded UTC-daily returns of an equity curve marked at each candle's close. */
function dailyReturns(c: Candles, equity: ArrayLike<number>, tf: Timeframe): number[] {
  const out: number[] = [];
  const n = c.openTime.length;
  if (n === 0) return out;
  const tfMs = timeframeMs(tf);
  let day = Math.floor((c.openTime[0] + tfMs - 1) / DAY_MS);
  let start = equity[0];
  for (let i = 1; i < n; i++) {
    const d = Math.floor((c.openTime[i] + tfMs - 1) / DAY_MS);
    if (d !== day) {
      const end = equity[i - 1];
      if (start > 0) out.push(r10(end / start - 1));
      start = end;
      day = d;
    }
  }
  if (start > 0 && n > 1) out.push(r10(equity[n - 1] / start - 1));
  return out;
}

/** Direction classes of the sequence model, the labels of a flat 3 x 3 `confusion` array. */
const DIRECTION_LABELS = ['down', 'flat', 'up'];

function asConfusion(v: unknown): ConfusionMatrix | null {
  if (typeof v !== 'object' || v === null) return null;
  if (Array.isArray(v)) {
    // A flat row-major k x k array of counts (the trainer's `confusion`).
    const k = Math.round(Math.sqrt(v.length));
    if (k < 2 || k * k !== v.length || !v.every((x) => typeof x === 'number')) return null;
    const flat = v as number[];
    return {
      labels: k === 3 ? DIRECTION_LABELS : Array.from({ length: k }, (_, i) => `class ${i}`),
      matrix: Array.from({ length: k }, (_, r) => flat.slice(r * k, r * k + k)),
    };
  }
  const cm = v as Partial<ConfusionMatrix>;
  return Array.isArray(cm.labels) && Array.isArray(cm.matrix) ? (cm as ConfusionMatrix) : null;
}

/**
 * Finds every confusion matrix in a run's metrics: `confusionMatrix: { labels, matrix }` or a flat
 * square `confusion: number[]` (row = true class), each named by the path of the object holding it
 * (e.g. `validation`, `test`).
 */
export function findConfusionMatrices(
  value: unknown,
  path = '',
  depth = 0,
): NamedConfusionMatrix[] {
  if (depth > 5 || typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  const out: NamedConfusionMatrix[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const cm = k === 'confusionMatrix' || k === 'confusion' ? asConfusion(v) : null;
    if (cm !== null) out.push({ ...cm, name: path === '' ? 'run' : path });
    else out.push(...findConfusionMatrices(v, path === '' ? k : `${path}.${k}`, depth + 1));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// SVG charts (inlined in the page and rasterised to PNG)

const FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';
const COLORS = {
  strategy: '#2962ff',
  benchmark: '#9e9e9e',
  up: '#26a69a',
  down: '#ef5350',
  grid: '#e6e6e6',
  axis: '#555555',
  text: '#222222',
};
const SERIES_COLORS = ['#2962ff', '#ff6d00', '#26a69a', '#ab47bc', '#ef5350', '#8d6e63', '#00838f'];

/** `s` with the characters that are special in HTML text and attributes escaped. */
export function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A name as a file/id fragment: `validation.test` → `validation-test`. */
function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'run';
}

function niceStep(range: number, target: number): number {
  const raw = range / Math.max(1, target);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, target);
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function fmtNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, '');
  if (a === 0) return '0';
  return v.toPrecision(2);
}

function fmtPct(v: number, digits = 1): string {
  return `${(v * 100).toFixed(digits)}%`;
}

function timeTicks(lo: number, hi: number): { v: number; label: string }[] {
  const span = hi - lo;
  const steps: Array<[number, (d: Date) => string]> = [
    [3_600_000, (d) => `${d.toISOString().slice(5, 10)} ${d.toISOString().slice(11, 16)}`],
    [6 * 3_600_000, (d) => `${d.toISOString().slice(5, 10)} ${d.toISOString().slice(11, 16)}`],
    [DAY_MS, (d) => d.toISOString().slice(0, 10)],
    [7 * DAY_MS, (d) => d.toISOString().slice(0, 10)],
    [30 * DAY_MS, (d) => d.toISOString().slice(0, 7)],
    [91 * DAY_MS, (d) => d.toISOString().slice(0, 7)],
    [365 * DAY_MS, (d) => d.toISOString().slice(0, 4)],
  ];
  let chosen = steps[steps.length - 1];
  for (const s of steps)
    if (span / s[0] <= 7) {
      chosen = s;
      break;
    }
  const [step, fmt] = chosen;
  const out: { v: number; label: string }[] = [];
  if (step >= 30 * DAY_MS) {
    // Calendar months / quarters / years.
    const months = step >= 365 * DAY_MS ? 12 : step >= 91 * DAY_MS ? 3 : 1;
    const d = new Date(lo);
    let y = d.getUTCFullYear();
    let m = Math.ceil(d.getUTCMonth() / months) * months;
    for (;;) {
      const t = Date.UTC(y + Math.floor(m / 12), m % 12, 1);
      if (t > hi) break;
      if (t >= lo) out.push({ v: t, label: fmt(new Date(t)) });
      m += months;
      if (m >= 12) {
        y += Math.floor(m / 12);
        m %= 12;
      }
    }
  } else {
    for (let t = Math.ceil(lo / step) * step; t <= hi; t += step)
      out.push({ v: t, label: fmt(new Date(t)) });
  }
  return out;
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function frame(width: number, height: number): Frame {
  return { width, height, left: 70, right: width - 20, top: 40, bottom: height - 45 };
}

function svgOpen(f: Frame, id: string, title: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" id="${esc(id)}" class="ctm-svg" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" font-family="${FONT}" font-size="12">` +
    `<rect x="0" y="0" width="${f.width}" height="${f.height}" fill="#ffffff"/>` +
    `<text x="${f.left}" y="22" font-size="15" font-weight="bold" fill="${COLORS.text}">${esc(title)}</text>`
  );
}

function yAxis(f: Frame, lo: number, hi: number, fmt: (v: number) => string): string {
  let s = '';
  for (const v of niceTicks(lo, hi)) {
    const y = f.bottom - ((v - lo) / (hi - lo || 1)) * (f.bottom - f.top);
    s += `<line x1="${f.left}" x2="${f.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${COLORS.grid}"/>`;
    s += `<text x="${f.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" fill="${COLORS.axis}">${esc(fmt(v))}</text>`;
  }
  return s;
}

function xAxisTime(f: Frame, lo: number, hi: number): string {
  let s = `<line x1="${f.left}" x2="${f.right}" y1="${f.bottom}" y2="${f.bottom}" stroke="${COLORS.axis}"/>`;
  for (const { v, label } of timeTicks(lo, hi)) {
    const x = f.left + ((v - lo) / (hi - lo || 1)) * (f.right - f.left);
    s += `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${f.bottom}" y2="${f.bottom + 4}" stroke="${COLORS.axis}"/>`;
    s += `<text x="${x.toFixed(1)}" y="${f.bottom + 18}" text-anchor="middle" fill="${COLORS.axis}">${esc(label)}</text>`;
  }
  return s;
}

function xAxisNumber(f: Frame, lo: number, hi: number, label: string): string {
  let s = `<line x1="${f.left}" x2="${f.right}" y1="${f.bottom}" y2="${f.bottom}" stroke="${COLORS.axis}"/>`;
  for (const v of niceTicks(lo, hi, 6)) {
    const x = f.left + ((v - lo) / (hi - lo || 1)) * (f.right - f.left);
    s += `<text x="${x.toFixed(1)}" y="${f.bottom + 18}" text-anchor="middle" fill="${COLORS.axis}">${esc(fmtNumber(v))}</text>`;
  }
  s += `<text x="${(f.left + f.right) / 2}" y="${f.height - 6}" text-anchor="middle" fill="${COLORS.axis}">${esc(label)}</text>`;
  return s;
}

function legend(f: Frame, items: Array<{ name: string; color: string }>): string {
  let x = f.right;
  let s = '';
  for (let i = items.length - 1; i >= 0; i--) {
    const w = 24 + items[i].name.length * 7;
    x -= w;
    s += `<rect x="${x}" y="14" width="12" height="4" fill="${items[i].color}"/>`;
    s += `<text x="${x + 16}" y="20" fill="${COLORS.text}">${esc(items[i].name)}</text>`;
  }
  return s;
}

/** A line series for `lineChartSvg`. */
export interface SvgSeries {
  /** Legend label. */
  readonly name: string;
  /** X values (same length as `y`). */
  readonly x: ArrayLike<number>;
  /** Y values. */
  readonly y: ArrayLike<number>;
  /** Line colour (any SVG colour); default from the palette. */
  readonly color?: string;
  /** Fill between the line and zero. */
  readonly fill?: boolean;
}

/**
 * Reduces a series to at most `maxPoints` by keeping, per bucket, its first, minimum and maximum
 * points (extremes survive). Returns index lists.
 */
function decimate(n: number, y: ArrayLike<number>, maxPoints: number): number[] {
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => i);
  const buckets = Math.max(1, Math.floor(maxPoints / 3));
  const out: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const a = Math.floor((b * n) / buckets);
    const e = Math.floor(((b + 1) * n) / buckets);
    let iMin = a;
    let iMax = a;
    for (let i = a; i < e; i++) {
      if (y[i] < y[iMin]) iMin = i;
      if (y[i] > y[iMax]) iMax = i;
    }
    const idx = [a, iMin, iMax].sort((p, q) => p - q);
    for (let k = 0; k < 3; k++) if (k === 0 || idx[k] !== idx[k - 1]) out.push(idx[k]);
  }
  if (out[out.length - 1] !== n - 1) out.push(n - 1);
  return out;
}

/**
 * A line chart (time or numeric x axis) as an SVG string.
 * @param options.id element id; `options.yFormat` formats the y ticks
 */
export function lineChartSvg(options: {
  id: string;
  title: string;
  series: readonly SvgSeries[];
  xType: 'time' | 'number';
  xLabel?: string;
  yFormat?: (v: number) => string;
  width: number;
  height: number;
  maxPoints?: number;
}): string {
  const f = frame(options.width, options.height);
  let xLo = Infinity;
  let xHi = -Infinity;
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const s of options.series) {
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i];
      const y = s.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if (x < xLo) xLo = x;
      if (x > xHi) xHi = x;
      if (y < yLo) yLo = y;
      if (y > yHi) yHi = y;
    }
    if (s.fill === true) {
      yLo = Math.min(yLo, 0);
      yHi = Math.max(yHi, 0);
    }
  }
  let out = svgOpen(f, options.id, options.title);
  if (!Number.isFinite(xLo)) {
    out += `<text x="${f.width / 2}" y="${f.height / 2}" text-anchor="middle" fill="${COLORS.axis}">no data</text></svg>`;
    return out;
  }
  if (yHi === yLo) {
    yHi += Math.abs(yHi) * 0.01 || 1;
    yLo -= Math.abs(yLo) * 0.01 || 1;
  }
  const pad = (yHi - yLo) * 0.05;
  yLo -= pad;
  yHi += pad;
  const fmt = options.yFormat ?? fmtNumber;
  out += yAxis(f, yLo, yHi, fmt);
  out +=
    options.xType === 'time'
      ? xAxisTime(f, xLo, xHi)
      : xAxisNumber(f, xLo, xHi, options.xLabel ?? '');
  const sx = (x: number): number => f.left + ((x - xLo) / (xHi - xLo || 1)) * (f.right - f.left);
  const sy = (y: number): number => f.bottom - ((y - yLo) / (yHi - yLo)) * (f.bottom - f.top);
  options.series.forEach((s, k) => {
    const color = s.color ?? SERIES_COLORS[k % SERIES_COLORS.length];
    const idx = decimate(s.x.length, s.y, options.maxPoints ?? 3000);
    let d = '';
    let first = true;
    for (const i of idx) {
      if (!Number.isFinite(s.y[i]) || !Number.isFinite(s.x[i])) {
        first = true;
        continue;
      }
      d += `${first ? 'M' : 'L'}${sx(s.x[i]).toFixed(1)},${sy(s.y[i]).toFixed(1)}`;
      first = false;
    }
    if (s.fill === true && idx.length > 0) {
      const x0 = sx(s.x[idx[0]]).toFixed(1);
      const x1 = sx(s.x[idx[idx.length - 1]]).toFixed(1);
      const y0 = sy(0).toFixed(1);
      out += `<path d="M${x0},${y0}${d.replace(/^M/, 'L')}L${x1},${y0}Z" fill="${color}" fill-opacity="0.25" stroke="none"/>`;
    }
    out += `<path class="series" data-name="${esc(s.name)}" d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
  });
  if (options.series.length > 1)
    out += legend(
      f,
      options.series.map((s, k) => ({
        name: s.name,
        color: s.color ?? SERIES_COLORS[k % SERIES_COLORS.length],
      })),
    );
  return out + '</svg>';
}

function heatColor(v: number, scale: number): string {
  const a = Math.min(1, Math.abs(v) / (scale || 1));
  const [r, g, b] = v >= 0 ? [38, 166, 154] : [239, 83, 80];
  const mix = (c: number): number => Math.round(255 + (c - 255) * a);
  return `rgb(${mix(r)},${mix(g)},${mix(b)})`;
}

/** Monthly returns heatmap (years × months, plus the year's total) as an SVG string. */
export function monthlyHeatmapSvg(
  monthly: readonly PeriodReturn[],
  yearly: readonly PeriodReturn[],
  width: number,
): string {
  const years = [...new Set(monthly.map((m) => m.period.slice(0, 4)))].sort();
  const cell = Math.max(30, Math.floor((width - 90) / 13));
  const height = 70 + years.length * 26 + 10;
  const f = { ...frame(width, height), left: 60 };
  let out = svgOpen(f, 'monthly-heatmap', 'Monthly returns');
  const months = [
    'Jan',
    'Feb',
    'Mar',
    'Apr',
    'May',
    'Jun',
    'Jul',
    'Aug',
    'Sep',
    'Oct',
    'Nov',
    'Dec',
    'Year',
  ];
  months.forEach((m, k) => {
    out += `<text x="${f.left + k * cell + cell / 2}" y="52" text-anchor="middle" fill="${COLORS.axis}">${m}</text>`;
  });
  let scale = 0;
  for (const m of monthly) scale = Math.max(scale, Math.abs(m.return));
  const yearMap = new Map(yearly.map((y) => [y.period, y.return]));
  years.forEach((y, row) => {
    const yTop = 60 + row * 26;
    out += `<text x="${f.left - 8}" y="${yTop + 17}" text-anchor="end" fill="${COLORS.axis}">${y}</text>`;
    for (const m of monthly) {
      if (!m.period.startsWith(y)) continue;
      const k = Number(m.period.slice(5, 7)) - 1;
      out += `<g class="cell" data-period="${m.period}"><rect class="cell" x="${f.left + k * cell}" y="${yTop}" width="${cell - 2}" height="24" fill="${heatColor(m.return, scale)}"><title>${m.period}: ${fmtPct(m.return, 2)}</title></rect>`;
      out += `<text x="${f.left + k * cell + cell / 2 - 1}" y="${yTop + 16}" text-anchor="middle" font-size="10" fill="${COLORS.text}">${fmtPct(m.return, 1)}</text></g>`;
    }
    const total = yearMap.get(y);
    if (total !== undefined) {
      out += `<rect class="year" x="${f.left + 12 * cell}" y="${yTop}" width="${cell - 2}" height="24" fill="${heatColor(total, scale * 3)}" stroke="#888"><title>${y}: ${fmtPct(total, 2)}</title></rect>`;
      out += `<text x="${f.left + 12 * cell + cell / 2 - 1}" y="${yTop + 16}" text-anchor="middle" font-size="10" font-weight="bold" fill="${COLORS.text}">${fmtPct(total, 1)}</text>`;
    }
  });
  return out + '</svg>';
}

/**
 * Histogram of returns with the normal density of the same mean and standard deviation, as SVG.
 * Each bin is one `rect.bin` carrying its count.
 */
export function histogramSvg(options: {
  id: string;
  title: string;
  values: readonly number[];
  bins: number;
  width: number;
  height: number;
}): string {
  const f = frame(options.width, options.height);
  let out = svgOpen(f, options.id, options.title);
  const v = options.values.filter((x) => Number.isFinite(x));
  if (v.length < 2) {
    out += `<text x="${f.width / 2}" y="${f.height / 2}" text-anchor="middle" fill="${COLORS.axis}">not enough data</text></svg>`;
    return out;
  }
  let lo = Infinity;
  let hi = -Infinity;
  let mean = 0;
  for (const x of v) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
    mean += x;
  }
  mean /= v.length;
  let sd = 0;
  for (const x of v) sd += (x - mean) * (x - mean);
  sd = Math.sqrt(sd / (v.length - 1));
  if (hi === lo) {
    hi += 1e-4;
    lo -= 1e-4;
  }
  const bins = Math.max(1, options.bins);
  const w = (hi - lo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (const x of v) counts[Math.min(bins - 1, Math.floor((x - lo) / w))]++;
  const maxCount = Math.max(...counts);
  const peakDensity = sd > 0 ? (v.length * w) / (sd * Math.sqrt(2 * Math.PI)) : 0;
  const yHi = Math.max(maxCount, peakDensity) * 1.08;
  out += yAxis(f, 0, yHi, fmtNumber);
  const sx = (x: number): number => f.left + ((x - lo) / (hi - lo)) * (f.right - f.left);
  const sy = (y: number): number => f.bottom - (y / yHi) * (f.bottom - f.top);
  let s = `<line x1="${f.left}" x2="${f.right}" y1="${f.bottom}" y2="${f.bottom}" stroke="${COLORS.axis}"/>`;
  for (const t of niceTicks(lo, hi, 6)) {
    const x = sx(t);
    s += `<text x="${x.toFixed(1)}" y="${f.bottom + 18}" text-anchor="middle" fill="${COLORS.axis}">${fmtPct(t, Math.abs(t) < 0.01 && t !== 0 ? 2 : 1)}</text>`;
  }
  out += s;
  counts.forEach((cnt, k) => {
    const x0 = sx(lo + k * w);
    const x1 = sx(lo + (k + 1) * w);
    const color = lo + (k + 0.5) * w >= 0 ? COLORS.up : COLORS.down;
    out += `<rect class="bin" data-count="${cnt}" x="${x0.toFixed(1)}" y="${sy(cnt).toFixed(1)}" width="${Math.max(0.5, x1 - x0 - 1).toFixed(1)}" height="${(f.bottom - sy(cnt)).toFixed(1)}" fill="${color}" fill-opacity="0.75"><title>${fmtPct(lo + k * w, 2)} to ${fmtPct(lo + (k + 1) * w, 2)}: ${cnt}</title></rect>`;
  });
  if (sd > 0) {
    let d = '';
    for (let k = 0; k <= 200; k++) {
      const x = lo + ((hi - lo) * k) / 200;
      const dens =
        (v.length * w * Math.exp(-0.5 * ((x - mean) / sd) ** 2)) / (sd * Math.sqrt(2 * Math.PI));
      d += `${k === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(dens).toFixed(1)}`;
    }
    out += `<path d="${d}" fill="none" stroke="${COLORS.axis}" stroke-dasharray="4 3" stroke-width="1.2"/>`;
    out += legend(f, [{ name: 'normal fit', color: COLORS.axis }]);
  }
  out += `<text x="${(f.left + f.right) / 2}" y="${f.height - 6}" text-anchor="middle" fill="${COLORS.axis}">${esc(`n = ${v.length}, mean ${fmtPct(mean, 3)}, sd ${fmtPct(sd, 3)}`)}</text>`;
  return out + '</svg>';
}

/** Trade returns over exit time (one `circle.trade` per closed trade), as SVG. */
export function tradeScatterSvg(
  trades: ReportPayload['trades'],
  width: number,
  height: number,
): string {
  const f = frame(width, height);
  let out = svgOpen(f, 'trade-scatter', 'Trade returns (net of costs)');
  if (trades.length === 0) {
    out += `<text x="${f.width / 2}" y="${f.height / 2}" text-anchor="middle" fill="${COLORS.axis}">no closed trades</text></svg>`;
    return out;
  }
  let xLo = Infinity;
  let xHi = -Infinity;
  let yLo = 0;
  let yHi = 0;
  for (const t of trades) {
    xLo = Math.min(xLo, t.exitMs);
    xHi = Math.max(xHi, t.exitMs);
    yLo = Math.min(yLo, t.ret);
    yHi = Math.max(yHi, t.ret);
  }
  if (xHi === xLo) {
    xHi += DAY_MS;
    xLo -= DAY_MS;
  }
  if (yHi === yLo) yHi = yLo + 0.01;
  const pad = (yHi - yLo) * 0.06;
  yLo -= pad;
  yHi += pad;
  out += yAxis(f, yLo, yHi, (v) => fmtPct(v, 1));
  out += xAxisTime(f, xLo, xHi);
  const sx = (x: number): number => f.left + ((x - xLo) / (xHi - xLo)) * (f.right - f.left);
  const sy = (y: number): number => f.bottom - ((y - yLo) / (yHi - yLo)) * (f.bottom - f.top);
  out += `<line x1="${f.left}" x2="${f.right}" y1="${sy(0).toFixed(1)}" y2="${sy(0).toFixed(1)}" stroke="${COLORS.axis}" stroke-dasharray="3 3"/>`;
  const r = trades.length > 2000 ? 1.5 : 3;
  for (const t of trades) {
    const color = t.side === 'long' ? COLORS.up : COLORS.down;
    out += `<circle class="trade" cx="${sx(t.exitMs).toFixed(1)}" cy="${sy(t.ret).toFixed(1)}" r="${r}" fill="${color}" fill-opacity="0.6">${trades.length <= 3000 ? `<title>${t.side} ${new Date(t.exitMs).toISOString().slice(0, 16)} ${fmtPct(t.ret, 2)} (${t.bars} bars)</title>` : ''}</circle>`;
  }
  out += legend(f, [
    { name: 'long', color: COLORS.up },
    { name: 'short', color: COLORS.down },
  ]);
  return out + '</svg>';
}

/** Confusion matrix (rows true, columns predicted; one `rect.cm-cell` per cell) as SVG. */
export function confusionMatrixSvg(cm: NamedConfusionMatrix, width: number): string {
  const k = cm.labels.length;
  const cell = Math.min(90, Math.floor((width - 160) / Math.max(1, k)));
  const height = 90 + k * cell + 40;
  const f = { ...frame(width, height), left: 130 };
  let out = svgOpen(
    f,
    `confusion-matrix-${slug(cm.name)}`,
    `Confusion matrix, ${cm.name} (rows: true class, columns: predicted)`,
  );
  let max = 0;
  for (const row of cm.matrix) for (const v of row) max = Math.max(max, v);
  cm.labels.forEach((label, j) => {
    out += `<text x="${f.left + j * cell + cell / 2}" y="70" text-anchor="middle" fill="${COLORS.axis}">${esc(label)}</text>`;
  });
  cm.matrix.forEach((row, i) => {
    const rowSum = row.reduce((a, b) => a + b, 0);
    out += `<text x="${f.left - 8}" y="${80 + i * cell + cell / 2 + 4}" text-anchor="end" fill="${COLORS.axis}">${esc(cm.labels[i] ?? String(i))}</text>`;
    row.forEach((v, j) => {
      const a = max > 0 ? v / max : 0;
      const shade = Math.round(255 - 180 * a);
      out += `<rect class="cm-cell" x="${f.left + j * cell}" y="${80 + i * cell}" width="${cell - 2}" height="${cell - 2}" fill="rgb(${shade},${shade},255)"><title>true ${esc(cm.labels[i] ?? '')}, predicted ${esc(cm.labels[j] ?? '')}: ${v}</title></rect>`;
      out += `<text x="${f.left + j * cell + cell / 2 - 1}" y="${80 + i * cell + cell / 2}" text-anchor="middle" fill="${a > 0.6 ? '#fff' : COLORS.text}">${v}</text>`;
      out += `<text x="${f.left + j * cell + cell / 2 - 1}" y="${80 + i * cell + cell / 2 + 14}" text-anchor="middle" font-size="10" fill="${a > 0.6 ? '#fff' : COLORS.axis}">${rowSum > 0 ? fmtPct(v / rowSum, 0) : ''}</text>`;
    });
  });
  return out + '</svg>';
}

/** Training-curve panels: which history keys are drawn together, in this order. */
const TRAINING_PANELS: ReadonlyArray<{ title: string; keys: readonly string[] }> = [
  { title: 'Loss', keys: ['loss', 'trainLoss', 'valLoss', 'validationLoss'] },
  {
    title: 'Accuracy',
    keys: [
      'accuracy',
      'trainAccuracy',
      'valAccuracy',
      'validationAccuracy',
      'macroF1',
      'valMacroF1',
    ],
  },
  { title: 'Reward', keys: ['episodeReturn', 'reward', 'meanReward', 'evalReturn'] },
  { title: 'Epsilon', keys: ['epsilon'] },
  { title: 'Entropy', keys: ['entropy'] },
  { title: 'KL', keys: ['approxKl', 'kl', 'klDivergence'] },
  { title: 'Value loss', keys: ['valueLoss', 'policyLoss'] },
  { title: 'Learning rate', keys: ['learningRate', 'lr'] },
  { title: 'Gradient norm', keys: ['gradNorm'] },
];

/** History keys that are counters or clocks, not curves. */
const NOT_CURVES = new Set(['step', 'wallMs', 'epoch', 'seconds']);

/** Groups numeric history keys into panels (known groups first, then one panel per other key). */
export function trainingPanels(
  history: ReadonlyArray<Record<string, number | string | null>>,
): Array<{ title: string; keys: string[] }> {
  const numeric = new Set<string>();
  for (const row of history)
    for (const [k, v] of Object.entries(row))
      if (!NOT_CURVES.has(k) && typeof v === 'number' && Number.isFinite(v)) numeric.add(k);
  const used = new Set<string>();
  const panels: Array<{ title: string; keys: string[] }> = [];
  for (const p of TRAINING_PANELS) {
    const keys = p.keys.filter((k) => numeric.has(k));
    keys.forEach((k) => used.add(k));
    if (keys.length > 0) panels.push({ title: p.title, keys });
  }
  for (const k of [...numeric].sort()) if (!used.has(k)) panels.push({ title: k, keys: [k] });
  return panels;
}

/** One SVG line chart per training panel (x = step). */
export function trainingCurveSvgs(
  history: ReadonlyArray<Record<string, number | string | null>>,
  width: number,
  height: number,
): string[] {
  return trainingPanels(history).map((p, k) =>
    lineChartSvg({
      id: `training-${k}`,
      title: p.title,
      xType: 'number',
      xLabel: 'step',
      width,
      height,
      series: p.keys.map((key) => {
        const x: number[] = [];
        const y: number[] = [];
        for (const row of history) {
          const v = row[key];
          const s = row.step;
          if (typeof v === 'number' && Number.isFinite(v) && typeof s === 'number') {
            x.push(s);
            y.push(v);
          }
        }
        return { name: key, x, y };
      }),
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Metrics table

interface MetricRow {
  label: string;
  path: string;
  format: 'pct' | 'num' | 'int' | 'money' | 'bars' | 'days' | 'hours' | 'prob';
}

const METRIC_TABLE: ReadonlyArray<{ section: string; rows: readonly MetricRow[] }> = [
  {
    section: 'Returns',
    rows: [
      { label: 'Total return', path: 'returns.totalReturn', format: 'pct' },
      { label: 'CAGR', path: 'returns.cagr', format: 'pct' },
      { label: 'Annualised return (arithmetic)', path: 'returns.annualizedReturn', format: 'pct' },
      { label: 'Volatility (ann.)', path: 'returns.volatility', format: 'pct' },
      { label: 'Sharpe', path: 'returns.sharpe', format: 'num' },
      { label: 'Sortino', path: 'returns.sortino', format: 'num' },
      { label: 'Calmar', path: 'returns.calmar', format: 'num' },
      { label: 'Omega', path: 'returns.omega', format: 'num' },
      { label: 'VaR 95% (per bar)', path: 'returns.var95', format: 'pct' },
      { label: 'CVaR 95% (per bar)', path: 'returns.cvar95', format: 'pct' },
      { label: 'Skew', path: 'returns.skew', format: 'num' },
      { label: 'Excess kurtosis', path: 'returns.kurtosis', format: 'num' },
      { label: 'Tail ratio', path: 'returns.tailRatio', format: 'num' },
      { label: 'Best bar', path: 'returns.bestBar', format: 'pct' },
      { label: 'Worst bar', path: 'returns.worstBar', format: 'pct' },
    ],
  },
  {
    section: 'Drawdown',
    rows: [
      { label: 'Max drawdown', path: 'drawdown.maxDrawdown', format: 'pct' },
      { label: 'Longest drawdown', path: 'drawdown.maxDrawdownDurationDays', format: 'days' },
      { label: 'Average drawdown', path: 'drawdown.averageDrawdown', format: 'pct' },
      { label: 'Ulcer index', path: 'drawdown.ulcerIndex', format: 'pct' },
      { label: 'Time under water', path: 'drawdown.timeUnderWater', format: 'pct' },
      { label: 'Drawdowns', path: 'drawdown.drawdownCount', format: 'int' },
    ],
  },
  {
    section: 'Trades',
    rows: [
      { label: 'Trades', path: 'trades.count', format: 'int' },
      { label: 'Win rate', path: 'trades.winRate', format: 'pct' },
      { label: 'Profit factor', path: 'trades.profitFactor', format: 'num' },
      { label: 'Expectancy', path: 'trades.expectancy', format: 'money' },
      { label: 'Expectancy (return)', path: 'trades.expectancyReturn', format: 'pct' },
      { label: 'Average win', path: 'trades.averageWin', format: 'money' },
      { label: 'Average loss', path: 'trades.averageLoss', format: 'money' },
      { label: 'Win/loss ratio', path: 'trades.winLossRatio', format: 'num' },
      { label: 'Best trade', path: 'trades.bestTrade', format: 'pct' },
      { label: 'Worst trade', path: 'trades.worstTrade', format: 'pct' },
      { label: 'Average holding', path: 'trades.averageHoldingHours', format: 'hours' },
      { label: 'Longest win streak', path: 'trades.longestWinStreak', format: 'int' },
      { label: 'Longest loss streak', path: 'trades.longestLossStreak', format: 'int' },
      { label: 'SQN', path: 'trades.sqn', format: 'num' },
      { label: 'Kelly fraction', path: 'trades.kelly', format: 'pct' },
      { label: 'Long trades', path: 'trades.long.count', format: 'int' },
      { label: 'Long win rate', path: 'trades.long.winRate', format: 'pct' },
      { label: 'Long pnl', path: 'trades.long.pnl', format: 'money' },
      { label: 'Short trades', path: 'trades.short.count', format: 'int' },
      { label: 'Short win rate', path: 'trades.short.winRate', format: 'pct' },
      { label: 'Short pnl', path: 'trades.short.pnl', format: 'money' },
    ],
  },
  {
    section: 'Costs and exposure',
    rows: [
      { label: 'Fees', path: 'costs.fees', format: 'money' },
      { label: 'Slippage', path: 'costs.slippage', format: 'money' },
      { label: 'Funding / borrow', path: 'costs.funding', format: 'money' },
      { label: 'Turnover (× equity)', path: 'costs.turnover', format: 'num' },
      { label: 'Gross total return', path: 'costs.grossTotalReturn', format: 'pct' },
      { label: 'Fee drag (total)', path: 'costs.feeDrag', format: 'pct' },
      { label: 'Fee drag (CAGR)', path: 'costs.feeDragAnnual', format: 'pct' },
      { label: 'Exposure', path: 'costs.exposure', format: 'pct' },
      { label: 'Long bars', path: 'costs.longExposure', format: 'pct' },
      { label: 'Short bars', path: 'costs.shortExposure', format: 'pct' },
    ],
  },
  {
    section: 'Trust',
    rows: [
      { label: 'Probabilistic Sharpe (vs 0)', path: 'trust.psr', format: 'prob' },
      { label: 'Deflated Sharpe', path: 'trust.dsr', format: 'prob' },
      { label: 'Trials', path: 'trust.trials', format: 'int' },
      { label: 'Expected max Sharpe of trials', path: 'trust.expectedMaxSharpe', format: 'num' },
      { label: 'Min track record (bars)', path: 'trust.minTrackRecordBars', format: 'int' },
    ],
  },
];

function lookup(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const k of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function formatMetric(v: unknown, format: MetricRow['format']): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
  switch (format) {
    case 'pct':
      return fmtPct(v, 2);
    case 'prob':
      return v.toFixed(3);
    case 'int':
      return Math.round(v).toLocaleString('en-US');
    case 'money':
      return v.toLocaleString('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 });
    case 'days':
      return `${v.toFixed(1)} d`;
    case 'hours':
      return v >= 48 ? `${(v / 24).toFixed(1)} d` : `${v.toFixed(1)} h`;
    case 'bars':
      return `${Math.round(v)} bars`;
    default:
      return Math.abs(v) >= 1000 ? v.toExponential(2) : v.toFixed(3);
  }
}

/** The metrics table (strategy, and buy-and-hold when given) as HTML. */
export function metricsTableHtml(m: PerformanceMetrics, bench: PerformanceMetrics | null): string {
  let out = '<table class="metrics" id="metrics-table"><thead><tr><th>metric</th><th>strategy</th>';
  if (bench !== null) out += '<th>buy &amp; hold</th>';
  out += '</tr></thead><tbody>';
  for (const sec of METRIC_TABLE) {
    out += `<tr class="section"><td colspan="${bench === null ? 2 : 3}">${esc(sec.section)}</td></tr>`;
    for (const row of sec.rows) {
      const cell = (metrics: PerformanceMetrics): string => {
        const v = lookup(metrics, row.path);
        const reason = metrics.nulls[row.path];
        return `<td${reason === undefined ? '' : ` title="${esc(reason)}"`}>${formatMetric(v, row.format)}</td>`;
      };
      out += `<tr data-metric="${row.path}"><td>${esc(row.label)}</td>${cell(m)}${bench === null ? '' : cell(bench)}</tr>`;
    }
  }
  return out + '</tbody></table>';
}

/** The worst drawdowns (peak, valley, recovery, depth, length) as HTML. */
function drawdownTableHtml(drawdowns: ReportPayload['drawdowns']): string {
  const day = (ms: number): string => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  let out =
    '<table class="metrics" id="drawdown-table"><thead><tr><th>peak</th><th>valley</th><th>recovered</th><th>depth</th><th>days</th></tr></thead><tbody>';
  for (const d of drawdowns) {
    const end = d.recoveryMs ?? null;
    out += `<tr><td>${day(d.peakMs)}</td><td>${day(d.valleyMs)}</td><td>${end === null ? 'not yet' : day(end)}</td><td>${fmtPct(-d.depth, 2)}</td><td>${end === null ? '—' : ((end - d.peakMs) / DAY_MS).toFixed(1)}</td></tr>`;
  }
  return out + '</tbody></table>';
}

/** A run's own metrics (flattened `a.b.c` keys) as a two-column HTML table. */
function summaryTableHtml(summary: Record<string, number | string>): string {
  let out =
    '<table class="metrics" id="summary-table"><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>';
  for (const [k, v] of Object.entries(summary)) {
    const text =
      typeof v === 'number'
        ? Number.isInteger(v)
          ? v.toLocaleString('en-US')
          : v.toPrecision(6)
        : v;
    out += `<tr data-metric="${esc(k)}"><td>${esc(k)}</td><td>${esc(text)}</td></tr>`;
  }
  return out + '</tbody></table>';
}

/** Flattens the numbers and strings of a JSON value to `a.b.c` keys (arrays and nulls skipped). */
export function flattenMetrics(
  value: unknown,
  prefix = '',
  out: Record<string, number | string> = {},
): Record<string, number | string> {
  if (typeof value === 'number' && Number.isFinite(value)) out[prefix] = value;
  else if (typeof value === 'string' && prefix !== '') out[prefix] = value;
  else if (typeof value === 'object' && value !== null && !Array.isArray(value))
    for (const [k, v] of Object.entries(value))
      flattenMetrics(v, prefix === '' ? k : `${prefix}.${k}`, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The page

let chartLibrary: string | undefined;

/** The chart library's standalone build, read once from node_modules. */
function chartLibrarySource(): string {
  if (chartLibrary === undefined) {
    const require = createRequire(import.meta.url);
    const pkgDir = require.resolve('lightweight-charts/package.json').replace(/package\.json$/, '');
    chartLibrary = readFileSync(
      `${pkgDir}dist/lightweight-charts.standalone.production.js`,
      'utf8',
    );
  }
  return chartLibrary;
}

/** JSON safe to embed inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** SVG figures of a payload, by file stem (also the PNG names). */
export function payloadSvgs(
  payload: ReportPayload,
  options: ReportOptions = DEFAULT_REPORT_OPTIONS,
): Record<string, string> {
  const w = options.pngWidth;
  const h = options.pngHeight;
  const out: Record<string, string> = {};
  const p = payload.price;
  const e = payload.equity;
  if (p !== null && e !== null) {
    const ms = e.t.map((t) => t * 1000);
    out.equity = lineChartSvg({
      id: 'equity-png',
      title: `Equity (${p.symbol})`,
      xType: 'time',
      width: w,
      height: h,
      yFormat: fmtNumber,
      series: [
        { name: 'strategy', x: ms, y: e.strategy, color: COLORS.strategy },
        ...(e.benchmark === null
          ? []
          : [{ name: 'buy & hold', x: ms, y: e.benchmark, color: COLORS.benchmark }]),
      ],
    });
    out.drawdown = lineChartSvg({
      id: 'drawdown-png',
      title: 'Drawdown (underwater)',
      xType: 'time',
      width: w,
      height: Math.round(h * 0.6),
      yFormat: (v) => `${v.toFixed(v > -1 && v !== 0 ? 1 : 0)}%`,
      series: [{ name: 'drawdown', x: ms, y: e.underwater, color: COLORS.down, fill: true }],
    });
    out.price = lineChartSvg({
      id: 'price-png',
      title: `${p.symbol} close (${p.timeframe}${p.group > 1 ? ` × ${p.group}` : ''})`,
      xType: 'time',
      width: w,
      height: h,
      series: [
        { name: 'close', x: p.candles.t.map((t) => t * 1000), y: p.candles.c, color: '#444' },
      ],
    });
  }
  if (payload.monthly.length > 0)
    out['monthly-returns'] = monthlyHeatmapSvg(payload.monthly, payload.yearly, w);
  if (payload.dailyReturns.length > 0)
    out['returns-distribution'] = histogramSvg({
      id: 'returns-distribution',
      title: 'Distribution of daily returns',
      values: payload.dailyReturns,
      bins: options.histogramBins,
      width: w,
      height: h,
    });
  if (p !== null) out.trades = tradeScatterSvg(payload.trades, w, h);
  const training = trainingCurveSvgs(payload.history, Math.round(w / 2), Math.round(h * 0.7));
  training.forEach((svg, k) => {
    out[`training-${k}`] = svg;
  });
  for (const cm of payload.confusion)
    out[`confusion-matrix-${slug(cm.name)}`] = confusionMatrixSvg(cm, w);
  return out;
}

/** The style sheet of the report pages (the run report and the sweep report). */
export const REPORT_CSS = `
body{font-family:${FONT};margin:0;background:#fafafa;color:#222}
header{padding:16px 24px;background:#fff;border-bottom:1px solid #ddd}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:24px 0 8px}
.facts span{display:inline-block;margin:2px 14px 2px 0;font-size:13px;color:#444}
.facts b{color:#222}
main{padding:0 24px 40px}
.chart{background:#fff;border:1px solid #ddd;position:relative}
#price-chart{height:720px}#equity-chart{height:560px}
.legend{position:absolute;left:8px;top:6px;z-index:3;font-size:12px;background:rgba(255,255,255,.85);padding:4px 6px;border-radius:3px;pointer-events:none;white-space:pre;line-height:1.45}
.note{font-size:12px;color:#666;margin:4px 0}
.svgs{display:flex;flex-wrap:wrap;gap:12px}.svgs svg{max-width:100%;height:auto;background:#fff;border:1px solid #ddd}
table.metrics{border-collapse:collapse;background:#fff;font-size:13px}
table.metrics td,table.metrics th{border:1px solid #e0e0e0;padding:3px 10px;text-align:right}
table.metrics td:first-child,table.metrics th:first-child{text-align:left}
table.metrics tr.section td{background:#f0f0f0;font-weight:bold;text-align:left}
`;

/** The page's script: draws the interactive charts from the embedded payload. */
const APP_JS = String.raw`
(function () {
  var LC = window.LightweightCharts;
  var data = JSON.parse(document.getElementById('ctm-data').textContent);
  var report = { charts: {}, series: { higher: {} }, markers: null, data: data };
  window.ctmReport = report;
  var UP = '#26a69a', DOWN = '#ef5350';
  function pct(v) { return (v * 100).toFixed(2) + '%'; }
  function iso(sec) { return new Date(sec * 1000).toISOString().slice(0, 16).replace('T', ' '); }
  function candleRows(cols) {
    var out = new Array(cols.t.length);
    for (var i = 0; i < cols.t.length; i++) out[i] = { time: cols.t[i], open: cols.o[i], high: cols.h[i], low: cols.l[i], close: cols.c[i] };
    return out;
  }
  function lineRows(t, v) {
    var out = new Array(t.length);
    for (var i = 0; i < t.length; i++) out[i] = { time: t[i], value: v[i] };
    return out;
  }
  function lastAtOrBefore(arr, t) {
    var lo = 0, hi = arr.length - 1, ans = -1;
    while (lo <= hi) { var mid = (lo + hi) >> 1; if (arr[mid] <= t) { ans = mid; lo = mid + 1; } else hi = mid - 1; }
    return ans;
  }
  var base = { autoSize: true, layout: { background: { color: '#ffffff' }, textColor: '#333', panes: { separatorColor: '#ccc' } },
    grid: { vertLines: { color: '#f0f0f0' }, horzLines: { color: '#f0f0f0' } },
    timeScale: { timeVisible: true, secondsVisible: false }, crosshair: { mode: 0 } };
  var charts = [];
  var p = data.price;
  if (p) {
    var el = document.getElementById('price-chart');
    var chart = LC.createChart(el, base);
    report.charts.price = chart;
    charts.push(chart);
    var candles = chart.addSeries(LC.CandlestickSeries, { upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN, title: p.timeframe + (p.group > 1 ? ' x' + p.group : '') }, 0);
    candles.setData(candleRows(p.candles));
    report.series.candles = candles;
    var labels = p.markers.t.length <= data.markerLabelLimit;
    var mk = new Array(p.markers.t.length);
    for (var i = 0; i < mk.length; i++) {
      var kind = p.markers.kind[i];
      var entry = kind.indexOf('entry') >= 0, isLong = kind.indexOf('long') === 0;
      var buy = (isLong && entry) || (!isLong && !entry);
      mk[i] = { time: p.markers.t[i], position: buy ? 'atPriceBottom' : 'atPriceTop', price: p.markers.price[i],
        shape: entry ? (isLong ? 'arrowUp' : 'arrowDown') : 'circle', color: entry ? (isLong ? UP : DOWN) : '#455a64',
        text: labels ? (entry ? (isLong ? 'L' : 'S') : 'x') : '', id: String(i) };
    }
    report.markers = LC.createSeriesMarkers(candles, mk);
    var pane = 1;
    p.higher.forEach(function (h) {
      var s = chart.addSeries(LC.CandlestickSeries, { upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN, title: h.timeframe + ' as known' }, pane);
      s.setData(candleRows(h));
      report.series.higher[h.timeframe] = s;
      pane++;
    });
    var pos = chart.addSeries(LC.HistogramSeries, { title: 'position', priceFormat: { type: 'price', precision: 2, minMove: 0.01 } }, pane);
    var posRows = new Array(p.position.t.length);
    for (var k = 0; k < posRows.length; k++) { var v = p.position.v[k]; posRows[k] = { time: p.position.t[k], value: v, color: v > 0 ? UP : v < 0 ? DOWN : '#bbb' }; }
    pos.setData(posRows);
    report.series.position = pos;
    var panes = chart.panes();
    panes[0].setStretchFactor(3);
    for (var q = 1; q < panes.length; q++) panes[q].setStretchFactor(q === panes.length - 1 ? 0.8 : 1.1);
    var legend = document.getElementById('price-legend');
    function describe(time) {
      var i = lastAtOrBefore(p.candles.t, time);
      if (i < 0) return '';
      var lines = ['decision bar ' + iso(p.candles.t[i]) + ' UTC' + (p.group > 1 ? ' (' + p.group + ' x ' + p.timeframe + ')' : '') +
        '  O ' + p.candles.o[i] + '  H ' + p.candles.h[i] + '  L ' + p.candles.l[i] + '  C ' + p.candles.c[i] + '  position ' + p.position.v[i]];
      p.higher.forEach(function (h) {
        var j = lastAtOrBefore(h.t, time);
        lines.push(j < 0 ? h.timeframe + ': none closed yet' : h.timeframe + ' last closed (opened ' + new Date(h.openMs[j]).toISOString().slice(0, 16).replace('T', ' ') +
          ')  O ' + h.o[j] + '  H ' + h.h[j] + '  L ' + h.l[j] + '  C ' + h.c[j]);
      });
      return lines.join('\n');
    }
    legend.textContent = describe(p.candles.t[p.candles.t.length - 1]);
    chart.subscribeCrosshairMove(function (param) { if (param && param.time !== undefined) legend.textContent = describe(param.time); });
  }
  var e = data.equity;
  if (e) {
    var eqChart = LC.createChart(document.getElementById('equity-chart'), base);
    report.charts.equity = eqChart;
    charts.push(eqChart);
    var strat = eqChart.addSeries(LC.LineSeries, { color: '#2962ff', lineWidth: 2, title: 'strategy' }, 0);
    strat.setData(lineRows(e.t, e.strategy));
    report.series.equity = strat;
    if (e.benchmark) {
      var bh = eqChart.addSeries(LC.LineSeries, { color: '#9e9e9e', lineWidth: 1, title: 'buy & hold' }, 0);
      bh.setData(lineRows(e.t, e.benchmark));
      report.series.benchmark = bh;
    }
    var uw = eqChart.addSeries(LC.BaselineSeries, { baseValue: { type: 'price', price: 0 }, topLineColor: DOWN, bottomLineColor: DOWN,
      bottomFillColor1: 'rgba(239,83,80,0.35)', bottomFillColor2: 'rgba(239,83,80,0.05)', title: 'drawdown %' }, 1);
    uw.setData(lineRows(e.t, e.underwater));
    report.series.underwater = uw;
    var rs = eqChart.addSeries(LC.LineSeries, { color: '#6d4c41', lineWidth: 1, title: 'Sharpe 30d' }, 2);
    var rsRows = [];
    for (var r = 0; r < e.t.length; r++) rsRows.push(e.rollingSharpe[r] === null ? { time: e.t[r] } : { time: e.t[r], value: e.rollingSharpe[r] });
    rs.setData(rsRows);
    report.series.rollingSharpe = rs;
    eqChart.panes()[0].setStretchFactor(2.2);
  }
  if (charts.length === 2) {
    var syncing = false;
    charts.forEach(function (src, idx) {
      var dst = charts[1 - idx];
      src.timeScale().subscribeVisibleLogicalRangeChange(function (r) {
        if (syncing || !r) return;
        syncing = true; dst.timeScale().setVisibleLogicalRange(r); syncing = false;
      });
    });
  }
  charts.forEach(function (c) { c.timeScale().fitContent(); });
  report.ready = true;
})();
`;

/**
 * Renders the self-contained report page (chart library, data and figures inlined).
 * @param svgs figures by name from `payloadSvgs` (drawn inline)
 */
export function renderReportHtml(
  payload: ReportPayload,
  svgs: Record<string, string>,
  options: ReportOptions = DEFAULT_REPORT_OPTIONS,
): string {
  const facts = Object.entries(payload.facts)
    .map(([k, v]) => `<span>${esc(k)}: <b>${esc(String(v))}</b></span>`)
    .join('');
  const parts: string[] = [];
  const p = payload.price;
  if (p !== null) {
    const higher = p.higher.map((h) => h.timeframe).join(' and ');
    parts.push(
      `<h2>Price, trades and position</h2><p class="note">${p.rows.toLocaleString('en-US')} ${p.timeframe} decision bars` +
        (p.group > 1
          ? `, drawn ${p.group} per candle (OHLC aggregated exactly; markers keep their exact fill time and price, shown on the candle that contains them)`
          : '') +
        `. ${higher === '' ? '' : `The ${higher} panes show each higher candle at the bar where it closed, i.e. from the first decision time at which it was known; the legend names the last closed candle at the crosshair.`} ` +
        `Markers: ▲ long entry, ▼ short entry, ● exit (${p.markers.t.length.toLocaleString('en-US')} fills of ${payload.trades.length.toLocaleString('en-US')} closed trades).</p>` +
        `<div class="chart" id="price-chart"><div class="legend" id="price-legend"></div></div>`,
    );
  }
  if (payload.equity !== null)
    parts.push(
      `<h2>Equity and drawdown</h2><p class="note">Strategy equity${payload.equity.benchmark === null ? '' : ' against buy-and-hold through the same broker and costs'}; below, the underwater curve (percent below the running peak) and the annualised Sharpe ratio of the last 30 days.</p><div class="chart" id="equity-chart"></div>` +
        (payload.drawdowns.length > 0
          ? `<h3>Worst drawdowns</h3>${drawdownTableHtml(payload.drawdowns)}`
          : ''),
    );
  const figs = (names: string[]): string =>
    names
      .filter((n) => svgs[n] !== undefined)
      .map((n) => svgs[n])
      .join('');
  if (
    svgs['monthly-returns'] !== undefined ||
    svgs['returns-distribution'] !== undefined ||
    svgs.trades !== undefined
  )
    parts.push(
      `<h2>Returns and trades</h2><div class="svgs">${figs(['monthly-returns', 'returns-distribution', 'trades'])}</div>`,
    );
  if (payload.metrics !== null)
    parts.push(`<h2>Metrics</h2>${metricsTableHtml(payload.metrics, payload.benchmarkMetrics)}`);
  else if (Object.keys(payload.summary).length > 0)
    parts.push(`<h2>Metrics</h2>${summaryTableHtml(payload.summary)}`);
  const training = Object.keys(svgs).filter((k) => k.startsWith('training-'));
  if (training.length > 0)
    parts.push(
      `<h2>Training curves</h2><div class="svgs" id="training-curves">${figs(training)}</div>`,
    );
  const confusion = Object.keys(svgs).filter((k) => k.startsWith('confusion-matrix-'));
  if (confusion.length > 0)
    parts.push(
      `<h2>Confusion matrices</h2><div class="svgs" id="confusion-matrices">${figs(confusion)}</div>`,
    );
  const pageData = { ...payload, markerLabelLimit: options.markerLabelLimit };
  const needsCharts = p !== null || payload.equity !== null;
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${esc(payload.title)}</title>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><style>${REPORT_CSS}</style></head><body>` +
    `<header><h1>${esc(payload.title)}</h1><div class="facts">${facts}<span>report: <b>${esc(payload.created)}</b></span></div></header>` +
    `<main>${parts.join('\n')}</main>` +
    `<script type="application/json" id="ctm-data">${scriptJson(pageData)}</script>` +
    (needsCharts
      ? `<script>${chartLibrarySource().replace(/<\/script/gi, '<\\/script')}</script><script>${APP_JS}</script>`
      : '<script>window.ctmReport={charts:{},series:{higher:{}},markers:null,ready:true};</script>') +
    `</body></html>\n`
  );
}

/** Rasterises an SVG string to PNG bytes (system fonts; text is skipped when none is installed). */
export function svgToPng(svg: string): Uint8Array {
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    background: '#ffffff',
  });
  return resvg.render().asPng();
}

/** What `writeReport` wrote, relative to the directory. */
export interface WrittenReport {
  /** The HTML page (`report.html`). */
  html: string;
  /** The payload it was drawn from (`report-data.json`). */
  data: string;
  /** PNG files of the key figures. */
  pngs: string[];
}

/**
 * Writes report.html, report-data.json and one PNG per key figure into `dir` (atomically).
 */
export function writeReport(
  dir: string,
  payload: ReportPayload,
  options: ReportOptions = DEFAULT_REPORT_OPTIONS,
): WrittenReport {
  const svgs = payloadSvgs(payload, options);
  const pngs: string[] = [];
  for (const [name, svg] of Object.entries(svgs)) {
    const file = `${name}.png`;
    writeFileAtomicSync(`${dir}/${file}`, svgToPng(svg));
    pngs.push(file);
  }
  writeFileAtomicSync(`${dir}/report-data.json`, JSON.stringify(payload) + '\n');
  writeFileAtomicSync(`${dir}/report.html`, renderReportHtml(payload, svgs, options));
  logger.debug({ dir, pngs: pngs.length }, 'report written');
  return { html: 'report.html', data: 'report-data.json', pngs };
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    throw new CheckpointError(path, 'is not valid JSON', { cause: err });
  }
}

/**
 * (Re)draws the report of a run: the backtest payload it saved (report-data.json), its training
 * history (history.jsonl) and its metrics.json (a confusion matrix found anywhere in it is drawn;
 * other numbers fill the table when the run has no backtest metrics).
 * @throws {CheckpointError} when a JSON file of the run is corrupt.
 */
export function reportRun(
  run: Run,
  options: ReportOptions = DEFAULT_REPORT_OPTIONS,
): WrittenReport {
  const dataFile = run.path('report-data.json');
  const payload: ReportPayload = existsSync(dataFile)
    ? { ...emptyReportPayload(run.id), ...(readJson(dataFile) as Partial<ReportPayload>) }
    : {
        ...emptyReportPayload(`Run ${run.id} (${run.info.kind})`),
        facts: { kind: run.info.kind, created: run.info.created },
      };
  payload.created = new Date().toISOString();
  if (!Array.isArray(payload.confusion)) payload.confusion = [];
  payload.history = readHistory(run);
  const metricsFile = run.path('metrics.json');
  if (existsSync(metricsFile)) {
    const metrics = readJson(metricsFile);
    const found = findConfusionMatrices(metrics);
    if (found.length > 0) payload.confusion = found;
    if (payload.metrics === null) payload.summary = flattenMetrics(metrics);
  }
  return writeReport(run.dir, payload, options);
}
