// The trading env on a scenario's markets: one CryptoTradingEnv per market (its range, the
// scenario's episode length, the config's costs and observation), and an env that draws a market
// per episode so that an agent (or each slot of a VecEnv) trains on all of them. It only routes
// calls to the per-market envs; execution, rewards and observations are theirs.

import type { ScenarioMarket } from '../../evaluation/scenarios.js';
import { Rng, type RngState } from '../../utils/random.js';
import {
  CryptoTradingEnv,
  type TradingAction,
  type TradingEnvInfo,
  type TradingEnvOptions,
} from './trading-env.js';
import type {
  Box,
  Discrete,
  Env,
  EnvSnapshot,
  ObservationCodec,
  ResetOptions,
  ResetResult,
  StepResult,
} from './spaces.js';

/**
 * A CryptoTradingEnv on one scenario market: episodes inside the market's range (never in the
 * features' warm-up), truncated after the scenario's `episodeSteps` unless `options.env` says
 * otherwise.
 * @throws as `CryptoTradingEnv` does.
 */
export function marketEnv(
  market: ScenarioMarket,
  options: TradingEnvOptions = {},
): CryptoTradingEnv {
  return new CryptoTradingEnv(market.features, {
    ...options,
    env: { maxEpisodeSteps: market.episodeSteps, ...options.env },
    timeRange: market.range,
  });
}

/**
 * An env over several markets of a scenario: each `reset` draws a market uniformly (seeded) and
 * starts an episode there, so one env trains on every market. `reset({ options: { market: k } })`
 * picks market k (then `startRow`, when given, is a row of that market). Observations, actions
 * and info are those of the per-market `CryptoTradingEnv`s (which share one observation layout:
 * the markets' features come from one config).
 * @example
 * const train = await scenarioMarkets(config, 'trend', 'train');
 * const vec = new VecEnv(Array.from({ length: 8 }, (_, i) => new ScenarioEnv(train, { config, seed: i })));
 */
export class ScenarioEnv implements Env<Float32Array, TradingAction, TradingEnvInfo> {
  /** One env per market, in the markets' order. */
  readonly envs: readonly CryptoTradingEnv[];
  /** The markets. */
  readonly markets: readonly ScenarioMarket[];
  /** The per-market envs' observation space (the same for every market). */
  readonly observationSpace: Box;
  /** The per-market envs' action space. */
  readonly actionSpace: Discrete | Box;
  /** The action that keeps the account flat. */
  readonly neutralAction: TradingAction;
  private current: CryptoTradingEnv;
  private marketIndex = 0;
  private rng: Rng;
  /** Seeds each market env takes at its next reset (after a seeded reset of this env). */
  private readonly pendingSeeds: Array<number | undefined>;

  /**
   * @param markets the markets to draw from (at least one)
   * @param options env options of every market env (config, costs, observation); `seed` seeds the
   *   market draws (and each market env's start rows)
   * @throws {RangeError} without markets or when the markets' observation sizes differ.
   */
  constructor(markets: readonly ScenarioMarket[], options: TradingEnvOptions = {}) {
    if (markets.length === 0) throw new RangeError('ScenarioEnv: no markets');
    this.markets = markets;
    const seed = options.seed ?? options.config?.seed ?? 0;
    this.envs = markets.map((m, k) =>
      marketEnv(m, {
        ...options,
        seed: new Rng(seed).fork(`market-${k}`).nextU32(),
        marketIndex: k,
      }),
    );
    const first = this.envs[0];
    for (const [k, e] of this.envs.entries())
      if (e.observationSize !== first.observationSize)
        throw new RangeError(
          `ScenarioEnv: market ${markets[k].name} has ${e.observationSize} observation floats, ${markets[0].name} ${first.observationSize}`,
        );
    this.observationSpace = first.observationSpace;
    this.actionSpace = first.actionSpace;
    this.neutralAction = first.neutralAction;
    this.current = first;
    this.rng = new Rng(seed);
    this.pendingSeeds = markets.map(() => undefined);
  }

  /** The env of the current episode's market. */
  get env(): CryptoTradingEnv {
    return this.current;
  }

  /** Index of the current episode's market. */
  get market(): number {
    return this.marketIndex;
  }

  /** Floats per observation. */
  get observationSize(): number {
    return this.current.observationSize;
  }

  /**
   * Draws a market (or takes `options.market`) and resets its env; `seed` reseeds the draws and
   * every market env (each at its next episode).
   * @throws {RangeError} for a market index out of range, and as `CryptoTradingEnv.reset` does.
   */
  reset(options: ResetOptions = {}): ResetResult<Float32Array, TradingEnvInfo> {
    if (options.seed !== undefined) {
      // Reseed the draws now and each market env at its next episode.
      this.rng = new Rng(options.seed);
      for (let k = 0; k < this.envs.length; k++)
        this.pendingSeeds[k] = new Rng(options.seed).fork(`market-${k}`).nextU32();
    }
    const forced = options.options?.market;
    let k: number;
    if (forced !== undefined) {
      if (!(
        typeof forced === 'number' &&
        Number.isInteger(forced) &&
        forced >= 0 &&
        forced < this.envs.length
      ))
        throw new RangeError(`reset: market ${String(forced)} is not in [0, ${this.envs.length})`);
      k = forced;
    } else k = this.rng.int(this.envs.length);
    this.marketIndex = k;
    this.current = this.envs[k];
    const rest: Record<string, unknown> = { ...options.options };
    delete rest.market;
    const seed = this.pendingSeeds[k];
    this.pendingSeeds[k] = undefined;
    return this.current.reset(seed === undefined ? { options: rest } : { seed, options: rest });
  }

  /** Steps the current market's env. */
  step(action: TradingAction): StepResult<Float32Array, TradingEnvInfo> {
    return this.current.step(action);
  }

  /** The current market env's action mask. */
  actionMasks(): Uint8Array | null {
    return this.current.actionMasks();
  }

  /** Makes every market env write its observations into `buffer`. */
  useObservationBuffer(buffer: Float32Array): void {
    for (const e of this.envs) e.useObservationBuffer(buffer);
  }

  /**
   * Observations as six floats: the market index, then the market env's record (base row and
   * account fields), rebuilt by that market's env, bit for bit.
   */
  observationCodec(): ObservationCodec<TradingEnvInfo> {
    const codecs = this.envs.map((e) => e.observationCodec());
    const inner = codecs[0].size;
    return {
      size: inner + 1,
      encode(info, out, offset) {
        out[offset] = info.market;
        codecs[info.market].encode(info, out, offset + 1);
      },
      current: (out, offset) => {
        out[offset] = this.marketIndex;
        codecs[this.marketIndex].current(out, offset + 1);
      },
      decode(record, offset, out, outOffset) {
        codecs[record[offset]].decode(record, offset + 1, out, outOffset);
      },
    };
  }

  /** The state: the market draws, the pending seeds and every market env's state. */
  snapshot(): EnvSnapshot {
    return {
      market: this.marketIndex,
      rng: this.rng.getState(),
      pendingSeeds: [...this.pendingSeeds],
      envs: this.envs.map((e) => e.snapshot()),
    };
  }

  /**
   * Restores a state from `snapshot` (the current market's env last, so its observation is the one
   * in a shared buffer).
   * @throws {RangeError} when the snapshot is of another number of markets.
   */
  restore(snapshot: EnvSnapshot): void {
    const s = snapshot as {
      market: number;
      rng: RngState;
      pendingSeeds: Array<number | null>;
      envs: EnvSnapshot[];
    };
    if (s.envs.length !== this.envs.length)
      throw new RangeError(
        `restore: ${s.envs.length} markets in the snapshot, ${this.envs.length} here`,
      );
    this.envs.forEach((e, k) => {
      if (k !== s.market) e.restore(s.envs[k]);
    });
    this.envs[s.market].restore(s.envs[s.market]);
    this.marketIndex = s.market;
    this.current = this.envs[s.market];
    this.rng.setState(s.rng);
    s.pendingSeeds.forEach((v, k) => (this.pendingSeeds[k] = v ?? undefined));
  }

  /** The current market env's rendering, prefixed with the market's name. */
  render(): string {
    return `${this.markets[this.marketIndex].name}: ${this.current.render()}`;
  }
}
