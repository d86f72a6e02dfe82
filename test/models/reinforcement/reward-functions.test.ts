// Reward functions: the spec-signature pnlReward equals the broker's log equity change, the online
// differential Sharpe ratio equals the finite difference of the moving Sharpe ratio it
// approximates, the downside variant follows Moody & Saffell's formula, and the env composes the
// terms with the configured weights.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DifferentialDownside,
  DifferentialSharpe,
  pnlReward,
  RewardFunction,
  riskAdjustedReward,
} from '../../../src/models/reinforcement/reward-functions.js';
import { Broker, brokerConfig } from '../../../src/evaluation/broker.js';
import { CryptoTradingEnv } from '../../../src/models/reinforcement/trading-env.js';
import { defaultConfig } from '../../../src/utils/config.js';
import { Rng } from '../../../src/utils/random.js';
import { singleFeatures, walkCandles } from './helpers.js';

describe('pnlReward', () => {
  it('equals the broker log equity change of one step (fill at the current price, mark at the next)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(-1, -0.5, 0, 0.5, 1),
        fc.constantFrom(-1, -0.5, 0, 0.5, 1),
        fc.double({ min: 0.7, max: 1.4, noNaN: true }),
        fc.double({ min: 50, max: 150, noNaN: true }),
        fc.double({ min: 0, max: 0.005, noNaN: true }),
        (action, position, move, current, cost) => {
          // Moves within +-40%: no liquidation of a 1x position.
          const next = current * move;
          fc.pre(action !== position); // the broker trades only when the target changes
          const b = new Broker(
            brokerConfig({
              takerFeeRate: cost,
              funding: { enabled: false },
              slippage: { model: 'fixed', fixedBps: 0 },
            }),
            { timeframe: '15m' },
          );
          const T = Date.UTC(2024, 0, 1);
          // Establish a position at price `current`; its exact exposure p0 is what pnlReward takes.
          b.step(T, current, current, current, current, 1, position);
          const before = b.equity;
          const p0 = (b.quantity * current) / before;
          b.step(
            T + 900_000,
            current,
            Math.max(current, next),
            Math.min(current, next),
            next,
            1,
            action,
          );
          expect(pnlReward(action, p0, next, current, cost)).toBeCloseTo(
            Math.log(b.equity / before),
            12,
          );
        },
      ),
      { numRuns: 200, seed: 3 },
    );
  });

  it('is -Infinity when the step would wipe out the equity', () => {
    expect(pnlReward(1, 0, 0, 100, 0)).toBe(-Infinity);
    expect(pnlReward(1, 0, 101, 100, 0.001)).toBeCloseTo(Math.log(1 - 0.001 + 0.01), 15);
  });
});

describe('differential Sharpe ratio', () => {
  it('matches the first-order change of the moving Sharpe ratio A / sqrt(B - A^2) per unit eta', () => {
    const rng = new Rng(1);
    const eta = 1e-5;
    const dsr = new DifferentialSharpe(eta);
    // Warm up the moments with a first batch of returns (eta large for speed, then small).
    let a = 0;
    let b = 0;
    for (let i = 0; i < 2000; i++) {
      const r = 0.001 + 0.01 * rng.normal();
      a += 0.01 * (r - a);
      b += 0.01 * (r * r - b);
    }
    for (let i = 0; i < 20; i++) {
      const r = 0.001 + 0.01 * rng.normal();
      dsr.a = a;
      dsr.b = b;
      const d = dsr.update(r);
      const s0 = a / Math.sqrt(b - a * a);
      const a1 = a + eta * (r - a);
      const b1 = b + eta * (r * r - b);
      const s1 = a1 / Math.sqrt(b1 - a1 * a1);
      expect(d).toBeCloseTo((s1 - s0) / eta, 2);
      a = a1;
      b = b1;
    }
  });

  it('riskAdjustedReward(returns, rf) is the online term at the last return, after subtracting rf', () => {
    const returns = [0.01, -0.02, 0.015, 0.003, -0.001, 0.02];
    const online = new DifferentialSharpe(0.1);
    let last = 0;
    for (const r of returns) last = online.update(r - 0.001);
    expect(riskAdjustedReward(returns, 0.001, { eta: 0.1 })).toBe(last);
    expect(riskAdjustedReward([], 0)).toBe(0);
    expect(riskAdjustedReward([0.01])).toBe(0); // no variance yet
    expect(() => riskAdjustedReward(returns, 0, { eta: 2 })).toThrow(RangeError);
  });

  it('rewards a return above the running mean and punishes one below it', () => {
    const d = new DifferentialSharpe(0.05);
    const rng = new Rng(2);
    for (let i = 0; i < 500; i++) d.update(0.001 + 0.01 * rng.normal());
    const { a, b } = d;
    expect(d.update(a + 0.03)).toBeGreaterThan(0);
    d.a = a;
    d.b = b;
    expect(d.update(a - 0.03)).toBeLessThan(0);
  });
});

describe('differential downside deviation ratio', () => {
  it('follows Moody & Saffell (2001): (R - A/2)/DD for R > 0, (DD^2 (R - A/2) - A R^2/2)/DD^3 otherwise', () => {
    const d = new DifferentialDownside(0.1);
    d.a = 0.002;
    d.dd2 = 0.0001;
    expect(d.update(0.01)).toBeCloseTo((0.01 - 0.001) / 0.01, 12);
    d.a = 0.002;
    d.dd2 = 0.0001;
    const r = -0.01;
    expect(d.update(r)).toBeCloseTo((0.0001 * (r - 0.001) - 0.001 * r * r) / 1e-6, 9);
    // Moments: A += eta (R - A); DD^2 += eta (min(R, 0)^2 - DD^2).
    expect(d.a).toBeCloseTo(0.002 + 0.1 * (r - 0.002), 15);
    expect(d.dd2).toBeCloseTo(0.0001 + 0.1 * (r * r - 0.0001), 15);
  });
});

describe('RewardFunction (composition with config weights)', () => {
  const ctx = {
    prevEquity: 100,
    equity: 101,
    logReturn: Math.log(1.01),
    simpleReturn: 0.01,
    drawdown: 0.05,
    turnover: 0.8,
    position: 1,
  };

  it('is the pure log equity change under the default config', () => {
    const rf = new RewardFunction(defaultConfig().rewards);
    expect(rf.isPurePnl).toBe(true);
    expect(rf.compute(ctx)).toBe(Math.log(1.01));
  });

  it('adds weighted drawdown and turnover penalties, the differential ratios and user terms', () => {
    const rf = new RewardFunction(
      {
        ...defaultConfig().rewards,
        pnl: 2,
        drawdownPenalty: 0.5,
        turnoverPenalty: 0.01,
        differentialSharpe: 0.1,
        differentialDownside: 0.2,
      },
      [{ term: { name: 'const', reset: () => undefined, compute: () => 3 }, weight: 0.25 }],
    );
    expect(rf.isPurePnl).toBe(false);
    const r = rf.compute(ctx);
    expect(r).toBeCloseTo(2 * Math.log(1.01) - 0.5 * 0.05 - 0.01 * 0.8 + 0.75, 12); // ratios 0 at start
    expect(Array.from(rf.terms)).toEqual([Math.log(1.01), 0, 0, -0.05, -0.8]);
    const r2 = rf.compute({ ...ctx, simpleReturn: -0.02, logReturn: Math.log(0.98) });
    expect(rf.terms[1]).not.toBe(0);
    expect(rf.terms[2]).toBe(0); // no downside seen before this return
    expect(r2).toBeCloseTo(
      2 * Math.log(0.98) + 0.1 * rf.terms[1] + 0.2 * rf.terms[2] - 0.025 - 0.008 + 0.75,
      12,
    );
    rf.compute(ctx);
    expect(rf.terms[2]).toBeGreaterThan(0); // a gain after a loss
    rf.reset();
    expect(Array.from(rf.terms)).toEqual([0, 0, 0, 0, 0]);
  });

  it('the env uses the configured weights: turnover penalty lowers the reward of a trade by weight x notional / equity', () => {
    const f = singleFeatures(walkCandles(200, 4), 4);
    const plain = new CryptoTradingEnv(f, { transactionCost: 0.001 });
    const penal = new CryptoTradingEnv(f, {
      transactionCost: 0.001,
      rewards: { turnoverPenalty: 0.5 },
    });
    plain.reset({ options: { startRow: 50 } });
    penal.reset({ options: { startRow: 50 } });
    const a = plain.step(2)[1];
    const b = penal.step(2)[1];
    const turnover = plain.broker.tradedNotional / 10_000;
    expect(b).toBeCloseTo(a - 0.5 * turnover, 12);
  });
});
