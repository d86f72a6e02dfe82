// The baselines an agent is judged against: the pattern oracle's profit on a hand-made market with
// two patterns (and a third that cuts the second short) equals the hand computation; spot
// buy-and-hold pays no funding and no borrow where the perpetual one pays funding; random is
// reported over seeds, never one path.

import { describe, expect, it } from 'vitest';
import { makeCandles } from '../../src/data-processing/candles.js';
import { backtestStrategy } from '../../src/evaluation/backtest.js';
import {
  baselineBroker,
  baselinePolicy,
  buyAndHoldPolicy,
  patternOraclePolicy,
  randomBaselines,
  type PatternOutcome,
} from '../../src/evaluation/baselines.js';
import { brokerConfig, spotBrokerConfig } from '../../src/evaluation/broker.js';
import { UsageError } from '../../src/errors.js';
import { resolvePolicy } from '../../src/policies.js';
import { defaultConfig } from '../../src/utils/config.js';
import { handFeatures, walkCandles } from './fixtures.js';

const BAR = 900_000;
const T0 = Date.UTC(2024, 0, 1);

/**
 * 32 continuous 15m candles (each opens at the previous close; wicks 0.5 around the body) at
 * these closes: 100 through bar 9, up 2 a bar to 110 (bars 10-14), 110 through bar 19, down 2 a bar
 * to 104 (bars 20-22), up 2 a bar to 114 (bars 23-27), 114 to the end.
 */
function handMarket() {
  const close = new Float64Array(32);
  for (let i = 0; i < 32; i++) {
    if (i <= 9) close[i] = 100;
    else if (i <= 14) close[i] = 100 + 2 * (i - 9);
    else if (i <= 19) close[i] = 110;
    else if (i <= 22) close[i] = 110 - 2 * (i - 19);
    else if (i <= 27) close[i] = 104 + 2 * (i - 22);
    else close[i] = 114;
  }
  const open = close.map((_, i) => (i === 0 ? 100 : close[i - 1]));
  return makeCandles('BTC/USDT', '15m', {
    openTime: Float64Array.from({ length: 32 }, (_, i) => T0 + i * BAR),
    open,
    high: close.map((c, i) => Math.max(c, open[i]) + 0.5),
    low: close.map((c, i) => Math.min(c, open[i]) - 0.5),
    close,
    volume: new Float64Array(32).fill(10),
  });
}

/** Close time of bar i (a decision time). */
const closeOf = (i: number): number => T0 + (i + 1) * BAR;

describe('pattern-oracle', () => {
  const candles = handMarket();
  const features = handFeatures(candles, { x: new Float32Array(32) }, []);
  const labels: PatternOutcome[] = [
    // A: a bullish pattern completing at bar 9's close, resolving by bar 14's close: long.
    {
      completionTimeMs: closeOf(9),
      resolutionTimeMs: closeOf(14),
      expectedDirection: 1,
      adversarial: false,
    },
    // B: a bullish look-alike planted to fail (adversarial): short from bar 19's close, until C.
    {
      completionTimeMs: closeOf(19),
      resolutionTimeMs: closeOf(24),
      expectedDirection: 1,
      adversarial: true,
    },
    // C: a bearish look-alike planted to fail: long from bar 22's close to bar 27's close.
    {
      completionTimeMs: closeOf(22),
      resolutionTimeMs: closeOf(27),
      expectedDirection: -1,
      adversarial: true,
    },
    // Skipped: no direction (sideways), and no resolution planted.
    {
      completionTimeMs: closeOf(2),
      resolutionTimeMs: closeOf(5),
      expectedDirection: 0,
      adversarial: false,
    },
    {
      completionTimeMs: closeOf(3),
      resolutionTimeMs: NaN,
      expectedDirection: 1,
      adversarial: false,
    },
  ];

  it('earns exactly the hand-computed profit: long A, short B until C takes over, long C, flat otherwise', () => {
    const f = 0.001;
    const r = backtestStrategy({
      policy: patternOraclePolicy(features, labels),
      data: features,
      broker: brokerConfig({ funding: { enabled: false }, slippage: { fixedBps: 0 } }),
      transactionCost: f,
      initialCapital: 10_000,
      benchmark: false,
    });
    // Targets decided at each bar's close: +1 at bars 9-13, -1 at 19-21, +1 at 22-26, else 0.
    const expected = Array.from({ length: 32 }, (_, i) =>
      i >= 9 && i <= 13 ? 1 : i >= 19 && i <= 21 ? -1 : i >= 22 && i <= 26 ? 1 : 0,
    );
    expect([...r.target]).toEqual(expected);
    // By hand (fills at the next open; fee f on traded notional; equity = cash + qty x price):
    // A: buy 10000/100 = 100 at open[10] = 100, fee 10: cash -10; sell 100 at open[15] = 110,
    //    fee 11: cash = -10 + 11000 - 11 = 10979.
    let cash = 10_000;
    let qty = 10_000 / 100;
    cash -= qty * 100 + f * qty * 100;
    cash += qty * 110 - f * qty * 110;
    expect(cash).toBeCloseTo(10_979, 9);
    // B: short 10979/110 at open[20] = 110.
    qty = -cash / 110;
    cash += -qty * 110 - f * -qty * 110;
    // C at open[23] = 104: equity E = cash + qty x 104, target +1: qty' = E / 104; traded
    //    |qty' - qty| x 104 with fee f.
    const equity = cash + qty * 104;
    const long = equity / 104;
    cash -= (long - qty) * 104 + f * (long - qty) * 104;
    // Flat at open[28] = 114.
    cash += long * 114 - f * long * 114;
    expect(cash).toBeCloseTo(12_644.449, 2);
    expect(r.finalEquity).toBeCloseTo(cash, 6);
    expect(r.trades.length).toBe(3);
  });

  it('resolves by name only with labels, and stays flat on a market without any', async () => {
    const config = defaultConfig();
    expect(() => baselinePolicy('pattern-oracle', { features, config })).toThrow(UsageError);
    const resolved = await resolvePolicy('pattern-oracle', { features, config, labels: [] });
    const r = backtestStrategy({ policy: resolved.policy, data: features, benchmark: false });
    expect(r.finalEquity).toBe(r.initialCapital);
  });
});

describe('spot-buy-hold', () => {
  // Four days of 15m candles: twelve 8-hour funding stamps.
  const candles = walkCandles(4 * 96, { seed: 3 });
  const features = handFeatures(candles, { x: new Float32Array(4 * 96) }, []);
  const config = defaultConfig();

  it('pays no funding and no borrow: its equity is the coin held after the two fees', async () => {
    const resolved = await resolvePolicy('spot-buy-hold', { features, config });
    expect(resolved.broker).toEqual(spotBrokerConfig(config.broker));
    expect(resolved.broker?.marketType).toBe('spot');
    const spot = backtestStrategy({
      policy: resolved.policy,
      data: features,
      broker: resolved.broker,
      benchmark: false,
    });
    const f = config.broker.takerFeeRate;
    const s = config.broker.slippage.fixedBps / 10_000;
    expect(s).toBeGreaterThan(0);
    // E / p0 coins bought at the first fill (open p0 of bar 1, paid p0 (1 + s)), fee f on what
    // was paid; sold at the last close p1 for p1 (1 - s), fee f on the proceeds.
    const p0 = candles.open[1];
    const p1 = candles.close[candles.close.length - 1] * (1 - s);
    const e = spot.initialCapital;
    const paid = e * (1 + s);
    expect(spot.finalEquity).toBeCloseTo(e - paid - f * paid + (e / p0) * p1 * (1 - f), 6);
    expect(spot.metrics.costs.funding).toBe(0);
    // The perpetual buy-and-hold pays funding at every stamp (positive constant rate).
    const perp = backtestStrategy({ policy: buyAndHoldPolicy(), data: features, benchmark: false });
    expect(perp.metrics.costs.funding as number).toBeGreaterThan(0);
    expect(perp.finalEquity).toBeLessThan(spot.finalEquity);
    // The backtest's benchmark is spot buy-and-hold.
    const withBenchmark = backtestStrategy({ policy: buyAndHoldPolicy(), data: features });
    expect(withBenchmark.benchmarkEquity?.[withBenchmark.rows - 1]).toBeCloseTo(
      spot.finalEquity,
      6,
    );
    expect(baselineBroker('buy-hold', config.broker)).toBeUndefined();
  });
});

describe('random over seeds', () => {
  const features = handFeatures(walkCandles(600, { seed: 4 }), { x: new Float32Array(600) }, []);

  it('resolves to backtest.random.seeds seeds (10 by default), the first being the single random baseline', async () => {
    const config = defaultConfig();
    const resolved = await resolvePolicy('random', { features, config });
    expect(resolved.seeds?.length).toBe(10);
    const finals = resolved.seeds!.map(
      (p) => backtestStrategy({ policy: p, data: features, benchmark: false }).finalEquity,
    );
    expect(new Set(finals).size).toBe(10);
    const single = backtestStrategy({
      policy: baselinePolicy('random', { features, config }),
      data: features,
      benchmark: false,
    });
    expect(single.finalEquity).toBe(finals[0]);
    expect(randomBaselines(config, 3).length).toBe(3);
  });
});
