// The Gymnasium-style crypto trading environment: multi-timeframe feature windows plus account
// state in, a target position out, executed by the one Broker (next-open fills, fees, slippage,
// funding, liquidation) and rewarded by the configured reward function. An observation at base row
// t reads only feature rows known at t's close and the account marked at that close; the action
// taken on it is filled at row t+1's open. Never reads a row beyond the allowed range, and never
// allocates per step: observation, info and result objects are reused (valid until the next call).

import type { Candles, Timeframe } from '../../data-processing/candles.js';
import { lowerBound, timeframeMs } from '../../data-processing/candles.js';
import type { CandlesByTimeframe } from '../../data-processing/data-alignment.js';
import {
  buildFeatures,
  type BuildFeaturesOptions,
  type MultiTimeframeFeatures,
} from '../../data-processing/feature-engineering.js';
import {
  checkLookAhead,
  type LookAheadMatrix,
  type LookAheadOptions,
  type LookAheadReport,
} from '../../data-processing/lookahead.js';
import { CtmError } from '../../errors.js';
import {
  Broker,
  brokerConfig,
  type BrokerConfig,
  type CcxtMarketLike,
  type DeepPartial,
  type FundingRateSeries,
} from '../../evaluation/broker.js';
import {
  ObservationBuilder,
  formingRowsOf,
  fullObservationSpec,
  observationColumnNames,
  type AccountField,
  type ObservationSpec,
} from '../../evaluation/policy.js';
import { configSchema, defaultConfig, type Config } from '../../utils/config.js';
import { ConfigError, DataValidationError } from '../../errors.js';
import { Rng, type RngState } from '../../utils/random.js';
import {
  RewardFunction,
  type RewardContext,
  type RewardTerm,
  type RewardsConfig,
} from './reward-functions.js';
import {
  Box,
  Dict,
  Discrete,
  type Env,
  type EnvSnapshot,
  type ObservationCodec,
  type ResetOptions,
  type ResetResult,
  type StepResult,
} from './spaces.js';

/** The `env` config section. */
export type EnvConfig = Config['env'];

/** An action of the trading env: a level index (discrete) or a target in [-1, 1] (continuous). */
export type TradingAction = number | Float32Array | Float64Array;

/** Why an episode ended ('' while it runs). */
export type TerminationReason = '' | 'ruin' | 'liquidation';
/** Why an episode was cut short ('' while it runs). */
export type TruncationReason = '' | 'data-end' | 'max-steps';

/** The info object of the trading env (reused: valid until the next step or reset). */
export interface TradingEnvInfo {
  /** The env's `marketIndex` option (which market of a scenario; 0 by default). */
  market: number;
  /** Base row of the current observation (its decision time is that row's close). */
  row: number;
  /** Decision time of the observation, UTC ms. */
  timeMs: number;
  /** Close price of the row (the mark). */
  price: number;
  /** Equity at the close, net of every cost. */
  equity: number;
  /** Cash, quote currency. */
  cash: number;
  /** Signed position quantity (base currency). */
  quantity: number;
  /** Exposure: quantity x price / (leverage x equity). */
  position: number;
  /** Unrealised pnl of the open position as a fraction of equity (the observation's account field). */
  unrealizedPnl: number;
  /** Bars since the current position was opened (0 when flat). */
  barsInPosition: number;
  /** Target position the last action asked for (after mapping a discrete level). */
  target: number;
  /** Steps since reset. */
  steps: number;
  /** Cumulative costs since reset (quote currency). */
  fees: number;
  /** Cumulative slippage cost since reset, quote currency. */
  slippage: number;
  /** Cumulative funding paid since reset, quote currency (negative = received). */
  funding: number;
  /** Cumulative borrow interest paid since reset, quote currency. */
  borrow: number;
  /** Drawdown from the running equity peak (fraction). */
  drawdown: number;
  /** Round trips closed since reset. */
  trades: number;
  /** Why the episode terminated (`ruin`, `liquidation`), or '' while it runs. */
  terminationReason: TerminationReason;
  /** Why the episode was truncated (`data-end`, `max-steps`), or '' while it runs. */
  truncationReason: TruncationReason;
  /** Allowed discrete levels (1 = allowed), or null for continuous actions. */
  actionMask: Uint8Array | null;
  /**
   * When the episode ended at this step (terminated or truncated): its final observation (the
   * returned one; in a VecEnv a copy that survives the auto-reset); null otherwise.
   */
  finalObservation: Float32Array | null;
}

/** Options of `CryptoTradingEnv` (the spec's `window_size` and `transaction_cost` included). */
export interface TradingEnvOptions {
  /** The spec's `window_size`: window of the base timeframe (bars); other windows from config. */
  windowSize?: number;
  /** The spec's `transaction_cost`: taker and maker fee fraction per leg (default config 0.001). */
  transactionCost?: number;
  /**
   * Bars per timeframe (default: `env.windows`, else the windows the features were built for,
   * `data.windows`, else the config's `windows`), for each of the features' timeframes.
   */
  windows?: Partial<Record<Timeframe, number>>;
  /** A full observation spec (overrides windows, windowSize and env.accountFields). */
  observation?: ObservationSpec;
  /** Base config (default: config/default.yaml). */
  config?: Config;
  /** Overrides of the `env` section. */
  env?: Partial<EnvConfig>;
  /** Overrides of the `broker` section. */
  broker?: DeepPartial<BrokerConfig>;
  /** Overrides of the `rewards` section. */
  rewards?: Partial<RewardsConfig>;
  /** User reward terms added to the configured ones. */
  rewardTerms?: ReadonlyArray<{ term: RewardTerm; weight: number }>;
  /** Base rows [from, to) episodes may touch (decisions and fills stay inside). */
  rowRange?: readonly [number, number];
  /**
   * Open-time range [fromMs, toMs) of the rows episodes may touch, e.g. `rangeMs(cfg.splits.train)`:
   * a train range never yields a row of a later split.
   */
  timeRange?: { fromMs: number; toMs: number };
  /** Seed of the start-row generator until `reset({ seed })` (default: config seed). */
  seed?: number;
  /** ccxt market description for fees, lot, tick and minimums. */
  market?: CcxtMarketLike;
  /** Funding rates for perpetuals (else the constant rate). */
  fundingRates?: FundingRateSeries;
  /** Index of the market among several (e.g. a scenario's), reported in every info. Default 0. */
  marketIndex?: number;
}

const EQUITY_FLOOR = 1e-12;

function envSection(base: Config, over: Partial<EnvConfig> | undefined): EnvConfig {
  const merged = { ...base.env, ...(over ?? {}) };
  const r = configSchema.shape.env.safeParse(merged);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new ConfigError(['env', ...issue.path.map(String)].join('.'), issue.message);
}

function rewardsSection(base: Config, over: Partial<RewardsConfig> | undefined): RewardsConfig {
  const merged = { ...base.rewards, ...(over ?? {}) };
  const r = configSchema.shape.rewards.safeParse(merged);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new ConfigError(['rewards', ...issue.path.map(String)].join('.'), issue.message);
}

/**
 * Gymnasium-style trading environment over multi-timeframe features, long and short.
 *
 * Observation: `Box(float32)` of one window per timeframe (`windows`, all ending at the decision
 * row, higher timeframes through their last closed candle) then the account fields; see
 * `columnNames`. Action: `Discrete(positionLevels.length)` (default short / flat / long) or
 * `Box[-1, 1]` (continuous), a target position filled at the next bar's open by the Broker.
 * Reward: the configured `RewardFunction` (default: log equity change net of all costs).
 * `terminated` only on liquidation or ruin; `truncated` at the end of the allowed data range (or
 * a NaN hole in the features) and at `maxEpisodeSteps`. Episodes start at a uniformly drawn row
 * (never before `firstValidRow` or the windows' warm-up) or at `reset({ options: { startRow } })`.
 * @example
 * const env = new CryptoTradingEnv(features, { transactionCost: 0.001, timeRange: rangeMs(cfg.splits.train) });
 * let [obs] = env.reset({ seed: 1 });
 * for (;;) { const [o, r, term, trunc] = env.step(policy(obs)); obs = o; if (term || trunc) break; }
 */
export class CryptoTradingEnv implements Env<Float32Array, TradingAction, TradingEnvInfo> {
  /** Flat observation box of `builder.size` floats. */
  readonly observationSpace: Box;
  /** Discrete target levels (`levels`), or a continuous Box [-1, 1] of one target. */
  readonly actionSpace: Discrete | Box;
  /** The broker executing the actions (inspect its ledgers after an episode). */
  readonly broker: Broker;
  /** The observation builder (shared layout with the backtester and live trading). */
  readonly builder: ObservationBuilder;
  /** The multi-timeframe features episodes run on. */
  readonly features: MultiTimeframeFeatures;
  /** Resolved config sections. */
  readonly envConfig: EnvConfig;
  /** The resolved `rewards` config section. */
  readonly rewardsConfig: RewardsConfig;
  /** The reward function computing each step's reward. */
  readonly reward: RewardFunction;
  /** Target positions of the discrete actions. */
  readonly levels: Float64Array;
  /** The action that keeps the account flat (the level nearest 0, or 0). */
  readonly neutralAction: TradingAction;
  /** First and one-past-last base rows episodes may touch. */
  readonly rangeStart: number;
  /** One past the last base row episodes may touch. */
  readonly rangeEnd: number;

  private obs: Float32Array;
  private readonly candles: Candles;
  private readonly openTimes: Float64Array;
  private readonly closes: Float64Array;
  private readonly barMs: number;
  private readonly discrete: boolean;
  private readonly nLevels: number;
  private readonly maxSteps: number;
  private readonly randomStart: boolean;
  private readonly ruinFraction: number;
  /** Bars each action holds for (`env.decisionInterval`). */
  private readonly decisionInterval: number;
  /** For each base row, the first row >= it whose observation is not finite (or the range end). */
  private readonly validUntil: Int32Array;
  /** Rows an episode may start at. */
  private readonly startRows: Int32Array;
  private readonly startRowsFull: number;
  private rng: Rng;
  private row = -1;
  private endRow = -1;
  private stepCount = 0;
  private done = true;
  private prevEquity = 0;
  private lastTarget = 0;
  /** Row the current episode started at, and its actions so far (for `snapshot`). */
  private episodeStart = -1;
  private actionLog = new Float64Array(1024);
  private readonly mask: Uint8Array | null;
  private readonly staticMask: Uint8Array | null;
  private maskHalted = false;
  private readonly ctx: RewardContext = {
    prevEquity: 0,
    equity: 0,
    logReturn: 0,
    simpleReturn: 0,
    drawdown: 0,
    turnover: 0,
    position: 0,
  };
  private readonly stepInfo: TradingEnvInfo;
  private readonly resetInfo: TradingEnvInfo;
  private readonly stepResult: StepResult<Float32Array, TradingEnvInfo>;
  private readonly resetResult: ResetResult<Float32Array, TradingEnvInfo>;

  /**
   * @param data the multi-timeframe features (`createMultiTimeframeFeatures`); prices come from
   * their base candles (`data.aligned.base`).
   * @throws {ConfigError} on invalid config overrides.
   * @throws {RangeError} when the spec reads missing features.
   * @throws {DataValidationError} when no episode fits in the range (too few rows after the
   *   feature warm-up).
   */
  constructor(data: MultiTimeframeFeatures, options: TradingEnvOptions = {}) {
    const cfg = options.config ?? defaultConfig();
    this.features = data;
    this.envConfig = envSection(cfg, options.env);
    this.rewardsConfig = rewardsSection(cfg, options.rewards);
    const brokerOver: DeepPartial<BrokerConfig> = { ...(options.broker ?? {}) };
    if (options.transactionCost !== undefined) {
      brokerOver.takerFeeRate = options.transactionCost;
      brokerOver.makerFeeRate = options.transactionCost;
    }
    const bcfg = brokerConfig(brokerOver, cfg.broker);
    this.candles = data.aligned.base;
    this.broker = new Broker(bcfg, {
      timeframe: data.base,
      market: options.market,
      fundingRates: options.fundingRates,
    });
    this.broker.useCandles(this.candles);
    this.barMs = timeframeMs(data.base);
    const c = this.candles;
    this.openTimes = c.openTime;
    this.closes = c.close;

    // Observation.
    const spec = options.observation ?? this.defaultSpec(data, cfg, options);
    this.builder = new ObservationBuilder(data, spec);
    this.obs = new Float32Array(this.builder.size);
    this.observationSpace = observationBox(this.builder.size, this.builder.accountFields);

    // Actions.
    const e = this.envConfig;
    this.discrete = e.actionType === 'discrete';
    this.levels = Float64Array.from(e.positionLevels);
    this.nLevels = this.levels.length;
    if (this.discrete) {
      this.actionSpace = new Discrete(this.nLevels);
      let best = 0;
      for (let k = 1; k < this.nLevels; k++)
        if (Math.abs(this.levels[k]) < Math.abs(this.levels[best])) best = k;
      if (this.levels[best] !== 0)
        throw new ConfigError('env.positionLevels', 'the levels must include 0 (flat)');
      this.neutralAction = best;
      this.staticMask = new Uint8Array(this.nLevels);
      for (let k = 0; k < this.nLevels; k++)
        this.staticMask[k] = this.levels[k] >= 0 || bcfg.allowShort ? 1 : 0;
      this.mask = Uint8Array.from(this.staticMask);
    } else {
      this.actionSpace = new Box(-1, 1, [1]);
      this.neutralAction = 0;
      this.staticMask = null;
      this.mask = null;
    }
    this.maxSteps = e.maxEpisodeSteps ?? Number.MAX_SAFE_INTEGER;
    this.randomStart = e.randomStart;
    this.ruinFraction = e.ruinEquityFraction;
    this.decisionInterval = e.decisionInterval;
    this.reward = new RewardFunction(this.rewardsConfig, options.rewardTerms);

    // Range, valid rows and start rows.
    const n = c.openTime.length;
    let from = 0;
    let to = n;
    if (options.rowRange !== undefined) [from, to] = options.rowRange;
    if (options.timeRange !== undefined) {
      from = Math.max(from, lowerBound(c.openTime, options.timeRange.fromMs));
      to = Math.min(to, lowerBound(c.openTime, options.timeRange.toMs));
    }
    from = Math.max(0, from, data.firstValidRow);
    to = Math.min(n, to);
    this.rangeStart = from;
    this.rangeEnd = to;
    this.validUntil = computeValidUntil(data, spec, from, to);
    const lastDecision = to - 2;
    const starts: number[] = [];
    const roomy: number[] = [];
    for (let r = from; r <= lastDecision; r++) {
      if (this.validUntil[r - from] > r + 1) {
        starts.push(r);
        if (r + this.maxSteps <= to - 1 && this.validUntil[r - from] > r + this.maxSteps)
          roomy.push(r);
      }
    }
    if (starts.length === 0)
      throw new DataValidationError(
        {
          source: 'CryptoTradingEnv',
          reason: `no episode fits in base rows [${from}, ${to}) (first valid row ${data.firstValidRow})`,
        },
        {
          hint: 'give more candles: the feature windows and their warm-up come before the first step',
        },
      );
    this.startRows = Int32Array.from(roomy.length > 0 ? roomy : starts);
    this.startRowsFull = starts.length;
    this.rng = new Rng(options.seed ?? cfg.seed);

    this.stepInfo = blankInfo(this.mask, options.marketIndex ?? 0);
    this.resetInfo = blankInfo(this.mask, options.marketIndex ?? 0);
    this.stepResult = [this.obs, 0, false, false, this.stepInfo];
    this.resetResult = [this.obs, this.resetInfo];
  }

  private defaultSpec(
    data: MultiTimeframeFeatures,
    cfg: Config,
    options: TradingEnvOptions,
  ): ObservationSpec {
    const windows: Partial<Record<Timeframe, number>> = {};
    for (const tf of data.timeframes)
      windows[tf] =
        options.windows?.[tf] ??
        this.envConfig.windows?.[tf] ??
        data.windows[tf] ??
        cfg.windows[tf] ??
        1;
    if (options.windowSize !== undefined) {
      if (!(Number.isInteger(options.windowSize) && options.windowSize > 0))
        throw new ConfigError('windows', `windowSize must be a positive integer`);
      windows[data.base] = options.windowSize;
    }
    return fullObservationSpec(data, windows, this.envConfig.accountFields as AccountField[]);
  }

  /** Floats per observation. */
  get observationSize(): number {
    return this.builder.size;
  }

  /** Name of every float of an observation (`15m[t-63].rsi_14`, ..., `account.position`). */
  get columnNames(): string[] {
    return observationColumnNames(this.builder.spec);
  }

  /** Number of rows an episode may start at (before the max-steps preference). */
  get startableRows(): number {
    return this.startRowsFull;
  }

  /** The current base row (the decision row of the last observation). */
  get currentRow(): number {
    return this.row;
  }

  /** Makes the env write observations into `buffer` (a VecEnv slot) from now on. */
  useObservationBuffer(buffer: Float32Array): void {
    if (buffer.length !== this.builder.size)
      throw new RangeError(
        `useObservationBuffer: buffer has ${buffer.length} floats, observations ${this.builder.size}`,
      );
    if (this.row >= 0) buffer.set(this.obs);
    this.obs = buffer;
    this.stepResult[0] = buffer;
    this.resetResult[0] = buffer;
  }

  /**
   * Starts an episode. `seed` reseeds the start-row generator; `options.startRow` forces the
   * first decision row (it must be a valid start row).
   * @throws {RangeError} when `startRow` cannot start an episode.
   */
  reset(options: ResetOptions = {}): ResetResult<Float32Array, TradingEnvInfo> {
    if (options.seed !== undefined) this.rng = new Rng(options.seed);
    const forced = options.options?.startRow;
    let start: number;
    if (forced !== undefined) {
      if (
        typeof forced !== 'number' ||
        !Number.isInteger(forced) ||
        forced < this.rangeStart ||
        forced > this.rangeEnd - 2 ||
        this.validUntil[forced - this.rangeStart] <= forced + 1
      )
        throw new RangeError(`reset: startRow ${String(forced)} cannot start an episode`);
      start = forced;
    } else if (this.randomStart) start = this.startRows[this.rng.int(this.startRows.length)];
    else start = this.startRows[0];

    const b = this.broker;
    b.reset();
    const warm = Math.max(this.rangeStart, start - b.config.slippage.atrPeriod);
    for (let r = warm; r <= start; r++) b.primeAt(r);
    this.reward.reset();
    this.row = start;
    this.episodeStart = start;
    this.endRow = Math.min(this.rangeEnd - 1, this.validUntil[start - this.rangeStart] - 1);
    this.stepCount = 0;
    this.done = false;
    this.prevEquity = b.equity;
    this.lastTarget = 0;
    this.maskHalted = false;
    if (this.mask !== null && this.staticMask !== null) this.mask.set(this.staticMask);
    this.builder.build(start, b.account, this.obs, 0);
    this.fillInfo(this.resetInfo, '', '');
    return this.resetResult;
  }

  /**
   * Takes one step: the action's target is filled at the next row's open, the account is marked at
   * that row's close, and the observation of that row is returned. With `env.decisionInterval` k
   * the target holds for k bars (exactly k steps of the same action) and the rewards add up.
   * @throws {RangeError} on an action outside the action space.
   * @throws {CtmError} when called before `reset` or after the episode ended.
   */
  step(action: TradingAction): StepResult<Float32Array, TradingEnvInfo> {
    if (this.done)
      throw new CtmError('step() called before reset() or after the episode ended', {
        hint: 'call reset() to start an episode',
      });
    let target: number;
    if (this.discrete) {
      if (
        typeof action !== 'number' ||
        !((action | 0) === action && action >= 0 && action < this.nLevels)
      )
        throw new RangeError(`step: action ${String(action)} is not in Discrete(${this.nLevels})`);
      target = this.levels[action];
    } else {
      const v = typeof action === 'number' ? action : action[0];
      if (v !== v || (typeof action !== 'number' && action.length !== 1))
        throw new RangeError(`step: action ${String(action)} is not in Box[-1, 1] of shape [1]`);
      target = v > 1 ? 1 : v < -1 ? -1 : v;
    }
    this.lastTarget = target;
    if (this.stepCount >= this.actionLog.length) {
      const grown = new Float64Array(this.actionLog.length * 2);
      grown.set(this.actionLog);
      this.actionLog = grown;
    }
    this.actionLog[this.stepCount] = this.discrete ? (action as number) : target;
    const b = this.broker;
    this.stepCount++;
    // The target holds for `decisionInterval` bars (1 by default); their rewards add up.
    let reward = 0;
    let term: TerminationReason = '';
    let trunc: TruncationReason = '';
    let i = this.row;
    for (let k = 0; k < this.decisionInterval; k++) {
      i = this.row + 1;
      const notionalBefore = b.tradedNotional;
      b.stepAt(i, target);
      this.row = i;

      // Reward.
      const floor = b.initialCapital * EQUITY_FLOOR;
      const raw = b.equity;
      const eq = raw > floor ? raw : floor;
      const prev = this.prevEquity > floor ? this.prevEquity : floor;
      const ctx = this.ctx;
      ctx.prevEquity = prev;
      ctx.equity = eq;
      ctx.logReturn = Math.log(eq / prev);
      ctx.simpleReturn = eq / prev - 1;
      ctx.drawdown = b.drawdown;
      ctx.turnover = (b.tradedNotional - notionalBefore) / prev;
      ctx.position = b.exposure;
      reward += this.reward.compute(ctx);
      this.prevEquity = eq;

      if (b.liquidated) term = 'liquidation';
      else if (raw <= this.ruinFraction * b.initialCapital) term = 'ruin';
      if (term === '' && i >= this.endRow) trunc = 'data-end';
      if (term !== '' || trunc !== '') break;
      if (this.mask !== null && b.dailyLossHalted !== this.maskHalted) this.updateMask();
    }
    if (term === '' && trunc === '' && this.stepCount >= this.maxSteps) trunc = 'max-steps';
    this.done = term !== '' || trunc !== '';

    if (this.mask !== null && b.dailyLossHalted !== this.maskHalted) this.updateMask();
    this.builder.build(i, b.account, this.obs, 0);
    this.fillInfo(this.stepInfo, term, trunc);
    const res = this.stepResult;
    res[1] = reward;
    res[2] = term !== '';
    res[3] = trunc !== '';
    return res;
  }

  /** Allowed discrete levels now (1 = allowed); null for continuous actions. Reused buffer. */
  actionMasks(): Uint8Array | null {
    return this.mask;
  }

  /**
   * Observations as five floats: the base row and the four account fields the builder reads
   * (position, unrealised pnl, bars in position, drawdown), rebuilt through the same
   * `ObservationBuilder`, bit for bit.
   */
  observationCodec(): ObservationCodec<TradingEnvInfo> {
    const builder = this.builder;
    const account = { position: 0, unrealizedPnl: 0, barsInPosition: 0, drawdown: 0 };
    const current = (out: Float32Array, offset: number): void => {
      const a = this.broker.account;
      out[offset] = this.row;
      out[offset + 1] = a.position;
      out[offset + 2] = a.unrealizedPnl;
      out[offset + 3] = a.barsInPosition;
      out[offset + 4] = a.drawdown;
    };
    return {
      size: 5,
      current,
      encode(info, out, offset) {
        out[offset] = info.row;
        out[offset + 1] = info.position;
        out[offset + 2] = info.unrealizedPnl;
        out[offset + 3] = info.barsInPosition;
        out[offset + 4] = info.drawdown;
      },
      decode(record, offset, out, outOffset) {
        account.position = record[offset + 1];
        account.unrealizedPnl = record[offset + 2];
        account.barsInPosition = record[offset + 3];
        account.drawdown = record[offset + 4];
        builder.build(record[offset], account, out, outOffset);
      },
    };
  }

  /**
   * The env's state: the random generator, and the episode in progress as its start row and the
   * actions taken since (the broker and reward state are rebuilt by replaying them: the env is
   * deterministic given its start and actions).
   */
  snapshot(): EnvSnapshot {
    return {
      rng: this.rng.getState(),
      done: this.done,
      start: this.episodeStart,
      actions: Array.from(this.actionLog.subarray(0, this.done ? 0 : this.stepCount)),
    };
  }

  /**
   * Restores a state from `snapshot`.
   * @throws {RangeError} when the snapshot does not fit this env (start row, actions).
   */
  restore(snapshot: EnvSnapshot): void {
    const s = snapshot as { rng: RngState; done: boolean; start: number; actions: number[] };
    if (!s.done && s.start >= 0) {
      this.reset({ options: { startRow: s.start } });
      for (const a of s.actions) {
        const [, , term, trunc] = this.step(this.discrete ? a : Float64Array.of(a));
        if (term || trunc)
          throw new RangeError('restore: the episode ended while replaying its actions');
      }
    } else this.done = true;
    this.rng.setState(s.rng);
  }

  /** One line describing the current state. */
  render(): string {
    const b = this.broker;
    if (this.row < 0) return 'CryptoTradingEnv: not started (call reset())';
    const t = new Date(this.openTimes[this.row] + this.barMs).toISOString();
    const sign = (x: number): string => (x >= 0 ? '+' : '') + x.toFixed(3);
    return (
      `${t} row=${this.row} step=${this.stepCount} close=${this.closes[this.row]} ` +
      `target=${sign(this.lastTarget)} position=${sign(b.exposure)} equity=${b.equity.toFixed(2)} ` +
      `drawdown=${(100 * b.drawdown).toFixed(2)}% fees=${b.feesPaid.toFixed(2)} ` +
      `funding=${b.fundingPaid.toFixed(2)} trades=${b.trades.length}` +
      (this.done ? ' [done]' : '')
    );
  }

  /** Releases nothing (no external resources); present for Gymnasium parity. */
  close(): void {
    this.done = true;
  }

  private updateMask(): void {
    const mask = this.mask;
    const stat = this.staticMask;
    if (mask === null || stat === null) return;
    const halted = this.broker.dailyLossHalted;
    this.maskHalted = halted;
    for (let k = 0; k < this.nLevels; k++)
      mask[k] = stat[k] === 1 && (!halted || this.levels[k] === 0) ? 1 : 0;
  }

  private fillInfo(info: TradingEnvInfo, term: TerminationReason, trunc: TruncationReason): void {
    const b = this.broker;
    const r = this.row;
    info.row = r;
    info.timeMs = this.openTimes[r] + this.barMs;
    info.price = this.closes[r];
    info.equity = b.equity;
    info.cash = b.cash;
    info.quantity = b.quantity;
    const account = b.account;
    info.position = account.position;
    info.unrealizedPnl = account.unrealizedPnl;
    info.barsInPosition = account.barsInPosition;
    info.target = this.lastTarget;
    info.steps = this.stepCount;
    info.fees = b.feesPaid;
    info.slippage = b.slippagePaid;
    info.funding = b.fundingPaid;
    info.borrow = b.borrowPaid;
    info.drawdown = b.drawdown;
    info.trades = b.trades.length;
    info.terminationReason = term;
    info.truncationReason = trunc;
    info.finalObservation = term !== '' || trunc !== '' ? this.obs : null;
  }
}

function blankInfo(mask: Uint8Array | null, market: number): TradingEnvInfo {
  return {
    market,
    row: -1,
    timeMs: NaN,
    price: NaN,
    equity: 0,
    cash: 0,
    quantity: 0,
    position: 0,
    unrealizedPnl: 0,
    barsInPosition: 0,
    target: 0,
    steps: 0,
    fees: 0,
    slippage: 0,
    funding: 0,
    borrow: 0,
    drawdown: 0,
    trades: 0,
    terminationReason: '',
    truncationReason: '',
    actionMask: mask,
    finalObservation: null,
  };
}

/**
 * The observation Box: features unbounded, then the account fields (position and unrealised pnl
 * unbounded, timeInPosition >= 0, drawdown in [0, 1]).
 */
function observationBox(size: number, account: readonly AccountField[]): Box {
  const low = new Float64Array(size).fill(-Infinity);
  const high = new Float64Array(size).fill(Infinity);
  const a = size - account.length;
  account.forEach((f, j) => {
    if (f === 'timeInPosition') low[a + j] = 0;
    if (f === 'drawdown') {
      low[a + j] = 0;
      high[a + j] = 1;
    }
  });
  return new Box(low, high, [size]);
}

/**
 * For each base row r in [from, to): the first row >= r (up to `to`) whose observation windows
 * hold a non-finite value or are incomplete. Allocated once per env.
 */
function computeValidUntil(
  data: MultiTimeframeFeatures,
  spec: ObservationSpec,
  from: number,
  to: number,
): Int32Array {
  const span = Math.max(0, to - from);
  const valid = new Uint8Array(span).fill(1);
  for (const tf of spec.timeframes) {
    const m = data.perTimeframe.get(tf);
    const idx = data.rowIndex.get(tf);
    const w = spec.windows[tf] ?? 0;
    const names = spec.features[tf] ?? [];
    if (m === undefined || idx === undefined || w === 0 || names.length === 0) continue;
    const cols = names.map((nm) => m.names.indexOf(nm));
    // lastBad[row] = the last matrix row <= row with a non-finite selected value, or -1.
    const lastBad = new Int32Array(m.rows);
    let lb = -1;
    for (let row = 0; row < m.rows; row++) {
      for (const col of cols) {
        if (!Number.isFinite(m.values[row * m.cols + col])) {
          lb = row;
          break;
        }
      }
      lastBad[row] = lb;
    }
    const forming = formingRowsOf(data, tf);
    const closed = forming === undefined ? w : w - 1;
    for (let r = from; r < to; r++) {
      const last = idx[r];
      if (closed > 0 && (last < closed - 1 || lastBad[last] > last - closed)) valid[r - from] = 0;
      if (forming !== undefined) {
        for (const col of cols)
          if (!Number.isFinite(forming.values[r * forming.cols + col])) valid[r - from] = 0;
      }
    }
  }
  const out = new Int32Array(span);
  let next = to;
  for (let r = to - 1; r >= from; r--) {
    if (valid[r - from] === 0) next = r;
    out[r - from] = next;
  }
  return out;
}

/** The dict form of a trading-env observation: one window per timeframe, plus `account`. */
export type DictObservation = Readonly<Record<string, Float32Array>>;

/**
 * The trading env with dict observations: `{ '15m': [w x f], '4h': ..., account: [k] }`, each a
 * row-major view onto the wrapped env's flat observation (no copy, valid until the next call).
 * The observation space is a `Dict` of Boxes.
 * @example const env = new DictObservationEnv(new CryptoTradingEnv(features));
 */
export class DictObservationEnv implements Env<DictObservation, TradingAction, TradingEnvInfo> {
  /**
   * A Dict of one Box per timeframe window ([bars, features]), plus `account` when the spec has
   * account fields.
   */
  readonly observationSpace: Dict;
  /** The wrapped env's action space. */
  readonly actionSpace: Discrete | Box;
  /** The wrapped env's flat action. */
  readonly neutralAction: TradingAction;
  private views: Record<string, Float32Array> = {};
  private viewsOf: Float32Array | null = null;
  private readonly layout: Array<{ key: string; offset: number; size: number }> = [];
  private readonly stepResult: StepResult<DictObservation, TradingEnvInfo>;

  /** Wraps `env` (which keeps stepping underneath); the dict keys follow its observation spec. */
  constructor(readonly env: CryptoTradingEnv) {
    const spec = env.builder.spec;
    const spaces: Record<string, Box> = {};
    let offset = 0;
    for (const tf of spec.timeframes) {
      const w = spec.windows[tf] ?? 0;
      const f = spec.features[tf]?.length ?? 0;
      if (w * f === 0) continue;
      spaces[tf] = new Box(-Infinity, Infinity, [w, f]);
      this.layout.push({ key: tf, offset, size: w * f });
      offset += w * f;
    }
    const nAcc = env.builder.accountFields.length;
    if (nAcc > 0) {
      const flat = env.observationSpace;
      spaces.account = new Box(flat.low.subarray(offset), flat.high.subarray(offset), [nAcc]);
      this.layout.push({ key: 'account', offset, size: nAcc });
    }
    this.observationSpace = new Dict(spaces);
    this.actionSpace = env.actionSpace;
    this.neutralAction = env.neutralAction;
    this.stepResult = [this.views, 0, false, false, blankInfo(env.actionMasks(), 0)];
  }

  private dict(flat: Float32Array): DictObservation {
    if (flat !== this.viewsOf) {
      const views: Record<string, Float32Array> = {};
      for (const l of this.layout) views[l.key] = flat.subarray(l.offset, l.offset + l.size);
      this.views = views;
      this.viewsOf = flat;
    }
    return this.views;
  }

  /** As `CryptoTradingEnv.reset`, with a dict observation. */
  reset(options: ResetOptions = {}): ResetResult<DictObservation, TradingEnvInfo> {
    const [obs, info] = this.env.reset(options);
    return [this.dict(obs), info];
  }

  /** As `CryptoTradingEnv.step`, with a dict observation. */
  step(action: TradingAction): StepResult<DictObservation, TradingEnvInfo> {
    const out = this.env.step(action);
    const res = this.stepResult;
    res[0] = this.dict(out[0]);
    res[1] = out[1];
    res[2] = out[2];
    res[3] = out[3];
    res[4] = out[4];
    return res;
  }

  /** As `CryptoTradingEnv.actionMasks`. */
  actionMasks(): Uint8Array | null {
    return this.env.actionMasks();
  }

  /** As `CryptoTradingEnv.render`. */
  render(): string {
    return this.env.render();
  }
}

/** Options of `episodeObservations`. */
export interface EpisodeObservationsOptions {
  /** First decision row of the episode. */
  startRow: number;
  /** Action of each step (index or target, as the env's action type wants); cycled if short. */
  actions: ArrayLike<number>;
  /** Options of the env (costs, windows, ...). */
  env?: TradingEnvOptions;
}

/**
 * The observations of one episode (from `startRow`, with fixed `actions`, until it ends) as a
 * matrix with one row per decision time: what the look-ahead analysis (`checkLookAhead`, `ctm
 * lookahead-check`) compares when candles after a cut are truncated or poisoned. Row r is the
 * observation at base row startRow + r; `time` is that row's close.
 * @throws {RangeError} as `CryptoTradingEnv` and its `reset` do.
 * @example checkLookAhead(candles, (c) => new Map([['env', episodeObservations(buildFeatures(c), { startRow, actions })]]))
 */
export function episodeObservations(
  features: MultiTimeframeFeatures,
  options: EpisodeObservationsOptions,
): LookAheadMatrix {
  const env = new CryptoTradingEnv(features, options.env);
  const size = env.observationSize;
  const base = features.aligned.base;
  const barMs = timeframeMs(features.base);
  const maxRows = Math.max(1, base.openTime.length - options.startRow);
  let values = new Float32Array(Math.min(maxRows, 1024) * size);
  const times: number[] = [];
  const push = (obs: Float32Array, row: number): void => {
    const r = times.length;
    if ((r + 1) * size > values.length) {
      const grown = new Float32Array(Math.min(maxRows, 2 * (r + 1)) * size);
      grown.set(values);
      values = grown;
    }
    values.set(obs, r * size);
    times.push(base.openTime[row] + barMs);
  };
  const [obs0, info0] = env.reset({ options: { startRow: options.startRow } });
  push(obs0, info0.row);
  const acts = options.actions;
  for (let k = 0; ; k++) {
    const a = acts.length === 0 ? env.neutralAction : acts[k % acts.length];
    const [obs, , term, trunc, info] = env.step(a);
    push(obs, info.row);
    if (term || trunc) break;
  }
  return {
    names: env.columnNames,
    time: Float64Array.from(times),
    values: values.subarray(0, times.length * size),
    rows: times.length,
    cols: size,
  };
}

/** Options of `checkEnvLookAhead`. */
export interface EnvLookAheadOptions extends LookAheadOptions, BuildFeaturesOptions {
  /** Options of the env (costs, windows, config; default: config/default.yaml). */
  env?: TradingEnvOptions;
  /** Seed of the random actions of the episode (default: `seed`, else 0). */
  actionSeed?: number;
}

/**
 * The look-ahead analysis of the env's observations, as `ctm lookahead-check --env` runs it: the
 * features are built as `buildFeatures` does, one episode runs from the first row an episode can
 * start at to its end with seeded random actions (a new random target with probability 1/96 per
 * step, about daily on 15m, so positions, fills, fees, funding, unrealised PnL and drawdown all
 * move without the costs of a flip every bar ending the episode), and for each cut the
 * observations at and before the cut must not change when the candles after it are truncated or
 * poisoned (`checkLookAhead`; the matrix is named `env`, its columns as `columnNames`). The check
 * sets `env.ruinEquityFraction` to 0 so that a losing random episode still covers the data; cuts
 * fall after the episode's second row.
 * @throws {DataValidationError} when no episode fits in the candles (as `CryptoTradingEnv` does).
 * @throws {DataValidationError} as `checkLookAhead` does.
 */
export function checkEnvLookAhead(
  candlesByTf: CandlesByTimeframe,
  options: EnvLookAheadOptions = {},
): LookAheadReport {
  const build: BuildFeaturesOptions = {
    spec: options.spec,
    windows: options.windows,
    mode: options.mode,
  };
  const envOptions: TradingEnvOptions = {
    ...options.env,
    env: { ...options.env?.env, randomStart: false, ruinEquityFraction: 0 },
  };
  const probe = new CryptoTradingEnv(buildFeatures(candlesByTf, build), envOptions);
  probe.reset();
  const startRow = probe.currentRow;
  const rng = new Rng(options.actionSeed ?? options.seed ?? 0);
  const steps = Math.max(1, probe.rangeEnd - startRow);
  const space = probe.actionSpace;
  const draw = (): number =>
    space instanceof Discrete ? space.start + rng.int(space.n) : 2 * rng.next() - 1;
  const actions = new Float64Array(steps);
  let action = draw();
  for (let k = 0; k < steps; k++) {
    if (rng.next() < 1 / 96) action = draw();
    actions[k] = action;
  }
  return checkLookAhead(
    candlesByTf,
    (c) =>
      new Map([
        [
          'env',
          episodeObservations(buildFeatures(c, build), { startRow, actions, env: envOptions }),
        ],
      ]),
    { label: 'lookahead env', ...options, minRow: Math.max(options.minRow ?? 0, startRow + 2) },
  );
}
