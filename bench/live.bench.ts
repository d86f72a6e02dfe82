// `live.decision_latency_ms` (ms): from the moment the paper loop receives a closed 15m candle to
// the moment the target is sent, over a replayed month of real BTC/USDT candles (June 2023) with the
// sma-cross baseline and the default config (365 warm-up days, every feature, journal on disk,
// shadow check every 96 bars). The value is the median; params carry p99 and the worst bar, and
// `live.decision_latency_worst_ms` reports the worst on its own. The exchange is an in-process
// replay (one bar per request), so network time is not counted. Needs ../shared/data.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sliceByTime, type Candles, type Timeframe } from '../src/data-processing/candles.js';
import { readCandlesCsv } from '../src/data-processing/file-formats.js';
import type { MarketFeed } from '../src/live/feed.js';
import { runPaper } from '../src/live/paper.js';
import { resolvePolicy } from '../src/policies.js';
import { loadConfig } from '../src/utils/config.js';
import { report } from './lib.js';

const DATA =
  process.env.CTM_SHARED_DATA ?? fileURLToPath(new URL('../../shared/data/', import.meta.url));
const TFS: Timeframe[] = ['15m', '4h', '1d'];
const MS: Record<string, number> = { '15m': 900_000, '4h': 14_400_000, '1d': 86_400_000 };
const START = Date.UTC(2023, 5, 1);
const BARS = 30 * 96;

const candles = new Map<Timeframe, Candles>();
for (const tf of TFS)
  candles.set(
    tf,
    (
      await readCandlesCsv(join(DATA, `binance-BTCUSDT-${tf}.csv.gz`), {
        symbol: 'BTC/USDT',
        timeframe: tf,
      })
    ).candles,
  );

/** The exchange: candles closed by its clock, which moves one bar before each 15m request but the first. */
let now = START;
let started = false;
const feed: MarketFeed = {
  canWatch: false,
  async fetchOHLCV(tf, sinceMs, limit) {
    if (tf === '15m') {
      if (started) now += MS['15m'];
      started = true;
    }
    const c = sliceByTime(candles.get(tf)!, sinceMs, now + 1);
    const rows: number[][] = [];
    for (let i = 0; i < c.openTime.length && rows.length < limit; i++) {
      const forming = c.openTime[i] + MS[tf] > now;
      rows.push(
        forming
          ? [c.openTime[i], c.open[i], c.open[i], c.open[i], c.open[i], 0]
          : [c.openTime[i], c.open[i], c.high[i], c.low[i], c.close[i], c.volume[i]],
      );
    }
    return rows;
  },
  watchOHLCV: () => Promise.reject(new Error('no stream')),
  disconnect: async () => undefined,
  nowMs: () => now,
  retryAfterMs: () => 0,
  isTransient: () => false,
};

const config = loadConfig({
  overrides: [{ broker: { marketType: 'spot' }, live: { pollMs: 1, closeGraceMs: 0 } }],
});
const dir = mkdtempSync(join(tmpdir(), 'ctm-bench-live-'));
const latencies: number[] = [];
let shadow: string;
try {
  const result = await runPaper({
    config,
    exchange: 'binance',
    symbol: 'BTC/USDT',
    policyRef: 'sma-cross',
    resolvePolicy: async (features) =>
      (await resolvePolicy('sma-cross', { features, config })).policy,
    feed,
    stored: async (tf, fromMs, toMs) => sliceByTime(candles.get(tf)!, fromMs, toMs),
    dir,
    nowMs: START,
    maxBars: BARS,
    onDecision: (d) => {
      if (d.bar > 0) latencies.push(d.latencyMs);
    },
    follower: { sleep: async () => undefined },
  });
  const sh = result.state.shadow;
  shadow = `${sh.status}, ${sh.checkedBars} bars compared, ${sh.differences} differences`;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
latencies.sort((a, b) => a - b);
const at = (q: number): number =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
const params = {
  policy: 'sma-cross',
  bars: latencies.length,
  replayed: 'binance BTC/USDT 15m, 2023-06 (one month)',
  p99Ms: Number(at(0.99).toFixed(3)),
  worstMs: Number(latencies[latencies.length - 1].toFixed(3)),
  goal: 'median < 100 ms, worst < 1 s',
  shadow,
};
report('live.decision_latency_ms', at(0.5), 'ms', false, params);
report('live.decision_latency_worst_ms', latencies[latencies.length - 1], 'ms', false, params);
