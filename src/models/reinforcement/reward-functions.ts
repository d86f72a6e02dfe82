// Rewards of the trading environment: the log equity change net of every cost (the default), the
// differential Sharpe ratio and the differential downside-deviation ratio (Moody & Saffell),
// drawdown and turnover penalties, composed with weights from the `rewards` config. A reward reads
// only the account after the step's fill and close: never a price after the decision it rewards.

import type { Config } from '../../utils/config.js';

/** The `rewards` config section. */
export type RewardsConfig = Config['rewards'];

/**
 * The spec's `pnl_reward(action, position, next_price, current_price, transaction_cost)`: the log
 * growth of equity over one step when the position moves from `position` to `action` (both target
 * exposures in [-1, 1]) at `currentPrice`, paying `transactionCost` x |traded notional|, and is
 * marked at `nextPrice`: log(1 - c|action - position| + action (nextPrice / currentPrice - 1)).
 * It equals the broker's log equity change for that step (fill at `currentPrice`, leverage 1, no
 * slippage or funding). Returns -Infinity when the step would wipe the equity out.
 * @example pnlReward(1, 0, 101, 100, 0.001) // log(1 - 0.001 + 0.01)
 */
export function pnlReward(
  action: number,
  position: number,
  nextPrice: number,
  currentPrice: number,
  transactionCost: number,
): number {
  const growth =
    1 - transactionCost * Math.abs(action - position) + action * (nextPrice / currentPrice - 1);
  return growth > 0 ? Math.log(growth) : -Infinity;
}

/**
 * Online differential Sharpe ratio (Moody & Saffell 1998): exponential moving estimates A (mean)
 * and B (second moment) of the returns with rate `eta`, and for each new return R the first-order
 * change of the Sharpe ratio it causes: D = (B ΔA - A ΔB / 2) / (B - A²)^(3/2), with ΔA = R - A,
 * ΔB = R² - B (moments before the update). D is 0 while the variance estimate is not positive.
 */
export class DifferentialSharpe {
  /** Moving mean of returns. */
  a = 0;
  /** Moving second moment of returns. */
  b = 0;
  /**
   * @param eta - adaptation rate of the moving moments per step, in (0, 1].
   * @throws {RangeError} when `eta` is outside (0, 1].
   */
  constructor(readonly eta: number) {
    if (!(eta > 0 && eta <= 1)) throw new RangeError(`DifferentialSharpe: eta must be in (0, 1]`);
  }

  /** Clears the moving moments (start of an episode). */
  reset(): void {
    this.a = 0;
    this.b = 0;
  }

  /** The differential Sharpe ratio of return `r`, then the moments absorb `r`. */
  update(r: number): number {
    const a = this.a;
    const b = this.b;
    const dA = r - a;
    const dB = r * r - b;
    const variance = b - a * a;
    const d = variance > 1e-18 ? (b * dA - 0.5 * a * dB) / (variance * Math.sqrt(variance)) : 0;
    this.a = a + this.eta * dA;
    this.b = b + this.eta * dB;
    return d;
  }
}

/**
 * Online differential downside-deviation ratio (Moody & Saffell 2001), a Sortino-like reward:
 * with A the moving mean and DD² the moving mean of min(R, 0)², D = (R - A/2) / DD for R > 0 and
 * (DD² (R - A/2) - A R² / 2) / DD³ otherwise. D is 0 while DD is 0.
 */
export class DifferentialDownside {
  /** Moving mean of returns. */
  a = 0;
  /** Moving mean of squared negative returns. */
  dd2 = 0;
  /**
   * @param eta - adaptation rate of the moving moments per step, in (0, 1].
   * @throws {RangeError} when `eta` is outside (0, 1].
   */
  constructor(readonly eta: number) {
    if (!(eta > 0 && eta <= 1)) throw new RangeError(`DifferentialDownside: eta must be in (0, 1]`);
  }

  /** Clears the moving moments (start of an episode). */
  reset(): void {
    this.a = 0;
    this.dd2 = 0;
  }

  /** The differential downside ratio of return `r`, then the moments absorb `r`. */
  update(r: number): number {
    const a = this.a;
    const dd2 = this.dd2;
    let d = 0;
    if (dd2 > 1e-18) {
      const dd = Math.sqrt(dd2);
      d = r > 0 ? (r - 0.5 * a) / dd : (dd2 * (r - 0.5 * a) - 0.5 * a * r * r) / (dd2 * dd);
    }
    const neg = r < 0 ? r : 0;
    this.a = a + this.eta * (r - a);
    this.dd2 = dd2 + this.eta * (neg * neg - dd2);
    return d;
  }
}

/**
 * The spec's `risk_adjusted_reward(returns, risk_free_rate=0.0)`: the differential Sharpe ratio of
 * the last of `returns` (per-step simple returns), computed online over the whole sequence after
 * subtracting `riskFreeRate` (per step). The env's `differentialSharpe` term gives the same value
 * step by step.
 * @example riskAdjustedReward([0.01, -0.005, 0.002], 0, { eta: 0.1 })
 * @throws {RangeError} when `eta` is not in (0, 1].
 */
export function riskAdjustedReward(
  returns: ArrayLike<number>,
  riskFreeRate = 0,
  options: { eta?: number } = {},
): number {
  const dsr = new DifferentialSharpe(options.eta ?? 0.01);
  let d = 0;
  for (let i = 0; i < returns.length; i++) d = dsr.update(returns[i] - riskFreeRate);
  return d;
}

/** What a reward term sees after a step (mutated in place by the env; read, never keep). */
export interface RewardContext {
  /** Equity at the previous close (floored at a tiny positive value). */
  prevEquity: number;
  /** Equity at this close (floored likewise), net of fees, slippage, funding and borrow. */
  equity: number;
  /** log(equity / prevEquity). */
  logReturn: number;
  /** equity / prevEquity - 1. */
  simpleReturn: number;
  /** Drawdown from the running equity peak, a fraction in [0, 1]. */
  drawdown: number;
  /** Notional traded in this step over prevEquity. */
  turnover: number;
  /** Exposure after the step. */
  position: number;
}

/** A user-defined reward term, added with a weight to the configured ones. */
export interface RewardTerm {
  /** Name of the term (informational: the env and the reward function do not read it). */
  readonly name: string;
  /** Called at the start of every episode. */
  reset(): void;
  /** The term's value for the step just taken. */
  compute(ctx: RewardContext): number;
}

/** Names of the built-in terms, in the order `RewardFunction.terms` reports them. */
export const REWARD_TERMS = [
  'pnl',
  'differentialSharpe',
  'differentialDownside',
  'drawdownPenalty',
  'turnoverPenalty',
] as const;

/**
 * The weighted sum of the configured reward terms (a weight of 0 switches a term off) plus any
 * user terms. `terms` holds each built-in term's unweighted value of the last step, in
 * `REWARD_TERMS` order. Allocates nothing per step.
 * @example const rf = new RewardFunction({ ...defaultConfig().rewards, turnoverPenalty: 0.1 });
 */
export class RewardFunction {
  /** Unweighted value of each built-in term at the last step (REWARD_TERMS order). */
  readonly terms = new Float64Array(REWARD_TERMS.length);
  private readonly wPnl: number;
  private readonly wSharpe: number;
  private readonly wDown: number;
  private readonly wDrawdown: number;
  private readonly wTurnover: number;
  private readonly rf: number;
  private readonly sharpe: DifferentialSharpe;
  private readonly downside: DifferentialDownside;
  private readonly extra: ReadonlyArray<{ term: RewardTerm; weight: number }>;
  /** True when the reward is exactly the log equity change (telescopes to log(final / initial)). */
  readonly isPurePnl: boolean;

  /** @throws {RangeError} when `eta` is not in (0, 1]. */
  constructor(
    config: RewardsConfig,
    extra: ReadonlyArray<{ term: RewardTerm; weight: number }> = [],
  ) {
    this.wPnl = config.pnl;
    this.wSharpe = config.differentialSharpe;
    this.wDown = config.differentialDownside;
    this.wDrawdown = config.drawdownPenalty;
    this.wTurnover = config.turnoverPenalty;
    this.rf = config.riskFreeRate;
    this.sharpe = new DifferentialSharpe(config.eta);
    this.downside = new DifferentialDownside(config.eta);
    this.extra = extra;
    this.isPurePnl =
      config.pnl === 1 &&
      this.wSharpe === 0 &&
      this.wDown === 0 &&
      this.wDrawdown === 0 &&
      this.wTurnover === 0 &&
      extra.length === 0;
  }

  /** Starts an episode: clears the online moments and the user terms. */
  reset(): void {
    this.sharpe.reset();
    this.downside.reset();
    this.terms.fill(0);
    for (const e of this.extra) e.term.reset();
  }

  /** The reward of the step described by `ctx`. */
  compute(ctx: RewardContext): number {
    const t = this.terms;
    t[0] = ctx.logReturn;
    let r = this.wPnl * ctx.logReturn;
    if (this.wSharpe !== 0) {
      t[1] = this.sharpe.update(ctx.simpleReturn - this.rf);
      r += this.wSharpe * t[1];
    }
    if (this.wDown !== 0) {
      t[2] = this.downside.update(ctx.simpleReturn - this.rf);
      r += this.wDown * t[2];
    }
    if (this.wDrawdown !== 0) {
      t[3] = -ctx.drawdown;
      r += this.wDrawdown * t[3];
    }
    if (this.wTurnover !== 0) {
      t[4] = -ctx.turnover;
      r += this.wTurnover * t[4];
    }
    const extra = this.extra;
    for (let i = 0; i < extra.length; i++) r += extra[i].weight * extra[i].term.compute(ctx);
    return r;
  }
}
