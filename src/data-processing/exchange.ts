// Downloading candles from an exchange through ccxt into the store: paginated `fetchOHLCV`,
// incremental (resumes after the last stored candle, and first finishes any download a crash or a
// kill interrupted, recorded in the store's download journal), never storing the still-forming
// candle, within ccxt's rate limiter, retrying transient failures (429/418, 5xx, timeouts, dropped
// connections) with exponential backoff and jitter (a server's Retry-After wins when longer).
// Each page is validated and written in its own transaction together with the journal, so a kill at
// any point followed by a rerun ends complete, with no duplicates and no holes. It never repairs
// unless asked, and never touches the network except through the ccxt instance it builds.

import type { Exchange, OHLCV } from 'ccxt';
import { CtmError, ExchangeError, UsageError } from '../errors.js';
import type { Config } from '../utils/config.js';
import { logger } from '../utils/logger.js';
import { createProgress } from '../utils/progress.js';
import { Rng } from '../utils/random.js';
import {
  allocateCandles,
  findGaps,
  parseTimeframe,
  repairCandles,
  sliceCandles,
  TIMEFRAME_MS,
  type GapReport,
  type Timeframe,
} from './candles.js';
import { seriesName, type CandleStore, type SeriesKey } from './store.js';

const log = logger.child({ module: 'exchange' });

type CcxtModule = typeof import('ccxt');

/** The download settings (config `data.download`). */
export type DownloadSettings = Config['data']['download'];

/** Options of `downloadCandles`. */
export interface DownloadOptions {
  /** ccxt exchange id, e.g. `binance`. */
  exchange: string;
  /** ccxt unified symbols, e.g. `['BTC/USDT']`. */
  symbols: readonly string[];
  /** Timeframes, e.g. `['15m', '4h', '1d']`. */
  timeframes: readonly (Timeframe | string)[];
  /**
   * First open time wanted (UTC ms). Null: only continue what is stored (a series with nothing
   * stored then needs it). Earlier than the first stored candle: the missing start is fetched too.
   */
  sinceMs: number | null;
  /** First open time not wanted (UTC ms, exclusive). Null: up to the last closed candle. */
  untilMs: number | null;
  /** Paging, retry and connection settings (config `data.download`). */
  settings: DownloadSettings;
  /** Drop off-grid and exactly duplicated rows (logging each) instead of failing. Default false. */
  repair?: boolean;
  /** Refuse pages with gaps. Default false: gaps are reported. */
  rejectGaps?: boolean;
  /** Seed of the retry jitter. Default 0. */
  seed?: number;
  /** Clock (UTC ms); tests pin it. Default `Date.now`. The exchange's Date header caps it. */
  now?: () => number;
}

/** What was downloaded for one series. */
export interface SeriesDownloadReport extends SeriesKey {
  /** Pages fetched (successful requests). */
  pages: number;
  /** Failed requests that were retried. */
  retries: number;
  /** Candles written that were not stored before. */
  added: number;
  /** Candles written that replaced stored candles with different values. */
  changed: number;
  /** Candles fetched again that matched the store. */
  unchanged: number;
  /** A still-forming candle was seen and not stored. */
  skippedForming: boolean;
  /** Rows dropped by `repair`. */
  repaired: number;
  /** Stored span of the series afterwards (UTC ms), or null when nothing is stored. */
  firstOpenTime: number | null;
  /** Open time (UTC ms) of the last stored candle afterwards, or null. */
  lastOpenTime: number | null;
  /** Gaps in the stored series afterwards (exchange outages stay gaps; they are not holes). */
  gaps: GapReport;
}

/** Points every REST endpoint of a ccxt exchange at `baseUrl` (the public one is what candles use). */
function pointAt(urls: unknown, baseUrl: string): unknown {
  if (typeof urls === 'string') return baseUrl;
  if (typeof urls === 'object' && urls !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(urls)) out[k] = pointAt(v, baseUrl);
    return out;
  }
  return urls;
}

async function loadCcxt(): Promise<CcxtModule> {
  return import('ccxt');
}

/** Options of `createExchange` besides the download settings. */
export interface CreateExchangeOptions {
  /** Build ccxt's websocket class (`ccxt.pro`, with `watchOHLCV`) when ccxt has one. */
  pro?: boolean;
  /** Websocket base URL replacing every `urls.api.ws` entry (tests: a loopback server). */
  wsUrl?: string | null;
}

/**
 * Builds the ccxt exchange used for downloads: rate limiter on, spot markets only, the configured
 * timeout, and (when `baseUrl` is set) every endpoint pointed at it.
 * @throws {UsageError} for an exchange id ccxt does not know.
 */
export async function createExchange(
  id: string,
  settings: DownloadSettings,
  extra: CreateExchangeOptions = {},
): Promise<Exchange> {
  const ccxt = await loadCcxt();
  const pro = ccxt.pro as unknown as Record<string, new (config: object) => Exchange>;
  const classes =
    extra.pro === true && Object.hasOwn(pro, id)
      ? pro
      : (ccxt.exchanges as unknown as Record<string, new (config: object) => Exchange>);
  if (!Object.hasOwn(classes, id)) {
    throw new UsageError(`unknown exchange "${id}"`, {
      hint: 'use a ccxt exchange id such as binance, bybit, okx, kraken, coinbase',
    });
  }
  const Ctor = classes[id];
  const options: Record<string, unknown> = { defaultType: 'spot' };
  // Binance would also load its futures and options markets (other hosts); candles here are spot.
  if (id.startsWith('binance')) options.fetchMarkets = { types: ['spot'] };
  const exchange = new Ctor({ enableRateLimit: true, timeout: settings.timeoutMs, options });
  if (settings.baseUrl !== null) {
    const urls = exchange.urls as Record<string, unknown>;
    urls.api = pointAt(urls.api, settings.baseUrl.replace(/\/+$/, ''));
  }
  const wsUrl = extra.wsUrl;
  if (wsUrl !== undefined && wsUrl !== null) {
    const api = exchange.urls.api as Record<string, unknown>;
    if (api.ws !== undefined) api.ws = pointAt(api.ws, wsUrl.replace(/\/+$/, ''));
    // ccxt opens plain ws:// URLs (a loopback server) only through its http agent.
    if (wsUrl.startsWith('ws://')) await exchange.loadHttpProxyAgent();
  }
  return exchange;
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== null && e !== undefined && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * True for failures worth retrying: ccxt's NetworkError family (429/418 rate limiting, 5xx,
 * maintenance, timeouts, failed requests) and connections dropped mid-response.
 */
function isTransient(err: unknown, ccxt: CcxtModule): boolean {
  if (err instanceof ccxt.NetworkError) return true;
  if (err instanceof ccxt.BaseError || err instanceof CtmError) return false;
  const code = errorCode(err);
  if (code !== undefined && TRANSIENT_CODES.has(code)) return true;
  const message = err instanceof Error ? err.message : '';
  return /terminated|other side closed|socket hang up|fetch failed/i.test(message);
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].slice(0, 300);
}

function urlIn(err: unknown): string | undefined {
  const m = /(https?:\/\/\S+)/.exec(err instanceof Error ? err.message : '');
  return m?.[1];
}

/**
 * A Retry-After header (seconds or HTTP date) as a wait in ms from `nowMs` (UTC ms), or 0 when
 * absent or unreadable.
 */
export function retryAfterMs(headers: Record<string, string> | undefined, nowMs: number): number {
  if (headers === undefined) return 0;
  const entry = Object.entries(headers).find(([k]) => k.toLowerCase() === 'retry-after');
  if (entry === undefined) return 0;
  const seconds = Number(entry[1]);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(entry[1]);
  return Number.isFinite(date) ? Math.max(0, date - nowMs) : 0;
}

/** The exchange's clock from its last response's Date header (second resolution), or NaN. */
function serverDateMs(headers: Record<string, string> | undefined): number {
  if (headers === undefined) return NaN;
  const entry = Object.entries(headers).find(([k]) => k.toLowerCase() === 'date');
  return entry === undefined ? NaN : Date.parse(entry[1]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Translates a non-transient ccxt failure into the project's errors. */
function translate(err: unknown, ccxt: CcxtModule, what: string): unknown {
  if (err instanceof CtmError) return err;
  if (err instanceof ccxt.BadSymbol) {
    return new UsageError(`${what}: ${firstLine(err)}`, {
      hint: 'symbols are ccxt unified, e.g. BTC/USDT; check the exchange lists it',
    });
  }
  if (err instanceof ccxt.BaseError) {
    return new ExchangeError(`${what}: ${firstLine(err)}`, { url: urlIn(err), cause: err });
  }
  return err;
}

/** State shared by the pages of one download run. */
interface Session {
  ccxt: CcxtModule;
  exchange: Exchange;
  settings: DownloadSettings;
  store: CandleStore;
  rng: Rng;
  now: () => number;
  repair: boolean;
  rejectGaps: boolean;
}

/** Calls `fn` until it succeeds, retrying transient failures with backoff. */
async function withRetries<T>(
  s: Session,
  what: string,
  fn: () => Promise<T>,
  onRetry: () => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err, s.ccxt)) throw translate(err, s.ccxt, what);
      if (attempt >= s.settings.maxRetries) {
        throw new ExchangeError(`${what} failed after ${attempt + 1} attempts: ${firstLine(err)}`, {
          url: urlIn(err),
          cause: err,
          hint: 'check the network or try later; a rerun resumes where this one stopped',
        });
      }
      const rateLimited =
        err instanceof s.ccxt.DDoSProtection || err instanceof s.ccxt.RateLimitExceeded;
      const backoff =
        Math.min(s.settings.maxBackoffMs, s.settings.backoffMs * 2 ** attempt) *
        (0.5 + 0.5 * s.rng.next());
      const serverWait = rateLimited
        ? retryAfterMs(s.exchange.last_response_headers, Date.now())
        : 0;
      const waitMs = Math.round(Math.max(backoff, serverWait));
      log.warn(
        { what, attempt: attempt + 1, waitMs, error: firstLine(err) },
        'transient failure, retrying',
      );
      onRetry();
      await sleep(waitMs);
    }
  }
}

/** Counters of one series (the running part of its report). */
type SeriesCounters = Pick<
  SeriesDownloadReport,
  'pages' | 'retries' | 'added' | 'changed' | 'unchanged' | 'skippedForming' | 'repaired'
>;

/**
 * Fetches `[start, end)` of one series page by page. Each page (closed candles only) is written in
 * one transaction together with the journal entry saying where to continue.
 */
async function fetchStretch(
  s: Session,
  key: SeriesKey,
  start: number,
  end: number,
  c: SeriesCounters,
  onProgress: (cursor: number) => void,
): Promise<void> {
  const step = TIMEFRAME_MS[key.timeframe];
  const limit = s.settings.pageLimit;
  let cursor = start;
  await s.store.setPendingDownload(key, { nextMs: cursor, endMs: end });
  const source = `${s.exchange.id} fetchOHLCV ${key.symbol} ${key.timeframe}`;
  for (;;) {
    const since = cursor;
    const rows: OHLCV[] = await withRetries(
      s,
      `${source} since ${new Date(since).toISOString()}`,
      () => s.exchange.fetchOHLCV(key.symbol, key.timeframe, since, limit),
      () => c.retries++,
    );
    c.pages++;
    const serverNow = serverDateMs(s.exchange.last_response_headers);
    const nowMs = Number.isFinite(serverNow) ? Math.min(s.now(), serverNow) : s.now();
    const page = allocateCandles(key.symbol, key.timeframe, rows.length);
    let n = 0;
    let reachedEnd = rows.length === 0;
    for (const row of rows) {
      const t = Number(row[0]);
      if (t < since) continue;
      if (t >= end) {
        reachedEnd = true;
        continue;
      }
      if (t + step > nowMs) {
        c.skippedForming = true;
        reachedEnd = true;
        continue;
      }
      page.openTime[n] = t;
      page.open[n] = Number(row[1] ?? NaN);
      page.high[n] = Number(row[2] ?? NaN);
      page.low[n] = Number(row[3] ?? NaN);
      page.close[n] = Number(row[4] ?? NaN);
      page.volume[n] = Number(row[5] ?? NaN);
      n++;
    }
    let candles = sliceCandles(page, 0, n);
    if (n > 0) cursor = candles.openTime[n - 1] + step;
    if (n === 0 && !reachedEnd) {
      log.warn(
        { series: seriesName(key), since: new Date(since).toISOString() },
        'the exchange returned only candles before the requested time; stopping this series',
      );
      reachedEnd = true;
    }
    if (s.repair) {
      const r = repairCandles(candles);
      for (const a of r.actions) {
        log.warn(
          {
            source,
            openTime: new Date(a.openTime).toISOString(),
            action: a.action,
            reason: a.reason,
          },
          'repair: dropped row',
        );
      }
      c.repaired += r.actions.length;
      candles = r.candles;
    }
    const done = reachedEnd || cursor >= end;
    const written = await s.store.upsert(key, candles, {
      source: `${source} since ${new Date(since).toISOString()}`,
      kind: 'download',
      rejectGaps: s.rejectGaps,
      pending: done ? null : { nextMs: cursor, endMs: end },
    });
    c.added += written.added;
    c.changed += written.changed;
    c.unchanged += written.unchanged;
    onProgress(cursor);
    if (done) return;
  }
}

/**
 * Downloads candles for every symbol and timeframe into the store, incrementally: an interrupted
 * download is finished first, then missing candles before the first stored one (when `sinceMs`
 * asks for them) and after the last stored one, up to `untilMs` or the last closed candle.
 * @throws {UsageError} for an unknown exchange, symbol or timeframe, or a series with nothing stored
 * and no `sinceMs`; {ExchangeError} when a request still fails after the retries;
 * {DataValidationError} for invalid candles from the exchange (nothing of that page is written).
 */
export async function downloadCandles(
  store: CandleStore,
  options: DownloadOptions,
): Promise<SeriesDownloadReport[]> {
  const timeframes = options.timeframes.map((tf) => parseTimeframe(tf, 'download'));
  const ccxt = await loadCcxt();
  const exchange = await createExchange(options.exchange, options.settings);
  const s: Session = {
    ccxt,
    exchange,
    settings: options.settings,
    store,
    rng: new Rng(options.seed ?? 0).fork('download'),
    now: options.now ?? Date.now,
    repair: options.repair === true,
    rejectGaps: options.rejectGaps === true,
  };
  let marketRetries = 0;
  await withRetries(
    s,
    `${options.exchange} loadMarkets`,
    () => exchange.loadMarkets(),
    () => marketRetries++,
  );
  for (const symbol of options.symbols) {
    if (exchange.markets?.[symbol] === undefined) {
      throw new UsageError(`${options.exchange} has no market ${symbol}`, {
        hint: 'symbols are ccxt unified, e.g. BTC/USDT',
      });
    }
  }
  for (const tf of timeframes) {
    if (exchange.timeframes !== undefined && exchange.timeframes[tf] === undefined) {
      throw new UsageError(`${options.exchange} has no ${tf} candles`, {
        hint: `it offers ${Object.keys(exchange.timeframes).join(', ')}`,
      });
    }
  }
  const reports: SeriesDownloadReport[] = [];
  for (const symbol of options.symbols) {
    for (const timeframe of timeframes) {
      const key: SeriesKey = { exchange: options.exchange, symbol, timeframe };
      reports.push(await downloadSeries(s, key, options));
    }
  }
  return reports;
}

async function downloadSeries(
  s: Session,
  key: SeriesKey,
  options: DownloadOptions,
): Promise<SeriesDownloadReport> {
  const step = TIMEFRAME_MS[key.timeframe];
  const formingOpen = Math.floor(s.now() / step) * step;
  const end = options.untilMs === null ? formingOpen : Math.min(options.untilMs, formingOpen);
  const c: SeriesCounters = {
    pages: 0,
    retries: 0,
    added: 0,
    changed: 0,
    unchanged: 0,
    skippedForming: false,
    repaired: 0,
  };
  const bar = createProgress(`download ${key.symbol} ${key.timeframe}`, 1, { unit: 'candles' });
  let doneBefore = 0;
  const run = async (a: number, b: number): Promise<void> => {
    if (a < b) {
      await fetchStretch(s, key, a, b, c, (cursor) =>
        bar.update(doneBefore + Math.ceil((Math.min(cursor, b) - a) / step)),
      );
      doneBefore += Math.ceil((b - a) / step);
    }
  };
  const bars = (stretches: [number, number][]): number =>
    stretches.reduce((sum, [a, b]) => sum + Math.max(0, Math.ceil((b - a) / step)), 0);
  try {
    // 1. Finish what an earlier run left pending (its journal entry).
    const pending = await s.store.pendingDownload(key);
    if (pending !== null) {
      const stop = Math.min(pending.endMs, formingOpen);
      log.info(
        { series: seriesName(key), from: new Date(pending.nextMs).toISOString() },
        'resuming an interrupted download',
      );
      bar.setTotal(Math.max(1, bars([[pending.nextMs, stop]])));
      if (pending.nextMs < stop) await run(pending.nextMs, stop);
      else await s.store.setPendingDownload(key, null);
    }
    // 2. Then the missing start (if asked for) and everything after the last stored candle.
    const stretches: [number, number][] = [];
    const span = await s.store.span(key);
    if (span === null) {
      if (options.sinceMs === null) {
        throw new UsageError(`nothing stored for ${seriesName(key)} yet`, {
          hint: 'pass --since YYYY-MM-DD for the first download',
        });
      }
      stretches.push([options.sinceMs, end]);
    } else {
      if (options.sinceMs !== null && options.sinceMs < span.firstOpenTime)
        stretches.push([options.sinceMs, Math.min(span.firstOpenTime, end)]);
      stretches.push([Math.max(span.lastOpenTime + step, options.sinceMs ?? -Infinity), end]);
    }
    bar.setTotal(Math.max(1, doneBefore + bars(stretches)));
    for (const [a, b] of stretches) await run(a, b);
  } finally {
    bar.stop();
  }
  const span = await s.store.span(key);
  const gaps = findGaps(await s.store.openTimes(key), key.timeframe);
  const report: SeriesDownloadReport = {
    ...key,
    ...c,
    firstOpenTime: span?.firstOpenTime ?? null,
    lastOpenTime: span?.lastOpenTime ?? null,
    gaps,
  };
  log.debug(
    {
      series: seriesName(key),
      pages: c.pages,
      retries: c.retries,
      added: c.added,
      changed: c.changed,
      gaps: gaps.count,
    },
    'downloaded',
  );
  return report;
}
