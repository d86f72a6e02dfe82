// Reports of runs: one self-contained HTML file (the chart library and every number inlined, no
// network needed to view it) with interactive candles, the higher-timeframe candles as they were
// known at each decision time, trades, position, equity versus spot buy-and-hold, drawdown, monthly
// returns, return distribution, trade scatter, metrics and training curves; the key plots also as
// PNG. Draws what it is given (the generic drawing is utils/visualization.ts): never recomputes a
// backtest, never moves money.

import { existsSync, readFileSync } from 'node:fs';
import { timeframeMs, type Candles, type Timeframe } from '../data-processing/candles.js';
import { CheckpointError } from '../errors.js';
import { writeFileAtomicSync } from '../utils/fs.js';
import { logger } from '../utils/logger.js';
import { flattenMetrics, readHistory, type Run } from '../utils/runs.js';
import {
  COLORS,
  confusionMatrixSvg,
  esc,
  fmtNumber,
  fmtPct,
  histogramSvg,
  htmlPage,
  lineChartSvg,
  monthlyHeatmapSvg,
  slug,
  svgToPng,
  tradeScatterSvg,
  trainingCurveSvgs,
  type ConfusionMatrix,
  type NamedConfusionMatrix,
  type ScatterTrade,
} from '../utils/visualization.js';
import { drawdownEpisodes, type PerformanceMetrics, type PeriodReturn } from './metrics.js';

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
  /**
   * Equity of a paper (or live) run over the same rows, drawn beside the backtest's (`ctm paper`):
   * the two lines coincide when what trades is what was backtested.
   */
  readonly paperEquity?: ArrayLike<number>;
  /** Signed exposure held after each row's fills, in [-1, 1]. */
  readonly position: ArrayLike<number>;
  /** Round trips, the one still open at the end included. */
  readonly trades: readonly ReportTrade[];
  /** Metrics of the strategy. */
  readonly metrics: PerformanceMetrics;
  /** Metrics of spot buy-and-hold, when computed. */
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
    /** Equity of a paper run over the same rows (absent or null without one). */
    paper?: number[] | null;
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
  trades: ScatterTrade[];
  /** Strategy metrics, or null (non-backtest runs). */
  metrics: PerformanceMetrics | null;
  /** Buy-and-hold metrics, or null. */
  benchmarkMetrics: PerformanceMetrics | null;
  /** Training history rows (`step` plus numeric metrics). */
  history: Array<Record<string, number | string | null>>;
  /** Training histories of several runs, each drawn under its label (a pipeline's stages). */
  trainingRuns: Array<{ label: string; history: Array<Record<string, number | string | null>> }>;
  /** Confusion matrices of a sequence-model run (validation, test, ...). */
  confusion: NamedConfusionMatrix[];
  /** Other runs' metrics.json, flattened to `a.b.c` keys (shown when `metrics` is null). */
  summary: Record<string, number | string>;
  /** A comparison of policies (`ctm compare`), or null. */
  comparison: ComparisonPayload | null;
}

/** A comparison of policies as the page draws it: a table and each policy's mean equity. */
export interface ComparisonPayload {
  /** How to read the table (printed above it). */
  note: string;
  /** Column headers. */
  header: string[];
  /** One row of formatted cells per policy (the first cell names it). */
  rows: string[][];
  /** Mean equity per policy (equity / initial capital, bar by bar). */
  equity: Array<{ name: string; y: number[] }>;
  /** Bar length of the equity series, ms. */
  barMs: number;
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
    trainingRuns: [],
    confusion: [],
    summary: {},
    comparison: null,
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
  const paper: number[] = [];
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
    if (input.paperEquity !== undefined) paper.push(r10(input.paperEquity[b]));
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
      n === 0
        ? null
        : {
            ...eq,
            benchmark: input.benchmarkEquity === undefined ? null : bench,
            paper: input.paperEquity === undefined ? null : paper,
          },
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
    trainingRuns: [],
    confusion: [],
    summary: {},
    comparison: null,
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

/** The metrics table (strategy, and spot buy-and-hold when given) as HTML. */
export function metricsTableHtml(m: PerformanceMetrics, bench: PerformanceMetrics | null): string {
  let out = '<table class="metrics" id="metrics-table"><thead><tr><th>metric</th><th>strategy</th>';
  if (bench !== null) out += '<th>spot buy &amp; hold</th>';
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

/** The comparison section: its note, the table and the mean-equity figure. */
function comparisonHtml(c: ComparisonPayload, svgs: Record<string, string>): string {
  let table = '<table class="metrics" id="comparison-table"><thead><tr>';
  for (const h of c.header) table += `<th>${esc(h)}</th>`;
  table += '</tr></thead><tbody>';
  for (const row of c.rows)
    table += `<tr data-policy="${esc(row[0])}">${row.map((x) => `<td>${esc(x)}</td>`).join('')}</tr>`;
  table += '</tbody></table>';
  const fig = svgs['comparison-equity'];
  return (
    `<h2>Comparison</h2><p class="note">${esc(c.note)}</p>${table}` +
    (fig === undefined ? '' : `<div class="svgs">${fig}</div>`)
  );
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

// ---------------------------------------------------------------------------------------------
// The page

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
  const cmp = payload.comparison;
  if (cmp !== null && cmp.equity.length > 0) {
    const days = (n: number): number[] =>
      Array.from({ length: n }, (_, k) => (k * cmp.barMs) / DAY_MS);
    out['comparison-equity'] = lineChartSvg({
      id: 'comparison-equity-png',
      title: 'Mean equity over the samples (equity / initial capital)',
      xType: 'number',
      xLabel: 'days',
      width: w,
      height: h,
      yFormat: (v) => v.toFixed(2),
      series: cmp.equity.map((q) => ({ name: q.name, x: days(q.y.length), y: q.y })),
    });
  }
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
          : [{ name: 'spot buy & hold', x: ms, y: e.benchmark, color: COLORS.benchmark }]),
        ...(e.paper === undefined || e.paper === null
          ? []
          : [{ name: 'paper', x: ms, y: e.paper, color: COLORS.paper }]),
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
  for (const r of payload.trainingRuns ?? [])
    trainingCurveSvgs(r.history, Math.round(w / 2), Math.round(h * 0.7), r.label).forEach(
      (svg, k) => {
        out[`training-${r.label}-${k}`] = svg;
      },
    );
  for (const cm of payload.confusion)
    out[`confusion-matrix-${slug(cm.name)}`] = confusionMatrixSvg(cm, w);
  return out;
}

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
      var bh = eqChart.addSeries(LC.LineSeries, { color: '#9e9e9e', lineWidth: 1, title: 'spot buy & hold' }, 0);
      bh.setData(lineRows(e.t, e.benchmark));
      report.series.benchmark = bh;
    }
    if (e.paper) {
      var pp = eqChart.addSeries(LC.LineSeries, { color: '#ff6d00', lineWidth: 1, lineStyle: 2, title: 'paper' }, 0);
      pp.setData(lineRows(e.t, e.paper));
      report.series.paper = pp;
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
      `<h2>Equity and drawdown</h2><p class="note">Strategy equity${payload.equity.benchmark === null ? '' : ' against spot buy-and-hold (same fees and slippage, no funding, no borrow)'}${payload.equity.paper === undefined || payload.equity.paper === null ? '' : '; the paper run over the same candles (dashed) lies on the backtest when what traded is what was backtested'}; below, the underwater curve (percent below the running peak) and the annualised Sharpe ratio of the last 30 days.</p><div class="chart" id="equity-chart"></div>` +
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
  if (payload.comparison !== null) parts.push(comparisonHtml(payload.comparison, svgs));
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
  return htmlPage({
    title: payload.title,
    facts: { ...payload.facts, report: payload.created },
    sections: parts,
    data: pageData,
    chartLibrary: needsCharts,
    script: needsCharts
      ? APP_JS
      : 'window.ctmReport={charts:{},series:{higher:{}},markers:null,ready:true};',
  });
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

/** Writes the report of `payload` into a run's folder and records its files as artifacts. */
export function writeRunReport(
  run: Run,
  payload: ReportPayload,
  options: ReportOptions = DEFAULT_REPORT_OPTIONS,
): WrittenReport {
  const written = writeReport(run.dir, payload, options);
  run.addArtifact('report', written.html);
  run.addArtifact('reportData', written.data);
  for (const png of written.pngs) run.addArtifact(`png:${png.replace(/\.png$/, '')}`, png);
  return written;
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
