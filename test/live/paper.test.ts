import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, LiveTradingError, UsageError } from '../../src/errors.js';
import { checkMarketType, runPaper } from '../../src/live/paper.js';
import { BAR, paperBacktest, paperRig, START, type PaperRig } from '../helpers/paper.js';
import { hasSharedData, SKIP_REASON } from '../helpers/shared-data.js';

let rig: PaperRig | null = null;
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ctm-paper-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  await rig?.close();
  rig = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!hasSharedData)(`paper trading over the fake exchange${SKIP_REASON}`, () => {
  it('trades exactly what a backtest of the same candles trades: decisions, fills and equity (5 days of real BTC, sma-cross)', async () => {
    rig = await paperRig({ days: 5 });
    const dir = tempDir();
    const result = await runPaper(rig.options(dir, 5 * 96));
    const { state, bars } = result;
    expect(bars.length).toBe(5 * 96 + 1);
    // Every bar once, in order, no gap (the replayed week has none).
    for (let k = 1; k < bars.length; k++)
      expect(bars[k].decisionTimeMs - bars[k - 1].decisionTimeMs).toBe(BAR);
    expect(bars[1].decisionTimeMs).toBe(START + BAR);
    const bt = await paperBacktest(
      rig,
      state.warmupFromMs,
      state.startOpenTimeMs,
      state.lastOpenTimeMs,
    );
    expect(bt.rows).toBe(bars.length);
    expect(bars.map((b) => Math.fround(b.decided))).toEqual(Array.from(bt.target));
    expect(bars.map((b) => b.equity)).toEqual(Array.from(bt.equity));
    expect(result.fills).toEqual(bt.fills.toArray());
    expect(result.fills.length).toBeGreaterThan(2);
    // The shadow check compared every observation with the backtest's: no difference.
    expect(state.shadow).toMatchObject({ status: 'ok', differences: 0, checkedBars: bars.length });
    // Paper trading never sent anything but market-data requests.
    expect(
      rig.fake.calls.every((c) => c === 'GET /api/v3/klines' || c === 'GET /api/v3/exchangeInfo'),
    ).toBe(true);
  });

  it('raises the shadow alert and halts new orders when one replayed candle differs from the store', async () => {
    const altered = START + 30 * BAR;
    rig = await paperRig({
      days: 3,
      live: { shadowEveryBars: 8 },
      alter: (rows) => {
        const r = rows.find((x) => x[0] === altered)!;
        r[4] = r[4] * 1.001; // the close, 0.1% off
        r[2] = Math.max(r[2], r[4]);
      },
    });
    const result = await runPaper(rig.options(tempDir(), 3 * 96));
    const sh = result.state.shadow;
    expect(sh.status).toBe('halted');
    expect(sh.differences).toBeGreaterThan(0);
    expect(sh.firstDifference!.decisionTimeMs).toBe(altered + BAR);
    // Orders stop from the first bar after the check that found it: the target sent stays put.
    const haltedBars = result.bars.filter((b) => b.haltReason !== null);
    expect(haltedBars.length).toBeGreaterThan(100);
    for (const b of haltedBars) expect(b.sent).toBe(haltedBars[0].sent);
    expect(haltedBars[0].bar).toBeLessThanOrEqual(31 + 8);
  });

  it('without --live no code path can send an order: the exchange refuses every order method, and none reaches the server', async () => {
    rig = await paperRig({ days: 1 });
    const result = await runPaper(rig.options(tempDir(), 96));
    expect(result.fills.length).toBeGreaterThan(0); // the policy did trade, on paper
    const ex = rig.exchange as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const m of [
      'createOrder',
      'createMarketOrder',
      'editOrder',
      'cancelOrder',
      'cancelAllOrders',
      'withdraw',
    ])
      expect(() => ex[m]('BTC/USDT', 'market', 'buy', 1)).toThrow(LiveTradingError);
    expect(rig.fake.calls.filter((c) => !c.startsWith('GET '))).toEqual([]);
    expect(rig.fake.calls.some((c) => /order|withdraw|transfer/i.test(c))).toBe(false);
  });

  it('holds new orders while the stop file exists', async () => {
    rig = await paperRig({ days: 1 });
    const dir = tempDir();
    writeFileSync(join(dir, 'STOP'), '');
    const result = await runPaper(rig.options(dir, 96));
    expect(result.bars.slice(1).every((b) => b.haltReason === 'stop file STOP present')).toBe(true);
    expect(result.fills).toEqual([]);
  });

  it('resumes from its journal with no bar twice and none missed, and equals one uninterrupted run', async () => {
    rig = await paperRig({ days: 3 });
    const dir = tempDir();
    await runPaper(rig.options(dir, 100));
    // A restart: the exchange moved on by 20 bars meanwhile (a gap in the process, not the data).
    rig.fake.nowMs += 20 * BAR;
    const resumed = await runPaper(rig.options(dir, 3 * 96 - 100));
    expect(resumed.replayed).toBe(101);
    const times = resumed.bars.map((b) => b.decisionTimeMs);
    expect(new Set(times).size).toBe(times.length);
    for (let k = 1; k < times.length; k++) expect(times[k] - times[k - 1]).toBe(BAR);
    const s = resumed.state;
    const bt = await paperBacktest(rig, s.warmupFromMs, s.startOpenTimeMs, s.lastOpenTimeMs);
    expect(resumed.bars.map((b) => b.equity)).toEqual(Array.from(bt.equity));
    expect(resumed.fills).toEqual(bt.fills.toArray());
  });

  it('survives 5xx, 429 with Retry-After, dropped and stalled connections, duplicated, reordered and late candles, losing nothing', async () => {
    rig = await paperRig({ days: 2, live: { stallTimeoutMs: 300 } });
    const faults = [
      '500',
      '429',
      'drop',
      'hang',
      'duplicate',
      'reorder',
      'late',
      'duplicate',
    ] as const;
    let n = 0;
    rig.fake.onKlines = (req) => {
      if (req.interval === '15m' && ++n % 9 === 0 && n < 150)
        rig!.fake.faults.push(faults[(n / 9) % faults.length]);
    };
    const result = await runPaper(rig.options(tempDir(), 2 * 96));
    const times = result.bars.map((b) => b.decisionTimeMs);
    for (let k = 1; k < times.length; k++) expect(times[k] - times[k - 1]).toBe(BAR);
    expect(result.state.shadow).toMatchObject({ status: 'ok', differences: 0 });
    expect(result.feed.rateLimited).toBeGreaterThan(0);
    expect(result.feed.stalls).toBeGreaterThan(0);
    expect(result.feed.retries).toBeGreaterThan(0);
    expect(result.feed.duplicates).toBeGreaterThan(0);
    // (ccxt sorts REST answers itself; out-of-order streams are covered in feed.test.ts.)
    const s = result.state;
    const bt = await paperBacktest(rig, s.warmupFromMs, s.startOpenTimeMs, s.lastOpenTimeMs);
    expect(result.bars.map((b) => b.equity)).toEqual(Array.from(bt.equity));
  });

  it('follows the websocket kline stream (watchOHLCV), reconnecting after a dropped and a silent socket', async () => {
    rig = await paperRig({ days: 2, watch: true, live: { stallTimeoutMs: 300 } });
    const fake = rig.fake;
    let ticks = 0;
    const timer = setInterval(() => {
      if (fake.nowMs >= START + 110 * BAR) return;
      fake.nowMs += BAR;
      ticks++;
      if (ticks === 30) fake.wsDrop();
      fake.wsSilent = ticks >= 50 && ticks < 80;
      fake.wsTick();
    }, 20);
    let result;
    try {
      result = await runPaper(rig.options(tempDir(), 96));
    } finally {
      clearInterval(timer);
    }
    const times = result.bars.map((b) => b.decisionTimeMs);
    expect(times.length).toBe(97);
    for (let k = 1; k < times.length; k++) expect(times[k] - times[k - 1]).toBe(BAR);
    // The dropped socket and, after the silence, the stalled one were replaced by new
    // connections that subscribed again (the stream resumed, not only the REST backfills).
    expect(fake.calls.filter((c) => c === 'WS SUBSCRIBE').length).toBeGreaterThanOrEqual(3);
    expect(result.feed.retries).toBeGreaterThan(0);
    expect(result.feed.stalls).toBeGreaterThan(0);
    expect(result.state.shadow).toMatchObject({ status: 'ok', differences: 0 });
    const s = result.state;
    const bt = await paperBacktest(rig, s.warmupFromMs, s.startOpenTimeMs, s.lastOpenTimeMs);
    expect(result.bars.map((b) => b.equity)).toEqual(Array.from(bt.equity));
  });

  it('backfills a gap of several bars after the connection comes back', async () => {
    rig = await paperRig({ days: 2 });
    let jumped = false;
    rig.fake.onKlines = (req) => {
      if (!jumped && req.interval === '15m' && rig!.fake.nowMs >= START + 40 * BAR) {
        jumped = true;
        rig!.fake.nowMs += 9 * BAR; // nine bars pass while the process hears nothing
      }
    };
    const result = await runPaper(rig.options(tempDir(), 96));
    expect(jumped).toBe(true);
    const times = result.bars.map((b) => b.decisionTimeMs);
    for (let k = 1; k < times.length; k++) expect(times[k] - times[k - 1]).toBe(BAR);
    expect(result.state.shadow.differences).toBe(0);
  });

  it('refuses an empty store, naming ctm data download', async () => {
    rig = await paperRig({ days: 1 });
    const options = rig.options(tempDir(), 1);
    // A store without a single candle of the pair.
    const run = runPaper({ ...options, stored: (tf) => options.stored(tf, 0, 1) });
    await expect(run).rejects.toThrow(UsageError);
    await expect(run).rejects.toThrow(/ctm data download/);
  });
});

describe('market type', () => {
  it('refuses a spot symbol on a perpetual broker and a perpetual symbol on a spot one', () => {
    expect(() => checkMarketType('BTC/USDT', 'perpetual')).toThrow(ConfigError);
    expect(() => checkMarketType('BTC/USDT:USDT', 'spot')).toThrow(/broker.marketType/);
    expect(() => checkMarketType('BTC/USDT', 'spot', { spot: true })).not.toThrow();
    expect(() => checkMarketType('BTC/USDT:USDT', 'perpetual', { swap: true })).not.toThrow();
    expect(() => checkMarketType('BTC/USDT:USDT', 'perpetual', { spot: true })).toThrow(
      ConfigError,
    );
  });
});
