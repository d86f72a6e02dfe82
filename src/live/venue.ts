// Where targets go. Paper trading has no venue object at all: the target waits in the journal and
// the one Broker fills it at the next bar's open, exactly as in a backtest. Only `openLiveVenue`
// builds something that can send an order, and only behind `--live`, the named confirmation key
// `live.confirm`, and API keys read from environment variables (never logged, never written).
// Precision and limits come from ccxt's market description; the kill switch is broker.risk (in
// the Broker), at most `live.maxOrdersPerHour` orders, and the stop file.

import type { Exchange } from 'ccxt';
import { LiveTradingError } from '../errors.js';
import type { Config } from '../utils/config.js';
import { logger } from '../utils/logger.js';

const log = logger.child({ module: 'live-venue' });

const HOUR_MS = 3_600_000;

/** An exchange account that receives target positions (live mode only). */
export interface OrderVenue {
  /**
   * Brings the exchange position to `quantity` (base currency, signed) with a market order, or
   * returns why it did not (below the exchange minimum, kill switch).
   */
  rebalance(quantity: number, nowMs: number): Promise<string | null>;
}

/** ccxt methods that place, change or cancel orders or move funds. */
const ORDER_METHODS = [
  'createOrder',
  'createOrders',
  'createMarketOrder',
  'createLimitOrder',
  'createMarketBuyOrderWithCost',
  'createMarketSellOrderWithCost',
  'editOrder',
  'cancelOrder',
  'cancelOrders',
  'cancelAllOrders',
  'transfer',
  'withdraw',
] as const;

/**
 * Makes a ccxt exchange market-data only: every method that could place, change or cancel an order
 * or move funds throws `LiveTradingError` (naming `--live`) before any request is made. Paper
 * trading (and the market data of live trading) run on such an exchange.
 */
export function marketDataOnly(exchange: Exchange): Exchange {
  const target = exchange as unknown as Record<string, unknown>;
  for (const m of ORDER_METHODS)
    target[m] = (): never => {
      throw new LiveTradingError('--live', `${m} refused: this connection only reads market data`);
    };
  return exchange;
}

/** The phrase `live.confirm` must hold to trade `symbol` on `exchange` for real. */
export function liveConfirmation(exchange: string, symbol: string): string {
  return `real orders on ${exchange} ${symbol}`;
}

/**
 * Checks the live switch: `--live` given, `live.confirm` equal to `liveConfirmation(...)`, and the
 * API key and secret present in the environment variables `live.apiKeyEnv` / `live.apiSecretEnv`.
 * Returns the credentials (to hand to ccxt only).
 * @throws {LiveTradingError} naming `--live`, `live.confirm` or the environment variable missing.
 */
export function liveCredentials(
  config: Config,
  exchange: string,
  symbol: string,
  liveFlag: boolean,
  env: NodeJS.ProcessEnv = process.env,
): { apiKey: string; secret: string } {
  if (!liveFlag) throw new LiveTradingError('--live', 'real orders need the --live flag');
  const phrase = liveConfirmation(exchange, symbol);
  if (config.live.confirm !== phrase)
    throw new LiveTradingError('live.confirm', 'live trading is not confirmed in the config', {
      hint: `set live.confirm: "${phrase}"`,
    });
  const apiKey = env[config.live.apiKeyEnv];
  const secret = env[config.live.apiSecretEnv];
  if (apiKey === undefined || apiKey === '')
    throw new LiveTradingError(config.live.apiKeyEnv, 'the API key environment variable is empty');
  if (secret === undefined || secret === '')
    throw new LiveTradingError(
      config.live.apiSecretEnv,
      'the API secret environment variable is empty',
    );
  return { apiKey, secret };
}

/**
 * The live venue over a ccxt exchange that already holds the credentials (sandbox mode set by the
 * caller when `live.sandbox`). Market orders only; amounts rounded with the market's precision.
 * Each rebalance reads the account's position from the exchange (the base currency's total
 * balance) and orders the difference to the target, so a restart after a crash between an order
 * and its journal line does not repeat the order: the position already holds it. The account's
 * whole base balance is the strategy's position (trade from a dedicated sub-account).
 */
export class CcxtVenue implements OrderVenue {
  private readonly sent: number[] = [];

  /**
   * @param tolerance no order while |target - position| is at most this fraction of the larger of
   *   the two (`live.rebalanceTolerance`): fees taken in the base currency would otherwise make a
   *   small order every bar.
   */
  constructor(
    private readonly exchange: Exchange,
    private readonly symbol: string,
    private readonly maxOrdersPerHour: number,
    private readonly tolerance: number,
  ) {}

  /**
   * The account's position in the symbol's base currency (total balance).
   * @throws {ExchangeError} as ccxt's fetchBalance does (wrapped by the caller).
   */
  async position(): Promise<number> {
    const base = this.exchange.market(this.symbol).base;
    const balance = await this.exchange.fetchBalance();
    const total = (balance.total as unknown as Record<string, number | undefined>)[base];
    return total ?? 0;
  }

  /** @throws {ExchangeError} as ccxt's fetchBalance and createOrder do (wrapped by the caller). */
  async rebalance(quantity: number, nowMs: number): Promise<string | null> {
    const held = await this.position();
    const delta = quantity - held;
    if (Math.abs(delta) <= this.tolerance * Math.max(Math.abs(quantity), Math.abs(held)))
      return null;
    while (this.sent.length > 0 && this.sent[0] <= nowMs - HOUR_MS) this.sent.shift();
    if (this.sent.length >= this.maxOrdersPerHour) return 'live.maxOrdersPerHour reached';
    const market = this.exchange.market(this.symbol);
    const amount = Number(this.exchange.amountToPrecision(this.symbol, Math.abs(delta)));
    const min = market.limits?.amount?.min ?? 0;
    if (!(amount > 0) || amount < min) return `order below the exchange minimum (${min})`;
    const side = delta > 0 ? 'buy' : 'sell';
    this.sent.push(nowMs);
    const order = await this.exchange.createOrder(this.symbol, 'market', side, amount);
    log.info({ symbol: this.symbol, side, amount, held, id: order.id }, 'live order sent');
    return null;
  }
}
