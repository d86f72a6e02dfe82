// A paper-trading rig for the live tests: real BTC/USDT candles from ../shared/data replayed by the
// loopback fake exchange (one bar per base request), a config with fast waits, ccxt pointed at the
// fake, and a "store" holding the true candles. Never reaches a real exchange.

import type { Exchange } from 'ccxt';
import { sliceByTime, type Candles, type Timeframe } from '../../src/data-processing/candles.js';
import { createExchange } from '../../src/data-processing/exchange.js';
import { buildFeatures } from '../../src/data-processing/feature-engineering.js';
import { backtestStrategy, type BacktestResult } from '../../src/evaluation/backtest.js';
import { ccxtFeed, type MarketFeed } from '../../src/live/feed.js';
import { marketDataOnly } from '../../src/live/venue.js';
import type { PaperOptions, StoredCandles } from '../../src/live/paper.js';
import { resolvePolicy } from '../../src/policies.js';
import { loadConfig, type Config } from '../../src/utils/config.js';
import { FakeBinance } from './fake-binance.js';
import { realSpan } from './real-candles.js';

export const TFS: Timeframe[] = ['15m', '4h', '1d'];
export const DAY = 86_400_000;
export const BAR = 900_000;
/** The paper run starts here (warm-up before it comes from the store). */
export const START = Date.UTC(2023, 1, 1);

/** What a live test works with. */
export interface PaperRig {
  fake: FakeBinance;
  config: Config;
  exchange: Exchange;
  feed: MarketFeed;
  /** The store: the true candles. */
  stored: StoredCandles;
  candles: Map<Timeframe, Candles>;
  /** Options for runPaper (add dir, maxBars, ...). */
  options(dir: string, maxBars: number): PaperOptions;
  close(): Promise<void>;
}

function rows(c: Candles): number[][] {
  return Array.from(c.openTime, (t, i) => [
    t,
    c.open[i],
    c.high[i],
    c.low[i],
    c.close[i],
    c.volume[i],
  ]);
}

/**
 * Starts the fake exchange replaying `days` of BTC/USDT after START (plus `warmupDays` of stored
 * history before it). `alter(rows)` may change the replayed 15m rows (never the store's).
 */
export async function paperRig(options: {
  days: number;
  warmupDays?: number;
  alter?: (rows15m: number[][]) => void;
  live?: Record<string, unknown>;
  /** Follow the websocket stream (the test moves the clock with `fake.wsTick`). */
  watch?: boolean;
}): Promise<PaperRig> {
  const warmupDays = options.warmupDays ?? 110;
  const candles = await realSpan(
    'BTCUSDT',
    TFS,
    START - (warmupDays + 2) * DAY,
    START + (options.days + 2) * DAY,
  );
  const replay = new Map<string, number[][]>();
  for (const tf of TFS) replay.set(`BTC/USDT ${tf}`, rows(candles.get(tf)!));
  options.alter?.(replay.get('BTC/USDT 15m')!);
  const fake = await FakeBinance.start({
    markets: { 'BTC/USDT': 'BTCUSDT' },
    nowMs: START,
    listedMs: 0,
    replay,
    clockInterval: '15m',
    clockStepMs: options.watch === true ? 0 : BAR,
  });
  const config = loadConfig({
    overrides: [
      {
        live: {
          pollMs: 1,
          closeGraceMs: 0,
          backoffMs: 1,
          maxBackoffMs: 4,
          stallTimeoutMs: 1500,
          warmupDays,
          shadowEveryBars: 96,
          feed: options.watch === true ? 'watch' : 'poll',
          ...options.live,
        },
        data: { download: { baseUrl: fake.url, timeoutMs: 1000 } },
        // BTC/USDT is a spot market (the perpetual is BTC/USDT:USDT).
        broker: { marketType: 'spot' },
      },
    ],
  });
  const exchange = marketDataOnly(
    await createExchange('binance', config.data.download, {
      pro: options.watch === true,
      wsUrl: fake.wsUrl,
    }),
  );
  exchange.enableRateLimit = false;
  await exchange.loadMarkets();
  const ccxt = await import('ccxt');
  const renewWatcher = async (): Promise<Exchange> => {
    const fresh = marketDataOnly(
      await createExchange('binance', config.data.download, { pro: true, wsUrl: fake.wsUrl }),
    );
    fresh.enableRateLimit = false;
    fresh.setMarkets(exchange.markets);
    return fresh;
  };
  const feed = ccxtFeed(exchange, ccxt, 'BTC/USDT', renewWatcher);
  const stored: StoredCandles = async (tf, fromMs, toMs) =>
    sliceByTime(candles.get(tf)!, fromMs, toMs);
  return {
    fake,
    config,
    exchange,
    feed,
    stored,
    candles,
    options: (dir, maxBars) => ({
      config,
      exchange: 'binance',
      symbol: 'BTC/USDT',
      policyRef: 'sma-cross',
      resolvePolicy: async (features) =>
        (await resolvePolicy('sma-cross', { features, config })).policy,
      feed,
      stored,
      dir,
      nowMs: START,
      maxBars,
    }),
    close: () => fake.close(),
  };
}

/** The backtest of sma-cross over the stored candles, from the paper run's first decision row. */
export async function paperBacktest(
  rig: PaperRig,
  warmupFromMs: number,
  startOpenTimeMs: number,
  lastOpenTimeMs: number,
): Promise<BacktestResult> {
  const close = lastOpenTimeMs + BAR;
  const data = new Map<Timeframe, Candles>();
  for (const tf of TFS) {
    const c = sliceByTime(rig.candles.get(tf)!, warmupFromMs, close);
    const tfMs = tf === '15m' ? BAR : tf === '4h' ? 16 * BAR : DAY;
    let n = c.openTime.length;
    while (n > 0 && c.openTime[n - 1] + tfMs > close) n--;
    data.set(tf, sliceByTime(c, warmupFromMs, n === 0 ? warmupFromMs : c.openTime[n - 1] + 1));
  }
  const features = buildFeatures(data, {
    spec: rig.config.features,
    windows: rig.config.windows,
  });
  const policy = (await resolvePolicy('sma-cross', { features, config: rig.config })).policy;
  return backtestStrategy({
    policy,
    data: features,
    broker: rig.config.broker,
    range: { fromMs: startOpenTimeMs, toMs: close },
    closeAtEnd: false,
    benchmark: false,
  });
}
