// Golden tests of the broker: hand-derived round trips, funding, liquidation, stops, rounding,
// risk limits and borrow. Every expected value is derived in the comment beside it from the
// margin convention (quantity = p x leverage x equity(open) / open; fee = f x |notional|).

import { describe, expect, it } from 'vitest';
import {
  Broker,
  brokerConfig,
  type DeepPartial,
  type BrokerConfig,
} from '../../src/evaluation/broker.js';
import { ConfigError } from '../../src/errors.js';
import { makeCandles } from '../../src/data-processing/candles.js';

const M15 = 900_000;
const H8 = 8 * 3_600_000;
/** 2024-01-01T00:00:00Z, a funding stamp. */
const T0 = Date.UTC(2024, 0, 1);

/** Costs off unless a test turns them on. */
function cfg(over: DeepPartial<BrokerConfig> = {}): BrokerConfig {
  const base: DeepPartial<BrokerConfig> = {
    takerFeeRate: 0,
    makerFeeRate: 0,
    slippage: { model: 'fixed', fixedBps: 0 },
    funding: { enabled: false, constantRate: 0 },
    borrow: { annualRate: 0 },
  };
  return brokerConfig(merge(base, over));
}

function merge(a: object, b: object): DeepPartial<BrokerConfig> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof cur === 'object'
        ? merge(cur as object, v as object)
        : v;
  }
  return out as DeepPartial<BrokerConfig>;
}

interface Bar {
  o: number;
  h?: number;
  l?: number;
  c?: number;
  v?: number;
}

/** Steps bar k (openTime T0 + k x 15m) with target `p`. */
function step(b: Broker, k: number, bar: Bar, p: number): void {
  const c = bar.c ?? bar.o;
  const h = bar.h ?? Math.max(bar.o, c);
  const l = bar.l ?? Math.min(bar.o, c);
  b.step(T0 + k * M15, bar.o, h, l, c, bar.v ?? 1000, p);
}

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
}

describe('broker: golden round trips (margin convention, next-open fills)', () => {
  const cases = [
    { P0: 100, P1: 110, f: 0.001 },
    { P0: 100, P1: 90, f: 0.001 },
    { P0: 42_000.5, P1: 43_917.25, f: 0.00075 },
    { P0: 1.2345, P1: 0.9876, f: 0.002 },
  ];
  for (const { P0, P1, f } of cases) {
    it(`long from flat at full exposure: E1 = E0((1-f)P1/P0 - f), P0=${P0} P1=${P1} f=${f}`, () => {
      const b = new Broker(cfg({ takerFeeRate: f }), { timeframe: '15m' });
      const E0 = b.equity;
      b.prime(T0 - M15, 1, 1, 1, 1, 1);
      step(b, 0, { o: P0, c: P0 * 1.01 }, 1); // entry at bar 0's open P0
      step(b, 1, { o: (P0 + P1) / 2 }, 1); // held, no trade
      step(b, 2, { o: P1, c: P1 * 0.97 }, 0); // exit at bar 2's open P1
      expect(b.quantity).toBe(0);
      expect(rel(b.equity, E0 * ((1 - f) * (P1 / P0) - f))).toBeLessThan(1e-12);
      expect(b.fills.length).toBe(2);
      expect(b.fills.price[0]).toBe(P0);
      expect(b.fills.price[1]).toBe(P1);
    });
    it(`short from flat at full exposure: E1 = E0(2 - f - (1+f)P1/P0), P0=${P0} P1=${P1} f=${f}`, () => {
      const b = new Broker(cfg({ takerFeeRate: f }), { timeframe: '15m' });
      const E0 = b.equity;
      b.prime(T0 - M15, 1, 1, 1, 1, 1);
      step(b, 0, { o: P0 }, -1);
      step(b, 1, { o: (P0 + P1) / 2 }, -1);
      step(b, 2, { o: P1 }, 0);
      expect(rel(b.equity, E0 * (2 - f - (1 + f) * (P1 / P0)))).toBeLessThan(1e-12);
    });
  }

  it('fills the target at the NEXT bar open, never at the decision bar close', () => {
    const b = new Broker(cfg(), { timeframe: '15m' });
    b.prime(T0 - M15, 100, 120, 90, 117, 1); // decision bar closes at 117
    step(b, 0, { o: 101, h: 105, l: 99, c: 104 }, 1);
    expect(b.fills.price[0]).toBe(101);
    expect(b.quantity).toBeCloseTo(10_000 / 101, 12);
    // Equity is marked at the close: 10000 + q (104 - 101).
    expect(rel(b.equity, 10_000 + (10_000 / 101) * 3)).toBeLessThan(1e-12);
  });

  it('leverage L multiplies the notional: long E1 = E0(1 - fL + L(P1/P0 - 1) - fL P1/P0)', () => {
    const L = 3;
    const f = 0.0005;
    const b = new Broker(cfg({ takerFeeRate: f, leverage: L }), { timeframe: '15m' });
    step(b, 0, { o: 200 }, 1);
    step(b, 1, { o: 206 }, 0);
    const r = 206 / 200;
    expect(rel(b.equity, 10_000 * (1 - f * L + L * (r - 1) - f * L * r))).toBeLessThan(1e-12);
    expect(b.trades.length).toBe(1);
  });

  it('keeps the quantity between target changes (no rebalancing of drift) and records the round trip', () => {
    const f = 0.001;
    const b = new Broker(cfg({ takerFeeRate: f }), { timeframe: '15m' });
    step(b, 0, { o: 100 }, 0.5);
    const q = b.quantity;
    expect(q).toBeCloseTo(50, 12); // 0.5 x 10000 / 100
    step(b, 1, { o: 150, c: 150 }, 0.5);
    expect(b.quantity).toBe(q);
    expect(b.exposure).toBeCloseTo((50 * 150) / b.equity, 12);
    step(b, 2, { o: 120 }, 0);
    const t = b.trades.get(0);
    expect(t.side).toBe(1);
    expect(t.entryPrice).toBe(100);
    expect(t.exitPrice).toBe(120);
    expect(t.size).toBe(50);
    expect(t.barsHeld).toBe(2);
    expect(t.grossPnl).toBeCloseTo(50 * 20, 9);
    expect(t.fees).toBeCloseTo(f * 50 * 100 + f * 50 * 120, 12);
    expect(t.pnl).toBeCloseTo(t.grossPnl - t.fees, 12);
    expect(b.equity - 10_000).toBeCloseTo(t.pnl, 9);
    expect(t.exitKind).toBe('order');
  });

  it('a flip long -> short closes one trade and opens the next, splitting the fee by quantity', () => {
    const f = 0.001;
    const b = new Broker(cfg({ takerFeeRate: f }), { timeframe: '15m' });
    step(b, 0, { o: 100 }, 1);
    step(b, 1, { o: 110 }, -1);
    expect(b.trades.length).toBe(1);
    expect(b.quantity).toBeLessThan(0);
    const q0 = 100; // 10000 / 100
    const eq1 = 10_000 - f * 10_000 + q0 * 10; // equity at bar 1's open
    const q1 = -eq1 / 110;
    expect(b.quantity).toBeCloseTo(q1, 9);
    const feeFlip = f * (q0 - q1) * 110;
    expect(b.trades.fees[0]).toBeCloseTo(f * 10_000 + feeFlip * (q0 / (q0 - q1)), 9);
    step(b, 2, { o: 100 }, 0);
    expect(b.trades.length).toBe(2);
    expect(b.trades.side[1]).toBe(-1);
    const sum = b.trades.pnl[0] + b.trades.pnl[1];
    expect(sum).toBeCloseTo(b.equity - 10_000, 9);
  });
});

describe('broker: slippage models', () => {
  it('fixed bps: buys fill higher, sells lower, cost recorded apart from fees', () => {
    const b = new Broker(cfg({ takerFeeRate: 0.001, slippage: { model: 'fixed', fixedBps: 5 } }), {
      timeframe: '15m',
    });
    step(b, 0, { o: 100 }, 1);
    step(b, 1, { o: 100 }, 0);
    expect(b.fills.price[0]).toBeCloseTo(100.05, 12);
    expect(b.fills.price[1]).toBeCloseTo(99.95, 12);
    const q = 100; // 10000 / 100 (sized at the open, before slippage)
    expect(b.slippagePaid).toBeCloseTo(2 * q * 0.05, 9);
    expect(b.feesPaid).toBeCloseTo(0.001 * q * (100.05 + 99.95), 9);
    expect(b.equity).toBeCloseTo(10_000 - b.slippagePaid - b.feesPaid, 9);
  });

  it('range model uses the LAST CLOSED bar range, not the fill bar', () => {
    const b = new Broker(
      cfg({ slippage: { model: 'range', fixedBps: 0, rangeFraction: 0.1, maxBps: 10_000 } }),
      { timeframe: '15m' },
    );
    b.prime(T0 - M15, 100, 104, 96, 100, 1); // relative range 8/100
    step(b, 0, { o: 100, h: 150, l: 50, c: 100 }, 1);
    expect(b.fills.price[0]).toBeCloseTo(100 * (1 + 0.1 * 0.08), 12);
  });

  it('atr model: Wilder ATR of closed bars x fraction / close', () => {
    const b = new Broker(
      cfg({
        slippage: { model: 'atr', fixedBps: 1, atrFraction: 0.5, atrPeriod: 2, maxBps: 10_000 },
      }),
      { timeframe: '15m' },
    );
    b.prime(T0 - 3 * M15, 100, 102, 98, 100, 1); // TR 4
    b.prime(T0 - 2 * M15, 100, 101, 99, 100, 1); // TR 2 -> mean 3
    b.prime(T0 - M15, 100, 106, 100, 104, 1); // TR max(6, 6, 0) = 6 -> Wilder (3*1 + 6)/2 = 4.5
    step(b, 0, { o: 100 }, -1);
    expect(b.fills.price[0]).toBeCloseTo(100 * (1 - (0.0001 + (0.5 * 4.5) / 104)), 12);
  });

  it('volume model: impact x (qty / last bar volume)^exponent, capped at maxBps', () => {
    const b = new Broker(
      cfg({
        slippage: {
          model: 'volume',
          fixedBps: 0,
          volumeImpact: 0.1,
          volumeExponent: 0.5,
          maxBps: 50,
        },
      }),
      { timeframe: '15m' },
    );
    b.prime(T0 - M15, 100, 100, 100, 100, 400); // q = 100 -> sqrt(100/400) = 0.5 -> 5% -> cap 0.5%
    step(b, 0, { o: 100 }, 1);
    expect(b.fills.price[0]).toBeCloseTo(100.5, 12);
    const b2 = new Broker(
      cfg({
        slippage: {
          model: 'volume',
          fixedBps: 0,
          volumeImpact: 0.001,
          volumeExponent: 1,
          maxBps: 500,
        },
      }),
      { timeframe: '15m' },
    );
    b2.prime(T0 - M15, 100, 100, 100, 100, 50); // linear: 0.001 x 100/50 = 0.002
    step(b2, 0, { o: 100 }, 1);
    expect(b2.fills.price[0]).toBeCloseTo(100.2, 12);
  });
});

describe('broker: funding', () => {
  /** 15m bars over one day from 00:00 UTC at a flat price, holding `p` from the first bar. */
  function holdDay(p: number, rate: number, price = 100): Broker {
    const b = new Broker(cfg({ funding: { enabled: true, constantRate: rate } }), {
      timeframe: '15m',
    });
    for (let k = 0; k < 96; k++) step(b, k, { o: price }, p);
    return b;
  }

  it('charges a long at 00:00, 08:00 and 16:00 UTC with a positive rate, while holding without trading', () => {
    const b = holdDay(1, 0.0001);
    expect(b.fills.length).toBe(1); // only the entry
    expect(b.charges.length).toBe(3);
    expect([...b.charges.timeMs.subarray(0, 3)]).toEqual([T0, T0 + H8, T0 + 2 * H8]);
    // Each charge: rate x quantity x mark = 0.0001 x 100 x 100 = 1.
    for (let i = 0; i < 3; i++) expect(b.charges.amount[i]).toBeCloseTo(1, 12);
    expect(b.fundingPaid).toBeCloseTo(3, 12);
    expect(b.equity).toBeCloseTo(10_000 - 3, 9);
  });

  it('pays a short with a positive rate and charges it with a negative rate', () => {
    const recv = holdDay(-1, 0.0001);
    expect(recv.fundingPaid).toBeCloseTo(-3, 12);
    expect(recv.equity).toBeCloseTo(10_003, 9);
    const pay = holdDay(-1, -0.0002);
    expect(pay.fundingPaid).toBeCloseTo(6, 12);
    const longNeg = holdDay(1, -0.0002);
    expect(longNeg.equity).toBeCloseTo(10_006, 9);
  });

  it('charges nothing while flat; a position opened at a stamp bar pays it, one closed there does not', () => {
    const b = new Broker(cfg({ funding: { enabled: true, constantRate: 0.001 } }), {
      timeframe: '15m',
    });
    for (let k = 0; k < 31; k++) step(b, k, { o: 100 }, 0); // flat until 07:45
    step(b, 32 - 1, { o: 100 }, 0);
    expect(b.charges.length).toBe(0);
    step(b, 32, { o: 100 }, 1); // opens at 08:00 -> pays the 08:00 stamp
    expect(b.charges.length).toBe(1);
    for (let k = 33; k < 64; k++) step(b, k, { o: 100 }, 1);
    step(b, 64, { o: 100 }, 0); // closes at 16:00 -> no 16:00 charge
    expect(b.charges.length).toBe(1);
    expect(b.trades.funding[0]).toBeCloseTo(0.001 * 100 * 100, 12);
  });

  it('reads the rate in force at each stamp from a rate series, and charges stamps skipped by a data gap', () => {
    const series = {
      timeMs: Float64Array.from([T0 - H8, T0 + H8, T0 + 2 * H8]),
      rate: Float64Array.from([0.0001, -0.0003, 0.0005]),
    };
    const b = new Broker(cfg({ funding: { enabled: true, constantRate: 0.09 } }), {
      timeframe: '15m',
      fundingRates: series,
    });
    step(b, 0, { o: 100 }, 1); // stamp T0: rate 0.0001 (entry at T0 - 8h)
    step(b, 1, { o: 100 }, 1);
    step(b, 70, { o: 200 }, 1); // gap over 08:00 and 16:00 (bar 64): both charged at this open
    expect(b.charges.length).toBe(3);
    expect(b.charges.rate[0]).toBe(0.0001);
    expect(b.charges.rate[1]).toBe(-0.0003);
    expect(b.charges.rate[2]).toBe(0.0005);
    expect(b.charges.amount[1]).toBeCloseTo(-0.0003 * 100 * 200, 12);
  });

  it('charges the stamps of a data gap to the position held through it, not the one opened after it', () => {
    const b = new Broker(cfg({ funding: { enabled: true, constantRate: 0.001 } }), {
      timeframe: '15m',
    });
    step(b, 0, { o: 100 }, 0); // flat at 00:00: the 00:00 stamp finds no position
    step(b, 70, { o: 100 }, 1); // gap over 08:00 and 16:00 (flat), long from 17:30
    expect(b.charges.length).toBe(0);
    expect(b.fundingPaid).toBe(0);
    // Long through a gap over 00:00 next day, closed at the first bar after it: it pays 00:00.
    step(b, 95, { o: 100 }, 1);
    step(b, 97, { o: 100 }, 0);
    expect(b.charges.length).toBe(1);
    expect(b.charges.timeMs[0]).toBe(T0 + 3 * H8);
    expect(b.charges.amount[0]).toBeCloseTo(0.001 * 100 * 100, 12);
    expect(b.trades.funding[0]).toBeCloseTo(0.001 * 100 * 100, 12);
  });

  it('charges every stamp inside a long bar (1d bars: three stamps per bar)', () => {
    const b = new Broker(cfg({ funding: { enabled: true, constantRate: 0.0001 } }), {
      timeframe: '1d',
    });
    b.step(T0, 100, 100, 100, 100, 1, 1);
    b.step(T0 + 86_400_000, 100, 100, 100, 100, 1, 1);
    expect(b.charges.length).toBe(6);
  });

  it('spot markets pay no funding', () => {
    const b = new Broker(
      cfg({ marketType: 'spot', funding: { enabled: true, constantRate: 0.001 } }),
      { timeframe: '15m' },
    );
    for (let k = 0; k < 96; k++) step(b, k, { o: 100 }, 1);
    expect(b.fundingPaid).toBe(0);
  });
});

describe('broker: borrow for spot shorts', () => {
  it('accrues interest on the short notional every bar, summing, never overwriting', () => {
    const rate = 0.1;
    const b = new Broker(cfg({ marketType: 'spot', borrow: { annualRate: rate } }), {
      timeframe: '1h',
    });
    const H = 3_600_000;
    const opens = [100, 110, 90, 100];
    opens.forEach((o, k) => b.step(T0 + k * H, o, o, o, o, 1, -1));
    const q = 100; // 10000 / 100
    const perHour = rate / (365 * 24);
    const expected = opens.reduce((s, o) => s + perHour * q * o, 0);
    expect(b.charges.length).toBe(4);
    expect(b.borrowPaid).toBeCloseTo(expected, 12);
    let sum = 0;
    for (let i = 0; i < b.charges.length; i++) sum += b.charges.amount[i];
    expect(sum).toBeCloseTo(expected, 12);
  });

  it('accrues over a data gap only what was borrowed through it', () => {
    const rate = 0.1;
    const H = 3_600_000;
    const perHour = (rate / (365 * 24)) * 100 * 100; // 100 borrowed at 100
    const b = new Broker(cfg({ marketType: 'spot', borrow: { annualRate: rate } }), {
      timeframe: '1h',
    });
    b.step(T0, 100, 100, 100, 100, 1, 0);
    b.step(T0 + 100 * H, 100, 100, 100, 100, 1, -1); // flat through 99 missing hours, short now
    expect(b.borrowPaid).toBeCloseTo(perHour, 12);
    b.step(T0 + 110 * H, 100, 100, 100, 100, 1, 0); // short through 9 missing hours, closed now
    expect(b.borrowPaid).toBeCloseTo(perHour * 10, 12);
    expect(b.trades.borrow[0]).toBeCloseTo(perHour * 10, 12);
  });

  it('charges a 1x spot long nothing and a 2x spot long on the borrowed part', () => {
    const one = new Broker(cfg({ marketType: 'spot', borrow: { annualRate: 0.1 } }), {
      timeframe: '1h',
    });
    one.step(T0, 100, 100, 100, 100, 1, 1);
    expect(one.borrowPaid).toBe(0);
    const two = new Broker(cfg({ marketType: 'spot', leverage: 2, borrow: { annualRate: 0.1 } }), {
      timeframe: '1h',
    });
    two.step(T0, 100, 100, 100, 100, 1, 1);
    expect(two.borrowPaid).toBeCloseTo((0.1 / (365 * 24)) * 10_000, 12);
  });
});

describe('broker: isolated-margin liquidation on the intrabar extreme', () => {
  it('liquidates a 3x long when the bar LOW reaches the liquidation price, losing the margin', () => {
    const mmr = 0.004;
    const b = new Broker(cfg({ leverage: 3, margin: { maintenanceMarginRate: mmr } }), {
      timeframe: '15m',
    });
    step(b, 0, { o: 100 }, 1);
    // q = 300, margin = 300 x 100 / 3 = 10000; P_liq = (300x100 - 10000)/(300 (1 - mmr)).
    const pLiq = 20_000 / (300 * (1 - mmr));
    expect(b.liquidationPrice).toBeCloseTo(pLiq, 9);
    step(b, 1, { o: 80, h: 80, l: pLiq + 0.01, c: 79 }, 1);
    expect(b.liquidated).toBe(false);
    step(b, 2, { o: 75, h: 76, l: pLiq - 1, c: 75 }, 1);
    expect(b.liquidated).toBe(true);
    expect(b.quantity).toBe(0);
    expect(b.fills.get(1).kind).toBe('liquidation');
    expect(b.fills.price[1]).toBeCloseTo(pLiq, 9);
    expect(b.equity).toBeCloseTo(0, 6); // the whole account was the margin
    expect(b.trades.get(0).exitKind).toBe('liquidation');
  });

  it('liquidates a 1x short when the bar HIGH reaches about twice the entry; the close alone does not matter', () => {
    const mmr = 0.005;
    const b = new Broker(cfg({ margin: { maintenanceMarginRate: mmr } }), { timeframe: '15m' });
    step(b, 0, { o: 100 }, -1);
    const pLiq = (10_000 + 100 * 100) / (100 * (1 + mmr));
    expect(b.liquidationPrice).toBeCloseTo(pLiq, 9);
    step(b, 1, { o: 150, h: pLiq + 0.5, l: 140, c: 150 }, -1);
    expect(b.liquidated).toBe(true);
    expect(b.equity).toBeCloseTo(0, 6);
  });

  it('keeps the unused equity of a partial position and fills a gap at the open, capped at bankruptcy', () => {
    const b = new Broker(cfg({ leverage: 5, margin: { maintenanceMarginRate: 0.01 } }), {
      timeframe: '15m',
    });
    step(b, 0, { o: 100 }, 0.5); // q = 250, notional 25000, margin 5000
    expect(b.positionMargin).toBeCloseTo(5000, 9);
    step(b, 1, { o: 70, h: 71, l: 69, c: 70 }, 0.5); // gaps below bankruptcy (80)
    expect(b.liquidated).toBe(true);
    expect(b.fills.price[1]).toBeCloseTo(80, 9);
    expect(b.equity).toBeCloseTo(5000, 9);
  });

  it('a 1x long is never liquidated by a deep low (its liquidation price is near 0)', () => {
    const b = new Broker(cfg({ takerFeeRate: 0.001 }), { timeframe: '15m' });
    step(b, 0, { o: 100 }, 1);
    step(b, 1, { o: 100, h: 100, l: 1, c: 50 }, 1);
    expect(b.liquidated).toBe(false);
    expect(b.quantity).toBe(100);
  });
});

describe('broker: stop-loss and take-profit inside the bar', () => {
  const stops = { stops: { stopLossFraction: 0.02, takeProfitFraction: 0.05 } };

  it('stops a long at entry x (1 - 2%) when the low reaches it, with taker fee and slippage', () => {
    const b = new Broker(
      cfg({ ...stops, takerFeeRate: 0.001, slippage: { model: 'fixed', fixedBps: 10 } }),
      { timeframe: '15m' },
    );
    step(b, 0, { o: 100 }, 1);
    const entry = 100 * 1.001;
    expect(b.stopLossPrice).toBeCloseTo(entry * 0.98, 12);
    step(b, 1, { o: 100, h: 100.5, l: 97, c: 99 }, 1);
    expect(b.quantity).toBe(0);
    expect(b.fills.get(1).kind).toBe('stop-loss');
    expect(b.fills.price[1]).toBeCloseTo(entry * 0.98 * (1 - 0.001), 12);
    expect(b.trades.get(0).exitKind).toBe('stop-loss');
    expect(b.trades.barsHeld[0]).toBe(2);
    // The target 1 is still asked for: re-entry at the next open.
    step(b, 2, { o: 99 }, 1);
    expect(b.quantity).toBeGreaterThan(0);
  });

  it('takes profit on a short at entry x (1 - 5%) from the low, at the maker fee and no slippage', () => {
    const b = new Broker(
      cfg({
        ...stops,
        takerFeeRate: 0.001,
        makerFeeRate: 0.0002,
        slippage: { model: 'fixed', fixedBps: 10 },
      }),
      { timeframe: '15m' },
    );
    step(b, 0, { o: 100 }, -1);
    const entry = 100 * 0.999;
    step(b, 1, { o: 99, h: 100, l: 94, c: 95 }, -1);
    expect(b.fills.get(1).kind).toBe('take-profit');
    expect(b.fills.price[1]).toBeCloseTo(entry * 0.95, 12);
    expect(b.fills.fee[1]).toBeCloseTo(0.0002 * Math.abs(b.fills.quantity[1]) * entry * 0.95, 12);
  });

  it('when stop and take-profit could both trigger in one bar, the stop (the worse) fills', () => {
    const b = new Broker(cfg(stops), { timeframe: '15m' });
    step(b, 0, { o: 100 }, 1);
    step(b, 1, { o: 100, h: 110, l: 90, c: 100 }, 1);
    expect(b.fills.get(1).kind).toBe('stop-loss');
    expect(b.fills.price[1]).toBeCloseTo(98, 12);
    expect(b.fills.length).toBe(2);
    const s = new Broker(cfg(stops), { timeframe: '15m' });
    step(s, 0, { o: 100 }, -1);
    step(s, 1, { o: 100, h: 110, l: 90, c: 100 }, -1);
    expect(s.fills.get(1).kind).toBe('stop-loss');
    expect(s.fills.price[1]).toBeCloseTo(102, 12);
  });

  it('a gap through the stop fills at the open (worse than the stop price)', () => {
    const b = new Broker(cfg(stops), { timeframe: '15m' });
    step(b, 0, { o: 100 }, 1);
    step(b, 1, { o: 95, h: 96, l: 94, c: 95 }, 1);
    expect(b.fills.price[1]).toBe(95);
  });

  it('a position opened at the open can be stopped in the same bar', () => {
    const b = new Broker(cfg(stops), { timeframe: '15m' });
    step(b, 0, { o: 100, h: 101, l: 97, c: 99 }, 1);
    expect(b.fills.length).toBe(2);
    expect(b.trades.barsHeld[0]).toBe(1);
  });

  it('setStopLoss / setTakeProfit override the prices of the open position', () => {
    const b = new Broker(cfg(), { timeframe: '15m' });
    step(b, 0, { o: 100 }, 1);
    expect(Number.isNaN(b.stopLossPrice)).toBe(true);
    b.setTakeProfit(104);
    step(b, 1, { o: 101, h: 103, l: 100, c: 102 }, 1);
    expect(b.quantity).toBe(100);
    step(b, 2, { o: 102, h: 105, l: 101, c: 102 }, 1);
    expect(b.fills.price[1]).toBe(104);
    expect(() => b.setStopLoss(90)).toThrow(RangeError);
  });
});

describe('broker: exchange constraints', () => {
  it('rounds the target quantity toward zero to the lot size', () => {
    const b = new Broker(cfg({ constraints: { lotSize: 0.001 } }), { timeframe: '15m' });
    step(b, 0, { o: 30_000 }, 1); // 10000 / 30000 = 0.33333.. -> 0.333
    expect(b.quantity).toBeCloseTo(0.333, 12);
    step(b, 1, { o: 30_000 }, -1); // short -0.333
    expect(b.quantity).toBeCloseTo(-0.333, 12);
  });

  it('skips orders below the minimum notional and below the minimum quantity, but always lets a full close pass', () => {
    const b = new Broker(cfg({ constraints: { minNotional: 100, minQuantity: 0.5 } }), {
      timeframe: '15m',
    });
    step(b, 0, { o: 100 }, 0.004); // notional 40 < 100 -> skipped
    expect(b.quantity).toBe(0);
    step(b, 1, { o: 100 }, 0.003); // quantity 0.3 < minQuantity -> rounds to flat
    expect(b.quantity).toBe(0);
    step(b, 2, { o: 100 }, 0.5);
    expect(b.quantity).toBeCloseTo(50, 12);
    step(b, 3, { o: 100 }, 0.495); // change of 0.5 qty = 50 notional < 100 -> skipped
    expect(b.quantity).toBeCloseTo(50, 12);
    step(b, 4, { o: 100 }, 0);
    expect(b.quantity).toBe(0);
  });

  it('rounds fill prices to the tick against the trader', () => {
    const b = new Broker(
      cfg({ constraints: { priceTick: 0.1 }, slippage: { model: 'fixed', fixedBps: 1 } }),
      { timeframe: '15m' },
    );
    step(b, 0, { o: 100 }, 1); // 100.01 -> 100.1
    step(b, 1, { o: 100 }, 0); // 99.99 -> 99.9
    expect(b.fills.price[0]).toBeCloseTo(100.1, 12);
    expect(b.fills.price[1]).toBeCloseTo(99.9, 12);
  });

  it('reads fees, lot, tick and minimums from a ccxt market description', () => {
    const market = {
      symbol: 'BTC/USDT:USDT',
      swap: true,
      contractSize: 1,
      taker: 0.0005,
      maker: 0.0002,
      precision: { amount: 0.001, price: 0.1 },
      limits: { amount: { min: 0.001 }, cost: { min: 5 } },
    };
    const b = new Broker(cfg({ marketType: 'spot' }), { timeframe: '15m', market });
    expect(b.config.takerFeeRate).toBe(0.0005);
    expect(b.config.makerFeeRate).toBe(0.0002);
    expect(b.config.constraints).toEqual({
      minNotional: 5,
      minQuantity: 0.001,
      lotSize: 0.001,
      priceTick: 0.1,
    });
    expect(b.config.marketType).toBe('perpetual');
    // Decimal-places precision (ccxt DECIMAL_PLACES mode, precisionMode 2): 3 -> 0.001.
    const d = new Broker(cfg(), {
      timeframe: '15m',
      market: { precisionMode: 2, precision: { amount: 3, price: 2 } },
    });
    expect(d.config.constraints.lotSize).toBeCloseTo(0.001, 15);
    expect(d.config.constraints.priceTick).toBeCloseTo(0.01, 15);
  });

  it('reads whole-unit steps of ccxt TICK_SIZE markets as steps (DOGE/USDT trades in lots of 1)', () => {
    // ccxt 4 reports every Binance market in TICK_SIZE mode: amount step 1, price tick 0.00001.
    const doge = { spot: true, precision: { amount: 1, price: 0.00001 }, limits: {} };
    const b = new Broker(cfg(), { timeframe: '15m', market: doge });
    expect(b.config.constraints.lotSize).toBe(1);
    expect(b.config.constraints.priceTick).toBe(0.00001);
    step(b, 0, { o: 0.0777 }, 1); // 10000 / 0.0777 = 128,700.1... -> 128,700
    expect(b.quantity).toBe(128_700);
    const ten = new Broker(cfg(), { timeframe: '15m', market: { precision: { amount: 10 } } });
    expect(ten.config.constraints.lotSize).toBe(10);
  });
});

describe('broker: risk limits', () => {
  it('clamps targets to maxPosition and to [0, 1] when shorts are not allowed', () => {
    const b = new Broker(cfg({ risk: { maxPosition: 0.5 } }), { timeframe: '15m' });
    step(b, 0, { o: 100 }, 1);
    expect(b.quantity).toBeCloseTo(50, 12);
    const s = new Broker(cfg({ allowShort: false }), { timeframe: '15m' });
    step(s, 0, { o: 100 }, -1);
    expect(s.quantity).toBe(0);
    step(s, 1, { o: 100 }, 7);
    expect(s.quantity).toBe(100); // clamped to 1
  });

  it('halts the day after the daily loss limit: flattens at the next open, blocks exposure until the next UTC day', () => {
    const b = new Broker(cfg({ risk: { maxDailyLossFraction: 0.05 } }), { timeframe: '4h' });
    const H4 = 4 * 3_600_000;
    b.step(T0, 100, 100, 100, 100, 1, 1);
    b.step(T0 + H4, 100, 100, 94, 94, 1, 1); // -6% at the close -> halted
    expect(b.dailyLossHalted).toBe(true);
    b.step(T0 + 2 * H4, 94, 94, 94, 94, 1, 1); // flattened at the open
    expect(b.quantity).toBe(0);
    b.step(T0 + 3 * H4, 94, 94, 94, 94, 1, 1);
    expect(b.quantity).toBe(0);
    b.step(T0 + 6 * H4, 94, 94, 94, 94, 1, 1); // next UTC day: allowed again
    expect(b.quantity).toBeGreaterThan(0);
    expect(b.dailyLossHalted).toBe(false);
  });
});

describe('broker: adversarial sequences', () => {
  it("a short's gap through its stop fills at the open, worse than the stop", () => {
    const b = new Broker(cfg({ stops: { stopLossFraction: 0.02 } }), { timeframe: '15m' });
    step(b, 0, { o: 100 }, -1); // q = -100, stop at 102
    step(b, 1, { o: 105, h: 106, l: 104, c: 105 }, -1);
    expect(b.fills.get(1)).toMatchObject({ kind: 'stop-loss', price: 105 });
    expect(b.equity).toBeCloseTo(10_000 - 100 * 5, 9);
    expect(b.trades.get(0).exitKind).toBe('stop-loss');
  });

  it('a long gapping above its take-profit fills at the open (better), at the maker fee', () => {
    const b = new Broker(
      cfg({ takerFeeRate: 0.001, makerFeeRate: 0.0002, stops: { takeProfitFraction: 0.05 } }),
      { timeframe: '15m' },
    );
    step(b, 0, { o: 100 }, 1); // q = 10000 / 100, take-profit at 105
    step(b, 1, { o: 110, h: 111, l: 109, c: 110 }, 1);
    expect(b.fills.get(1)).toMatchObject({ kind: 'take-profit', price: 110 });
    expect(b.fills.fee[1]).toBeCloseTo(0.0002 * 100 * 110, 12);
  });

  it('liquidation then re-entry: the margin is lost, the rest re-enters at the next open, trades add up', () => {
    const b = new Broker(cfg({ leverage: 5, margin: { maintenanceMarginRate: 0.01 } }), {
      timeframe: '15m',
    });
    step(b, 0, { o: 100 }, 0.5); // q = 0.5 x 5 x 10000 / 100 = 250, margin 5000
    step(b, 1, { o: 70, h: 71, l: 69, c: 70 }, 0.5); // gap below bankruptcy (80): liquidated at 80
    expect(b.liquidated).toBe(true);
    expect(b.equity).toBeCloseTo(5000, 9);
    step(b, 2, { o: 70 }, 0.5); // the same target re-enters with what is left
    const q = (0.5 * 5 * 5000) / 70;
    expect(b.liquidated).toBe(false);
    expect(b.quantity).toBeCloseTo(q, 9);
    expect(b.positionMargin).toBeCloseTo(2500, 9);
    expect(b.liquidationPrice).toBeCloseTo((q * 70 - 2500) / (q * 0.99), 9);
    step(b, 3, { o: 77 }, 0);
    expect(b.equity).toBeCloseTo(5000 + q * 7, 9);
    expect(b.trades.length).toBe(2);
    expect(b.trades.pnl[0]).toBeCloseTo(-5000, 9);
    expect(b.trades.pnl[0] + b.trades.pnl[1]).toBeCloseTo(b.equity - 10_000, 9);
  });

  it('a flip at a funding stamp: the stamp falls on the position after the flip, each round trip carries its own', () => {
    const b = new Broker(
      cfg({ takerFeeRate: 0.001, funding: { enabled: true, constantRate: 0.001 } }),
      { timeframe: '15m' },
    );
    for (let k = 0; k < 32; k++) step(b, k, { o: 100 }, 1); // long 100 from 00:00: pays 10 at 00:00
    step(b, 32, { o: 100 }, -1); // 08:00: equity 9980 -> short 99.8; traded 199.8, fee 19.98
    expect(b.quantity).toBeCloseTo(-99.8, 9);
    expect(b.charges.length).toBe(2);
    expect(b.charges.amount[1]).toBeCloseTo(0.001 * -99.8 * 100, 12); // the short receives
    const long = b.trades.get(0);
    expect(long.funding).toBeCloseTo(10, 12);
    expect(long.fees).toBeCloseTo(10 + (19.98 * 100) / 199.8, 9);
    expect(long.pnl).toBeCloseTo(-30, 9);
    step(b, 33, { o: 100 }, 0);
    const short = b.trades.get(1);
    expect(short.funding).toBeCloseTo(-9.98, 12);
    expect(short.fees).toBeCloseTo(9.98 + 9.98, 9);
    expect(short.pnl).toBeCloseTo(-9.98, 9);
    expect(b.equity).toBeCloseTo(10_000 - 30 - 9.98, 9);
  });

  it('the daily loss limit resets exactly at 00:00 UTC, not at the 23:45 bar', () => {
    const b = new Broker(cfg({ risk: { maxDailyLossFraction: 0.05 } }), { timeframe: '15m' });
    step(b, 92, { o: 100 }, 1); // 23:00, long 100
    step(b, 93, { o: 100, l: 94, c: 94 }, 1); // 23:15 closes 6% down: halted
    expect(b.dailyLossHalted).toBe(true);
    step(b, 94, { o: 94 }, 1); // 23:30: flattened at the open
    expect(b.quantity).toBe(0);
    step(b, 95, { o: 94 }, 1); // 23:45: same UTC day, still halted
    expect(b.quantity).toBe(0);
    step(b, 96, { o: 94 }, 1); // 00:00: a new day
    expect(b.dailyLossHalted).toBe(false);
    expect(b.quantity).toBeCloseTo(b.equity / 94, 9);
  });
});

describe('broker: interface', () => {
  it('reports the account snapshot in observation units and resets to flat', () => {
    const b = new Broker(cfg(), { timeframe: '15m' });
    step(b, 0, { o: 100, c: 110 }, 1);
    step(b, 1, { o: 110, c: 99 }, 1);
    const a = b.snapshot();
    expect(a.position).toBeCloseTo((100 * 99) / 9900, 12);
    expect(a.unrealizedPnl).toBeCloseTo((100 * -1) / 9900, 12);
    expect(a.barsInPosition).toBe(2);
    expect(a.drawdown).toBeCloseTo(1 - 9900 / 11_000, 12);
    b.reset();
    expect(b.equity).toBe(10_000);
    expect(b.fills.length).toBe(0);
    expect(b.snapshot()).toEqual({ position: 0, unrealizedPnl: 0, barsInPosition: 0, drawdown: 0 });
  });

  it('reports the open round trip marked at the close, adding up with the closed ones to the equity change', () => {
    const b = new Broker(
      cfg({ takerFeeRate: 0.001, funding: { enabled: true, constantRate: 0.001 } }),
      {
        timeframe: '15m',
      },
    );
    expect(b.openTrade()).toBeNull();
    step(b, 0, { o: 100 }, 1);
    step(b, 1, { o: 100 }, -1);
    step(b, 2, { o: 90, c: 95 }, -1);
    const open = b.openTrade()!;
    expect(open.side).toBe(-1);
    expect(open.exitPrice).toBe(95);
    expect(open.barsHeld).toBe(2);
    expect(open.pnl + b.trades.pnl[0]).toBeCloseTo(b.equity - 10_000, 9);
  });

  it('stepAt / primeAt on bound candles equal step / prime with the same bars', () => {
    const n = 60;
    const cols = {
      openTime: Float64Array.from({ length: n }, (_, k) => T0 + k * M15),
      open: Float64Array.from({ length: n }, (_, k) => 100 + 5 * Math.sin(k / 3)),
      high: new Float64Array(n),
      low: new Float64Array(n),
      close: new Float64Array(n),
      volume: Float64Array.from({ length: n }, (_, k) => 50 + k),
    };
    for (let k = 0; k < n; k++) {
      cols.close[k] = cols.open[(k + 1) % n];
      cols.high[k] = Math.max(cols.open[k], cols.close[k]) * 1.004;
      cols.low[k] = Math.min(cols.open[k], cols.close[k]) * 0.996;
    }
    const candles = makeCandles('T/USDT', '15m', cols);
    const c = cfg({
      takerFeeRate: 0.001,
      leverage: 2,
      slippage: { model: 'atr', fixedBps: 1 },
      funding: { enabled: true, constantRate: 0.0005 },
      stops: { stopLossFraction: 0.01, takeProfitFraction: 0.02 },
    });
    const a = new Broker(c, { timeframe: '15m' });
    const b = new Broker(c, { timeframe: '15m' });
    b.useCandles(candles);
    a.prime(
      cols.openTime[0],
      cols.open[0],
      cols.high[0],
      cols.low[0],
      cols.close[0],
      cols.volume[0],
    );
    b.primeAt(0);
    for (let k = 1; k < n; k++) {
      const target = [1, -1, 0.5, 0][k % 4];
      a.step(
        cols.openTime[k],
        cols.open[k],
        cols.high[k],
        cols.low[k],
        cols.close[k],
        cols.volume[k],
        target,
      );
      b.stepAt(k, target);
      expect(b.equity).toBe(a.equity);
    }
    expect(b.fills.toArray()).toEqual(a.fills.toArray());
    expect(b.trades.toArray()).toEqual(a.trades.toArray());
    expect(a.fills.length).toBeGreaterThan(20);
    expect(() => new Broker(c, { timeframe: '15m' }).stepAt(1, 0)).toThrow(RangeError);
    expect(() => b.stepAt(n, 0)).toThrow(RangeError);
  });

  it('closePosition exits at the given price with taker fee', () => {
    const b = new Broker(cfg({ takerFeeRate: 0.001 }), { timeframe: '15m' });
    step(b, 0, { o: 100 }, 1);
    b.closePosition(T0 + M15, 105);
    expect(b.quantity).toBe(0);
    expect(b.trades.get(0).exitKind).toBe('close');
    expect(b.equity).toBeCloseTo(10_000 * (0.999 * 1.05 - 0.001), 9);
  });

  it('rejects NaN targets and bars out of order, and names bad config keys', () => {
    const b = new Broker(cfg(), { timeframe: '15m' });
    step(b, 1, { o: 100 }, 0);
    expect(() => step(b, 1, { o: 100 }, 0)).toThrow(RangeError);
    expect(() => step(b, 2, { o: 100 }, NaN)).toThrow(RangeError);
    expect(() => brokerConfig({ takerFeeRate: -1 })).toThrow(ConfigError);
    let err: unknown;
    try {
      brokerConfig({ slippage: { model: 'magic' as 'fixed' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).keyPath).toBe('broker.slippage.model');
  });

  it('keeps no ledger when recordLedger is off, but still the trades and totals', () => {
    const b = new Broker(cfg({ recordLedger: false, takerFeeRate: 0.001 }), { timeframe: '15m' });
    step(b, 0, { o: 100 }, 1);
    step(b, 1, { o: 100 }, 0);
    expect(b.fills.length).toBe(0);
    expect(b.fillsCount).toBe(2);
    expect(b.trades.length).toBe(1);
    expect(b.feesPaid).toBeCloseTo(20, 9);
  });
});
