// The paper (and, behind its switch, live) trading loop: warms the streaming features up on stored
// candles, follows the exchange one closed candle at a time, asks the policy at each base close
// and hands the target to the one Broker of the backtests (next-open fill, slippage, fees,
// funding), journaling every bar before the next one is read. A restart replays the journal
// through the same path (features, policy, broker) and carries on with the next candle: no bar is
// used twice and none is skipped. The shadow check compares every observation, bit for bit, with
// the one a backtest computes from the stored candles, and halts new orders on any difference.
// Never sends an order without a venue, and only `openLiveVenue` (behind --live) makes one.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  lowerBound,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import {
  buildFeatures,
  StreamingFeatures,
  type MultiTimeframeFeatures,
  type StreamCandle,
} from '../data-processing/feature-engineering.js';
import { CheckpointError, ConfigError, DataValidationError, UsageError } from '../errors.js';
import { Broker, type CcxtMarketLike, type Fill } from '../evaluation/broker.js';
import {
  ObservationBuilder,
  observationColumnNames,
  type AccountSnapshot,
  type Policy,
} from '../evaluation/policy.js';
import type { Config } from '../utils/config.js';
import { logger } from '../utils/logger.js';
import {
  CandleFollower,
  type FollowerOptions,
  type FollowerStats,
  type MarketFeed,
} from './feed.js';
import {
  Journal,
  type CandleRow,
  type JournalBar,
  type PaperState,
  type ShadowState,
} from './journal.js';
import type { OrderVenue } from './venue.js';

const log = logger.child({ module: 'paper' });
const DAY_MS = 86_400_000;

/** Reads stored candles of one timeframe with open time in `[fromMs, toMs)`. */
export type StoredCandles = (tf: Timeframe, fromMs: number, toMs: number) => Promise<Candles>;

/** A decision as it is made (for latency measurements and logs). */
export interface PaperDecision {
  /** Bar number (0 = the last warm-up row). */
  bar: number;
  /** Decision time: the base candle's close, UTC ms. */
  decisionTimeMs: number;
  /** Target sent to the venue. */
  sent: number;
  /** Milliseconds from the follower handing out the closed candle to the target being sent. */
  latencyMs: number;
}

/** Options of `runPaper`. */
export interface PaperOptions {
  /** The resolved config (features, windows, broker, live). */
  readonly config: Config;
  /** ccxt exchange id (journaled; a resumed run must name the same). */
  readonly exchange: string;
  /** ccxt unified symbol: `BTC/USDT` for spot, `BTC/USDT:USDT` for perpetual. */
  readonly symbol: string;
  /** The `--policy` reference (journaled). */
  readonly policyRef: string;
  /** Resolves the policy once the warm-up features exist (the policy registry). */
  readonly resolvePolicy: (features: MultiTimeframeFeatures) => Promise<Policy>;
  /** The exchange's market data. */
  readonly feed: MarketFeed;
  /** The candle store (warm-up and the shadow check's reference). */
  readonly stored: StoredCandles;
  /** The run folder holding the journal (resumed when it has one). */
  readonly dir: string;
  /** Start time, UTC ms: warm-up ends with the last stored candle closed by then. */
  readonly nowMs: number;
  /** ccxt market description: fees, precision and limits for the broker (and the type check). */
  readonly market?: CcxtMarketLike;
  /** Live mode only: the exchange account that receives the orders. */
  readonly venue?: OrderVenue;
  /** Stop after this many new bars (default: run until `signal` aborts). */
  readonly maxBars?: number;
  /** Stops the loop (after the bar in progress is journaled). */
  readonly signal?: AbortSignal;
  /** Called after each decision is sent. */
  readonly onDecision?: (d: PaperDecision) => void;
  /** Follower options (tests speed up its waits). */
  readonly follower?: FollowerOptions;
}

/** What `runPaper` returns when it stops. */
export interface PaperResult {
  /** The journal's state at the end. */
  readonly state: PaperState;
  /** Every journaled bar (resumed ones included). */
  readonly bars: readonly JournalBar[];
  /** The base follower's counters of this process. */
  readonly feed: FollowerStats;
  /** Bars replayed from the journal at start (0 for a new run). */
  readonly replayed: number;
  /** Every fill of the paper account since the run started (resumed ones included). */
  readonly fills: readonly Fill[];
}

/**
 * Refuses a symbol whose market type does not match `broker.marketType`: perpetual swaps are
 * `BASE/QUOTE:SETTLE` (and `market.swap`), spot markets `BASE/QUOTE` (and `market.spot`).
 * @throws {ConfigError} naming `broker.marketType`.
 */
export function checkMarketType(
  symbol: string,
  marketType: Config['broker']['marketType'],
  market?: CcxtMarketLike,
): void {
  const perpetual = market?.swap === true || (market === undefined && symbol.includes(':'));
  const spot = market?.spot === true || (market === undefined && !symbol.includes(':'));
  if (marketType === 'perpetual' && !perpetual)
    throw new ConfigError(
      'broker.marketType',
      `${symbol} is not a perpetual swap but broker.marketType is perpetual`,
      { hint: 'trade the perpetual symbol (e.g. BTC/USDT:USDT) or set broker.marketType: spot' },
    );
  if (marketType === 'spot' && !spot)
    throw new ConfigError(
      'broker.marketType',
      `${symbol} is not a spot market but broker.marketType is spot`,
      { hint: 'trade the spot symbol (e.g. BTC/USDT) or set broker.marketType: perpetual' },
    );
}

function rowOf(c: StreamCandle): CandleRow {
  return [c.openTime, c.open, c.high, c.low, c.close, c.volume];
}

function candleOf(r: CandleRow): StreamCandle {
  return { openTime: r[0], open: r[1], high: r[2], low: r[3], close: r[4], volume: r[5] };
}

function sha256(obs: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(obs.buffer, obs.byteOffset, obs.byteLength))
    .digest('hex');
}

function fingerprint(data: ReadonlyMap<Timeframe, Candles>): string {
  const h = createHash('sha256');
  for (const [tf, c] of data) {
    h.update(`${tf}:${c.openTime.length};`);
    for (const col of [c.openTime, c.open, c.high, c.low, c.close, c.volume])
      h.update(new Uint8Array(col.buffer, col.byteOffset, col.byteLength));
  }
  return h.digest('hex');
}

/** Candles of `c` closed by `closeMs` (open + bar <= closeMs). */
function closedBy(c: Candles, closeMs: number): Candles {
  const tfMs = TIMEFRAME_MS[c.timeframe];
  const end = lowerBound(c.openTime, closeMs - tfMs + 1);
  return {
    ...c,
    openTime: c.openTime.subarray(0, end),
    open: c.open.subarray(0, end),
    high: c.high.subarray(0, end),
    low: c.low.subarray(0, end),
    close: c.close.subarray(0, end),
    volume: c.volume.subarray(0, end),
  };
}

/** Timeframes of `data.timeframes`, finest (the base) first. */
export function paperTimeframes(config: Config): Timeframe[] {
  return [...new Set(config.data.timeframes)].sort((a, b) => TIMEFRAME_MS[a] - TIMEFRAME_MS[b]);
}

/**
 * The stored candles of every timeframe in `[fromMs, ...)` closed by `closeMs` (UTC ms).
 * @throws whatever `stored` throws (store errors).
 */
export async function storedSpan(
  stored: StoredCandles,
  tfs: readonly Timeframe[],
  fromMs: number,
  closeMs: number,
): Promise<Map<Timeframe, Candles>> {
  const out = new Map<Timeframe, Candles>();
  for (const tf of tfs) out.set(tf, closedBy(await stored(tf, fromMs, closeMs), closeMs));
  return out;
}

/**
 * Streams `data` into `sf` in live order: every higher candle right before the first base candle
 * whose close is at or after its own close.
 */
function streamHistory(sf: StreamingFeatures, data: ReadonlyMap<Timeframe, Candles>): void {
  const [base, ...higher] = sf.timeframes;
  const b = data.get(base)!;
  const baseMs = TIMEFRAME_MS[base];
  const next = higher.map(() => 0);
  const at = (c: Candles, k: number): StreamCandle => ({
    openTime: c.openTime[k],
    open: c.open[k],
    high: c.high[k],
    low: c.low[k],
    close: c.close[k],
    volume: c.volume[k],
  });
  for (let i = 0; i < b.openTime.length; i++) {
    const close = b.openTime[i] + baseMs;
    higher.forEach((tf, h) => {
      const c = data.get(tf)!;
      while (next[h] < c.openTime.length && c.openTime[next[h]] + TIMEFRAME_MS[tf] <= close)
        sf.pushHigher(tf, at(c, next[h]++));
    });
    sf.pushBase(at(b, i));
  }
}

function freshShadow(): ShadowState {
  return { status: 'ok', checkedBars: 0, pendingBars: 0, differences: 0, firstDifference: null };
}

/**
 * Paper-trades (or, with a venue, live-trades) `options.symbol` until `maxBars` new bars are
 * processed or `signal` aborts, journaling every bar in `options.dir`. Resumes a journal found
 * there.
 * @throws {UsageError} when the store holds no candles (naming `ctm data download`) or a resumed
 *   journal belongs to another exchange, symbol or policy.
 * @throws {DataValidationError} when the warm-up is too short for the features' windows.
 * @throws {ConfigError} naming `broker.marketType` for a symbol of the other market type.
 * @throws {CheckpointError} when the journal is corrupt or its replay differs.
 * @throws {ExchangeError} for exchange failures that are not transient.
 */
export async function runPaper(options: PaperOptions): Promise<PaperResult> {
  const { config } = options;
  const live = config.live;
  checkMarketType(options.symbol, config.broker.marketType, options.market);
  const tfs = paperTimeframes(config);
  const [base, ...higherTfs] = tfs;
  const baseMs = TIMEFRAME_MS[base];
  mkdirSync(options.dir, { recursive: true });
  const journal = new Journal(options.dir);
  const prior = journal.exists() ? journal.read(true) : null;
  if (prior !== null) {
    const s = prior.state;
    if (
      s.exchange !== options.exchange ||
      s.symbol !== options.symbol ||
      s.policy !== options.policyRef
    )
      throw new UsageError(
        `${options.dir} journals ${s.policy} on ${s.exchange} ${s.symbol}, not ${options.policyRef} on ${options.exchange} ${options.symbol}`,
        { hint: 'give another --run folder for another market or policy' },
      );
  }

  // Warm-up from the store: the same candles on a restart (checked by their fingerprint).
  const warmupFromMs =
    prior?.state.warmupFromMs ??
    Math.floor((options.nowMs - live.warmupDays * DAY_MS) / DAY_MS) * DAY_MS;
  const warmCloseMs = prior === null ? options.nowMs : prior.state.startOpenTimeMs + baseMs;
  const warm = await storedSpan(options.stored, tfs, warmupFromMs, warmCloseMs);
  const warmBase = warm.get(base)!;
  if (warmBase.openTime.length === 0)
    throw new UsageError(
      `the store holds no ${base} candles of ${options.symbol} (${options.exchange}) from ${new Date(warmupFromMs).toISOString()} on: run ctm data download first`,
      {
        hint: `run ctm data download --exchange ${options.exchange} --symbols ${options.symbol} --timeframes ${tfs.join(',')} --since ${new Date(warmupFromMs).toISOString().slice(0, 10)}`,
      },
    );
  const print = fingerprint(warm);
  if (prior !== null && prior.state.warmupFingerprint !== print)
    throw new CheckpointError(
      journal.statePath,
      'the stored warm-up candles changed since this run started; the journal cannot be replayed',
    );
  const sf = new StreamingFeatures(options.symbol, base, higherTfs, {
    spec: config.features,
    windows: config.windows,
    initialCapacity: warmBase.openTime.length + 4096,
  });
  streamHistory(sf, warm);
  const startRow = sf.rows - 1;
  if (sf.firstValidRow > startRow)
    throw new DataValidationError({
      source: `store:${options.exchange}/${options.symbol}`,
      reason: `${sf.rows} warm-up rows are too few for the feature windows (live.warmupDays ${live.warmupDays})`,
    });

  const policy = await options.resolvePolicy(sf.view());
  const spec = policy.observation;
  const broker = new Broker(config.broker, { timeframe: base, market: options.market });
  broker.reset(config.broker.initialCapital);
  {
    const c = sf.view().aligned.base;
    for (let r = Math.max(0, startRow - config.broker.slippage.atrPeriod); r <= startRow; r++)
      broker.prime(c.openTime[r], c.open[r], c.high[r], c.low[r], c.close[r], c.volume[r]);
  }
  policy.reset?.(1);
  const rowAware = policy as Policy & { startAt?: (row: number) => void };
  rowAware.startAt?.(startRow);

  const act = new Float32Array(1);
  let obs = new Float32Array(0);
  /** Live observations not yet compared by the shadow check, by bar. */
  const unchecked = new Map<number, Float32Array>();
  const decide = (row: number): number => {
    const builder = new ObservationBuilder(sf.view(), spec);
    if (obs.length !== builder.size) obs = new Float32Array(builder.size);
    builder.build(row, broker.account, obs, 0);
    policy.act(obs, 1, act);
    return act[0];
  };

  const state: PaperState = prior?.state ?? {
    version: 1,
    exchange: options.exchange,
    symbol: options.symbol,
    policy: options.policyRef,
    live: options.venue !== undefined,
    warmupFromMs,
    startOpenTimeMs: warmBase.openTime[startRow],
    warmupFingerprint: print,
    bars: 0,
    lastOpenTimeMs: warmBase.openTime[startRow],
    lastHigherOpenTimeMs: Object.fromEntries(higherTfs.map((tf) => [tf, -1])),
    pendingTarget: 0,
    initialCapital: config.broker.initialCapital,
    shadow: freshShadow(),
    feed: {},
    updatedAt: new Date(0).toISOString(),
  };
  for (const tf of higherTfs) {
    const t = sf.lastHigherOpenTime(tf);
    if (prior === null) state.lastHigherOpenTimeMs[tf] = t === t ? t : -1;
  }
  const bars: JournalBar[] = [];
  const priorBars = prior?.bars ?? [];

  /** Records bar `k` decided on the last row (replaying: checks it against the journal). */
  const record = (
    k: number,
    baseRow: CandleRow | null,
    higher: Partial<Record<Timeframe, CandleRow[]>>,
    decided: number,
    replay: JournalBar | undefined,
    startedAt: number,
  ): JournalBar => {
    const account: AccountSnapshot = { ...broker.account };
    const hash = sha256(obs);
    let sent: number;
    let haltReason: string | null;
    if (replay !== undefined) {
      if (replay.observationSha256 !== hash || Math.fround(replay.decided) !== Math.fround(decided))
        throw new CheckpointError(
          journal.linesPath,
          `replaying bar ${k} gives another observation or decision than the journal`,
        );
      sent = replay.sent;
      haltReason = replay.haltReason;
    } else {
      haltReason =
        state.shadow.status === 'halted'
          ? 'shadow check found a difference'
          : existsSync(join(options.dir, live.stopFile))
            ? `stop file ${live.stopFile} present`
            : null;
      sent = haltReason === null ? decided : broker.currentTarget;
    }
    const bar: JournalBar = {
      bar: k,
      base: baseRow,
      higher,
      decisionTimeMs: sf.lastBaseOpenTime + baseMs,
      decided,
      sent,
      haltReason,
      equity: broker.equity,
      cash: broker.cash,
      position: broker.exposure,
      quantity: broker.quantity,
      fills: broker.fillsCount,
      account,
      observationSha256: hash,
    };
    if (replay === undefined) {
      options.onDecision?.({
        bar: k,
        decisionTimeMs: bar.decisionTimeMs,
        sent,
        latencyMs: performance.now() - startedAt,
      });
      unchecked.set(k, obs.slice());
    }
    state.pendingTarget = sent;
    bars.push(bar);
    return bar;
  };

  /** One live (or replayed) base candle: fill at its open, features, decision. */
  const step = (
    c: StreamCandle,
    higher: Partial<Record<Timeframe, StreamCandle[]>>,
    replay: JournalBar | undefined,
    startedAt: number,
  ): JournalBar => {
    broker.step(c.openTime, c.open, c.high, c.low, c.close, c.volume, state.pendingTarget);
    const higherRows: Partial<Record<Timeframe, CandleRow[]>> = {};
    for (const tf of higherTfs) {
      const list = higher[tf] ?? [];
      for (const h of list) sf.pushHigher(tf, h);
      if (list.length > 0) {
        higherRows[tf] = list.map(rowOf);
        state.lastHigherOpenTimeMs[tf] = list[list.length - 1].openTime;
      }
    }
    sf.pushBase(c);
    state.lastOpenTimeMs = c.openTime;
    const decided = decide(sf.rows - 1);
    return record(bars.length, rowOf(c), higherRows, decided, replay, startedAt);
  };

  // Bar 0: the decision on the last warm-up row; then the journaled bars, replayed.
  {
    const startedAt = performance.now();
    const decided = decide(startRow);
    const b0 = record(0, null, {}, decided, priorBars[0], startedAt);
    if (prior === null) {
      journal.append(b0);
      state.bars = 1;
      journal.writeState({ ...state, updatedAt: new Date().toISOString() });
    }
  }
  for (let k = 1; k < priorBars.length; k++) {
    const p = priorBars[k];
    const higher: Partial<Record<Timeframe, StreamCandle[]>> = {};
    for (const tf of higherTfs) higher[tf] = (p.higher[tf] ?? []).map(candleOf);
    step(candleOf(p.base!), higher, p, 0);
  }
  const replayed = priorBars.length;
  if (replayed > 0) log.info({ bars: replayed }, 'journal replayed');

  // The shadow check: the observations of a backtest over the stored candles from warm-up on.
  const shadowCheck = async (): Promise<void> => {
    const sh = state.shadow;
    if (sh.checkedBars >= bars.length) return;
    const lastClose = bars[bars.length - 1].decisionTimeMs;
    const data = await storedSpan(options.stored, tfs, warmupFromMs, lastClose);
    if (data.get(base)!.openTime.length === 0) return;
    const features = buildFeatures(data, { spec: config.features, windows: config.windows });
    const builder = new ObservationBuilder(features, spec);
    const ref = new Float32Array(builder.size);
    const baseTimes = features.aligned.base.openTime;
    sh.pendingBars = 0;
    for (let k = sh.checkedBars; k < bars.length; k++) {
      const bar = bars[k];
      const openTime = bar.decisionTimeMs - baseMs;
      const row = lowerBound(baseTimes, openTime);
      if (row >= baseTimes.length || baseTimes[row] !== openTime) {
        sh.pendingBars = bars.length - k;
        break;
      }
      builder.build(row, bar.account, ref, 0);
      if (sha256(ref) !== bar.observationSha256) {
        sh.differences++;
        if (sh.firstDifference === null) {
          const mine = unchecked.get(k);
          let col = -1;
          if (mine !== undefined)
            for (let j = 0; j < ref.length && col < 0; j++)
              if (!Object.is(mine[j], ref[j])) col = j;
          sh.firstDifference = {
            bar: k,
            decisionTimeMs: bar.decisionTimeMs,
            column: col < 0 ? '(observation hash)' : observationColumnNames(spec)[col],
            live: col < 0 ? NaN : mine![col],
            backtest: col < 0 ? NaN : ref[col],
          };
        }
        if (sh.status !== 'halted')
          log.error(
            {
              ...sh.firstDifference,
              bar: k,
              decisionTime: new Date(bar.decisionTimeMs).toISOString(),
            },
            'SHADOW CHECK: the live observation differs from the backtest of the stored candles; new orders halted',
          );
        sh.status = 'halted';
      }
      unchecked.delete(k);
      sh.checkedBars = k + 1;
    }
  };

  const baseFollower = new CandleFollower(
    options.feed,
    base,
    live,
    state.lastOpenTimeMs,
    options.follower,
  );
  const higherFollowers = higherTfs.map(
    (tf) =>
      new CandleFollower(
        options.feed,
        tf,
        live,
        (state.lastHigherOpenTimeMs[tf] ?? -1) < 0 ? NaN : state.lastHigherOpenTimeMs[tf]!,
        {
          ...options.follower,
          watch: false,
        },
      ),
  );
  const writeState = (): void =>
    journal.writeState({
      ...state,
      bars: bars.length,
      feed: { ...baseFollower.stats },
      updatedAt: new Date().toISOString(),
    });
  state.bars = bars.length;
  let newBars = 0;
  let sinceShadow = 0;
  try {
    while (options.maxBars === undefined || newBars < options.maxBars) {
      const c = await baseFollower.next(options.signal);
      if (c === null) break;
      const startedAt = performance.now();
      const closeMs = c.openTime + baseMs;
      const higher: Partial<Record<Timeframe, StreamCandle[]>> = {};
      for (let h = 0; h < higherTfs.length; h++) {
        const tf = higherTfs[h];
        const last = state.lastHigherOpenTimeMs[tf] ?? -1;
        if (last >= 0 && last + 2 * TIMEFRAME_MS[tf] > closeMs) continue;
        const got = await higherFollowers[h].closedThrough(closeMs, options.signal);
        if (got === null) break;
        higher[tf] = got;
      }
      if (options.signal?.aborted === true) break;
      const bar = step(c, higher, undefined, startedAt);
      if (options.venue !== undefined && bar.haltReason === null) {
        const price = c.close;
        const qty = (bar.sent * config.broker.leverage * broker.equity) / price;
        const refused = await options.venue.rebalance(qty, closeMs);
        if (refused !== null) log.warn({ bar: bar.bar, refused }, 'live order not sent');
      }
      journal.append(bar);
      newBars++;
      state.bars = bars.length;
      if (++sinceShadow >= live.shadowEveryBars) {
        sinceShadow = 0;
        await shadowCheck();
      }
      writeState();
    }
  } finally {
    await options.feed.disconnect().catch(() => undefined);
  }
  await shadowCheck();
  writeState();
  return {
    state: journal.read().state,
    bars,
    feed: { ...baseFollower.stats },
    replayed,
    fills: broker.fills.toArray(),
  };
}
