// Sanity environments: small, cheap environments whose right answer is known, so that an agent
// test can tell "learns" from "runs". `tiny` is a four-phase market whose optimal return is computed
// exactly by dynamic programming; `oracle-leak` is the real trading env (CryptoTradingEnv, Broker,
// costs on) whose observation holds the return the next action will earn; `null` is the real
// trading env on a market whose bars are shuffled, so nothing observed says anything about the next
// return and the best anyone can do after costs is stay flat. Each is a real `Env` that passes the
// env checker. Nothing here trains an agent or decides what a result means.

import type { Candles, Timeframe } from '../../data-processing/candles.js';
import { makeCandles } from '../../data-processing/candles.js';
import {
  buildFeatures,
  type FeatureMatrix,
  type FeatureSpec,
  type MultiTimeframeFeatures,
} from '../../data-processing/feature-engineering.js';
import { ConfigError, CtmError } from '../../errors.js';
import { oraclePolicy } from '../../evaluation/baselines.js';
import type { RowAwarePolicy } from '../../evaluation/backtest.js';
import { brokerConfig, type BrokerConfig, type DeepPartial } from '../../evaluation/broker.js';
import { ObservationBuilder, type ObservationSpec, type Policy } from '../../evaluation/policy.js';
import { generateBaseMarket } from '../../synthetic-data/base-process.js';
import { defaultBaseParams } from '../../synthetic-data/pattern-generator.js';
import { defaultConfig, type Config } from '../../utils/config.js';
import { Rng } from '../../utils/random.js';
import { CryptoTradingEnv, type TradingEnvOptions } from './trading-env.js';
import type { RewardsConfig } from './reward-functions.js';
import {
  Box,
  Discrete,
  type Env,
  type ResetOptions,
  type ResetResult,
  type StepResult,
} from './spaces.js';

/** Names of the sanity environments. */
export const SANITY_ENVS = ['tiny', 'oracle-leak', 'null'] as const;
/** One sanity environment. */
export type SanityEnvName = (typeof SANITY_ENVS)[number];

// ---------------------------------------------------------------------------------------------
// tiny

/** Options of `TinyEnv`. */
export interface TinyEnvOptions {
  /**
   * Simple return of the market in each phase; the phase cycles 0, 1, ..., K-1, 0, ... and an
   * action taken in phase k earns `level x phaseReturns[k]`. Default [0.02, 0.004, -0.02, -0.004].
   */
  phaseReturns?: readonly number[];
  /** Fee per unit of position change (fraction of equity). Default 0.005. */
  feeRate?: number;
  /** Position levels of the actions (must include 0). Default [-1, 0, 1]. */
  levels?: readonly number[];
  /** Steps per episode (then truncated). Default 32 (eight cycles of the default phases). */
  episodeSteps?: number;
}

/** The info object of `TinyEnv` (reused: valid until the next step or reset). */
export interface TinyEnvInfo {
  /** Phase of the current observation. */
  phase: number;
  /** Index of the position level held. */
  levelIndex: number;
  /** Position held (a level). */
  position: number;
  /** Steps since reset. */
  steps: number;
  /** Equity relative to the start (exp of the summed rewards). */
  equity: number;
  /** Allowed actions (all of them). */
  actionMask: Uint8Array;
  /** The final observation when the episode ended at this step, else null. */
  finalObservation: Float32Array | null;
}

/**
 * The smallest market with a known answer. The state is (phase, position held); the observation is
 * the phase one-hot then the position level (K + 1 floats). An action picks a position level; the
 * step's reward is `log(1 - feeRate x |new - old|) + log(1 + new x phaseReturns[phase])` (the log
 * equity change after the fee), then the phase advances. Every episode starts in phase 0, flat,
 * and is truncated after `episodeSteps` steps. Deterministic: one episode per policy says all.
 * `optimalReturn` is the largest episode return any policy can earn (dynamic programming over
 * steps, phases and positions); `optimalAction(phase, levelIndex)` is a stationary policy (optimal
 * for the discounted infinite-horizon problem, gamma 0.99) that needs only the observation, and
 * earns `optimalReturn` with the defaults (the tests check it).
 * @example
 * const env = new TinyEnv();
 * env.optimalReturn; // ln of the best equity multiple of an episode
 */
export class TinyEnv implements Env<Float32Array, number, TinyEnvInfo> {
  /** Box of K one-hot phase flags in [0, 1] and the position level in [min, max level]. */
  readonly observationSpace: Box;
  /** Discrete(levels.length): the index of the position level to hold. */
  readonly actionSpace: Discrete;
  /** The flat level's index. */
  readonly neutralAction: number;
  /** Position levels of the actions. */
  readonly levels: Float64Array;
  /** Simple return of each phase. */
  readonly phaseReturns: Float64Array;
  /** Fee per unit of position change. */
  readonly feeRate: number;
  /** Steps per episode. */
  readonly episodeSteps: number;
  /** The best episode return (sum of rewards) any policy can earn, by dynamic programming. */
  readonly optimalReturn: number;
  private readonly stationary: Int32Array;
  private readonly obs: Float32Array;
  private readonly mask: Uint8Array;
  private phase = 0;
  private level = 0;
  private t = 0;
  private logEquity = 0;
  private done = true;
  private readonly stepInfo: TinyEnvInfo;
  private readonly resetInfo: TinyEnvInfo;
  private readonly stepResult: StepResult<Float32Array, TinyEnvInfo>;

  /** @throws {RangeError} on empty or non-finite returns or levels, levels without 0, or a return that ruins a level. */
  constructor(options: TinyEnvOptions = {}) {
    this.phaseReturns = Float64Array.from(options.phaseReturns ?? [0.02, 0.004, -0.02, -0.004]);
    this.levels = Float64Array.from(options.levels ?? [-1, 0, 1]);
    this.feeRate = options.feeRate ?? 0.005;
    this.episodeSteps = options.episodeSteps ?? 32;
    const K = this.phaseReturns.length;
    const L = this.levels.length;
    if (K === 0 || L === 0)
      throw new RangeError('TinyEnv: phaseReturns and levels must not be empty');
    if (!(Number.isInteger(this.episodeSteps) && this.episodeSteps > 0))
      throw new RangeError(
        `TinyEnv: episodeSteps must be a positive integer, got ${this.episodeSteps}`,
      );
    if (!(this.feeRate >= 0)) throw new RangeError(`TinyEnv: feeRate ${this.feeRate} must be >= 0`);
    const flat = this.levels.indexOf(0);
    if (flat < 0) throw new RangeError('TinyEnv: the levels must include 0 (flat)');
    let lo = Infinity;
    let hi = -Infinity;
    for (const l of this.levels) {
      lo = Math.min(lo, l);
      hi = Math.max(hi, l);
    }
    for (let k = 0; k < K; k++)
      for (let a = 0; a < L; a++)
        if (!(1 + this.levels[a] * this.phaseReturns[k] > 0))
          throw new RangeError(`TinyEnv: level ${this.levels[a]} is ruined in phase ${k}`);
    for (let a = 0; a < L; a++)
      for (let b = 0; b < L; b++)
        if (!(1 - this.feeRate * Math.abs(this.levels[a] - this.levels[b]) > 0))
          throw new RangeError('TinyEnv: the fee of a change of level takes all the equity');
    this.neutralAction = flat;
    this.actionSpace = new Discrete(L);
    const low = new Float64Array(K + 1);
    const high = new Float64Array(K + 1).fill(1);
    low[K] = lo;
    high[K] = hi;
    this.observationSpace = new Box(low, high, [K + 1]);
    this.obs = new Float32Array(K + 1);
    this.mask = new Uint8Array(L).fill(1);
    this.optimalReturn = this.finiteHorizonOptimum();
    this.stationary = this.discountedPolicy(0.99);
    this.stepInfo = this.blankInfo();
    this.resetInfo = this.blankInfo();
    this.stepResult = [this.obs, 0, false, false, this.stepInfo];
  }

  /** Reward of holding level b (after level a) in phase k. */
  reward(k: number, a: number, b: number): number {
    const lb = this.levels[b];
    return (
      Math.log(1 - this.feeRate * Math.abs(lb - this.levels[a])) +
      Math.log(1 + lb * this.phaseReturns[k])
    );
  }

  /** V[t][k][a] backwards from V[H] = 0; the episode starts at t = 0, phase 0, flat. */
  private finiteHorizonOptimum(): number {
    const K = this.phaseReturns.length;
    const L = this.levels.length;
    let next = new Float64Array(K * L);
    let cur = new Float64Array(K * L);
    for (let t = this.episodeSteps - 1; t >= 0; t--) {
      for (let k = 0; k < K; k++)
        for (let a = 0; a < L; a++) {
          let best = -Infinity;
          for (let b = 0; b < L; b++)
            best = Math.max(best, this.reward(k, a, b) + next[((k + 1) % K) * L + b]);
          cur[k * L + a] = best;
        }
      [next, cur] = [cur, next];
    }
    return next[0 * L + this.levels.indexOf(0)];
  }

  /** Greedy action per (phase, level) of the discounted problem, by value iteration. */
  private discountedPolicy(gamma: number): Int32Array {
    const K = this.phaseReturns.length;
    const L = this.levels.length;
    let v = new Float64Array(K * L);
    let w = new Float64Array(K * L);
    const policy = new Int32Array(K * L);
    for (let iter = 0; iter < 5000; iter++) {
      let delta = 0;
      for (let k = 0; k < K; k++)
        for (let a = 0; a < L; a++) {
          let best = -Infinity;
          let arg = 0;
          for (let b = 0; b < L; b++) {
            const q = this.reward(k, a, b) + gamma * v[((k + 1) % K) * L + b];
            if (q > best + 1e-15) {
              best = q;
              arg = b;
            }
          }
          w[k * L + a] = best;
          policy[k * L + a] = arg;
          delta = Math.max(delta, Math.abs(best - v[k * L + a]));
        }
      [v, w] = [w, v];
      if (delta < 1e-13) break;
    }
    return policy;
  }

  /** The stationary optimal action (a level index) in `phase` holding level `levelIndex`. */
  optimalAction(phase: number, levelIndex: number): number {
    return this.stationary[phase * this.levels.length + levelIndex];
  }

  /**
   * The episode return of a stationary policy given as `action(phase, levelIndex)` (the env is
   * deterministic, so one episode is exact).
   */
  policyReturn(action: (phase: number, levelIndex: number) => number): number {
    let k = 0;
    let a = this.neutralAction;
    let sum = 0;
    for (let t = 0; t < this.episodeSteps; t++) {
      const b = action(k, a);
      sum += this.reward(k, a, b);
      a = b;
      k = (k + 1) % this.phaseReturns.length;
    }
    return sum;
  }

  private blankInfo(): TinyEnvInfo {
    return {
      phase: 0,
      levelIndex: this.neutralAction,
      position: 0,
      steps: 0,
      equity: 1,
      actionMask: this.mask,
      finalObservation: null,
    };
  }

  private writeObs(): void {
    const K = this.phaseReturns.length;
    this.obs.fill(0);
    this.obs[this.phase] = 1;
    this.obs[K] = this.levels[this.level];
  }

  private fill(info: TinyEnvInfo, ended: boolean): void {
    info.phase = this.phase;
    info.levelIndex = this.level;
    info.position = this.levels[this.level];
    info.steps = this.t;
    info.equity = Math.exp(this.logEquity);
    info.finalObservation = ended ? this.obs : null;
  }

  /** Phase 0, flat. The seed is accepted and unused (the env holds no randomness). */
  reset(_options: ResetOptions = {}): ResetResult<Float32Array, TinyEnvInfo> {
    this.phase = 0;
    this.level = this.neutralAction;
    this.t = 0;
    this.logEquity = 0;
    this.done = false;
    this.writeObs();
    this.fill(this.resetInfo, false);
    return [this.obs, this.resetInfo];
  }

  /**
   * Holds level `action` through the current phase.
   * @throws {RangeError} on an action outside the action space; {CtmError} before reset or after
   *   the episode ended.
   */
  step(action: number): StepResult<Float32Array, TinyEnvInfo> {
    if (this.done)
      throw new CtmError('step() called before reset() or after the episode ended', {
        hint: 'call reset() to start an episode',
      });
    if (!this.actionSpace.contains(action))
      throw new RangeError(
        `step: action ${String(action)} is not in Discrete(${this.levels.length})`,
      );
    const r = this.reward(this.phase, this.level, action);
    this.level = action;
    this.phase = (this.phase + 1) % this.phaseReturns.length;
    this.t++;
    this.logEquity += r;
    const truncated = this.t >= this.episodeSteps;
    this.done = truncated;
    this.writeObs();
    this.fill(this.stepInfo, truncated);
    const res = this.stepResult;
    res[1] = r;
    res[3] = truncated;
    return res;
  }

  /** Every action is allowed (a reused buffer of ones). */
  actionMasks(): Uint8Array {
    return this.mask;
  }

  /** One line: phase, position, step and equity. */
  render(): string {
    return `TinyEnv phase=${this.phase} position=${this.levels[this.level]} step=${this.t} equity=${Math.exp(this.logEquity).toFixed(6)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// oracle-leak and null: the real trading env on small synthetic markets

/** Options of `oracleLeakMarket` and `nullMarket`. */
export interface SanityMarketOptions {
  /** Seed of the market (default 0). */
  seed?: number;
  /** Steps per episode (truncated after them). Default 256. */
  episodeSteps?: number;
  /** Disjoint evaluation episodes after the training rows. Default 8. */
  evaluationEpisodes?: number;
  /** Base rows of the training part (episodes drawn anywhere inside). Default 3072 (32 days of 15m). */
  trainRows?: number;
  /** Multiplier of the base process's volatility. Default 1. */
  volatilityScale?: number;
  /** Base config (broker fees, position levels, seed of the start rows). Default config/default.yaml. */
  config?: Config;
  /** Overrides of the broker section (e.g. `{ takerFeeRate: 0 }` to switch costs off). */
  broker?: DeepPartial<BrokerConfig>;
}

/** Which rows an env of a sanity market runs on. */
export type SanityPart = 'train' | 'evaluation';

/** Rows before the first episode (the features' warm-up fits in them). */
const WARMUP_ROWS = 64;
/** The sanity markets' timeframe. */
const SANITY_TF: Timeframe = '15m';
const ROWS_PER_DAY = 96;

/** The pnl reward alone: an episode's return is its log equity growth after every cost. */
const PNL_ONLY: RewardsConfig = {
  pnl: 1,
  differentialSharpe: 0,
  differentialDownside: 0,
  drawdownPenalty: 0,
  turnoverPenalty: 0,
  eta: 0.01,
  riskFreeRate: 0,
};

/** The feature registry of the sanity markets: two returns and the SMA ratios sma-cross reads. */
function sanityFeatureSpec(base: FeatureSpec): FeatureSpec {
  return {
    ...base,
    alignment: 'last-closed',
    returns: [1, 4],
    sma: [10, 20],
    ema: [],
    rsi: [],
    macd: [],
    bollinger: [],
    atr: [],
    adx: [],
    stochastic: [],
    williamsR: [],
    cci: [],
    roc: [],
    obv: [],
    mfi: [],
    vwap: [],
    vwapDaily: false,
    donchian: [],
    keltner: [],
    realizedVol: [],
    volumeZ: [],
    candleShape: false,
    supportResistance: { ...base.supportResistance, enabled: false },
    cross: {
      ...base.cross,
      trend: false,
      rangePosition: false,
      supportResistance: false,
      rsi: false,
      volatilityRatio: false,
      timeOfDay: false,
      dayOfWeek: false,
      staleness: false,
    },
  };
}

/** The base features plus extra base-timeframe columns (single-timeframe features only). */
function withBaseColumns(
  f: MultiTimeframeFeatures,
  extra: ReadonlyArray<{ name: string; values: Float64Array }>,
): MultiTimeframeFeatures {
  const m = f.perTimeframe.get(f.base) as FeatureMatrix;
  const cols = m.cols + extra.length;
  const values = new Float32Array(m.rows * cols);
  for (let r = 0; r < m.rows; r++) {
    values.set(m.values.subarray(r * m.cols, (r + 1) * m.cols), r * cols);
    for (let j = 0; j < extra.length; j++) values[r * cols + m.cols + j] = extra[j].values[r];
  }
  const names = [...m.names, ...extra.map((e) => e.name)];
  const matrix: FeatureMatrix = {
    timeframe: f.base,
    names,
    time: m.time,
    values,
    rows: m.rows,
    cols,
  };
  const decision: FeatureMatrix = { ...matrix, names: names.map((n) => `${f.base}.${n}`) };
  return {
    base: f.base,
    timeframes: f.timeframes,
    perTimeframe: new Map([[f.base, matrix]]),
    rowIndex: f.rowIndex,
    aligned: f.aligned,
    decisionRows: decision,
    firstValidRow: f.firstValidRow,
    windows: f.windows,
    spec: f.spec,
  };
}

/**
 * A sanity market: features on one 15m market split into training rows and disjoint evaluation
 * episodes, with the trading env on either part. Every env runs the real CryptoTradingEnv and
 * Broker (config broker as a spot market: fees, slippage and borrow on, no funding to earn), with
 * the pnl reward only, so an episode's return (the sum of its rewards) is its log equity growth
 * after every cost.
 */
export class SanityMarket {
  /** `oracle-leak` or `null`. */
  readonly name: Exclude<SanityEnvName, 'tiny'>;
  /** The market's features (base 15m only). */
  readonly features: MultiTimeframeFeatures;
  /** What the envs observe (a handful of named features and the position). */
  readonly observation: ObservationSpec;
  /** Steps per episode. */
  readonly episodeSteps: number;
  /** Decision rows the evaluation episodes start at (disjoint, after the training rows). */
  readonly evaluationStarts: Int32Array;
  /** Base rows [from, to) of the training part. */
  readonly trainRows: readonly [number, number];
  /** Base rows [from, to) of the evaluation part. */
  readonly evaluationRows: readonly [number, number];
  /** The resolved config the envs are built from (broker as a spot market). */
  readonly config: Config;
  private oracleCache: Float64Array | null = null;

  /** @internal Built by `oracleLeakMarket` / `nullMarket`. */
  constructor(
    name: Exclude<SanityEnvName, 'tiny'>,
    features: MultiTimeframeFeatures,
    observation: ObservationSpec,
    config: Config,
    episodeSteps: number,
    trainRows: number,
    evaluationEpisodes: number,
  ) {
    this.name = name;
    this.features = features;
    this.observation = observation;
    this.config = config;
    this.episodeSteps = episodeSteps;
    const from = WARMUP_ROWS;
    const e0 = from + trainRows;
    this.trainRows = [from, e0 + 1];
    this.evaluationRows = [e0, e0 + evaluationEpisodes * episodeSteps + 1];
    this.evaluationStarts = Int32Array.from(
      { length: evaluationEpisodes },
      (_, k) => e0 + k * episodeSteps,
    );
    if (features.firstValidRow > from)
      throw new CtmError(`sanity market: features valid only from row ${features.firstValidRow}`);
  }

  /** The env options of a part (continuous actions when `continuous`). */
  envOptions(part: SanityPart, continuous = false): TradingEnvOptions {
    return {
      config: this.config,
      observation: this.observation,
      rewards: PNL_ONLY,
      env: {
        maxEpisodeSteps: this.episodeSteps,
        randomStart: true,
        actionType: continuous ? 'continuous' : 'discrete',
      },
      rowRange: part === 'train' ? this.trainRows : this.evaluationRows,
    };
  }

  /**
   * A trading env on the training rows (episodes start anywhere in them) or the evaluation rows
   * (reset with `{ options: { startRow } }` at each of `evaluationStarts`).
   */
  makeEnv(part: SanityPart = 'train', seed?: number): CryptoTradingEnv {
    return new CryptoTradingEnv(this.features, { ...this.envOptions(part), seed });
  }

  /**
   * Runs `policy` through the evaluation env from each of `evaluationStarts` (a fresh `reset` and
   * `startAt` per episode; targets go to the broker as they are) and returns each episode's return
   * (log equity growth after costs).
   */
  episodeReturns(policy: Policy): Float64Array {
    const env = new CryptoTradingEnv(this.features, this.envOptions('evaluation', true));
    const builder = new ObservationBuilder(this.features, policy.observation);
    const obs = new Float32Array(builder.size);
    const out = new Float32Array(1);
    const action = new Float32Array(1);
    const returns = new Float64Array(this.evaluationStarts.length);
    const rowAware = typeof (policy as Partial<RowAwarePolicy>).startAt === 'function';
    this.evaluationStarts.forEach((start, k) => {
      env.reset({ options: { startRow: start } });
      policy.reset?.(1);
      if (rowAware) (policy as RowAwarePolicy).startAt(start);
      let sum = 0;
      for (;;) {
        builder.build(env.currentRow, env.broker.account, obs, 0);
        policy.act(obs, 1, out);
        action[0] = out[0];
        const [, reward, term, trunc] = env.step(action);
        sum += reward;
        if (term || trunc) break;
      }
      returns[k] = sum;
    });
    return returns;
  }

  /**
   * The perfect-foresight oracle's return (log equity growth after costs) on each evaluation
   * episode: `oraclePolicy` (the best sequence of the env's levels given every future open and the
   * taker fee) run through the same env and broker.
   */
  oracleEpisodeReturns(): Float64Array {
    this.oracleCache ??= this.episodeReturns(
      oraclePolicy(this.features, {
        feeRate: this.config.broker.takerFeeRate,
        levels: this.config.env.positionLevels,
      }),
    );
    return Float64Array.from(this.oracleCache);
  }

  /** Mean of `oracleEpisodeReturns()`: the number an agent's mean evaluation return is held to. */
  oracleReturn(): number {
    const r = this.oracleEpisodeReturns();
    let s = 0;
    for (const x of r) s += x;
    return s / r.length;
  }
}

interface ResolvedSanity {
  seed: number;
  episodeSteps: number;
  evaluationEpisodes: number;
  trainRows: number;
  volatilityScale: number;
  config: Config;
  rows: number;
}

function resolveSanity(options: SanityMarketOptions): ResolvedSanity {
  const base = options.config ?? defaultConfig();
  const episodeSteps = options.episodeSteps ?? 256;
  const evaluationEpisodes = options.evaluationEpisodes ?? 8;
  const trainRows = options.trainRows ?? 32 * ROWS_PER_DAY;
  for (const [key, v] of [
    ['episodeSteps', episodeSteps],
    ['evaluationEpisodes', evaluationEpisodes],
    ['trainRows', trainRows],
  ] as const)
    if (!(Number.isInteger(v) && v > 0))
      throw new RangeError(`sanity market: ${key} must be a positive integer, got ${v}`);
  if (trainRows < episodeSteps + 1)
    throw new RangeError(
      `sanity market: trainRows ${trainRows} holds no episode of ${episodeSteps} steps`,
    );
  const config: Config = {
    ...base,
    broker: brokerConfig({ ...(options.broker ?? {}), marketType: 'spot' }, base.broker),
  };
  if (!config.env.positionLevels.includes(0))
    throw new ConfigError('env.positionLevels', 'the levels must include 0 (flat)');
  return {
    seed: options.seed ?? 0,
    episodeSteps,
    evaluationEpisodes,
    trainRows,
    volatilityScale: options.volatilityScale ?? 1,
    config,
    // Warm-up, training rows, evaluation episodes, and two rows for the last next-open return.
    rows: WARMUP_ROWS + trainRows + evaluationEpisodes * episodeSteps + 2,
  };
}

/** 15m candles of the base process (the shipped BTC calibration), at least `rows` of them. */
function baseCandles(s: ResolvedSanity, label: string): Candles {
  const days = Math.ceil(s.rows / ROWS_PER_DAY) + 1;
  const m = generateBaseMarket(defaultBaseParams(), {
    seed: new Rng(s.seed).fork(label).nextU32(),
    days,
    volatilityScale: s.volatilityScale,
  });
  return m.m15;
}

function sanityFeatures(candles: Candles, config: Config): MultiTimeframeFeatures {
  return buildFeatures(new Map([[SANITY_TF, candles]]), {
    spec: sanityFeatureSpec(config.features),
    windows: { [SANITY_TF]: 1 },
  });
}

/**
 * The `oracle-leak` market: base-process candles whose observation includes `next_return_z`, the
 * log return from the next bar's open (where the action fills) to the open after it (where the
 * next action fills), divided by the market's per-bar standard deviation: the exact return the
 * position chosen now will earn. Observation: `next_return_z`, `ret_1` and the position. An agent
 * that reads it earns most of what the perfect-foresight oracle earns (`oracleReturn()`), after
 * costs; one that does not learn it earns about nothing.
 * @throws {RangeError} on non-positive sizes.
 */
export function oracleLeakMarket(options: SanityMarketOptions = {}): SanityMarket {
  const s = resolveSanity(options);
  const candles = baseCandles(s, 'oracle-leak');
  const { open } = candles;
  const n = open.length;
  const leak = new Float64Array(n).fill(NaN);
  let sum = 0;
  let sum2 = 0;
  for (let i = 0; i + 2 < n; i++) {
    const r = Math.log(open[i + 2] / open[i + 1]);
    leak[i] = r;
    sum += r;
    sum2 += r * r;
  }
  const m = n - 2;
  const sd = Math.sqrt(Math.max(1e-30, sum2 / m - (sum / m) ** 2));
  for (let i = 0; i < m; i++) leak[i] /= sd;
  const features = withBaseColumns(sanityFeatures(candles, s.config), [
    { name: 'next_return_z', values: leak },
  ]);
  const observation: ObservationSpec = {
    timeframes: [SANITY_TF],
    windows: { [SANITY_TF]: 1 },
    features: { [SANITY_TF]: ['next_return_z', 'ret_1'] },
    account: ['position'],
  };
  return new SanityMarket(
    'oracle-leak',
    features,
    observation,
    s.config,
    s.episodeSteps,
    s.trainRows,
    s.evaluationEpisodes,
  );
}

/**
 * The `null` market: the bars of a base-process market (close-to-close log return, upper and lower
 * wick, volume) in a seeded random order, each bar opening at the previous close, with the log
 * returns of every episode-length block (training blocks and each evaluation episode's held bars)
 * shifted to sum to exactly zero, and every odd evaluation episode the mirror image of the one
 * before (returns negated, wicks swapped). Past returns and moving averages then say nothing about
 * the next return, no position has a drift to earn, and holding one costs fees and borrow: flat
 * (return 0) is the best any policy that does not see the future can do. Buy-and-hold loses exactly
 * its entry fee on every evaluation episode, and a policy blind to the observation that repeats its
 * actions on every episode (the seeded random baseline) loses over each mirrored pair: its long
 * bars cancel and its short bars lose (log(2 - e^r) + log(2 - e^-r) <= 0). Observation: `ret_1`,
 * `ret_4`, `close_sma_10`, `close_sma_20` and the position.
 * @throws {RangeError} on non-positive sizes.
 */
export function nullMarket(options: SanityMarketOptions = {}): SanityMarket {
  const s = resolveSanity(options);
  const src = baseCandles(s, 'null');
  const n = s.rows;
  const rng = new Rng(s.seed).fork('null-shuffle');
  // Source bars 1.. (bar 0 has no previous close), shuffled.
  const order = Int32Array.from({ length: src.open.length - 1 }, (_, j) => j + 1);
  for (let j = order.length - 1; j > 0; j--) {
    const k = rng.int(j + 1);
    const t = order[j];
    order[j] = order[k];
    order[k] = t;
  }
  const ret = new Float64Array(n);
  const up = new Float64Array(n);
  const down = new Float64Array(n);
  const volume = new Float64Array(n);
  for (let i = 1; i < n; i++) {
    const j = order[i - 1];
    ret[i] = Math.log(src.close[j] / src.close[j - 1]);
    up[i] = Math.log(src.high[j] / Math.max(src.open[j], src.close[j]));
    down[i] = Math.log(Math.min(src.open[j], src.close[j]) / src.low[j]);
    volume[i] = src.volume[j];
  }
  volume[0] = src.volume[0];
  // Zero-sum blocks: an episode from decision row s holds bars s+1 ... s+L.
  const L = s.episodeSteps;
  const zeroSum = (from: number, to: number): void => {
    let m = 0;
    for (let i = from; i < to; i++) m += ret[i];
    m /= to - from;
    for (let i = from; i < to; i++) ret[i] -= m;
  };
  const e0 = WARMUP_ROWS + s.trainRows;
  for (let b = WARMUP_ROWS + 1; b < e0 + 1; b += L) zeroSum(b, Math.min(b + L, e0 + 1));
  for (let k = 0; k < s.evaluationEpisodes; k++) {
    const from = e0 + k * L + 1;
    if (k % 2 === 0) zeroSum(from, from + L);
    else
      for (let i = from; i < from + L; i++) {
        // The mirror of the episode before: returns negated, wicks swapped.
        ret[i] = -ret[i - L];
        up[i] = down[i - L];
        down[i] = up[i - L];
        volume[i] = volume[i - L];
      }
  }
  const openTime = new Float64Array(n);
  const open = new Float64Array(n);
  const high = new Float64Array(n);
  const low = new Float64Array(n);
  const close = new Float64Array(n);
  const barMs = src.openTime[1] - src.openTime[0];
  let logPrice = Math.log(src.open[0]);
  for (let i = 0; i < n; i++) {
    openTime[i] = src.openTime[0] + i * barMs;
    const o = Math.exp(logPrice);
    logPrice += i === 0 ? Math.log(src.close[0] / src.open[0]) : ret[i];
    const c = Math.exp(logPrice);
    open[i] = o;
    close[i] = c;
    high[i] = Math.max(o, c) * Math.exp(i === 0 ? 0 : up[i]);
    low[i] = Math.min(o, c) * Math.exp(i === 0 ? 0 : -down[i]);
  }
  const candles = makeCandles(src.symbol, SANITY_TF, { openTime, open, high, low, close, volume });
  const observation: ObservationSpec = {
    timeframes: [SANITY_TF],
    windows: { [SANITY_TF]: 1 },
    features: { [SANITY_TF]: ['ret_1', 'ret_4', 'close_sma_10', 'close_sma_20'] },
    account: ['position'],
  };
  return new SanityMarket(
    'null',
    sanityFeatures(candles, s.config),
    observation,
    s.config,
    s.episodeSteps,
    s.trainRows,
    s.evaluationEpisodes,
  );
}

/**
 * A sanity env by name: `tiny` (a `TinyEnv`), or the training env of the `oracle-leak` or `null`
 * market (build the market with `oracleLeakMarket` / `nullMarket` for its evaluation episodes and
 * oracle).
 */
export function sanityEnv(name: 'tiny', options?: TinyEnvOptions): TinyEnv;
export function sanityEnv(
  name: 'oracle-leak' | 'null',
  options?: SanityMarketOptions,
): CryptoTradingEnv;
export function sanityEnv(
  name: SanityEnvName,
  options: SanityMarketOptions & TinyEnvOptions = {},
): TinyEnv | CryptoTradingEnv {
  if (name === 'tiny') return new TinyEnv(options);
  const market = name === 'oracle-leak' ? oracleLeakMarket(options) : nullMarket(options);
  return market.makeEnv('train', options.seed);
}
