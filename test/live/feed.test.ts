import { describe, expect, it } from 'vitest';
import { CandleFollower, type MarketFeed } from '../../src/live/feed.js';
import { defaultConfig } from '../../src/utils/config.js';

const BAR = 900_000;
const T0 = Date.UTC(2023, 0, 1);

/** A candle row whose close encodes its open time and version (1 = final). */
function row(k: number, version = 1): number[] {
  return [T0 + k * BAR, 100 + k, 101 + k, 99 + k, 100 + k + version / 10, 1];
}

/** A scripted exchange: websocket updates (each at its exchange time); REST answers from `truth`. */
function scripted(
  updates: { at: number; rows: number[][] }[],
  truth: number[][],
  clock: { now: number },
): MarketFeed {
  return {
    canWatch: true,
    async fetchOHLCV(_tf: string, sinceMs: number) {
      return truth.filter((r) => r[0] >= sinceMs && r[0] + BAR <= clock.now);
    },
    async watchOHLCV() {
      const u = updates.shift();
      if (u === undefined) return new Promise<number[][]>(() => undefined);
      clock.now = u.at;
      return u.rows;
    },
    async disconnect() {},
    nowMs: () => clock.now,
    retryAfterMs: () => 0,
    isTransient: () => true,
  };
}

const settings = {
  ...defaultConfig().live,
  pollMs: 1,
  closeGraceMs: 0,
  stallTimeoutMs: 200,
  backoffMs: 1,
  maxBackoffMs: 2,
};

describe('CandleFollower over a websocket stream', () => {
  it('hands out each closed candle once, in order, with its final values, through forming, duplicated, out-of-order and missing updates', async () => {
    const clock = { now: T0 + 3 * BAR };
    const truth = [0, 1, 2, 3, 4, 5, 6].map((k) => row(k));
    const at = (bars: number): number => T0 + bars * BAR;
    const updates = [
      { at: at(3.5), rows: [row(3, 0)] }, // 3 forming
      { at: at(4), rows: [row(3, 1)] }, // 3's final version, at its close
      { at: at(4.2), rows: [row(2)] }, // a late duplicate of a candle handed out
      { at: at(4.5), rows: [row(4, 0)] }, // 4 forming
      { at: at(6.2), rows: [row(6, 0), row(5)] }, // 5 after 6; 4's last update never came
      { at: at(7.1), rows: [row(6)] }, // 6's final version
    ];
    const feed = scripted(updates, truth, clock);
    const f = new CandleFollower(feed, '15m', settings, T0 + 1 * BAR, { watch: true });
    const got: number[][] = [];
    // The first call backfills 2 by REST, then the stream takes over (4 comes from REST again).
    for (let i = 0; i < 5; i++) {
      const c = (await f.next())!;
      got.push([c.openTime, c.close]);
    }
    expect(got.map((g) => (g[0] - T0) / BAR)).toEqual([2, 3, 4, 5, 6]);
    // Every candle with its final close (version 1).
    for (const [t, close] of got) expect(close).toBe(100 + (t - T0) / BAR + 0.1);
    expect(f.stats.duplicates).toBeGreaterThan(0);
    expect(f.stats.outOfOrder).toBeGreaterThan(0);
    expect(f.stats.backfills).toBeGreaterThan(1);
  });

  it('reconnects and backfills when the socket stalls', async () => {
    const clock = { now: T0 + 5 * BAR };
    const truth = [0, 1, 2, 3, 4].map((k) => row(k));
    const feed = scripted([], truth, clock); // the stream never says anything
    const f = new CandleFollower(feed, '15m', settings, T0 + 1 * BAR, { watch: true });
    const out: number[] = [];
    for (let i = 0; i < 3; i++) out.push(((await f.next())!.openTime - T0) / BAR);
    expect(out).toEqual([2, 3, 4]);
    const stalled = f.next(AbortSignal.timeout(700));
    expect(await stalled).toBeNull();
    expect(f.stats.stalls).toBeGreaterThan(0);
  });
});
