// Performance metrics of a strategy from its per-bar returns, its round-trip trades and (optionally)
// its per-bar costs and exposure: returns and risk, drawdowns, trades, costs, and statistics of
// trust (probabilistic and deflated Sharpe ratio). Annualisation comes from the bar size, never a
// hard-coded 252. Every metric is a finite number or `null` with a reason in `nulls`: never NaN,
// never a crash on degenerate input. Pure arithmetic: never reads candles, never moves money.

/** Euler–Mascheroni constant (used by the expected maximum of N Sharpe ratios). */
const EULER_GAMMA = 0.5772156649015329;
const MS_PER_DAY = 86_400_000;
/** Standard deviations below this (per-bar return units) count as zero variance. */
const ZERO_VARIANCE = 1e-12;

/** Bars per year of a bar length in ms (365-day year, crypto trades every day): 15m → 35,040. */
export function barsPerYearOf(barMs: number): number {
  if (!(barMs > 0)) throw new RangeError(`bar length must be > 0 ms, got ${barMs}`);
  return (365 * MS_PER_DAY) / barMs;
}

/**
 * What the metrics need of one round-trip trade (the broker's trade records satisfy it).
 * Money is in quote currency.
 */
export interface MetricsTrade {
  /** Direction of the round trip. */
  readonly side: 'long' | 'short';
  /** Net pnl of the round trip: price pnl (slippage included) minus fees, funding and borrow paid. */
  readonly pnl: number;
  /** Notional at entry (|quantity| × entry price), > 0: the base of the trade's return. */
  readonly entryNotional: number;
  /** Bars the position was held: a bar counts when held at its close or exited inside it. */
  readonly barsHeld: number;
}

/** Per-bar cost and exposure series, aligned with `returns` (entry k belongs to return k). */
export interface MetricsAccount {
  /** Equity before the first return (quote currency), > 0. */
  readonly initialCapital: number;
  /** Fees paid during each bar (quote currency, >= 0). */
  readonly fees?: ArrayLike<number>;
  /** Slippage paid during each bar (quote currency, >= 0). */
  readonly slippage?: ArrayLike<number>;
  /** Funding and borrow paid during each bar (quote currency; negative when received). */
  readonly funding?: ArrayLike<number>;
  /** Absolute notional traded during each bar (quote currency). */
  readonly tradedNotional?: ArrayLike<number>;
  /** Signed exposure held over each bar, in [-1, 1] (position / (leverage × equity)). */
  readonly exposure?: ArrayLike<number>;
}

/** Options of `calculatePerformanceMetrics`. */
export interface MetricsOptions {
  /** Bars in a year, e.g. 35,040 for 15m (`barsPerYearOf(timeframeMs('15m'))`). */
  readonly barsPerYear: number;
  /** Annual risk-free rate (fraction), default 0; de-annualised geometrically per bar. */
  readonly riskFreeRate?: number;
  /** Annualised Sharpe ratio the probabilistic Sharpe ratio is tested against, default 0. */
  readonly benchmarkSharpe?: number;
  /** Number of independent trials (seeds, configurations) tried before this one, default 1. */
  readonly trials?: number;
  /**
   * Annualised Sharpe ratios of all trials; when given, `trials` defaults to their count and the
   * deflated Sharpe ratio uses their variance.
   */
  readonly trialSharpes?: readonly number[];
  /**
   * Variance of the trials' annualised Sharpe ratios (used when `trialSharpes` is absent). Without
   * either, `trials > 1` assumes the trials' estimates scatter by estimation error only (per-bar
   * variance 1 / (T − 1), the deflated Sharpe ratio's null of no skill).
   */
  readonly trialSharpeVariance?: number;
  /** Close time (UTC ms) of each bar of `returns`; enables the monthly and yearly tables. */
  readonly timeMs?: ArrayLike<number>;
  /** Costs and exposure per bar; enables the cost section. */
  readonly account?: MetricsAccount;
}

/** A metric's value: a finite number, or null (the reason is in `PerformanceMetrics.nulls`). */
export type Metric = number | null;

/** Return and risk metrics (fractions, annualised where the name says so). */
export interface ReturnMetrics {
  /** Compounded return over the whole period. */
  totalReturn: Metric;
  /** Arithmetic mean per-bar return × bars per year. */
  annualizedReturn: Metric;
  /** Compound annual growth rate: (1 + total)^(1/years) − 1 (−1 after ruin). */
  cagr: Metric;
  /** Sample standard deviation of per-bar returns × sqrt(bars per year). */
  volatility: Metric;
  /** (mean − rf) / std × sqrt(bars per year). */
  sharpe: Metric;
  /** (mean − rf) / downside deviation × sqrt(bars per year); downside over all bars. */
  sortino: Metric;
  /** CAGR / max drawdown. */
  calmar: Metric;
  /** Sum of gains above rf / sum of losses below rf (per bar). */
  omega: Metric;
  /** Historical 95% value at risk: the 5% quantile of per-bar returns (a loss is negative). */
  var95: Metric;
  /** Conditional VaR (expected shortfall): mean of per-bar returns at or below `var95`. */
  cvar95: Metric;
  /** Sample skewness of per-bar returns (bias-adjusted, as pandas). */
  skew: Metric;
  /** Sample excess kurtosis of per-bar returns (bias-adjusted, as pandas). */
  kurtosis: Metric;
  /** |95% quantile| / |5% quantile| of per-bar returns. */
  tailRatio: Metric;
  /** Best and worst single-bar return. */
  bestBar: Metric;
  /** Worst single-bar return (a loss is negative). */
  worstBar: Metric;
  /** Fraction of bars with a positive return. */
  positiveBars: Metric;
}

/** Drawdown metrics; depths are fractions >= 0 of the running peak. */
export interface DrawdownMetrics {
  /** Deepest drawdown, a fraction of the running peak (0.2 = 20% below the peak). */
  maxDrawdown: Metric;
  /** Longest peak-to-recovery span (to the end when unrecovered), in bars and days. */
  maxDrawdownDurationBars: Metric;
  /** `maxDrawdownDurationBars` in days (bars / (barsPerYear / 365)). */
  maxDrawdownDurationDays: Metric;
  /** Mean of the deepest point of each drawdown episode. */
  averageDrawdown: Metric;
  /** Mean peak-to-recovery span of the episodes, in bars. */
  averageDrawdownDurationBars: Metric;
  /** sqrt(mean of squared drawdown over all bars). */
  ulcerIndex: Metric;
  /** Fraction of bars below the running peak. */
  timeUnderWater: Metric;
  /** Number of drawdown episodes. */
  drawdownCount: Metric;
}

/** Trade statistics of one side. */
export interface SideMetrics {
  /** Number of trades on this side. */
  count: number;
  /** Fraction of this side's trades with pnl > 0. */
  winRate: Metric;
  /** Net pnl (quote currency). */
  pnl: number;
  /** Mean trade return (net pnl / entry notional). */
  averageReturn: Metric;
}

/** Round-trip trade metrics; money in quote currency, returns as fractions of entry notional. */
export interface TradeMetrics {
  /** Number of round-trip trades. */
  count: number;
  /** Fraction of trades with pnl > 0. */
  winRate: Metric;
  /** Sum of the pnl of winning trades (quote currency, >= 0). */
  grossProfit: number;
  /** Sum of the losses of losing trades as a positive amount (quote currency, >= 0). */
  grossLoss: number;
  /** Gross profit / gross loss. */
  profitFactor: Metric;
  /** Mean net pnl per trade. */
  expectancy: Metric;
  /** Mean trade return. */
  expectancyReturn: Metric;
  /** Mean pnl of winning trades (quote currency). */
  averageWin: Metric;
  /** Mean pnl of losing trades (negative). */
  averageLoss: Metric;
  /** averageWin / |averageLoss|. */
  winLossRatio: Metric;
  /** Best and worst trade return. */
  bestTrade: Metric;
  /** Worst trade return (net pnl / entry notional). */
  worstTrade: Metric;
  /** Mean bars held per trade. */
  averageHoldingBars: Metric;
  /** Mean holding time per trade in hours (bars x 8760 / barsPerYear). */
  averageHoldingHours: Metric;
  /** Most consecutive trades with pnl > 0 (a zero-pnl trade breaks a streak). */
  longestWinStreak: number;
  /** Most consecutive trades with pnl < 0 (a zero-pnl trade breaks a streak). */
  longestLossStreak: number;
  /** Van Tharp's system quality number: sqrt(n) × mean(pnl) / std(pnl). */
  sqn: Metric;
  /** Kelly fraction: winRate − (1 − winRate) / winLossRatio. */
  kelly: Metric;
  /** Statistics of the long trades. */
  long: SideMetrics;
  /** Statistics of the short trades. */
  short: SideMetrics;
}

/** Cost and exposure metrics (need `options.account`). */
export interface CostMetrics {
  /** Total fees paid over the period (quote currency). */
  fees: Metric;
  /** Total slippage paid (quote currency). */
  slippage: Metric;
  /** Total funding and borrow paid (quote currency; negative when received on balance). */
  funding: Metric;
  /** fees + slippage + funding. */
  total: Metric;
  /** Total traded notional / mean equity (times the book was turned over). */
  turnover: Metric;
  /** `turnover` per year (turnover / years). */
  annualTurnover: Metric;
  /** Total return had no cost been paid (per-bar costs added back, compounded). */
  grossTotalReturn: Metric;
  /** Return lost to costs: grossTotalReturn − totalReturn. */
  feeDrag: Metric;
  /** Same in CAGR terms: gross CAGR − CAGR. */
  feeDragAnnual: Metric;
  /** Fraction of bars with a non-zero position. */
  exposure: Metric;
  /** Mean |exposure|. */
  averageExposure: Metric;
  /** Fraction of bars long / short. */
  longExposure: Metric;
  /** Fraction of bars with a short position. */
  shortExposure: Metric;
}

/** Statistics of trust in the Sharpe ratio (Bailey & López de Prado). */
export interface TrustMetrics {
  /** Non-annualised Sharpe ratio of per-bar excess returns. */
  sharpePerBar: Metric;
  /** P(true Sharpe > benchmark) given the track record's length, skewness and kurtosis. */
  psr: Metric;
  /** PSR against the expected maximum Sharpe ratio of `trials` unskilled trials. */
  dsr: Metric;
  /** Number of trials the deflated Sharpe ratio corrects for. */
  trials: number;
  /** Expected maximum annualised Sharpe ratio of `trials` trials with no skill (DSR's benchmark). */
  expectedMaxSharpe: Metric;
  /** Bars of track record needed for PSR >= 95% at the observed Sharpe, skew and kurtosis. */
  minTrackRecordBars: Metric;
  /** Where the variance of the trials' Sharpe ratios came from. */
  trialVarianceSource: 'trials' | 'given' | 'estimator' | 'none';
}

/** Return over a calendar period (UTC). */
export interface PeriodReturn {
  /** `YYYY-MM` for months, `YYYY` for years. */
  period: string;
  /** Compounded return over the period (fraction). */
  return: number;
}

/** Everything `calculatePerformanceMetrics` returns. */
export interface PerformanceMetrics {
  /** Number of per-bar returns evaluated. */
  bars: number;
  /** Bars in a year used for annualisation (from the bar length, 365-day year). */
  barsPerYear: number;
  /** Length of the track record in years: bars / barsPerYear. */
  years: number;
  /** Return and risk metrics. */
  returns: ReturnMetrics;
  /** Drawdown metrics. */
  drawdown: DrawdownMetrics;
  /** Round-trip trade metrics. */
  trades: TradeMetrics;
  /** Cost and exposure metrics (null metrics without `options.account`). */
  costs: CostMetrics;
  /** Probabilistic and deflated Sharpe ratio statistics. */
  trust: TrustMetrics;
  /** Monthly and yearly compounded returns (empty without `options.timeMs`). */
  monthly: PeriodReturn[];
  /** Yearly compounded returns, UTC calendar years (empty without `options.timeMs`). */
  yearly: PeriodReturn[];
  /** Why each null metric is null, keyed `section.metric` (e.g. `returns.sharpe`). */
  nulls: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Normal distribution

/** Mean and spread of a figure over samples (seeds, markets). */
export interface MeanSpread {
  /** Mean over the samples where the figure is defined (null when none is). */
  mean: number | null;
  /** Sample standard deviation (null below two samples). */
  sd: number | null;
  /** Samples where the figure is defined. */
  n: number;
}

/** Mean and sample standard deviation of the finite, non-null values of `xs`. */
export function meanSpread(xs: ReadonlyArray<number | null>): MeanSpread {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: null, sd: null, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, sd: null, n };
  const ss = v.reduce((a, b) => a + (b - mean) ** 2, 0);
  return { mean, sd: Math.sqrt(ss / (n - 1)), n };
}

/**
 * Standard normal CDF Φ(x), absolute error < 1e-15 (Marsaglia's series, with the tails clamped
 * beyond ±37 where Φ rounds to 0 or 1).
 */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < -37) return 0;
  if (x > 37) return 1;
  if (Math.abs(x) > 8) {
    // Asymptotic tail (Mills ratio continued fraction) for accuracy far out.
    const a = Math.abs(x);
    let cf = a;
    for (let k = 60; k >= 1; k--) cf = a + k / cf;
    const tail = Math.exp(-0.5 * a * a) / Math.sqrt(2 * Math.PI) / cf;
    return x < 0 ? tail : 1 - tail;
  }
  let sum = x;
  let term = x;
  const x2 = x * x;
  for (let k = 3; k < 400; k += 2) {
    term *= x2 / k;
    const next = sum + term;
    if (next === sum) break;
    sum = next;
  }
  return 0.5 + sum * Math.exp(-0.5 * x2 - 0.9189385332046727);
}

/**
 * Standard normal quantile Φ⁻¹(p) for p in (0, 1) (Acklam's approximation refined by one Halley
 * step; relative error ~1e-15). Returns -Infinity at 0 and Infinity at 1.
 * @throws {RangeError} when p is outside [0, 1].
 */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`normalQuantile: p must be in [0, 1], got ${p}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  const a = [
    -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2,
    -3.066479806614716e1, 2.506628277459239,
  ];
  const b = [
    -5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1,
    -1.328068155288572e1,
  ];
  const c = [
    -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734,
    4.374664141464968, 2.938163982698783,
  ];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pLow = 0.02425;
  let x: number;
  if (p < pLow) {
    const q = Math.sqrt(-2 * Math.log(p));
    x =
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - pLow) {
    const q = p - 0.5;
    const r = q * q;
    x =
      ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x =
      -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // One Halley step on Φ(x) − p.
  const e = normalCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp(0.5 * x * x);
  return x - u / (1 + 0.5 * x * u);
}

// ---------------------------------------------------------------------------------------------
// Sharpe-ratio statistics (Bailey & López de Prado, 2012 and 2014)

/** Inputs of the probabilistic Sharpe ratio; Sharpe ratios are per bar (not annualised). */
export interface SharpeStatistics {
  /** Observed Sharpe ratio per bar. */
  readonly sharpe: number;
  /** Number of returns (T). */
  readonly observations: number;
  /** Skewness of the returns (γ3). */
  readonly skewness: number;
  /** Kurtosis of the returns, NOT excess (γ4; 3 for a normal distribution). */
  readonly kurtosis: number;
}

/**
 * Probabilistic Sharpe ratio (Bailey & López de Prado 2012):
 * PSR(SR*) = Φ((SR − SR*) √(T − 1) / √(1 − γ3 SR + (γ4 − 1)/4 SR²)), per-bar Sharpe ratios.
 * @returns the probability, or null when T < 2 or the estimator's variance term is not positive.
 */
export function probabilisticSharpeRatio(stats: SharpeStatistics, benchmarkSharpe = 0): Metric {
  const { sharpe, observations: t, skewness, kurtosis } = stats;
  const v = 1 - skewness * sharpe + ((kurtosis - 1) / 4) * sharpe * sharpe;
  if (!(t >= 2) || !(v > 0) || !Number.isFinite(sharpe)) return null;
  return normalCdf(((sharpe - benchmarkSharpe) * Math.sqrt(t - 1)) / Math.sqrt(v));
}

/**
 * Expected maximum Sharpe ratio of `trials` independent trials whose true Sharpe ratio is zero and
 * whose estimates have variance `variance` (Bailey & López de Prado 2014):
 * √V × ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e))). Zero for N <= 1.
 */
export function expectedMaxSharpe(trials: number, variance: number): number {
  if (!(trials > 1) || !(variance > 0)) return 0;
  return (
    Math.sqrt(variance) *
    ((1 - EULER_GAMMA) * normalQuantile(1 - 1 / trials) +
      EULER_GAMMA * normalQuantile(1 - 1 / (trials * Math.E)))
  );
}

/**
 * Deflated Sharpe ratio (Bailey & López de Prado 2014): the PSR against the expected maximum
 * Sharpe ratio of `trials` unskilled trials with per-bar Sharpe variance `variance`.
 * @returns the probability, or null as `probabilisticSharpeRatio`.
 */
export function deflatedSharpeRatio(
  stats: SharpeStatistics,
  trials: number,
  variance: number,
): Metric {
  return probabilisticSharpeRatio(stats, expectedMaxSharpe(trials, variance));
}

/**
 * Minimum track record length (bars) for PSR(SR*) >= `confidence`:
 * 1 + (1 − γ3 SR + (γ4 − 1)/4 SR²) (Φ⁻¹(confidence) / (SR − SR*))². Null when SR <= SR*.
 */
export function minTrackRecordLength(
  stats: Omit<SharpeStatistics, 'observations'>,
  benchmarkSharpe = 0,
  confidence = 0.95,
): Metric {
  const { sharpe, skewness, kurtosis } = stats;
  const v = 1 - skewness * sharpe + ((kurtosis - 1) / 4) * sharpe * sharpe;
  if (!(sharpe > benchmarkSharpe) || !(v > 0)) return null;
  const z = normalQuantile(confidence) / (sharpe - benchmarkSharpe);
  return 1 + v * z * z;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * Rearranges `a[lo..hi]` so that a[k] holds the k-th smallest and everything before it is <= it
 * (Hoare's selection, median of three). O(n) on average; allocates nothing.
 */
function select(a: Float64Array, k: number, lo: number, hi: number): void {
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < a[lo]) swap(a, mid, lo);
    if (a[hi] < a[lo]) swap(a, hi, lo);
    if (a[hi] < a[mid]) swap(a, hi, mid);
    const pivot = a[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

/** Smallest value of a[from..to]. */
function minOf(a: Float64Array, from: number, to: number): number {
  let m = Infinity;
  for (let i = from; i <= to; i++) if (a[i] < m) m = a[i];
  return m;
}

/**
 * Linear-interpolated quantile of `scratch` (reordered in place; no full sort). `from` is the
 * first index the order statistic can lie at when `scratch[0..from)` already holds the smallest
 * values (after a lower quantile was selected).
 */
function quantileInPlace(scratch: Float64Array, p: number, from = 0): number {
  const n = scratch.length;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  select(scratch, lo, Math.min(from, lo), n - 1);
  const vLo = scratch[lo];
  if (lo + 1 >= n || h === lo) return vLo;
  // The next order statistic is the minimum of the part above lo.
  const vHi = minOf(scratch, lo + 1, n - 1);
  return vLo + (h - lo) * (vHi - vLo);
}

function monthKey(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * Compounded returns per calendar period (UTC) from per-bar returns and each bar's close time.
 * A bar belongs to the period of `timeMs[k] - 1` (a bar closing at 00:00 on the 1st ends the
 * previous month).
 */
export function periodReturns(
  returns: ArrayLike<number>,
  timeMs: ArrayLike<number>,
  period: 'month' | 'year',
): PeriodReturn[] {
  const out: PeriodReturn[] = [];
  let key = '';
  let growth = 1;
  // [periodStart, periodEnd) of the current key: a new key is formatted only when a bar leaves it.
  let periodStart = Infinity;
  let periodEnd = -Infinity;
  for (let k = 0; k < returns.length; k++) {
    const t = timeMs[k] - 1;
    if (t < periodStart || t >= periodEnd) {
      const d = new Date(t);
      const y = d.getUTCFullYear();
      const mo = d.getUTCMonth();
      periodStart = period === 'month' ? Date.UTC(y, mo, 1) : Date.UTC(y, 0, 1);
      periodEnd = period === 'month' ? Date.UTC(y, mo + 1, 1) : Date.UTC(y + 1, 0, 1);
      const m = monthKey(t);
      const kk = period === 'month' ? m : m.slice(0, 4);
      if (kk !== key) {
        if (key !== '') out.push({ period: key, return: growth - 1 });
        key = kk;
        growth = 1;
      }
    }
    growth *= 1 + returns[k];
  }
  if (key !== '') out.push({ period: key, return: growth - 1 });
  return out;
}

/** One drawdown episode of an equity curve (indices into the curve). */
export interface DrawdownEpisode {
  /** Last point at the running peak before the fall. */
  readonly peak: number;
  /** Deepest point. */
  readonly valley: number;
  /** First point back at or above the peak, or null when not recovered by the end. */
  readonly recovery: number | null;
  /** Depth at the valley, a fraction of the peak in (0, 1]. */
  readonly depth: number;
}

/**
 * The drawdown episodes of an equity curve, deepest first (`limit` of them). An episode starts when
 * equity falls below its running peak and ends when it is back at or above it — the same episodes
 * `calculatePerformanceMetrics` summarises (max depth, count, durations).
 */
export function drawdownEpisodes(equity: ArrayLike<number>, limit = Infinity): DrawdownEpisode[] {
  const out: DrawdownEpisode[] = [];
  let peak = 0;
  let valley = -1;
  let depth = 0;
  for (let k = 1; k < equity.length; k++) {
    const e = equity[k];
    if (e >= equity[peak]) {
      if (valley >= 0) out.push({ peak, valley, recovery: k, depth });
      peak = k;
      valley = -1;
      depth = 0;
      continue;
    }
    const dd = equity[peak] > 0 ? 1 - e / equity[peak] : 1;
    if (dd > depth) {
      depth = dd;
      valley = k;
    }
  }
  if (valley >= 0) out.push({ peak, valley, recovery: null, depth });
  out.sort((a, b) => b.depth - a.depth);
  return out.length > limit ? out.slice(0, limit) : out;
}

// ---------------------------------------------------------------------------------------------
// The metrics

class Nulls {
  readonly reasons: Record<string, string> = {};
  /** Returns `value` when finite and `reason` is undefined, else null (recording why). */
  take(key: string, value: number, reason?: string): Metric {
    if (reason !== undefined) {
      this.reasons[key] = reason;
      return null;
    }
    if (!Number.isFinite(value)) {
      this.reasons[key] = 'not a finite number';
      return null;
    }
    return value;
  }
}

const NO_RETURNS = 'no returns';
const ONE_BAR = 'one bar: needs at least two returns';
const ZERO_VAR = 'zero variance of returns';

/**
 * Computes every performance metric of a strategy.
 * @param returns per-bar simple returns of equity, net of all costs (fractions)
 * @param trades round-trip trades in exit order
 * @param options bars per year (15m → 35,040), risk-free rate, trials for the DSR, bar times for
 *   the monthly table, per-bar costs and exposure
 * @returns the metrics; degenerate inputs (no returns, one bar, zero variance, no trades, no losing
 *   trades) give null metrics with their reason in `nulls`
 * @throws {RangeError} when `barsPerYear` is not positive or a per-bar series has the wrong length
 * @example
 * const m = calculatePerformanceMetrics(result.returns, result.trades, { barsPerYear: 35_040 });
 */
export function calculatePerformanceMetrics(
  returns: ArrayLike<number>,
  trades: readonly MetricsTrade[],
  options: MetricsOptions,
): PerformanceMetrics {
  const bpy = options.barsPerYear;
  if (!(bpy > 0) || !Number.isFinite(bpy))
    throw new RangeError(`barsPerYear must be a positive number, got ${bpy}`);
  const n = returns.length;
  const acc = options.account;
  for (const [name, series] of [
    ['timeMs', options.timeMs],
    ['account.fees', acc?.fees],
    ['account.slippage', acc?.slippage],
    ['account.funding', acc?.funding],
    ['account.tradedNotional', acc?.tradedNotional],
    ['account.exposure', acc?.exposure],
  ] as const) {
    if (series !== undefined && series.length !== n)
      throw new RangeError(`${name} has ${series.length} entries, returns have ${n}`);
  }
  const nulls = new Nulls();
  const years = n / bpy;
  const rf = options.riskFreeRate ?? 0;
  const rfBar = Math.pow(1 + rf, 1 / bpy) - 1;

  // One pass: growth, moments, extremes, drawdown.
  let growth = 1;
  let sum = 0;
  let best = -Infinity;
  let worst = Infinity;
  let positive = 0;
  let nonFinite = false;
  for (let k = 0; k < n; k++) {
    const r = returns[k];
    if (!Number.isFinite(r)) nonFinite = true;
    growth *= 1 + r;
    sum += r;
    if (r > best) best = r;
    if (r < worst) worst = r;
    if (r > 0) positive++;
  }
  if (nonFinite) throw new RangeError('returns contain NaN or Infinity');
  const mean = n > 0 ? sum / n : 0;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  let downside = 0;
  let gainsAbove = 0;
  let lossesBelow = 0;
  for (let k = 0; k < n; k++) {
    const d = returns[k] - mean;
    const d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
    const x = returns[k] - rfBar;
    if (x < 0) {
      downside += x * x;
      lossesBelow -= x;
    } else gainsAbove += x;
  }
  m2 /= Math.max(n, 1);
  m3 /= Math.max(n, 1);
  m4 /= Math.max(n, 1);
  const sd = n >= 2 ? Math.sqrt((m2 * n) / (n - 1)) : 0;
  const zeroVar = sd <= ZERO_VARIANCE;
  const returnsReason = n === 0 ? NO_RETURNS : undefined;
  const spreadReason = n === 0 ? NO_RETURNS : n === 1 ? ONE_BAR : zeroVar ? ZERO_VAR : undefined;

  // Drawdown episodes.
  let e = 1;
  let peak = 1;
  let peakIdx = -1; // index of the bar at the peak (-1 = the start)
  let inDd = false;
  let episodeDepth = 0;
  let episodes = 0;
  let depthSum = 0;
  let durationSum = 0;
  let maxDd = 0;
  let maxDur = 0;
  let underBars = 0;
  let sqDd = 0;
  for (let k = 0; k < n; k++) {
    e *= 1 + returns[k];
    if (e >= peak) {
      if (inDd) {
        const dur = k - peakIdx;
        durationSum += dur;
        if (dur > maxDur) maxDur = dur;
        depthSum += episodeDepth;
        episodes++;
        inDd = false;
      }
      peak = e;
      peakIdx = k;
      continue;
    }
    const dd = peak > 0 ? 1 - e / peak : 1;
    underBars++;
    sqDd += dd * dd;
    if (!inDd) {
      inDd = true;
      episodeDepth = 0;
    }
    if (dd > episodeDepth) episodeDepth = dd;
    if (dd > maxDd) maxDd = dd;
  }
  if (inDd) {
    const dur = n - 1 - peakIdx;
    durationSum += dur;
    if (dur > maxDur) maxDur = dur;
    depthSum += episodeDepth;
    episodes++;
  }

  const totalReturn = growth - 1;
  const cagr = growth > 0 ? Math.pow(growth, 1 / years) - 1 : -1;

  // Quantiles without a full sort.
  let q05 = NaN;
  let q95 = NaN;
  let cvar = NaN;
  if (n >= 2) {
    const scratch = Float64Array.from(returns as ArrayLike<number>);
    q05 = quantileInPlace(scratch, 0.05);
    // Everything above the 5% order statistic is already to its right.
    q95 = quantileInPlace(scratch, 0.95, Math.floor((n - 1) * 0.05) + 1);
    let s = 0;
    let c = 0;
    for (let k = 0; k < n; k++) {
      const r = returns[k];
      if (r <= q05) {
        s += r;
        c++;
      }
    }
    cvar = s / c;
  }

  const distReason = n === 0 ? NO_RETURNS : n === 1 ? ONE_BAR : undefined;
  const skewReason = n < 3 ? 'needs at least three returns' : zeroVar ? ZERO_VAR : undefined;
  const kurtReason = n < 4 ? 'needs at least four returns' : zeroVar ? ZERO_VAR : undefined;
  const skewPandas =
    n >= 3 && m2 > 0 ? ((Math.sqrt(n * (n - 1)) / (n - 2)) * m3) / Math.pow(m2, 1.5) : NaN;
  const kurtPandas =
    n >= 4 && m2 > 0 ? (((n + 1) * (m4 / (m2 * m2) - 3) + 6) * (n - 1)) / ((n - 2) * (n - 3)) : NaN;
  const downsideDev = n > 0 ? Math.sqrt(downside / n) : 0;

  const returnsOut: ReturnMetrics = {
    totalReturn: nulls.take('returns.totalReturn', totalReturn, returnsReason),
    annualizedReturn: nulls.take('returns.annualizedReturn', mean * bpy, returnsReason),
    cagr: nulls.take('returns.cagr', cagr, returnsReason),
    volatility: nulls.take(
      'returns.volatility',
      sd * Math.sqrt(bpy),
      n === 0 ? NO_RETURNS : n === 1 ? ONE_BAR : undefined,
    ),
    sharpe: nulls.take('returns.sharpe', ((mean - rfBar) / sd) * Math.sqrt(bpy), spreadReason),
    sortino: nulls.take(
      'returns.sortino',
      ((mean - rfBar) / downsideDev) * Math.sqrt(bpy),
      returnsReason ?? (downside === 0 ? 'no return below the risk-free rate' : undefined),
    ),
    calmar: nulls.take(
      'returns.calmar',
      cagr / maxDd,
      returnsReason ?? (maxDd === 0 ? 'no drawdown' : undefined),
    ),
    omega: nulls.take(
      'returns.omega',
      gainsAbove / lossesBelow,
      returnsReason ?? (lossesBelow === 0 ? 'no return below the risk-free rate' : undefined),
    ),
    var95: nulls.take('returns.var95', q05, distReason),
    cvar95: nulls.take('returns.cvar95', cvar, distReason),
    skew: nulls.take('returns.skew', skewPandas, skewReason),
    kurtosis: nulls.take('returns.kurtosis', kurtPandas, kurtReason),
    tailRatio: nulls.take(
      'returns.tailRatio',
      Math.abs(q95) / Math.abs(q05),
      distReason ?? (q05 === 0 ? 'the 5% quantile is zero' : undefined),
    ),
    bestBar: nulls.take('returns.bestBar', best, returnsReason),
    worstBar: nulls.take('returns.worstBar', worst, returnsReason),
    positiveBars: nulls.take('returns.positiveBars', positive / n, returnsReason),
  };

  const barsPerDay = bpy / 365;
  const drawdown: DrawdownMetrics = {
    maxDrawdown: nulls.take('drawdown.maxDrawdown', maxDd, returnsReason),
    maxDrawdownDurationBars: nulls.take('drawdown.maxDrawdownDurationBars', maxDur, returnsReason),
    maxDrawdownDurationDays: nulls.take(
      'drawdown.maxDrawdownDurationDays',
      maxDur / barsPerDay,
      returnsReason,
    ),
    averageDrawdown: nulls.take(
      'drawdown.averageDrawdown',
      depthSum / episodes,
      returnsReason ?? (episodes === 0 ? 'no drawdown' : undefined),
    ),
    averageDrawdownDurationBars: nulls.take(
      'drawdown.averageDrawdownDurationBars',
      durationSum / episodes,
      returnsReason ?? (episodes === 0 ? 'no drawdown' : undefined),
    ),
    ulcerIndex: nulls.take('drawdown.ulcerIndex', Math.sqrt(sqDd / n), returnsReason),
    timeUnderWater: nulls.take('drawdown.timeUnderWater', underBars / n, returnsReason),
    drawdownCount: nulls.take('drawdown.drawdownCount', episodes, returnsReason),
  };

  const tradesOut = tradeMetrics(trades, bpy, nulls);
  const costs = costMetrics(returns, acc, totalReturn, years, nulls);

  // Trust: per-bar Sharpe with population moments (as Bailey & López de Prado).
  const srBar = (mean - rfBar) / sd;
  const gamma3 = m2 > 0 ? m3 / Math.pow(m2, 1.5) : 0;
  const gamma4 = m2 > 0 ? m4 / (m2 * m2) : 3;
  const stats: SharpeStatistics = {
    sharpe: srBar,
    observations: n,
    skewness: gamma3,
    kurtosis: gamma4,
  };
  const srStar = (options.benchmarkSharpe ?? 0) / Math.sqrt(bpy);
  let trials = Math.max(1, Math.floor(options.trials ?? options.trialSharpes?.length ?? 1));
  let variance = 0;
  let source: TrustMetrics['trialVarianceSource'] = 'none';
  if (options.trialSharpes !== undefined && options.trialSharpes.length >= 2) {
    const s = options.trialSharpes;
    trials = Math.max(trials, s.length);
    let mu = 0;
    for (const x of s) mu += x;
    mu /= s.length;
    let v = 0;
    for (const x of s) v += (x - mu) * (x - mu);
    variance = v / (s.length - 1) / bpy;
    source = 'trials';
  } else if (options.trialSharpeVariance !== undefined) {
    variance = options.trialSharpeVariance / bpy;
    source = 'given';
  } else if (trials > 1 && n >= 2) {
    // Dispersion of Sharpe estimates when every trial has true Sharpe 0 (the DSR's null).
    variance = 1 / (n - 1);
    source = 'estimator';
  }
  const psr = spreadReason === undefined ? probabilisticSharpeRatio(stats, srStar) : null;
  const dsr = spreadReason === undefined ? deflatedSharpeRatio(stats, trials, variance) : null;
  const mtrl = spreadReason === undefined ? minTrackRecordLength(stats, srStar) : null;
  const varianceReason = 'the variance term 1 − γ3·SR + (γ4 − 1)/4·SR² is not positive';
  const trust: TrustMetrics = {
    sharpePerBar: nulls.take('trust.sharpePerBar', srBar, spreadReason),
    psr: nulls.take(
      'trust.psr',
      psr ?? NaN,
      spreadReason ?? (psr === null ? varianceReason : undefined),
    ),
    dsr: nulls.take(
      'trust.dsr',
      dsr ?? NaN,
      spreadReason ?? (dsr === null ? varianceReason : undefined),
    ),
    trials,
    expectedMaxSharpe: nulls.take(
      'trust.expectedMaxSharpe',
      expectedMaxSharpe(trials, variance) * Math.sqrt(bpy),
      n === 0 ? NO_RETURNS : undefined,
    ),
    minTrackRecordBars: nulls.take(
      'trust.minTrackRecordBars',
      mtrl ?? NaN,
      spreadReason ??
        (mtrl === null ? 'the Sharpe ratio does not exceed the benchmark' : undefined),
    ),
    trialVarianceSource: source,
  };

  const monthly =
    options.timeMs !== undefined ? periodReturns(returns, options.timeMs, 'month') : [];
  const yearly = options.timeMs !== undefined ? periodReturns(returns, options.timeMs, 'year') : [];

  return {
    bars: n,
    barsPerYear: bpy,
    years,
    returns: returnsOut,
    drawdown,
    trades: tradesOut,
    costs,
    trust,
    monthly,
    yearly,
    nulls: nulls.reasons,
  };
}

function sideMetrics(
  trades: readonly MetricsTrade[],
  side: 'long' | 'short',
  nulls: Nulls,
): SideMetrics {
  let count = 0;
  let wins = 0;
  let pnl = 0;
  let ret = 0;
  for (const t of trades) {
    if (t.side !== side) continue;
    count++;
    if (t.pnl > 0) wins++;
    pnl += t.pnl;
    ret += t.pnl / t.entryNotional;
  }
  const reason = count === 0 ? `no ${side} trades` : undefined;
  return {
    count,
    winRate: nulls.take(`trades.${side}.winRate`, wins / count, reason),
    pnl,
    averageReturn: nulls.take(`trades.${side}.averageReturn`, ret / count, reason),
  };
}

function tradeMetrics(trades: readonly MetricsTrade[], bpy: number, nulls: Nulls): TradeMetrics {
  const n = trades.length;
  let wins = 0;
  let losses = 0;
  let grossProfit = 0;
  let grossLoss = 0;
  let pnlSum = 0;
  let pnlSq = 0;
  let retSum = 0;
  let best = -Infinity;
  let worst = Infinity;
  let held = 0;
  let winStreak = 0;
  let lossStreak = 0;
  let maxWin = 0;
  let maxLoss = 0;
  for (const t of trades) {
    if (!(t.entryNotional > 0) || !Number.isFinite(t.pnl))
      throw new RangeError(
        `trade with entry notional ${t.entryNotional} and pnl ${t.pnl}: needs notional > 0 and finite pnl`,
      );
    const r = t.pnl / t.entryNotional;
    pnlSum += t.pnl;
    pnlSq += t.pnl * t.pnl;
    retSum += r;
    held += t.barsHeld;
    if (r > best) best = r;
    if (r < worst) worst = r;
    if (t.pnl > 0) {
      wins++;
      grossProfit += t.pnl;
      winStreak++;
      lossStreak = 0;
    } else if (t.pnl < 0) {
      losses++;
      grossLoss -= t.pnl;
      lossStreak++;
      winStreak = 0;
    } else {
      winStreak = 0;
      lossStreak = 0;
    }
    if (winStreak > maxWin) maxWin = winStreak;
    if (lossStreak > maxLoss) maxLoss = lossStreak;
  }
  const none = n === 0 ? 'no trades' : undefined;
  const avgWin = grossProfit / wins;
  const avgLoss = -grossLoss / losses;
  const winRate = wins / n;
  const wl = avgWin / Math.abs(avgLoss);
  const meanPnl = pnlSum / n;
  const sdPnl = n >= 2 ? Math.sqrt(Math.max(0, (pnlSq - n * meanPnl * meanPnl) / (n - 1))) : 0;
  const wlReason =
    none ?? (wins === 0 ? 'no winning trades' : losses === 0 ? 'no losing trades' : undefined);
  return {
    count: n,
    winRate: nulls.take('trades.winRate', winRate, none),
    grossProfit,
    grossLoss,
    profitFactor: nulls.take(
      'trades.profitFactor',
      grossProfit / grossLoss,
      none ?? (losses === 0 ? 'no losing trades' : undefined),
    ),
    expectancy: nulls.take('trades.expectancy', meanPnl, none),
    expectancyReturn: nulls.take('trades.expectancyReturn', retSum / n, none),
    averageWin: nulls.take(
      'trades.averageWin',
      avgWin,
      none ?? (wins === 0 ? 'no winning trades' : undefined),
    ),
    averageLoss: nulls.take(
      'trades.averageLoss',
      avgLoss,
      none ?? (losses === 0 ? 'no losing trades' : undefined),
    ),
    winLossRatio: nulls.take('trades.winLossRatio', wl, wlReason),
    bestTrade: nulls.take('trades.bestTrade', best, none),
    worstTrade: nulls.take('trades.worstTrade', worst, none),
    averageHoldingBars: nulls.take('trades.averageHoldingBars', held / n, none),
    averageHoldingHours: nulls.take('trades.averageHoldingHours', ((held / n) * 8760) / bpy, none),
    longestWinStreak: maxWin,
    longestLossStreak: maxLoss,
    sqn: nulls.take(
      'trades.sqn',
      (Math.sqrt(n) * meanPnl) / sdPnl,
      none ??
        (n < 2
          ? 'needs at least two trades'
          : sdPnl === 0
            ? 'all trades have the same pnl'
            : undefined),
    ),
    kelly: nulls.take('trades.kelly', winRate - (1 - winRate) / wl, wlReason),
    long: sideMetrics(trades, 'long', nulls),
    short: sideMetrics(trades, 'short', nulls),
  };
}

function sumOf(a: ArrayLike<number> | undefined): number {
  if (a === undefined) return NaN;
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k];
  return s;
}

function costMetrics(
  returns: ArrayLike<number>,
  acc: MetricsAccount | undefined,
  totalReturn: number,
  years: number,
  nulls: Nulls,
): CostMetrics {
  const n = returns.length;
  const noAccount = acc === undefined ? 'no account series given' : undefined;
  const base = noAccount ?? (n === 0 ? NO_RETURNS : undefined);
  const missing = (name: string, a: ArrayLike<number> | undefined): string | undefined =>
    base ?? (a === undefined ? `no ${name} series given` : undefined);
  const fees = sumOf(acc?.fees);
  const slippage = sumOf(acc?.slippage);
  const funding = sumOf(acc?.funding);
  const hasCosts =
    acc !== undefined &&
    (acc.fees !== undefined || acc.slippage !== undefined || acc.funding !== undefined);
  const total =
    (Number.isNaN(fees) ? 0 : fees) +
    (Number.isNaN(slippage) ? 0 : slippage) +
    (Number.isNaN(funding) ? 0 : funding);

  // Equity path (for the mean equity and gross returns).
  let grossGrowth = 1;
  let equitySum = 0;
  let traded = 0;
  let exposed = 0;
  let absExposure = 0;
  let longBars = 0;
  let shortBars = 0;
  if (acc !== undefined) {
    let equity = acc.initialCapital;
    for (let k = 0; k < n; k++) {
      const cost = (acc.fees?.[k] ?? 0) + (acc.slippage?.[k] ?? 0) + (acc.funding?.[k] ?? 0);
      grossGrowth *= 1 + returns[k] + (equity > 0 ? cost / equity : 0);
      equity *= 1 + returns[k];
      equitySum += equity;
      if (acc.tradedNotional !== undefined) traded += acc.tradedNotional[k];
      if (acc.exposure !== undefined) {
        const x = acc.exposure[k];
        if (x !== 0) exposed++;
        if (x > 0) longBars++;
        else if (x < 0) shortBars++;
        absExposure += Math.abs(x);
      }
    }
  }
  const grossTotal = grossGrowth - 1;
  const cagrOf = (g: number): number => (g > 0 ? Math.pow(g, 1 / years) - 1 : -1);
  const meanEquity = equitySum / n;
  const costsReason = base ?? (hasCosts ? undefined : 'no cost series given');
  const turnoverReason = missing('tradedNotional', acc?.tradedNotional);
  const exposureReason = missing('exposure', acc?.exposure);
  return {
    fees: nulls.take('costs.fees', fees, missing('fees', acc?.fees)),
    slippage: nulls.take('costs.slippage', slippage, missing('slippage', acc?.slippage)),
    funding: nulls.take('costs.funding', funding, missing('funding', acc?.funding)),
    total: nulls.take('costs.total', total, costsReason),
    turnover: nulls.take(
      'costs.turnover',
      traded / meanEquity,
      turnoverReason ?? (meanEquity > 0 ? undefined : 'equity is not positive'),
    ),
    annualTurnover: nulls.take(
      'costs.annualTurnover',
      traded / meanEquity / years,
      turnoverReason ?? (meanEquity > 0 ? undefined : 'equity is not positive'),
    ),
    grossTotalReturn: nulls.take('costs.grossTotalReturn', grossTotal, costsReason),
    feeDrag: nulls.take('costs.feeDrag', grossTotal - totalReturn, costsReason),
    feeDragAnnual: nulls.take(
      'costs.feeDragAnnual',
      cagrOf(grossGrowth) - cagrOf(1 + totalReturn),
      costsReason,
    ),
    exposure: nulls.take('costs.exposure', exposed / n, exposureReason),
    averageExposure: nulls.take('costs.averageExposure', absExposure / n, exposureReason),
    longExposure: nulls.take('costs.longExposure', longBars / n, exposureReason),
    shortExposure: nulls.take('costs.shortExposure', shortBars / n, exposureReason),
  };
}
