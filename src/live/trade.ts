// `ctm paper` as one library call: opens the store and the exchange (ccxt, market data only),
// resolves the policy through the registry, and runs the paper loop in the run folder; with
// `--live` (and only then) it also builds the order venue from the confirmed config and the API
// keys in the environment. `paperStatus` reads a run folder back. The keys are handed to ccxt and
// nowhere else: never logged, never written.

import { resolve } from 'node:path';
import type { Exchange } from 'ccxt';
import { createExchange } from '../data-processing/exchange.js';
import { CandleStore } from '../data-processing/store.js';
import { ConfigError, UsageError } from '../errors.js';
import type { MultiTimeframeFeatures } from '../data-processing/feature-engineering.js';
import type { CcxtMarketLike } from '../evaluation/broker.js';
import type { Policy } from '../evaluation/policy.js';
import { resolvePolicy } from '../policies.js';
import type { Config } from '../utils/config.js';
import { ccxtFeed } from './feed.js';
import { Journal, type JournalBar, type PaperState } from './journal.js';
import { runPaper, type PaperResult, type StoredCandles } from './paper.js';
import { writePaperReport, type PaperReport } from './report.js';
import { CcxtVenue, liveCredentials, marketDataOnly, type OrderVenue } from './venue.js';

/** Options of `paperTrade`. */
export interface PaperTradeOptions {
  /** The resolved config. */
  readonly config: Config;
  /** `--policy`: a baseline name, a run folder or a module path. */
  readonly policy: string;
  /** ccxt exchange id (default `data.exchange`). */
  readonly exchange: string;
  /** ccxt unified symbol. */
  readonly symbol: string;
  /** The run folder (default `paperRunDir`). */
  readonly runDir?: string;
  /** `--live`: send real orders (also needs `live.confirm` and the API key variables). */
  readonly live?: boolean;
  /** Stop after this many new bars (default: until interrupted). */
  readonly maxBars?: number;
  /** Stops the loop. */
  readonly signal?: AbortSignal;
  /** Working directory for relative paths (default: cwd). */
  readonly cwd?: string;
}

/** The default run folder of a paper run: `<paths.runs>/paper-<exchange>-<symbol>`. */
export function paperRunDir(
  config: Config,
  exchange: string,
  symbol: string,
  cwd = process.cwd(),
): string {
  return resolve(cwd, config.paths.runs, `paper-${exchange}-${symbol.replace(/[/:]/g, '-')}`);
}

/**
 * Paper-trades (live with `live: true`) a policy on one symbol: warm-up from the store at
 * `paths.store`, candles from the exchange, journal in the run folder (resumed when present).
 * @throws {UsageError} for an unknown policy, exchange or symbol, or an empty store.
 * @throws {LiveTradingError} when `live` is asked without `live.confirm` or the API keys.
 * @throws {ConfigError} naming `broker.marketType` when it is `perpetual` (spot only so far) or the
 *   symbol is of the other market type.
 * @throws {ExchangeError} for exchange failures that are not transient.
 */
export async function paperTrade(
  options: PaperTradeOptions,
): Promise<PaperResult & { report: PaperReport | null }> {
  const { config, exchange: exchangeId, symbol } = options;
  const cwd = options.cwd ?? process.cwd();
  // The exchange connection loads spot markets only (createExchange), so a perpetual broker would
  // find no market for its symbol: refused up front, naming the key that fixes it.
  if (config.broker.marketType === 'perpetual')
    throw new ConfigError(
      'broker.marketType',
      'ctm paper follows spot markets only (perpetual swaps are not built yet)',
      { hint: '--set broker.marketType=spot with a spot symbol such as BTC/USDT' },
    );
  // The live switch is checked before anything else happens.
  const credentials =
    options.live === true ? liveCredentials(config, exchangeId, symbol, true) : null;
  const store = await CandleStore.open(resolve(cwd, config.paths.store), { readOnly: true });
  try {
    const exchange = marketDataOnly(
      await createExchange(exchangeId, config.data.download, {
        pro: config.live.feed !== 'poll',
        wsUrl: config.live.wsUrl,
      }),
    );
    await exchange.loadMarkets();
    const market = exchange.markets?.[symbol];
    if (market === undefined)
      throw new UsageError(`${exchangeId} has no market ${symbol}`, {
        hint: 'symbols are ccxt unified: BTC/USDT (spot), BTC/USDT:USDT (perpetual)',
      });
    const ccxt = await import('ccxt');
    // After a drop or stall the websocket side starts over on a fresh instance (markets copied).
    const renewWatcher = async (): Promise<Exchange> => {
      const fresh = marketDataOnly(
        await createExchange(exchangeId, config.data.download, {
          pro: true,
          wsUrl: config.live.wsUrl,
        }),
      );
      fresh.setMarkets(exchange.markets);
      return fresh;
    };
    const feed = ccxtFeed(exchange, ccxt, symbol, renewWatcher);
    let venue: OrderVenue | undefined;
    if (credentials !== null) {
      const trader: Exchange = await createExchange(exchangeId, config.data.download);
      trader.apiKey = credentials.apiKey;
      trader.secret = credentials.secret;
      if (config.live.sandbox) trader.setSandboxMode(true);
      await trader.loadMarkets();
      venue = new CcxtVenue(
        trader,
        symbol,
        config.live.maxOrdersPerHour,
        config.live.rebalanceTolerance,
      );
    }
    const policyOf = async (features: MultiTimeframeFeatures): Promise<Policy> =>
      (await resolvePolicy(options.policy, { features, config, cwd })).policy;
    const stored: StoredCandles = (tf, fromMs, toMs) =>
      store.read({ exchange: exchangeId, symbol, timeframe: tf }, { fromMs, toMs });
    const dir = options.runDir ?? paperRunDir(config, exchangeId, symbol, cwd);
    const result = await runPaper({
      config,
      exchange: exchangeId,
      symbol,
      policyRef: options.policy,
      resolvePolicy: policyOf,
      feed,
      stored,
      dir,
      // The exchange's clock (from its last answer): warm-up ends with the candles closed by then.
      nowMs: feed.nowMs(),
      market: { ...(market as CcxtMarketLike), precisionMode: exchange.precisionMode },
      venue,
      maxBars: options.maxBars,
      signal: options.signal,
    });
    // The run folder's report: the paper equity beside the backtest of the same span.
    const report = await writePaperReport({
      config,
      dir,
      state: result.state,
      bars: result.bars,
      stored,
      resolvePolicy: policyOf,
    });
    return { ...result, report };
  } finally {
    store.close();
  }
}

/** What `ctm paper status` shows. */
export interface PaperStatus {
  /** The journal's state (position, shadow check, feed counters). */
  readonly state: PaperState;
  /** The last bars journaled, oldest first. */
  readonly lastBars: readonly JournalBar[];
  /** Equity after the last bar, quote currency. */
  readonly equity: number;
  /** Equity minus the starting capital, quote currency. */
  readonly pnl: number;
  /** Signed exposure after the last bar. */
  readonly position: number;
}

/**
 * Reads a paper run folder.
 * @throws {UsageError} when the folder holds no paper journal.
 * @throws {CheckpointError} when it is corrupt.
 */
export function paperStatus(dir: string, lastDecisions: number): PaperStatus {
  const journal = new Journal(dir);
  if (!journal.exists())
    throw new UsageError(`${dir} holds no paper journal`, {
      hint: 'start one with ctm paper --policy NAME --symbol S (or give --run DIR)',
    });
  const { state, bars } = journal.read();
  const last = bars[bars.length - 1];
  return {
    state,
    lastBars: bars.slice(-lastDecisions),
    equity: last.equity,
    pnl: last.equity - state.initialCapital,
    position: last.position,
  };
}
