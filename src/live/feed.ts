// The market side of paper and live trading: follows one symbol's candles through ccxt (websocket
// `watchOHLCV` where the exchange has it, REST `fetchOHLCV` polling otherwise) and hands out each
// closed candle exactly once, in order. Candles arrive still forming, late, twice or out of order;
// connections drop, stall, answer 5xx or 429. After every (re)connect the missed candles are
// backfilled by REST before anything newer is handed out. Never sends an order; never hands out a
// candle before the exchange's clock has passed its close.

import type { Exchange } from 'ccxt';
import { TIMEFRAME_MS, type Timeframe } from '../data-processing/candles.js';
import type { StreamCandle } from '../data-processing/feature-engineering.js';
import { retryAfterMs } from '../data-processing/exchange.js';
import { ExchangeError, UsageError } from '../errors.js';
import type { Config } from '../utils/config.js';
import { logger } from '../utils/logger.js';

const log = logger.child({ module: 'live-feed' });

/** The `live` config section. */
export type LiveSettings = Config['live'];

/**
 * What the follower needs from an exchange connection (`ccxtFeed` wraps a ccxt exchange; tests may
 * pass their own). Rows are ccxt OHLCV rows `[openTimeMs, open, high, low, close, volume]`.
 */
export interface MarketFeed {
  /** True when `watchOHLCV` is available (a websocket stream). */
  readonly canWatch: boolean;
  /** REST: candles of `tf` from `sinceMs` on (the newest may still be forming). */
  fetchOHLCV(tf: Timeframe, sinceMs: number, limit: number): Promise<number[][]>;
  /** Websocket: resolves with the next update(s) of the candle stream of `tf`. */
  watchOHLCV(tf: Timeframe): Promise<number[][]>;
  /** Drops the websocket connection (the next `watchOHLCV` reconnects). */
  disconnect(): Promise<void>;
  /** The exchange's clock (UTC ms): the local clock corrected by what its responses said. */
  nowMs(): number;
  /** For a failure: how long the exchange asked to wait (429 Retry-After), or 0. */
  retryAfterMs(err: unknown): number;
  /** True for failures worth retrying (network, 5xx, 429, timeouts, dropped sockets). */
  isTransient(err: unknown): boolean;
}

/** Counters of what the follower survived. */
export interface FollowerStats {
  /** Closed candles handed out. */
  emitted: number;
  /** Candles received again after they were handed out (ignored). */
  duplicates: number;
  /** Candles received older than one already received (put back in order). */
  outOfOrder: number;
  /** REST backfills run (one after every (re)connect). */
  backfills: number;
  /** Candles first received after their close plus the grace time. */
  late: number;
  /** Failures retried (network, 5xx, stalls). */
  retries: number;
  /** Rate-limit answers (429) waited out. */
  rateLimited: number;
  /** Requests or sockets that stalled past `live.stallTimeoutMs`. */
  stalls: number;
  /** Missing stretches: candles handed out after a gap of at least one bar. */
  gaps: number;
}

/** Options of `CandleFollower` besides its settings. */
export interface FollowerOptions {
  /** How to wait (default: a real timer); tests may speed it up. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Use the websocket stream (default: `live.feed` and `feed.canWatch`). */
  watch?: boolean;
}

/** A timer that resolves after `ms` or when `signal` aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

class Stalled extends Error {}

/** Rows of one response above this count mean the backfill continues with another page. */
const BACKFILL_LIMIT = 1000;

interface Pending {
  candle: StreamCandle;
  /** Exchange clock when this version was received. */
  seenAtMs: number;
  /** A newer candle was received at or after this version (so this one is complete). */
  superseded: boolean;
}

/**
 * Hands out the closed candles of one timeframe after `lastOpenTimeMs`, each exactly once and in
 * order. A candle counts as closed when the version held was received at least `live.closeGraceMs`
 * after its close time (exchange clock); a stream that moves on to a newer candle before that
 * triggers a REST backfill, which returns the final version.
 * @example
 * const f = new CandleFollower(feed, '15m', config.live, lastProcessedOpenTime);
 * for (;;) process(await f.next(signal));
 */
export class CandleFollower {
  /** What was survived so far. */
  readonly stats: FollowerStats = {
    emitted: 0,
    duplicates: 0,
    outOfOrder: 0,
    backfills: 0,
    late: 0,
    retries: 0,
    rateLimited: 0,
    stalls: 0,
    gaps: 0,
  };
  private readonly tfMs: number;
  private readonly pending = new Map<number, Pending>();
  private last: number;
  private maxSeen = -Infinity;
  private needBackfill = true;
  /** Newest open time received when the last REST backfill ended (a gap before it is real). */
  private backfilledThrough = -Infinity;
  private failures = 0;
  private readonly watch: boolean;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  /**
   * @param lastOpenTimeMs open time of the last candle already processed (NaN: none; the first
   *   candle handed out is then the first closed one the exchange returns from now on).
   */
  constructor(
    private readonly feed: MarketFeed,
    private readonly tf: Timeframe,
    private readonly settings: LiveSettings,
    lastOpenTimeMs: number,
    options: FollowerOptions = {},
  ) {
    this.tfMs = TIMEFRAME_MS[tf];
    this.last = lastOpenTimeMs;
    this.sleep = options.sleep ?? abortableSleep;
    this.watch =
      options.watch ?? (settings.feed === 'watch' || (settings.feed === 'auto' && feed.canWatch));
    if (this.watch && !feed.canWatch)
      throw new UsageError('live.feed is watch but the exchange has no watchOHLCV', {
        hint: 'set live.feed: poll (or auto)',
      });
  }

  /** Open time of the last candle handed out (NaN before the first). */
  get lastOpenTimeMs(): number {
    return this.last;
  }

  /**
   * The next closed candle. Waits (retrying every transient failure with backoff, forever) until
   * there is one, or returns null once `signal` aborts.
   * @throws {ExchangeError} for a failure that is not transient (bad symbol, auth).
   */
  async next(signal?: AbortSignal): Promise<StreamCandle | null> {
    for (;;) {
      if (signal?.aborted === true) return null;
      if (this.needBackfill) {
        await this.guard(() => this.backfill(), signal);
        continue;
      }
      const head = this.closedHead();
      if (head !== null) return head;
      if (this.needBackfill) continue;
      if (this.headDue()) {
        // Past the close of the next candle and no final version of it: ask REST.
        this.needBackfill = true;
        await this.sleep(this.settings.pollMs, signal);
        continue;
      }
      if (this.watch)
        await this.guard(async () => this.ingest(await this.feed.watchOHLCV(this.tf)), signal);
      else {
        await this.sleep(this.settings.pollMs, signal);
        await this.guard(() => this.poll(), signal);
      }
    }
  }

  /**
   * The candles closed by `closeTimeMs` not handed out yet (REST, retried like `next`), oldest
   * first; what the exchange lacks in that stretch stays missing. Null once `signal` aborts.
   * @throws {ExchangeError} for a failure that is not transient.
   */
  async closedThrough(closeTimeMs: number, signal?: AbortSignal): Promise<StreamCandle[] | null> {
    for (let done = false; !done;) {
      if (signal?.aborted === true) return null;
      await this.guard(async () => {
        await this.poll();
        done = true;
      }, signal);
    }
    const out: StreamCandle[] = [];
    const ready = [...this.pending.values()]
      .filter((p) => p.candle.openTime + this.tfMs <= closeTimeMs)
      .sort((a, b) => a.candle.openTime - b.candle.openTime);
    for (const p of ready) {
      this.pending.delete(p.candle.openTime);
      this.last = p.candle.openTime;
      this.stats.emitted++;
      out.push(p.candle);
    }
    return out;
  }

  private nextOpen(): number {
    return this.last === this.last ? this.last + this.tfMs : -Infinity;
  }

  private async backfill(): Promise<void> {
    this.stats.backfills++;
    // With nothing processed yet, start from the candle before the one forming now.
    let since = this.last === this.last ? this.last + this.tfMs : this.feed.nowMs() - 2 * this.tfMs;
    for (;;) {
      const rows = await this.feed.fetchOHLCV(this.tf, since, BACKFILL_LIMIT);
      this.ingest(rows);
      if (rows.length < BACKFILL_LIMIT) break;
      since = rows[rows.length - 1][0] + this.tfMs;
    }
    this.needBackfill = false;
    this.backfilledThrough = this.maxSeen;
  }

  private async poll(): Promise<void> {
    const since =
      this.last === this.last ? this.last + this.tfMs : this.feed.nowMs() - 2 * this.tfMs;
    this.ingest(await this.feed.fetchOHLCV(this.tf, since, BACKFILL_LIMIT));
  }

  private ingest(rows: number[][]): void {
    const now = this.feed.nowMs();
    let newest = -Infinity;
    for (const r of rows) if (r[0] > newest) newest = r[0];
    const inThisAnswer = new Set<number>();
    let previous = -Infinity;
    for (const r of rows) {
      const t = r[0];
      if ((!(t > this.last) && this.last === this.last) || inThisAnswer.has(t)) {
        this.stats.duplicates++;
        continue;
      }
      inThisAnswer.add(t);
      if (t < previous || (t < this.maxSeen && !this.pending.has(t))) this.stats.outOfOrder++;
      previous = t;
      if (!this.pending.has(t) && now >= t + this.tfMs + this.settings.closeGraceMs)
        this.stats.late++;
      if (t > this.maxSeen) this.maxSeen = t;
      this.pending.set(t, {
        candle: { openTime: t, open: r[1], high: r[2], low: r[3], close: r[4], volume: r[5] },
        seenAtMs: now,
        superseded: t < newest,
      });
    }
    // Anything older than the newest candle of this response is complete.
    for (const p of this.pending.values()) if (p.candle.openTime < newest) p.superseded = true;
  }

  /** The oldest pending candle, handed out when it is closed. */
  private closedHead(): StreamCandle | null {
    let head: Pending | null = null;
    for (const p of this.pending.values())
      if (head === null || p.candle.openTime < head.candle.openTime) head = p;
    if (head === null) return null;
    const t = head.candle.openTime;
    if (
      this.watch &&
      this.last === this.last &&
      t > this.nextOpen() &&
      t > this.backfilledThrough
    ) {
      // A stretch missing from the stream: REST says whether the exchange has those candles.
      this.needBackfill = true;
      return null;
    }
    // Only a version received after the close (plus grace) is final: a stream's newer candle
    // says the old one is complete, but not that the version held is its last; REST has it.
    if (head.seenAtMs < t + this.tfMs + this.settings.closeGraceMs) {
      if (head.superseded && this.watch) this.needBackfill = true;
      return null;
    }
    this.pending.delete(t);
    if (this.last === this.last && t > this.nextOpen()) this.stats.gaps++;
    this.last = t;
    this.stats.emitted++;
    return head.candle;
  }

  /** True when the exchange's clock is past the next candle's close plus grace. */
  private headDue(): boolean {
    if (this.last !== this.last) return false;
    return (
      this.feed.nowMs() >=
      this.nextOpen() + this.tfMs + this.settings.closeGraceMs + this.settings.pollMs
    );
  }

  /** Runs one exchange call; a transient failure waits (backoff or Retry-After) and reconnects. */
  private async guard(fn: () => Promise<void>, signal?: AbortSignal): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const stall = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Stalled('stalled')), this.settings.stallTimeoutMs);
      });
      await Promise.race([fn(), stall]);
      this.failures = 0;
    } catch (err) {
      const stalled = err instanceof Stalled;
      if (!stalled && !this.feed.isTransient(err))
        throw err instanceof ExchangeError
          ? err
          : new ExchangeError(`following ${this.tf} candles: ${(err as Error).message}`, {
              cause: err,
            });
      const retryAfter = stalled ? 0 : this.feed.retryAfterMs(err);
      if (stalled) this.stats.stalls++;
      else if (retryAfter > 0) this.stats.rateLimited++;
      else this.stats.retries++;
      const backoff = Math.min(
        this.settings.maxBackoffMs,
        this.settings.backoffMs * 2 ** Math.min(this.failures, 30),
      );
      this.failures++;
      const waitMs = Math.max(backoff, retryAfter);
      log.warn(
        { tf: this.tf, waitMs, stalled, error: (err as Error).message.split('\n')[0] },
        'feed failure, reconnecting after a wait',
      );
      await this.feed.disconnect().catch(() => undefined);
      this.needBackfill = true;
      await this.sleep(waitMs, signal);
    } finally {
      clearTimeout(timer);
    }
  }
}

const TRANSIENT =
  /terminated|other side closed|socket hang up|fetch failed|ECONN|ETIMEDOUT|EPIPE|UND_ERR/i;

/** A ccxt exchange with the websocket methods the feed uses. */
type Watcher = Exchange & {
  watchOHLCV?: (s: string, tf: string) => Promise<number[][]>;
  close?: () => Promise<void>;
};

/**
 * A `MarketFeed` over a ccxt exchange (markets loaded) for one symbol. The exchange clock is the
 * local clock plus the offset of the last REST response's Date header (none: the local clock).
 * Only reads market data: it has no way to send an order. `renewWatcher` builds a fresh
 * websocket connection object: after a drop or a stall the old one is closed (without waiting
 * on a socket that may never answer) and replaced, since a ccxt instance whose socket stalled
 * does not always connect again.
 */
export function ccxtFeed(
  exchange: Exchange,
  ccxt: {
    NetworkError: abstract new (...a: never[]) => Error;
    RateLimitExceeded: abstract new (...a: never[]) => Error;
    DDoSProtection: abstract new (...a: never[]) => Error;
  },
  symbol: string,
  renewWatcher?: () => Promise<Exchange>,
): MarketFeed {
  // The exchange clock: the local clock plus the offset seen in the last REST Date header.
  let offsetMs = 0;
  let seenHeaders: unknown = undefined;
  const headerNow = (): number => {
    const h = exchange.last_response_headers as Record<string, string> | undefined;
    if (h !== undefined && h !== seenHeaders) {
      seenHeaders = h;
      const entry = Object.entries(h).find(([k]) => k.toLowerCase() === 'date');
      const t = entry === undefined ? NaN : Date.parse(entry[1]);
      if (Number.isFinite(t)) offsetMs = t - Date.now();
    }
    return Date.now() + offsetMs;
  };
  let watcher = exchange as Watcher;
  return {
    canWatch: exchange.has.watchOHLCV === true && typeof watcher.watchOHLCV === 'function',
    async fetchOHLCV(tf, sinceMs, limit) {
      return (await exchange.fetchOHLCV(
        symbol,
        tf,
        Math.max(0, Math.floor(sinceMs)),
        limit,
      )) as number[][];
    },
    async watchOHLCV(tf) {
      return (await watcher.watchOHLCV!(symbol, tf)) as number[][];
    },
    async disconnect() {
      if (typeof watcher.close !== 'function' || exchange.has.watchOHLCV !== true) return;
      const old = watcher;
      if (renewWatcher === undefined) return void (await old.close!());
      watcher = (await renewWatcher()) as Watcher;
      // The old socket closes in the background; a stalled one may take the ws close timeout.
      void old.close!().catch(() => undefined);
    },
    nowMs: headerNow,
    retryAfterMs(err) {
      if (!(err instanceof ccxt.RateLimitExceeded || err instanceof ccxt.DDoSProtection)) return 0;
      return retryAfterMs(
        exchange.last_response_headers as Record<string, string> | undefined,
        headerNow(),
      );
    },
    isTransient(err) {
      if (err instanceof ccxt.NetworkError) return true;
      return (
        err instanceof Error &&
        TRANSIENT.test(`${err.message} ${String((err as { code?: unknown }).code)}`)
      );
    },
  };
}
