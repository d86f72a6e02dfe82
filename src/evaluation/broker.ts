// The execution core: the ONLY place where orders become fills and money moves. The RL env, the
// backtester and paper/live trading all drive this one Broker, bar by bar. A target position decided
// at a bar's close is filled at the NEXT bar's open (plus slippage); nothing here ever reads a bar
// before it is handed in, and slippage is estimated from bars already closed. Margin (perpetual
// futures) convention: target p in [-1, 1] means a notional of p x leverage x equity marked at the
// fill bar's open; fees are rate x |traded notional|, paid from cash; pnl is quantity x price change;
// equity = cash + quantity x mark. The hot path (`step`) allocates nothing: the ledgers are columnar
// typed arrays that grow by doubling.

import { timeframeMs, type Candles, type Timeframe } from '../data-processing/candles.js';
import { ConfigError } from '../errors.js';
import { configSchema, defaultConfig, type Config } from '../utils/config.js';
import type { AccountSnapshot } from './policy.js';

/** The `broker` config section (see config/default.yaml for every key's meaning and unit). */
export type BrokerConfig = Config['broker'];

/** A recursive partial, for overriding a few config keys. */
export type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends readonly unknown[]
    ? T[K]
    : T[K] extends object | null
      ? DeepPartial<NonNullable<T[K]>> | Extract<T[K], null>
      : T[K];
};

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): object {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isPlain(v) && isPlain(base[k]) ? deepMerge(base[k], v) : v;
  }
  return out;
}

/**
 * A broker config: `base` (default: config/default.yaml's) with `overrides` merged in, validated.
 * @example const cfg = brokerConfig({ takerFeeRate: 0.0005, slippage: { fixedBps: 2 } });
 * @throws {ConfigError} naming `broker.<key>` when a value is invalid or unknown.
 */
export function brokerConfig(
  overrides: DeepPartial<BrokerConfig> = {},
  base: BrokerConfig = defaultConfig().broker,
): BrokerConfig {
  const merged = deepMerge(
    base as unknown as Record<string, unknown>,
    overrides as Record<string, unknown>,
  );
  const result = configSchema.shape.broker.safeParse(merged);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const keys = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
  throw new ConfigError(['broker', ...keys.map(String)].join('.'), issue.message);
}

/**
 * The account of someone who simply buys the coin: a spot market (no funding), no leverage and no
 * borrow interest; fees, slippage and constraints as `config`. Spot buy-and-hold runs on it.
 */
export function spotBrokerConfig(config: BrokerConfig): BrokerConfig {
  return {
    ...config,
    marketType: 'spot',
    leverage: 1,
    borrow: { ...config.borrow, annualRate: 0 },
  };
}

/**
 * The parts of a ccxt market description (`exchange.market(symbol)`) the broker reads: fee rates,
 * amount/price precision and the minimum amount and cost. Precision is read in the exchange's
 * `precisionMode`, which ccxt keeps on the exchange, not the market: pass
 * `{ ...exchange.market(symbol), precisionMode: exchange.precisionMode }`.
 */
export interface CcxtMarketLike {
  /**
   * ccxt precision mode: 4 = TICK_SIZE (the default; every exchange in ccxt 4 but two), precision
   * values are step sizes (an amount step of 1 is 1 unit); 2 = DECIMAL_PLACES, they count decimals
   * (3 -> 0.001); 3 = SIGNIFICANT_DIGITS, no fixed step (precision ignored).
   */
  precisionMode?: number;
  /** Unified market symbol, e.g. `BTC/USDT`; informational (the broker does not read it). */
  symbol?: string;
  /** True for a spot market: sets `marketType` to `spot` (unless `swap` is also true). */
  spot?: boolean;
  /** True for a perpetual swap: sets `marketType` to `perpetual` (takes precedence over `spot`). */
  swap?: boolean;
  /** True for a derivative contract; informational (the broker does not read it). */
  contract?: boolean;
  /**
   * Base-currency units per contract (missing, null or <= 0 means 1); scales the amount step and
   * minimum amount.
   */
  contractSize?: number | null;
  /** Taker fee as a fraction of traded notional (0.0005 = 5 bps); replaces `takerFeeRate`. */
  taker?: number | null;
  /** Maker fee as a fraction of traded notional; replaces `makerFeeRate`. */
  maker?: number | null;
  /**
   * Amount (contracts) and price precision, read in `precisionMode`; become `constraints.lotSize`
   * (x contractSize) and `constraints.priceTick`.
   */
  precision?: { amount?: number | null; price?: number | null };
  /**
   * Exchange limits: `amount.min` (contracts, x contractSize -> `constraints.minQuantity`) and
   * `cost.min` (quote currency -> `constraints.minNotional`); maxima are not read.
   */
  limits?: {
    amount?: { min?: number | null; max?: number | null };
    cost?: { min?: number | null; max?: number | null };
  };
}

/** A funding-rate series: at stamp T the rate of the last entry with `timeMs <= T` applies. */
export interface FundingRateSeries {
  /** Funding times, UTC ms, ascending. */
  readonly timeMs: Float64Array;
  /** Rate fraction per funding interval (positive: longs pay shorts). */
  readonly rate: Float64Array;
}

/** Construction options of a Broker besides its config. */
export interface BrokerOptions {
  /** Bar length of the series the broker is stepped on (for borrow accrual and funding stamps). */
  timeframe: Timeframe;
  /** A ccxt market description: its fees, precision and limits replace the config's. */
  market?: CcxtMarketLike;
  /** Funding rates; without them `funding.constantRate` applies at every stamp. */
  fundingRates?: FundingRateSeries;
}

/** Why a fill happened. */
export type FillKind = 'order' | 'stop-loss' | 'take-profit' | 'liquidation' | 'close';
/** Fill kinds by their code in `FillLedger.kind` and `TradeLedger.exitKind`. */
export const FILL_KINDS: readonly FillKind[] = [
  'order',
  'stop-loss',
  'take-profit',
  'liquidation',
  'close',
];
const K_ORDER = 0;
const K_STOP = 1;
const K_TAKE = 2;
const K_LIQ = 3;
const K_CLOSE = 4;

/** One fill, as an object (materialised on demand from the columnar ledger). */
export interface Fill {
  /** Broker step index of the bar the fill happened in (0 = first `step`). */
  bar: number;
  /** Open time (UTC ms) of that bar. */
  timeMs: number;
  /** Why the fill happened (order, stop-loss, take-profit, liquidation or final close). */
  kind: FillKind;
  /** Signed quantity traded in base currency (buy > 0). */
  quantity: number;
  /** Execution price, slippage and tick rounding included. */
  price: number;
  /** Price before slippage (the bar's open, or the stop/limit/liquidation trigger). */
  referencePrice: number;
  /** Fee paid in quote currency (for liquidations: the margin forfeited). */
  fee: number;
  /** Cost of slippage in quote currency: |quantity| x |price - referencePrice|. */
  slippageCost: number;
  /** Position quantity after the fill. */
  positionAfter: number;
  /** Cash after the fill. */
  cashAfter: number;
}

/** Kinds of periodic charges. */
export type ChargeKind = 'funding' | 'borrow';

/** One funding or borrow charge. */
export interface Charge {
  /** Broker step index of the bar the charge was taken in (0 = first `step`). */
  bar: number;
  /** Funding stamp time, or the start of the borrow accrual (the bar open, or a gap's start) (UTC ms). */
  timeMs: number;
  /** Funding payment or borrow interest. */
  kind: ChargeKind;
  /** Amount paid in quote currency (negative = received). */
  amount: number;
  /** Rate applied (funding: per interval; borrow: per year). */
  rate: number;
  /** Position quantity charged. */
  quantity: number;
  /** Mark price used. */
  mark: number;
}

/** One round trip: from flat (or a flip) to flat (or the next flip). */
export interface Trade {
  /** +1 long, -1 short. */
  side: number;
  /** Open time (UTC ms) of the bar of the fill that opened the trade. */
  entryTimeMs: number;
  /**
   * Open time (UTC ms) of the bar of the fill that closed it (for the still-open trade: the last
   * bar's close time).
   */
  exitTimeMs: number;
  /** Broker step index of the opening fill's bar. */
  entryBar: number;
  /** Broker step index of the closing fill's bar. */
  exitBar: number;
  /** Volume-weighted entry price of every fill that increased the position. */
  entryPrice: number;
  /** Volume-weighted price of every fill that reduced it. */
  exitPrice: number;
  /** Largest absolute quantity held. */
  size: number;
  /** Realised price pnl (slippage included, fees and financing excluded), quote currency. */
  grossPnl: number;
  /** Fees paid over the trade's fills, quote currency (a flipping fill's fee is split pro rata). */
  fees: number;
  /** Slippage cost (already inside grossPnl; reported separately). */
  slippage: number;
  /** Funding paid (negative = received). */
  funding: number;
  /** Borrow interest paid. */
  borrow: number;
  /** Net pnl: grossPnl - fees - funding - borrow. */
  pnl: number;
  /** Bars the position was held (a bar counts when held at its close or exited inside it). */
  barsHeld: number;
  /** How the trade was closed. */
  exitKind: FillKind;
}

function growF64(a: Float64Array, n: number): Float64Array {
  const b = new Float64Array(n);
  b.set(a);
  return b;
}
function growI32(a: Int32Array, n: number): Int32Array {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}
function growU8(a: Uint8Array, n: number): Uint8Array {
  const b = new Uint8Array(n);
  b.set(a);
  return b;
}

/** Columnar ledger of fills: one typed-array column per field of `Fill` (kind as its index in `FILL_KINDS`), valid for indices `< length`. */
export class FillLedger {
  /**
   * Number of fills recorded; columns are valid for indices `< length` (capacity may be larger).
   */
  length = 0;
  /** Broker step index of each fill's bar. */
  bar: Int32Array = new Int32Array(16);
  /** Open time (UTC ms) of each fill's bar. */
  timeMs: Float64Array = new Float64Array(16);
  /** Index in `FILL_KINDS` of each fill's kind. */
  kind: Uint8Array = new Uint8Array(16);
  /** Signed quantity traded, base currency (buy > 0). */
  quantity: Float64Array = new Float64Array(16);
  /** Execution price (slippage and tick rounding included), quote per base. */
  price: Float64Array = new Float64Array(16);
  /** Price before slippage (bar open or trigger price). */
  referencePrice: Float64Array = new Float64Array(16);
  /** Fee paid, quote currency (liquidations: the margin forfeited). */
  fee: Float64Array = new Float64Array(16);
  /** Slippage cost, quote currency: |quantity| x |price - referencePrice|. */
  slippageCost: Float64Array = new Float64Array(16);
  /** Position quantity after the fill, base currency (signed). */
  positionAfter: Float64Array = new Float64Array(16);
  /** Cash after the fill, quote currency. */
  cashAfter: Float64Array = new Float64Array(16);

  /** Appends one fill (amortised O(1); allocates only when capacity doubles). */
  push(
    bar: number,
    timeMs: number,
    kind: number,
    quantity: number,
    price: number,
    referencePrice: number,
    fee: number,
    slippageCost: number,
    positionAfter: number,
    cashAfter: number,
  ): void {
    const i = this.length;
    if (i === this.bar.length) {
      const n = i * 2;
      this.bar = growI32(this.bar, n);
      this.timeMs = growF64(this.timeMs, n);
      this.kind = growU8(this.kind, n);
      this.quantity = growF64(this.quantity, n);
      this.price = growF64(this.price, n);
      this.referencePrice = growF64(this.referencePrice, n);
      this.fee = growF64(this.fee, n);
      this.slippageCost = growF64(this.slippageCost, n);
      this.positionAfter = growF64(this.positionAfter, n);
      this.cashAfter = growF64(this.cashAfter, n);
    }
    this.bar[i] = bar;
    this.timeMs[i] = timeMs;
    this.kind[i] = kind;
    this.quantity[i] = quantity;
    this.price[i] = price;
    this.referencePrice[i] = referencePrice;
    this.fee[i] = fee;
    this.slippageCost[i] = slippageCost;
    this.positionAfter[i] = positionAfter;
    this.cashAfter[i] = cashAfter;
    this.length = i + 1;
  }

  /** Fill `i` as an object. @throws {RangeError} when `i` is out of range. */
  get(i: number): Fill {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`fill ${i} outside [0, ${this.length})`);
    return {
      bar: this.bar[i],
      timeMs: this.timeMs[i],
      kind: FILL_KINDS[this.kind[i]],
      quantity: this.quantity[i],
      price: this.price[i],
      referencePrice: this.referencePrice[i],
      fee: this.fee[i],
      slippageCost: this.slippageCost[i],
      positionAfter: this.positionAfter[i],
      cashAfter: this.cashAfter[i],
    };
  }

  /** Every fill as objects, oldest first. */
  toArray(): Fill[] {
    const out: Fill[] = [];
    for (let i = 0; i < this.length; i++) out.push(this.get(i));
    return out;
  }

  /** Empties the ledger, keeping its capacity. */
  clear(): void {
    this.length = 0;
  }
}

/** Columnar ledger of funding and borrow charges: one column per field of `Charge`, valid for indices `< length`. */
export class ChargeLedger {
  /** Number of charges recorded; columns are valid for indices `< length`. */
  length = 0;
  /** Broker step index of each charge's bar. */
  bar: Int32Array = new Int32Array(16);
  /** Funding stamp time, or start of the borrow accrual (UTC ms). */
  timeMs: Float64Array = new Float64Array(16);
  /** 0 = funding, 1 = borrow. */
  kind: Uint8Array = new Uint8Array(16);
  /** Amount paid, quote currency (negative = received). */
  amount: Float64Array = new Float64Array(16);
  /** Rate applied as a fraction (funding: per interval; borrow: per year). */
  rate: Float64Array = new Float64Array(16);
  /** Signed position quantity charged, base currency. */
  quantity: Float64Array = new Float64Array(16);
  /** Mark price used, quote per base. */
  mark: Float64Array = new Float64Array(16);

  /** Appends one charge (amortised O(1)). */
  push(
    bar: number,
    timeMs: number,
    kind: number,
    amount: number,
    rate: number,
    quantity: number,
    mark: number,
  ): void {
    const i = this.length;
    if (i === this.bar.length) {
      const n = i * 2;
      this.bar = growI32(this.bar, n);
      this.timeMs = growF64(this.timeMs, n);
      this.kind = growU8(this.kind, n);
      this.amount = growF64(this.amount, n);
      this.rate = growF64(this.rate, n);
      this.quantity = growF64(this.quantity, n);
      this.mark = growF64(this.mark, n);
    }
    this.bar[i] = bar;
    this.timeMs[i] = timeMs;
    this.kind[i] = kind;
    this.amount[i] = amount;
    this.rate[i] = rate;
    this.quantity[i] = quantity;
    this.mark[i] = mark;
    this.length = i + 1;
  }

  /** Charge `i` as an object. @throws {RangeError} when `i` is out of range. */
  get(i: number): Charge {
    if (!(i >= 0 && i < this.length))
      throw new RangeError(`charge ${i} outside [0, ${this.length})`);
    return {
      bar: this.bar[i],
      timeMs: this.timeMs[i],
      kind: this.kind[i] === 0 ? 'funding' : 'borrow',
      amount: this.amount[i],
      rate: this.rate[i],
      quantity: this.quantity[i],
      mark: this.mark[i],
    };
  }

  /** Every charge as objects, oldest first. */
  toArray(): Charge[] {
    const out: Charge[] = [];
    for (let i = 0; i < this.length; i++) out.push(this.get(i));
    return out;
  }

  /** Empties the ledger, keeping its capacity. */
  clear(): void {
    this.length = 0;
  }
}

/** Columnar list of closed round-trip trades: one column per field of `Trade` (exitKind as its index in `FILL_KINDS`), valid for indices `< length`. */
export class TradeLedger {
  /** Number of closed trades; columns are valid for indices `< length`. */
  length = 0;
  /** +1 long, -1 short. */
  side: Int8Array = new Int8Array(16);
  /** Open time (UTC ms) of the opening fill's bar. */
  entryTimeMs: Float64Array = new Float64Array(16);
  /** Open time (UTC ms) of the closing fill's bar. */
  exitTimeMs: Float64Array = new Float64Array(16);
  /** Broker step index of the opening fill's bar. */
  entryBar: Int32Array = new Int32Array(16);
  /** Broker step index of the closing fill's bar. */
  exitBar: Int32Array = new Int32Array(16);
  /** Volume-weighted price of the fills that increased the position. */
  entryPrice: Float64Array = new Float64Array(16);
  /** Volume-weighted price of the fills that reduced it. */
  exitPrice: Float64Array = new Float64Array(16);
  /** Largest absolute quantity held, base currency. */
  size: Float64Array = new Float64Array(16);
  /** Realised price pnl (slippage included, fees and financing excluded), quote currency. */
  grossPnl: Float64Array = new Float64Array(16);
  /** Fees paid, quote currency. */
  fees: Float64Array = new Float64Array(16);
  /** Slippage cost (already inside `grossPnl`), quote currency. */
  slippage: Float64Array = new Float64Array(16);
  /** Funding paid, quote currency (negative = received). */
  funding: Float64Array = new Float64Array(16);
  /** Borrow interest paid, quote currency. */
  borrow: Float64Array = new Float64Array(16);
  /** Net pnl: grossPnl - fees - funding - borrow, quote currency. */
  pnl: Float64Array = new Float64Array(16);
  /** Bars the position was held (held at a bar's close, or exited inside it). */
  barsHeld: Int32Array = new Int32Array(16);
  /** Index in `FILL_KINDS` of how the trade was closed. */
  exitKind: Uint8Array = new Uint8Array(16);

  /** Makes room for one more trade and returns its index (amortised O(1)). */
  append(): number {
    const i = this.length;
    if (i === this.side.length) {
      const n = i * 2;
      const side = new Int8Array(n);
      side.set(this.side);
      this.side = side;
      this.entryTimeMs = growF64(this.entryTimeMs, n);
      this.exitTimeMs = growF64(this.exitTimeMs, n);
      this.entryBar = growI32(this.entryBar, n);
      this.exitBar = growI32(this.exitBar, n);
      this.entryPrice = growF64(this.entryPrice, n);
      this.exitPrice = growF64(this.exitPrice, n);
      this.size = growF64(this.size, n);
      this.grossPnl = growF64(this.grossPnl, n);
      this.fees = growF64(this.fees, n);
      this.slippage = growF64(this.slippage, n);
      this.funding = growF64(this.funding, n);
      this.borrow = growF64(this.borrow, n);
      this.pnl = growF64(this.pnl, n);
      this.barsHeld = growI32(this.barsHeld, n);
      this.exitKind = growU8(this.exitKind, n);
    }
    this.length = i + 1;
    return i;
  }

  /** Trade `i` as an object. @throws {RangeError} when `i` is out of range. */
  get(i: number): Trade {
    if (!(i >= 0 && i < this.length))
      throw new RangeError(`trade ${i} outside [0, ${this.length})`);
    return {
      side: this.side[i],
      entryTimeMs: this.entryTimeMs[i],
      exitTimeMs: this.exitTimeMs[i],
      entryBar: this.entryBar[i],
      exitBar: this.exitBar[i],
      entryPrice: this.entryPrice[i],
      exitPrice: this.exitPrice[i],
      size: this.size[i],
      grossPnl: this.grossPnl[i],
      fees: this.fees[i],
      slippage: this.slippage[i],
      funding: this.funding[i],
      borrow: this.borrow[i],
      pnl: this.pnl[i],
      barsHeld: this.barsHeld[i],
      exitKind: FILL_KINDS[this.exitKind[i]],
    };
  }

  /** Every closed trade as objects, oldest first. */
  toArray(): Trade[] {
    const out: Trade[] = [];
    for (let i = 0; i < this.length; i++) out.push(this.get(i));
    return out;
  }

  /** Empties the list, keeping its capacity. */
  clear(): void {
    this.length = 0;
  }
}

const DAY_MS = 86_400_000;
const YEAR_MS = 365 * DAY_MS;
const HOUR_MS = 3_600_000;
const SLIP_FIXED = 0;
const SLIP_RANGE = 1;
const SLIP_ATR = 2;
const SLIP_VOLUME = 3;
/** Relative tolerance of lot/tick rounding against binary floating point (e.g. 0.3 / 0.1). */
const ROUND_EPS = 1e-9;

const CCXT_DECIMAL_PLACES = 2;
const CCXT_TICK_SIZE = 4;

/** A ccxt precision value as a step (0 = none) under ccxt precision mode `mode`. */
function precisionStep(p: number | null | undefined, mode: number): number {
  if (p === null || p === undefined || !(p >= 0)) return 0;
  if (mode === CCXT_TICK_SIZE) return p;
  return mode === CCXT_DECIMAL_PLACES && Number.isInteger(p) ? Math.pow(10, -p) : 0;
}

/**
 * The execution and accounting core. Drive it bar by bar with `step(openTimeMs, open, high, low,
 * close, volume, targetPosition)`, where `targetPosition` was decided at the previous bar's close:
 * 1. Daily-loss bookkeeping at the open; the target is clamped (maxPosition, allowShort, halt).
 * 2. If the target differs from the last target executed, the position is rebalanced at the open:
 *    quantity = target x leverage x equity(open) / open, rounded to the lot (toward zero), filled
 *    at open x (1 ± slippage) rounded to the tick against the trader, taker fee from cash.
 *    Orders below the minimum notional are skipped (a full close always passes).
 * 3. Funding stamps inside [open, open + bar) charge quantity x open x rate (perpetual), or borrow
 *    interest accrues (spot shorts and leveraged longs), with or without a trade. Stamps and
 *    borrow time inside a data gap before the bar are charged before step 2, to the position
 *    held through the gap.
 * 4. Inside the bar: the adverse extreme (low for longs, high for shorts) is checked first against
 *    the stop-loss and the isolated-margin liquidation price (whichever is hit first), then the
 *    favourable extreme against the take-profit. Gaps through a level fill at the open.
 * 5. Equity is marked at the close.
 * A forced exit (stop, take-profit, liquidation) resets the last target to flat, so a policy that
 * keeps asking for the same position re-enters on the next bar.
 * @example
 * const broker = new Broker(brokerConfig({ takerFeeRate: 0.001 }), { timeframe: '15m' });
 * broker.prime(c.openTime[0], c.open[0], c.high[0], c.low[0], c.close[0], c.volume[0]);
 * for (let i = 1; i < n; i++) broker.step(c.openTime[i], c.open[i], c.high[i], c.low[i], c.close[i], c.volume[i], target[i - 1]);
 */
export class Broker {
  /** The resolved config (after any ccxt market overrides). */
  readonly config: BrokerConfig;
  /** Fills (empty when `recordLedger` is false). */
  readonly fills = new FillLedger();
  /** Funding and borrow charges (empty when `recordLedger` is false). */
  readonly charges = new ChargeLedger();
  /** Closed round-trip trades (always kept). */
  readonly trades = new TradeLedger();
  /** Bar length in ms. */
  readonly barMs: number;

  // Immutable parameters, unpacked for the hot path.
  private readonly leverage: number;
  private readonly takerFee: number;
  private readonly makerFee: number;
  private readonly slipModel: number;
  private readonly slipFixed: number;
  private readonly slipCoef: number;
  private readonly slipExponent: number;
  private readonly slipMax: number;
  private readonly atrPeriod: number;
  private readonly fundingOn: boolean;
  private readonly fundingIntervalMs: number;
  private readonly constantRate: number;
  private readonly fundingTime: Float64Array | null;
  private readonly fundingRate: Float64Array | null;
  private readonly borrowRate: number;
  private readonly mmr: number;
  private readonly minNotional: number;
  private readonly minQty: number;
  private readonly lot: number;
  private readonly tick: number;
  private readonly stopLoss: number;
  private readonly takeProfit: number;
  private readonly maxPosition: number;
  private readonly minTarget: number;
  private readonly maxDailyLoss: number;
  private readonly record: boolean;

  // The bar being processed (set by step/stepAt/prime/primeAt; read by the hot path).
  private barTime = NaN;
  private barOpen = NaN;
  private barHigh = NaN;
  private barLow = NaN;
  private barClose = NaN;
  private barVolume = NaN;
  // Candles bound by useCandles.
  private cTime: Float64Array | null = null;
  private cOpen: Float64Array | null = null;
  private cHigh: Float64Array | null = null;
  private cLow: Float64Array | null = null;
  private cClose: Float64Array | null = null;
  private cVolume: Float64Array | null = null;

  // Account state.
  private initial = 0;
  private cashValue = 0;
  private qty = 0;
  private avgEntry = 0;
  private margin = 0;
  private liqPrice = 0;
  private bankruptPrice = 0;
  private stopPrice = NaN;
  private takePrice = NaN;
  private lastTarget = 0;
  private mark = NaN;
  private equityValue = 0;
  private peak = 0;
  private barIndex = -1;
  private lastOpenTime = NaN;
  private held = 0;
  private liquidatedFlag = false;
  private day = -1;
  private dayStartEquity = 0;
  private halted = false;
  private nextFundingMs = NaN;
  private fundingPtr = 0;
  private borrowClockMs = NaN;
  // Totals.
  private feesTotal = 0;
  private slippageTotal = 0;
  private fundingTotal = 0;
  private borrowTotal = 0;
  private notionalTotal = 0;
  private fillCount = 0;
  // Slippage estimators from the last closed bar.
  private lastRangeRel = 0;
  private lastVolume = 0;
  private prevClose = NaN;
  private atr = 0;
  private atrCount = 0;
  // The open round trip.
  private tSide = 0;
  private tEntryTime = 0;
  private tEntryBar = 0;
  private tEntryQty = 0;
  private tEntryNotional = 0;
  private tExitQty = 0;
  private tExitNotional = 0;
  private tSize = 0;
  private tGross = 0;
  private tFees = 0;
  private tSlip = 0;
  private tFunding = 0;
  private tBorrow = 0;
  private tBars = 0;
  private readonly snap: AccountSnapshot = {
    position: 0,
    unrealizedPnl: 0,
    barsInPosition: 0,
    drawdown: 0,
  };

  /**
   * @param config the `broker` config section (see `brokerConfig` for defaults plus overrides).
   * @param options bar timeframe, optional ccxt market and funding-rate series.
   * @throws {ConfigError} when the funding series is malformed.
   */
  constructor(config: BrokerConfig, options: BrokerOptions) {
    const m = options.market;
    const c: BrokerConfig = structuredClone(config);
    if (m !== undefined) {
      if (typeof m.taker === 'number') c.takerFeeRate = m.taker;
      if (typeof m.maker === 'number') c.makerFeeRate = m.maker;
      const cs = typeof m.contractSize === 'number' && m.contractSize > 0 ? m.contractSize : 1;
      const mode = m.precisionMode ?? CCXT_TICK_SIZE;
      const amountStep = precisionStep(m.precision?.amount, mode);
      if (amountStep > 0) c.constraints.lotSize = amountStep * cs;
      const priceStep = precisionStep(m.precision?.price, mode);
      if (priceStep > 0) c.constraints.priceTick = priceStep;
      const minAmount = m.limits?.amount?.min;
      if (typeof minAmount === 'number') c.constraints.minQuantity = minAmount * cs;
      const minCost = m.limits?.cost?.min;
      if (typeof minCost === 'number') c.constraints.minNotional = minCost;
      if (m.swap === true) c.marketType = 'perpetual';
      else if (m.spot === true) c.marketType = 'spot';
    }
    this.config = c;
    this.barMs = timeframeMs(options.timeframe);
    this.leverage = c.leverage;
    this.takerFee = c.takerFeeRate;
    this.makerFee = c.makerFeeRate;
    const s = c.slippage;
    this.slipModel =
      s.model === 'range'
        ? SLIP_RANGE
        : s.model === 'atr'
          ? SLIP_ATR
          : s.model === 'volume'
            ? SLIP_VOLUME
            : SLIP_FIXED;
    this.slipFixed = s.fixedBps / 1e4;
    this.slipCoef =
      s.model === 'range' ? s.rangeFraction : s.model === 'atr' ? s.atrFraction : s.volumeImpact;
    this.slipExponent = s.volumeExponent;
    this.slipMax = s.maxBps / 1e4;
    this.atrPeriod = s.atrPeriod;
    this.fundingOn = c.marketType === 'perpetual' && c.funding.enabled;
    this.fundingIntervalMs = c.funding.intervalHours * HOUR_MS;
    this.constantRate = c.funding.constantRate;
    const fr = options.fundingRates;
    if (fr !== undefined) {
      if (fr.timeMs.length !== fr.rate.length)
        throw new ConfigError('broker.funding', 'funding series: timeMs and rate lengths differ');
      for (let i = 0; i < fr.timeMs.length; i++) {
        if (!Number.isFinite(fr.rate[i]) || (i > 0 && !(fr.timeMs[i] > fr.timeMs[i - 1])))
          throw new ConfigError(
            'broker.funding',
            `funding series row ${i}: times must ascend and rates be finite`,
          );
      }
    }
    this.fundingTime = fr?.timeMs ?? null;
    this.fundingRate = fr?.rate ?? null;
    this.borrowRate = c.marketType === 'spot' ? c.borrow.annualRate : 0;
    this.mmr = c.margin.maintenanceMarginRate;
    this.minNotional = c.constraints.minNotional;
    this.minQty = c.constraints.minQuantity;
    this.lot = c.constraints.lotSize;
    this.tick = c.constraints.priceTick;
    this.stopLoss = c.stops.stopLossFraction ?? 0;
    this.takeProfit = c.stops.takeProfitFraction ?? 0;
    this.maxPosition = c.risk.maxPosition;
    this.minTarget = c.allowShort ? -c.risk.maxPosition : 0;
    this.maxDailyLoss = c.risk.maxDailyLossFraction ?? 0;
    this.record = c.recordLedger;
    this.reset();
  }

  /** Back to flat with `initialCapital` (default: the config's) and empty ledgers. */
  reset(initialCapital: number = this.config.initialCapital): void {
    if (!(initialCapital > 0))
      throw new RangeError(`initial capital must be positive, got ${initialCapital}`);
    this.initial = initialCapital;
    this.cashValue = initialCapital;
    this.qty = 0;
    this.avgEntry = 0;
    this.margin = 0;
    this.liqPrice = 0;
    this.bankruptPrice = 0;
    this.stopPrice = NaN;
    this.takePrice = NaN;
    this.lastTarget = 0;
    this.mark = NaN;
    this.equityValue = initialCapital;
    this.peak = initialCapital;
    this.barIndex = -1;
    this.lastOpenTime = NaN;
    this.held = 0;
    this.liquidatedFlag = false;
    this.day = -1;
    this.dayStartEquity = initialCapital;
    this.halted = false;
    this.nextFundingMs = NaN;
    this.fundingPtr = 0;
    this.borrowClockMs = NaN;
    this.feesTotal = 0;
    this.slippageTotal = 0;
    this.fundingTotal = 0;
    this.borrowTotal = 0;
    this.notionalTotal = 0;
    this.fillCount = 0;
    this.lastRangeRel = 0;
    this.lastVolume = 0;
    this.prevClose = NaN;
    this.atr = 0;
    this.atrCount = 0;
    this.tSide = 0;
    this.fills.clear();
    this.charges.clear();
    this.trades.clear();
    this.updateSnapshot();
  }

  /** Starting equity of the current run. */
  get initialCapital(): number {
    return this.initial;
  }
  /** Cash in quote currency (for a long it falls below equity by the position's value). */
  get cash(): number {
    return this.cashValue;
  }
  /** Signed position quantity in base currency. */
  get quantity(): number {
    return this.qty;
  }
  /** Equity (cash + quantity x mark) at the last close. */
  get equity(): number {
    return this.equityValue;
  }
  /** The last mark price (the last bar's close), NaN before the first bar. */
  get markPrice(): number {
    return this.mark;
  }
  /** Volume-weighted entry price of the open position (0 when flat). */
  get entryPrice(): number {
    return this.qty === 0 ? 0 : this.avgEntry;
  }
  /** Signed exposure: quantity x mark / (leverage x equity); 0 when flat or equity <= 0. */
  get exposure(): number {
    return this.snap.position;
  }
  /** The target last executed (after clamping); reset to 0 by forced exits. */
  get currentTarget(): number {
    return this.lastTarget;
  }
  /** Isolated-margin liquidation price of the open position (0 when flat or unreachable). */
  get liquidationPrice(): number {
    return this.qty === 0 ? 0 : this.liqPrice;
  }
  /** Isolated margin posted for the open position (quote currency). */
  get positionMargin(): number {
    return this.margin;
  }
  /** Stop-loss price of the open position, NaN when none. */
  get stopLossPrice(): number {
    return this.stopPrice;
  }
  /** Take-profit price of the open position, NaN when none. */
  get takeProfitPrice(): number {
    return this.takePrice;
  }
  /** Whether the position was liquidated during the last step. */
  get liquidated(): boolean {
    return this.liquidatedFlag;
  }
  /** Whether the daily-loss limit currently clamps targets to flat. */
  get dailyLossHalted(): boolean {
    return this.halted;
  }
  /** Steps taken since `reset` (bars stepped, not counting `prime`). */
  get steps(): number {
    return this.barIndex + 1;
  }
  /** Running maximum of equity. */
  get peakEquity(): number {
    return this.peak;
  }
  /** Drawdown from the running equity peak, a fraction >= 0. */
  get drawdown(): number {
    return this.snap.drawdown;
  }
  /** Total fees paid (liquidation forfeits included), quote currency. */
  get feesPaid(): number {
    return this.feesTotal;
  }
  /** Total slippage cost, quote currency (already inside fill prices). */
  get slippagePaid(): number {
    return this.slippageTotal;
  }
  /** Total funding paid (negative = received). */
  get fundingPaid(): number {
    return this.fundingTotal;
  }
  /** Total borrow interest paid. */
  get borrowPaid(): number {
    return this.borrowTotal;
  }
  /** Total traded notional |quantity| x price over every fill (turnover in quote currency). */
  get tradedNotional(): number {
    return this.notionalTotal;
  }
  /** Number of fills since reset (counted even when the ledger is off). */
  get fillsCount(): number {
    return this.fillCount;
  }
  /** Bars the current position has been held (0 when flat). */
  get barsInPosition(): number {
    return this.held;
  }

  /**
   * The account at the last close, in the observation's units. The returned object is reused and
   * updated by every step; copy it to keep it.
   */
  get account(): AccountSnapshot {
    return this.snap;
  }

  /** Copies the account snapshot into `out` and returns it. */
  snapshot(
    out: AccountSnapshot = { position: 0, unrealizedPnl: 0, barsInPosition: 0, drawdown: 0 },
  ): AccountSnapshot {
    out.position = this.snap.position;
    out.unrealizedPnl = this.snap.unrealizedPnl;
    out.barsInPosition = this.snap.barsInPosition;
    out.drawdown = this.snap.drawdown;
    return out;
  }

  /**
   * The open round trip marked at the last close (`exitPrice` = the mark, `exitTimeMs` = the last
   * bar's close time, `exitKind` = 'close', pnl including the unrealised part and the costs so
   * far), or null when flat. Allocates the returned object.
   */
  openTrade(): Trade | null {
    if (this.qty === 0 || this.tSide === 0) return null;
    const unrealized = this.qty * (this.mark - this.avgEntry);
    const gross = this.tGross + unrealized;
    return {
      side: this.tSide,
      entryTimeMs: this.tEntryTime,
      exitTimeMs: this.lastOpenTime + this.barMs,
      entryBar: this.tEntryBar,
      exitBar: this.barIndex,
      entryPrice: this.tEntryNotional / this.tEntryQty,
      exitPrice: this.mark,
      size: this.tSize,
      grossPnl: gross,
      fees: this.tFees,
      slippage: this.tSlip,
      funding: this.tFunding,
      borrow: this.tBorrow,
      pnl: gross - this.tFees - this.tFunding - this.tBorrow,
      barsHeld: this.tBars,
      exitKind: 'close',
    };
  }

  /**
   * Sets (or clears with NaN) the stop-loss price of the open position; it is replaced by the
   * config's default when the position is next opened or enlarged.
   * @throws {RangeError} when flat.
   */
  setStopLoss(price: number): void {
    if (this.qty === 0) throw new RangeError('setStopLoss: no open position');
    this.stopPrice = price;
  }

  /** Sets (or clears with NaN) the take-profit price of the open position. @throws {RangeError} when flat. */
  setTakeProfit(price: number): void {
    if (this.qty === 0) throw new RangeError('setTakeProfit: no open position');
    this.takePrice = price;
  }

  /**
   * Feeds a bar that is not traded (the first decision bar, or warm-up of the slippage
   * estimators): marks equity at its close and remembers its range, ATR and volume.
   * @throws {RangeError} when a position is open (an open position must be stepped).
   */
  prime(
    openTimeMs: number,
    open: number,
    high: number,
    low: number,
    close: number,
    volume: number,
  ): void {
    this.barTime = openTimeMs;
    this.barOpen = open;
    this.barHigh = high;
    this.barLow = low;
    this.barClose = close;
    this.barVolume = volume;
    this.primeBar();
  }

  /**
   * Binds a candle series so that `stepAt(i, target)` / `primeAt(i)` can read bar i straight from
   * its columns (the allocation-free path the env uses; `step` with scalars is equivalent).
   */
  useCandles(candles: Candles): void {
    this.cTime = candles.openTime;
    this.cOpen = candles.open;
    this.cHigh = candles.high;
    this.cLow = candles.low;
    this.cClose = candles.close;
    this.cVolume = candles.volume;
  }

  /** `prime` with bar `i` of the bound candles. @throws {RangeError} as `prime`, or when unbound. */
  primeAt(i: number): void {
    this.loadBar(i);
    this.primeBar();
  }

  /**
   * `step` with bar `i` of the candles bound by `useCandles`.
   * @throws {RangeError} as `step`, or when no candles are bound or `i` is out of range.
   */
  stepAt(i: number, targetPosition: number): void {
    this.loadBar(i);
    this.advance(targetPosition);
  }

  /**
   * Advances one bar: fills `targetPosition` (decided at the previous bar's close) at this bar's
   * open, charges funding/borrow, applies intrabar stops and liquidation, marks at the close.
   * `targetPosition` is clamped to [-1, 1] (then to the risk limits).
   * @throws {RangeError} when `targetPosition` is NaN or bars go backwards in time.
   */
  step(
    openTimeMs: number,
    open: number,
    high: number,
    low: number,
    close: number,
    volume: number,
    targetPosition: number,
  ): void {
    this.barTime = openTimeMs;
    this.barOpen = open;
    this.barHigh = high;
    this.barLow = low;
    this.barClose = close;
    this.barVolume = volume;
    this.advance(targetPosition);
  }

  private loadBar(i: number): void {
    const t = this.cTime;
    if (t === null) throw new RangeError('stepAt/primeAt: no candles bound (call useCandles)');
    if (!(i >= 0 && i < t.length)) throw new RangeError(`bar ${i} outside [0, ${t.length})`);
    this.barTime = t[i];
    this.barOpen = (this.cOpen as Float64Array)[i];
    this.barHigh = (this.cHigh as Float64Array)[i];
    this.barLow = (this.cLow as Float64Array)[i];
    this.barClose = (this.cClose as Float64Array)[i];
    this.barVolume = (this.cVolume as Float64Array)[i];
  }

  private primeBar(): void {
    if (this.qty !== 0) throw new RangeError('prime: a position is open; use step');
    this.lastOpenTime = this.barTime;
    this.mark = this.barClose;
    this.observe();
  }

  /** One bar from the bar fields (see `step`). */
  private advance(targetPosition: number): void {
    const openTimeMs = this.barTime;
    const open = this.barOpen;
    if (!(openTimeMs > this.lastOpenTime) && this.lastOpenTime === this.lastOpenTime)
      throw new RangeError(`step: bar ${openTimeMs} is not after ${this.lastOpenTime}`);
    if (targetPosition !== targetPosition) throw new RangeError('step: target position is NaN');
    const bar = ++this.barIndex;
    this.lastOpenTime = openTimeMs;
    this.liquidatedFlag = false;

    let target = targetPosition > this.maxPosition ? this.maxPosition : targetPosition;
    if (target < this.minTarget) target = this.minTarget;
    if (this.maxDailyLoss > 0) {
      const day = Math.floor(openTimeMs / DAY_MS);
      const eqOpen = this.cashValue + this.qty * open;
      if (day !== this.day) {
        this.day = day;
        this.dayStartEquity = eqOpen;
        this.halted = false;
      } else if (eqOpen <= this.dayStartEquity * (1 - this.maxDailyLoss)) this.halted = true;
      if (this.halted) target = 0;
    }

    // Funding stamps and borrow time inside a data gap before this bar fall on the position held
    // through the gap, i.e. before this bar's fill.
    if (this.fundingOn) {
      if (this.nextFundingMs !== this.nextFundingMs)
        this.nextFundingMs =
          Math.ceil(openTimeMs / this.fundingIntervalMs) * this.fundingIntervalMs;
      while (this.nextFundingMs < openTimeMs) {
        if (this.qty !== 0) this.chargeFunding(bar);
        this.nextFundingMs += this.fundingIntervalMs;
      }
    } else if (this.borrowRate > 0 && this.borrowClockMs < openTimeMs) {
      this.accrueBorrow(bar, this.borrowClockMs, openTimeMs);
    }

    if (target !== this.lastTarget) {
      this.rebalance(target, bar);
      this.lastTarget = target;
    }

    if (this.fundingOn) {
      const end = openTimeMs + this.barMs;
      while (this.nextFundingMs < end) {
        if (this.qty !== 0) this.chargeFunding(bar);
        this.nextFundingMs += this.fundingIntervalMs;
      }
    } else if (this.borrowRate > 0) {
      this.accrueBorrow(bar, openTimeMs, openTimeMs + this.barMs);
    }

    if (this.qty !== 0) this.intrabar(bar);

    // Mark at the close.
    const close = this.barClose;
    this.mark = close;
    const equity = this.cashValue + this.qty * close;
    this.equityValue = equity;
    if (equity > this.peak) this.peak = equity;
    if (this.qty !== 0) {
      this.held++;
      this.tBars++;
    } else this.held = 0;
    if (this.maxDailyLoss > 0 && equity <= this.dayStartEquity * (1 - this.maxDailyLoss))
      this.halted = true;
    this.observe();
    this.updateSnapshot();
  }

  /**
   * Closes the open position at `price` (e.g. the last close at the end of a backtest) as a market
   * order with taker fee and slippage, recorded with kind `close`. No-op when flat.
   */
  closePosition(timeMs: number, price: number): void {
    if (this.qty === 0) return;
    const bar = this.barIndex < 0 ? 0 : this.barIndex;
    this.fill(
      -this.qty,
      0,
      price,
      this.slippageFraction(Math.abs(this.qty)),
      this.takerFee,
      K_CLOSE,
      timeMs,
      bar,
      false,
    );
    this.lastTarget = 0;
    this.equityValue = this.cashValue;
    this.held = 0;
    this.updateSnapshot();
  }

  private rebalance(target: number, bar: number): void {
    const open = this.barOpen;
    const timeMs = this.barTime;
    const eq = this.cashValue + this.qty * open;
    let qTarget = eq > 0 ? (target * this.leverage * eq) / open : 0;
    if (this.lot > 0) {
      const steps = Math.floor(Math.abs(qTarget) / this.lot + ROUND_EPS);
      qTarget = qTarget < 0 ? -steps * this.lot : steps * this.lot;
    }
    if (Math.abs(qTarget) < this.minQty) qTarget = 0;
    const dq = qTarget - this.qty;
    if (dq === 0) return;
    if (qTarget !== 0 && Math.abs(dq) * open < this.minNotional) return;
    this.fill(
      dq,
      qTarget,
      open,
      this.slippageFraction(Math.abs(dq)),
      this.takerFee,
      K_ORDER,
      timeMs,
      bar,
      false,
    );
  }

  /** Slippage as a price fraction for an order of `absQty`, from the last closed bar. */
  private slippageFraction(absQty: number): number {
    let s = this.slipFixed;
    const model = this.slipModel;
    if (model === SLIP_RANGE) s += this.slipCoef * this.lastRangeRel;
    else if (model === SLIP_ATR) {
      if (this.prevClose > 0) s += (this.slipCoef * this.atr) / this.prevClose;
    } else if (model === SLIP_VOLUME) {
      s +=
        this.lastVolume > 0
          ? this.slipCoef * Math.pow(absQty / this.lastVolume, this.slipExponent)
          : this.slipMax;
    }
    return s > this.slipMax ? this.slipMax : s;
  }

  /**
   * Executes `dq` at `ref` moved by `slip` against the trader (tick-rounded), paying `feeRate`;
   * the position becomes `qNew`. `intrabar` marks exits inside the bar (counted as held).
   */
  private fill(
    dq: number,
    qNew: number,
    ref: number,
    slip: number,
    feeRate: number,
    kind: number,
    timeMs: number,
    bar: number,
    intrabar: boolean,
  ): void {
    const buy = dq > 0;
    let price = buy ? ref * (1 + slip) : ref * (1 - slip);
    const tick = this.tick;
    if (tick > 0) {
      price = buy
        ? Math.ceil(price / tick - ROUND_EPS) * tick
        : Math.floor(price / tick + ROUND_EPS) * tick;
    }
    const absDq = buy ? dq : -dq;
    const notional = absDq * price;
    const fee = feeRate * notional;
    const slipCost = absDq * (buy ? price - ref : ref - price);
    this.cashValue -= dq * price + fee;
    this.feesTotal += fee;
    this.slippageTotal += slipCost;
    this.notionalTotal += notional;
    this.fillCount++;
    this.book(dq, qNew, price, fee, slipCost, kind, timeMs, bar, intrabar);
    if (this.record)
      this.fills.push(bar, timeMs, kind, dq, price, ref, fee, slipCost, qNew, this.cashValue);
  }

  /** Position, round-trip and margin bookkeeping of one fill. */
  private book(
    dq: number,
    qNew: number,
    price: number,
    fee: number,
    slipCost: number,
    kind: number,
    timeMs: number,
    bar: number,
    intrabar: boolean,
  ): void {
    const qOld = this.qty;
    const absDq = dq > 0 ? dq : -dq;
    if (qOld === 0) {
      this.beginTrade(qNew, price, fee, slipCost, timeMs, bar);
      this.avgEntry = price;
    } else if (qOld > 0 === dq > 0) {
      const absOld = qOld > 0 ? qOld : -qOld;
      this.avgEntry = (absOld * this.avgEntry + absDq * price) / (absOld + absDq);
      this.tEntryQty += absDq;
      this.tEntryNotional += absDq * price;
      const absNew = qNew > 0 ? qNew : -qNew;
      if (absNew > this.tSize) this.tSize = absNew;
      this.tFees += fee;
      this.tSlip += slipCost;
    } else {
      const absOld = qOld > 0 ? qOld : -qOld;
      const closeQty = absDq < absOld ? absDq : absOld;
      const share = closeQty / absDq;
      const side = qOld > 0 ? 1 : -1;
      this.tGross += closeQty * (price - this.avgEntry) * side;
      this.tExitQty += closeQty;
      this.tExitNotional += closeQty * price;
      this.tFees += fee * share;
      this.tSlip += slipCost * share;
      if (qNew === 0 || qNew > 0 !== qOld > 0) {
        this.endTrade(kind, timeMs, bar, intrabar);
        if (qNew !== 0) {
          this.beginTrade(qNew, price, fee * (1 - share), slipCost * (1 - share), timeMs, bar);
          this.avgEntry = price;
        }
      }
    }
    this.qty = qNew;
    if (qNew === 0) {
      this.avgEntry = 0;
      this.margin = 0;
      this.liqPrice = 0;
      this.bankruptPrice = 0;
      this.stopPrice = NaN;
      this.takePrice = NaN;
      return;
    }
    const absNew = qNew > 0 ? qNew : -qNew;
    const freeEquity = this.cashValue + qNew * price;
    const wanted = (absNew * this.avgEntry) / this.leverage;
    const margin = wanted < freeEquity ? wanted : freeEquity > 0 ? freeEquity : 0;
    this.margin = margin;
    const mmr = this.mmr;
    if (qNew > 0) {
      this.bankruptPrice = this.avgEntry - margin / absNew;
      this.liqPrice = (absNew * this.avgEntry - margin) / (absNew * (1 - mmr));
    } else {
      this.bankruptPrice = this.avgEntry + margin / absNew;
      this.liqPrice = (absNew * this.avgEntry + margin) / (absNew * (1 + mmr));
    }
    if (qOld === 0 || qOld > 0 === dq > 0 || qNew > 0 !== qOld > 0) {
      // Opened, enlarged or flipped: attach the default stops at the (new) average entry.
      const dir = qNew > 0 ? 1 : -1;
      this.stopPrice = this.stopLoss > 0 ? this.avgEntry * (1 - dir * this.stopLoss) : NaN;
      this.takePrice = this.takeProfit > 0 ? this.avgEntry * (1 + dir * this.takeProfit) : NaN;
    }
  }

  private beginTrade(
    qNew: number,
    price: number,
    fee: number,
    slipCost: number,
    timeMs: number,
    bar: number,
  ): void {
    const absNew = qNew > 0 ? qNew : -qNew;
    this.tSide = qNew > 0 ? 1 : -1;
    this.tEntryTime = timeMs;
    this.tEntryBar = bar;
    this.tEntryQty = absNew;
    this.tEntryNotional = absNew * price;
    this.tExitQty = 0;
    this.tExitNotional = 0;
    this.tSize = absNew;
    this.tGross = 0;
    this.tFees = fee;
    this.tSlip = slipCost;
    this.tFunding = 0;
    this.tBorrow = 0;
    this.tBars = 0;
    this.held = 0;
  }

  private endTrade(kind: number, timeMs: number, bar: number, intrabar: boolean): void {
    const t = this.trades;
    const i = t.append();
    t.side[i] = this.tSide;
    t.entryTimeMs[i] = this.tEntryTime;
    t.exitTimeMs[i] = timeMs;
    t.entryBar[i] = this.tEntryBar;
    t.exitBar[i] = bar;
    t.entryPrice[i] = this.tEntryNotional / this.tEntryQty;
    t.exitPrice[i] = this.tExitNotional / this.tExitQty;
    t.size[i] = this.tSize;
    t.grossPnl[i] = this.tGross;
    t.fees[i] = this.tFees;
    t.slippage[i] = this.tSlip;
    t.funding[i] = this.tFunding;
    t.borrow[i] = this.tBorrow;
    t.pnl[i] = this.tGross - this.tFees - this.tFunding - this.tBorrow;
    t.barsHeld[i] = this.tBars + (intrabar ? 1 : 0);
    t.exitKind[i] = kind;
    this.tSide = 0;
  }

  private chargeFunding(bar: number): void {
    const stampMs = this.nextFundingMs;
    const mark = this.barOpen;
    let rate = this.constantRate;
    const times = this.fundingTime;
    if (times !== null && this.fundingRate !== null) {
      let p = this.fundingPtr;
      while (p + 1 < times.length && times[p + 1] <= stampMs) p++;
      this.fundingPtr = p;
      if (times.length > 0 && times[p] <= stampMs) rate = this.fundingRate[p];
    }
    const amount = rate * this.qty * mark;
    this.cashValue -= amount;
    this.fundingTotal += amount;
    this.tFunding += amount;
    if (this.record) this.charges.push(bar, stampMs, 0, amount, rate, this.qty, mark);
  }

  /** Borrow interest on the position held over [fromMs, toMs), marked at the bar's open. */
  private accrueBorrow(bar: number, fromMs: number, toMs: number): void {
    const open = this.barOpen;
    this.borrowClockMs = toMs;
    if (this.qty === 0) return;
    const value = this.qty * open;
    let borrowed: number;
    if (this.qty < 0) borrowed = -value;
    else {
      const eq = this.cashValue + value;
      borrowed = value > eq ? value - eq : 0;
    }
    if (borrowed <= 0) return;
    const amount = (this.borrowRate * borrowed * (toMs - fromMs)) / YEAR_MS;
    this.cashValue -= amount;
    this.borrowTotal += amount;
    this.tBorrow += amount;
    if (this.record) this.charges.push(bar, fromMs, 1, amount, this.borrowRate, this.qty, open);
  }

  /** Liquidation, stop-loss and take-profit inside the bar: adverse extreme first. */
  private intrabar(bar: number): void {
    const timeMs = this.barTime;
    const open = this.barOpen;
    const high = this.barHigh;
    const low = this.barLow;
    const q = this.qty;
    if (q > 0) {
      const liq = this.liqPrice;
      const stop = this.stopPrice === this.stopPrice ? this.stopPrice : -Infinity;
      if (open <= liq)
        this.liquidate(open > this.bankruptPrice ? open : this.bankruptPrice, timeMs, bar);
      else if (stop >= liq && low <= stop) this.stopOut(open < stop ? open : stop, timeMs, bar);
      else if (low <= liq) this.liquidate(liq, timeMs, bar);
      if (this.qty > 0 && this.takePrice === this.takePrice && high >= this.takePrice)
        this.takeOut(open > this.takePrice ? open : this.takePrice, timeMs, bar);
    } else {
      const liq = this.liqPrice;
      const stop = this.stopPrice === this.stopPrice ? this.stopPrice : Infinity;
      if (open >= liq)
        this.liquidate(open < this.bankruptPrice ? open : this.bankruptPrice, timeMs, bar);
      else if (stop <= liq && high >= stop) this.stopOut(open > stop ? open : stop, timeMs, bar);
      else if (high >= liq) this.liquidate(liq, timeMs, bar);
      if (this.qty < 0 && this.takePrice === this.takePrice && low <= this.takePrice)
        this.takeOut(open < this.takePrice ? open : this.takePrice, timeMs, bar);
    }
  }

  private stopOut(ref: number, timeMs: number, bar: number): void {
    const q = this.qty;
    this.fill(
      -q,
      0,
      ref,
      this.slippageFraction(q > 0 ? q : -q),
      this.takerFee,
      K_STOP,
      timeMs,
      bar,
      true,
    );
    this.lastTarget = 0;
  }

  private takeOut(ref: number, timeMs: number, bar: number): void {
    this.fill(-this.qty, 0, ref, 0, this.makerFee, K_TAKE, timeMs, bar, true);
    this.lastTarget = 0;
  }

  /**
   * Closes the position at `price` and forfeits what is left of its isolated margin (the
   * exchange's liquidation fee / insurance fund): the account loses exactly the margin posted.
   */
  private liquidate(price: number, timeMs: number, bar: number): void {
    const q = this.qty;
    const realized = q * (price - this.avgEntry);
    const left = this.margin + realized;
    const fee = left > 0 ? left : 0;
    this.cashValue += q * price - fee;
    this.feesTotal += fee;
    this.notionalTotal += (q > 0 ? q : -q) * price;
    this.fillCount++;
    this.book(-q, 0, price, fee, 0, K_LIQ, timeMs, bar, true);
    if (this.record)
      this.fills.push(bar, timeMs, K_LIQ, -q, price, price, fee, 0, 0, this.cashValue);
    this.lastTarget = 0;
    this.liquidatedFlag = true;
  }

  /** Updates the slippage estimators with a closed bar. */
  private observe(): void {
    const high = this.barHigh;
    const low = this.barLow;
    const close = this.barClose;
    const volume = this.barVolume;
    const range = high - low;
    this.lastRangeRel = close > 0 ? range / close : 0;
    this.lastVolume = volume;
    let tr = range;
    const pc = this.prevClose;
    if (pc === pc) {
      const a = high - pc;
      const b = pc - low;
      if (a > tr) tr = a;
      if (b > tr) tr = b;
    }
    const n = this.atrPeriod;
    if (this.atrCount < n) {
      this.atrCount++;
      this.atr += (tr - this.atr) / this.atrCount;
    } else this.atr = (this.atr * (n - 1) + tr) / n;
    this.prevClose = close;
  }

  private updateSnapshot(): void {
    const s = this.snap;
    const eq = this.equityValue;
    const m = this.mark;
    if (this.qty !== 0 && eq > 0 && m === m) {
      s.position = (this.qty * m) / (this.leverage * eq);
      s.unrealizedPnl = (this.qty * (m - this.avgEntry)) / eq;
    } else {
      s.position = 0;
      s.unrealizedPnl = 0;
    }
    s.barsInPosition = this.held;
    s.drawdown = this.peak > 0 && eq < this.peak ? 1 - eq / this.peak : 0;
  }
}
