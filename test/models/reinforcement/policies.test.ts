// Sanity of the env's economics with two reference policies: an oracle fed the true return of the
// interval its position is held for can earn no more than the analytic maximum (and exactly it,
// long-only without costs), and a uniformly random policy loses on average exactly its costs:
// mean pnl = -(traded notional x fee rate), within sampling error.

import { describe, expect, it } from 'vitest';
import { CryptoTradingEnv } from '../../../src/models/reinforcement/trading-env.js';
import { Rng } from '../../../src/utils/random.js';
import { singleFeatures, walkCandles } from './helpers.js';

const base = walkCandles(3000, 17, { sigma: 0.006 });
const features = singleFeatures(base, 4);
const o = base.open;
const c = base.close;

/**
 * Runs an oracle over `steps` steps from `start`: at decision row t it is told R_t, the return of
 * the position it now chooses (filled at open t+1, held to the next fill at open t+2, or to the
 * close of the last row), and picks the level of that sign. Returns final equity and the analytic
 * maximum E0 x prod(1 + |R_t|) (long-only: prod(1 + max(R_t, 0))).
 */
function runOracle(
  fee: number,
  longOnly: boolean,
  start: number,
  steps: number,
): { equity: number; max: number } {
  const env = new CryptoTradingEnv(features, {
    transactionCost: fee,
    env: { positionLevels: [-1, 0, 1], maxEpisodeSteps: steps },
    broker: { funding: { enabled: false }, slippage: { model: 'fixed', fixedBps: 0 } },
  });
  env.reset({ options: { startRow: start } });
  const end = start + steps;
  let max = env.broker.equity;
  let equity = max;
  for (let t = start; t < end; t++) {
    const exit = t + 2 <= end ? o[t + 2] : c[end];
    const r = exit / o[t + 1] - 1;
    const action = r > 0 ? 2 : r < 0 && !longOnly ? 0 : 1;
    max *= 1 + (longOnly ? Math.max(r, 0) : Math.abs(r));
    const out = env.step(action);
    equity = out[4].equity;
    if (out[2] || out[3]) break;
  }
  return { equity, max };
}

describe('reference policies', () => {
  it('a long-only oracle without costs earns exactly the analytic maximum prod(1 + max(R, 0))', () => {
    for (const start of [10, 700, 1900]) {
      const { equity, max } = runOracle(0, true, start, 500);
      expect(Math.abs(equity / max - 1)).toBeLessThan(1e-9);
    }
  });

  it('a long/short oracle never earns more than prod(1 + |R|), and fees make it earn strictly less', () => {
    for (const start of [10, 700, 1900]) {
      const free = runOracle(0, false, start, 500);
      expect(free.equity).toBeLessThanOrEqual(free.max * (1 + 1e-12));
      expect(free.equity).toBeGreaterThan(10_000); // foresight does pay
      const paid = runOracle(0.001, false, start, 500);
      expect(paid.equity).toBeLessThan(free.equity);
      expect(paid.equity).toBeLessThan(paid.max);
    }
  });

  it('a random policy loses on average its turnover x cost (mean pnl = -fee x traded notional)', () => {
    const fee = 0.001;
    const env = new CryptoTradingEnv(features, {
      transactionCost: fee,
      env: { maxEpisodeSteps: 200 },
      broker: { funding: { enabled: false }, slippage: { model: 'fixed', fixedBps: 0 } },
    });
    const rng = new Rng(123);
    const episodes = 300;
    const pnl: number[] = [];
    const gap: number[] = [];
    let costSum = 0;
    for (let ep = 0; ep < episodes; ep++) {
      const [, info0] = env.reset({ seed: ep });
      const e0 = info0.equity;
      let done = false;
      let equity = e0;
      while (!done) {
        const out = env.step(rng.int(3));
        equity = out[4].equity;
        done = out[2] || out[3];
      }
      const cost = fee * env.broker.tradedNotional; // turnover x cost
      expect(env.broker.feesPaid).toBeCloseTo(cost, 6);
      pnl.push(equity - e0);
      gap.push(equity - e0 + cost);
      costSum += cost;
    }
    const meanCost = costSum / episodes;
    const meanPnl = pnl.reduce((s, x) => s + x, 0) / episodes;
    const meanGap = gap.reduce((s, x) => s + x, 0) / episodes;
    const sd = Math.sqrt(gap.reduce((s, x) => s + (x - meanGap) ** 2, 0) / (episodes - 1));
    const se = sd / Math.sqrt(episodes);
    expect(se).toBeLessThan(0.1 * meanCost); // the test can tell costs from noise
    expect(meanPnl).toBeLessThan(0);
    expect(Math.abs(meanPnl + meanCost)).toBeLessThan(4 * se);
  });
});
