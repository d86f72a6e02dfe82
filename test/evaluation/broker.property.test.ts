// Property tests of the broker's accounting identities over random price paths, random targets
// and random cost settings: equity rebuilt independently from the ledger equals the broker's every
// step, closed trades add up to the equity change, and costs never increase equity.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Broker,
  brokerConfig,
  type BrokerConfig,
  type DeepPartial,
} from '../../src/evaluation/broker.js';

const H1 = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);

interface Path {
  /** Open time of each bar: hourly, with random data gaps (skipped hours). */
  time: number[];
  open: number[];
  high: number[];
  low: number[];
  close: number[];
  volume: number[];
}

/** A random OHLCV path: log-returns per bar, wicks as fractions beyond open/close, data gaps. */
const pathArb = fc
  .array(
    fc.record({
      gap: fc.double({ min: -0.01, max: 0.01, noNaN: true }),
      ret: fc.double({ min: -0.06, max: 0.06, noNaN: true }),
      up: fc.double({ min: 0, max: 0.03, noNaN: true }),
      down: fc.double({ min: 0, max: 0.03, noNaN: true }),
      volume: fc.double({ min: 1, max: 1e4, noNaN: true }),
      skip: fc.constantFrom(0, 0, 0, 0, 0, 0, 1, 7, 30),
    }),
    { minLength: 2, maxLength: 120 },
  )
  .map((bars): Path => {
    const p: Path = { time: [], open: [], high: [], low: [], close: [], volume: [] };
    let last = 100;
    let t = T0;
    for (const b of bars) {
      t += b.skip * H1;
      p.time.push(t);
      t += H1;
      const o = last * Math.exp(b.gap);
      const c = o * Math.exp(b.ret);
      p.open.push(o);
      p.close.push(c);
      p.high.push(Math.max(o, c) * (1 + b.up));
      p.low.push(Math.min(o, c) * (1 - b.down));
      p.volume.push(b.volume);
      last = c;
    }
    return p;
  });

const targetArb = fc.oneof(
  fc.constantFrom(-1, -0.5, 0, 0.5, 1),
  fc.double({ min: -1, max: 1, noNaN: true }),
);

const costArb = fc.record({
  fee: fc.double({ min: 0, max: 0.003, noNaN: true }),
  maker: fc.double({ min: 0, max: 0.002, noNaN: true }),
  model: fc.constantFrom('fixed', 'range', 'atr', 'volume') as fc.Arbitrary<
    BrokerConfig['slippage']['model']
  >,
  bps: fc.double({ min: 0, max: 30, noNaN: true }),
  funding: fc.double({ min: -0.002, max: 0.002, noNaN: true }),
  spot: fc.boolean(),
});

type Costs = typeof costArb extends fc.Arbitrary<infer R> ? R : never;

function makeConfig(c: Costs, extra: DeepPartial<BrokerConfig> = {}): BrokerConfig {
  return brokerConfig({
    takerFeeRate: c.fee,
    makerFeeRate: c.maker,
    marketType: c.spot ? 'spot' : 'perpetual',
    slippage: { model: c.model, fixedBps: c.bps, volumeImpact: 0.01, maxBps: 200 },
    funding: { enabled: true, constantRate: c.funding },
    borrow: { annualRate: 0.2 },
    ...extra,
  });
}

function stepAll(b: Broker, p: Path, targets: number[], k: number): void {
  b.step(
    p.time[k],
    p.open[k],
    p.high[k],
    p.low[k],
    p.close[k],
    p.volume[k],
    targets[k % targets.length],
  );
}

describe('broker accounting properties', () => {
  it('equity rebuilt from the ledger of fills and charges (cash + quantity x mark) equals the broker equity every step', () => {
    fc.assert(
      fc.property(
        pathArb,
        fc.array(targetArb, { minLength: 1, maxLength: 40 }),
        costArb,
        fc.constantFrom(1, 2, 3),
        fc.option(fc.double({ min: 0.005, max: 0.05, noNaN: true }), { nil: null }),
        fc.option(fc.double({ min: 0.005, max: 0.08, noNaN: true }), { nil: null }),
        (p, targets, costs, leverage, sl, tp) => {
          const cfg = makeConfig(costs, {
            leverage,
            stops: { stopLossFraction: sl, takeProfitFraction: tp },
          });
          const b = new Broker(cfg, { timeframe: '1h' });
          const E0 = b.equity;
          let fi = 0;
          let ci = 0;
          let cash = E0;
          let qty = 0;
          for (let k = 0; k < p.open.length; k++) {
            stepAll(b, p, targets, k);
            for (; fi < b.fills.length; fi++) {
              cash -= b.fills.quantity[fi] * b.fills.price[fi] + b.fills.fee[fi];
              qty += b.fills.quantity[fi];
              expect(b.fills.fee[fi]).toBeGreaterThanOrEqual(0);
              expect(b.fills.slippageCost[fi]).toBeGreaterThanOrEqual(-1e-9 * E0);
            }
            for (; ci < b.charges.length; ci++) cash -= b.charges.amount[ci];
            const rebuilt = cash + qty * p.close[k];
            expect(Math.abs(rebuilt - b.equity)).toBeLessThanOrEqual(1e-9 * E0);
            expect(Math.abs(qty - b.quantity)).toBeLessThanOrEqual(
              1e-9 * Math.abs(b.quantity) + 1e-12,
            );
            expect(b.cash).toBeCloseTo(cash, 6);
          }
          // Closed round trips add up to the whole equity change once flat.
          b.closePosition(p.time[p.time.length - 1] + H1, p.close[p.close.length - 1]);
          let sum = 0;
          for (let i = 0; i < b.trades.length; i++) sum += b.trades.pnl[i];
          expect(Math.abs(sum - (b.equity - E0))).toBeLessThanOrEqual(1e-8 * E0);
          expect(b.fundingPaid + b.borrowPaid).toBeCloseTo(
            Array.from(b.charges.amount.subarray(0, b.charges.length)).reduce((s, x) => s + x, 0),
            6,
          );
        },
      ),
      { numRuns: 300, seed: 20240101 },
    );
  });

  it('fees and slippage never increase equity: at every step, equity with costs <= the same actions without', () => {
    fc.assert(
      fc.property(
        pathArb,
        fc.array(targetArb, { minLength: 1, maxLength: 40 }),
        costArb,
        (p, targets, costs) => {
          const funding = { enabled: true, constantRate: costs.funding };
          const withCosts = new Broker(makeConfig(costs, { funding }), { timeframe: '1h' });
          const free = new Broker(
            makeConfig(
              { ...costs, fee: 0, maker: 0, bps: 0, model: 'fixed' },
              { funding, borrow: { annualRate: 0.2 } },
            ),
            { timeframe: '1h' },
          );
          for (let k = 0; k < p.open.length; k++) {
            stepAll(withCosts, p, targets, k);
            stepAll(free, p, targets, k);
            expect(withCosts.equity).toBeLessThanOrEqual(free.equity * (1 + 1e-12) + 1e-9);
          }
          expect(withCosts.feesPaid).toBeGreaterThanOrEqual(0);
          expect(withCosts.slippagePaid).toBeGreaterThanOrEqual(-1e-9);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });
});
