// Metrics against hand-computed values on small fixtures, against the published worked example of
// the deflated Sharpe ratio (Bailey & López de Prado 2014), and on degenerate inputs.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  barsPerYearOf,
  calculatePerformanceMetrics,
  deflatedSharpeRatio,
  drawdownEpisodes,
  expectedMaxSharpe,
  minTrackRecordLength,
  normalCdf,
  normalQuantile,
  periodReturns,
  probabilisticSharpeRatio,
  type MetricsTrade,
  type PerformanceMetrics,
} from '../../src/evaluation/metrics.js';

const close = (a: number | null, b: number, tol = 1e-12): void => {
  expect(a).not.toBeNull();
  expect(Math.abs((a as number) - b)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b)));
};

/** Every metric leaf is a finite number or null (never NaN/Infinity). */
function assertNoNaN(m: PerformanceMetrics): void {
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new Error(`${path} = ${v}`);
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (typeof v === 'object' && v !== null)
      for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  walk(m, 'metrics');
}

describe('annualisation', () => {
  it('uses 35,040 bars a year for 15m bars and 365 for daily bars', () => {
    expect(barsPerYearOf(15 * 60_000)).toBe(35_040);
    expect(barsPerYearOf(86_400_000)).toBe(365);
  });
});

describe('normal distribution helpers', () => {
  it('match tabulated values of Φ and Φ⁻¹', () => {
    // Tabulated: Φ(1.96) = 0.9750021048517795, Φ⁻¹(0.975) = 1.959963984540054,
    // Φ⁻¹(0.05) = -1.6448536269514722, Φ(-3) = 0.0013498980316301
    close(normalCdf(1.96), 0.9750021048517795, 1e-14);
    close(normalCdf(-3), 0.0013498980316301, 1e-13);
    close(normalQuantile(0.975), 1.959963984540054, 1e-13);
    close(normalQuantile(0.05), -1.6448536269514722, 1e-13);
    close(normalQuantile(normalCdf(-9.5)), -9.5, 1e-9);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(() => normalQuantile(1.5)).toThrow(RangeError);
  });
});

describe('return, risk and drawdown metrics on a hand-computed fixture', () => {
  // Six daily returns (barsPerYear 365), derivation by hand:
  //   r = [0.01, -0.02, 0.03, 0, -0.01, 0.02]; n = 6; mean = 0.03 / 6 = 0.005
  //   deviations d = [0.005, -0.025, 0.025, -0.005, -0.015, 0.015]; Σd² = 0.00175
  //   sample sd = sqrt(0.00175 / 5) = 0.018708286933869708; volatility = sd × sqrt(365)
  //   Sharpe = 0.005 / sd × sqrt(365) = 5.106018857331862
  //   downside deviation = sqrt((0.02² + 0.01²) / 6) = sqrt(0.0005/6) = 0.009128709291752768
  //   Sortino = 0.005 / 0.009128709291752768 × sqrt(365) = 10.464224768228...
  //   equity: 1.01, 0.9898, 1.019494, 1.019494, 1.00929906, 1.029485041200
  //   total = 0.0294850412; drawdowns: 0.02 (bar 1, peak at bar 0, recovered bar 2: 2 bars),
  //   0.01 (bar 4, peak bar 3, recovered bar 5: 2 bars); avg 0.015; ulcer sqrt((.02²+.01²)/6)
  //   omega = (0.01+0.03+0.02) / (0.02+0.01) = 2
  //   sorted r: [-0.02, -0.01, 0, 0.01, 0.02, 0.03]; q05 at h = 0.25: -0.02 + 0.25 × 0.01 = -0.0175
  //   q95 at h = 4.75: 0.02 + 0.75 × 0.01 = 0.0275; tail ratio 0.0275 / 0.0175; CVaR = -0.02
  const r = [0.01, -0.02, 0.03, 0, -0.01, 0.02];
  const m = calculatePerformanceMetrics(r, [], { barsPerYear: 365 });

  it('computes returns, volatility, Sharpe, Sortino and Omega', () => {
    close(m.returns.totalReturn, 0.0294850412);
    close(m.returns.annualizedReturn, 0.005 * 365);
    close(m.returns.cagr, Math.pow(1.0294850412, 365 / 6) - 1, 1e-10);
    close(m.returns.volatility, 0.018708286933869708 * Math.sqrt(365));
    close(m.returns.sharpe, (0.005 / 0.018708286933869708) * Math.sqrt(365));
    close(m.returns.sortino, (0.005 / Math.sqrt(0.0005 / 6)) * Math.sqrt(365));
    close(m.returns.omega, 2);
    close(m.returns.bestBar, 0.03);
    close(m.returns.worstBar, -0.02);
    close(m.returns.positiveBars, 0.5);
  });

  it('computes historical VaR, CVaR and the tail ratio with linear interpolation', () => {
    close(m.returns.var95, -0.0175);
    close(m.returns.cvar95, -0.02);
    close(m.returns.tailRatio, 0.0275 / 0.0175);
  });

  it('computes drawdown depth, duration, ulcer index and time under water', () => {
    close(m.drawdown.maxDrawdown, 0.02);
    expect(m.drawdown.maxDrawdownDurationBars).toBe(2);
    close(m.drawdown.maxDrawdownDurationDays, 2);
    close(m.drawdown.averageDrawdown, 0.015);
    expect(m.drawdown.drawdownCount).toBe(2);
    close(m.drawdown.ulcerIndex, Math.sqrt((0.02 ** 2 + 0.01 ** 2) / 6));
    close(m.drawdown.timeUnderWater, 2 / 6);
    close(m.returns.calmar, (m.returns.cagr as number) / 0.02);
  });

  it('lists the same drawdown episodes, deepest first, with peak, valley and recovery', () => {
    // equity: 1, 1.01, 0.9898, 1.019494, 1.019494, 1.00929906, 1.0294850412
    const equity = [1];
    for (const x of r) equity.push(equity[equity.length - 1] * (1 + x));
    const episodes = drawdownEpisodes(equity);
    expect(episodes.map((e) => [e.peak, e.valley, e.recovery])).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    close(episodes[0].depth, m.drawdown.maxDrawdown as number);
    close(episodes[1].depth, 0.01);
    expect(episodes).toHaveLength(m.drawdown.drawdownCount as number);
    expect(drawdownEpisodes([1, 2, 1.5], 1)).toEqual([
      { peak: 1, valley: 2, recovery: null, depth: 0.25 },
    ]);
  });

  it('computes skew and excess kurtosis as pandas does (bias-adjusted)', () => {
    // Asymmetric fixture: r = [0.01, 0.02, -0.05, 0.01], mean = -0.0025,
    // d = [.0125, .0225, -.0475, .0125]; m2 = Σd²/4 = 0.00076875; m3 = Σd³/4 = -0.00002296875;
    // m4 = Σd⁴/4 = 0.0000013489453125
    // pandas skew = sqrt(n(n-1))/(n-2) × m3/m2^1.5 ; pandas kurt = ((n+1)g2 + 6)(n-1)/((n-2)(n-3))
    const a = calculatePerformanceMetrics([0.01, 0.02, -0.05, 0.01], [], { barsPerYear: 365 });
    const m2 = 0.00076875;
    const m3 = -0.00002296875;
    const m4 = 0.0000013489453125;
    close(a.returns.skew, ((Math.sqrt(12) / 2) * m3) / Math.pow(m2, 1.5), 1e-10);
    close(a.returns.kurtosis, ((5 * (m4 / (m2 * m2) - 3) + 6) * 3) / 2, 1e-10);
  });

  it('groups returns into UTC months and years', () => {
    const day = 86_400_000;
    const t0 = Date.UTC(2023, 0, 30);
    // bars closing Jan 31, Feb 1 00:00 (still January), Feb 2, and 2024-01-01 00:00 (still 2023)
    const times = [t0 + day, t0 + 2 * day, t0 + 3 * day, Date.UTC(2024, 0, 1)];
    const out = periodReturns([0.1, 0.1, -0.5, 0.2], times, 'month');
    expect(out.map((p) => p.period)).toEqual(['2023-01', '2023-02', '2023-12']);
    close(out[0].return, 0.21);
    close(out[1].return, -0.5);
    const years = periodReturns([0.1, 0.1, -0.5, 0.2], times, 'year');
    expect(years).toHaveLength(1);
    close(years[0].return, 1.1 * 1.1 * 0.5 * 1.2 - 1);
  });
});

describe('trade metrics on hand-computed trades', () => {
  // pnl: +100, -50, +30, -20, -10 on notional 1000 each (returns .1, -.05, .03, -.02, -.01)
  // wins 2 (130), losses 3 (80): win rate 0.4, PF 130/80 = 1.625, expectancy 50/5 = 10,
  // avg win 65, avg loss -80/3, ratio 65/(80/3) = 2.4375, streaks: W L W L L -> win 1, loss 2,
  // kelly = 0.4 - 0.6/2.4375; sqn = sqrt(5) × 10 / sd(pnl), sd = sqrt(Σ(p-10)²/4) = sqrt(13400/4)
  const trades: MetricsTrade[] = [
    { side: 'long', pnl: 100, entryNotional: 1000, barsHeld: 4 },
    { side: 'short', pnl: -50, entryNotional: 1000, barsHeld: 2 },
    { side: 'long', pnl: 30, entryNotional: 1000, barsHeld: 6 },
    { side: 'short', pnl: -20, entryNotional: 1000, barsHeld: 1 },
    { side: 'long', pnl: -10, entryNotional: 1000, barsHeld: 7 },
  ];
  const m = calculatePerformanceMetrics([0.01, -0.01, 0.02], trades, { barsPerYear: 35_040 });

  it('computes win rate, profit factor, expectancy, averages, streaks, SQN and Kelly', () => {
    const t = m.trades;
    expect(t.count).toBe(5);
    close(t.winRate, 0.4);
    close(t.profitFactor, 1.625);
    close(t.expectancy, 10);
    close(t.expectancyReturn, 0.01);
    close(t.averageWin, 65);
    close(t.averageLoss, -80 / 3);
    close(t.winLossRatio, 2.4375);
    close(t.bestTrade, 0.1);
    close(t.worstTrade, -0.05);
    close(t.averageHoldingBars, 4);
    close(t.averageHoldingHours, 1); // 4 bars of 15 minutes
    expect(t.longestWinStreak).toBe(1);
    expect(t.longestLossStreak).toBe(2);
    close(t.kelly, 0.4 - 0.6 / 2.4375);
    close(t.sqn, (Math.sqrt(5) * 10) / Math.sqrt(13400 / 4), 1e-10);
  });

  it('breaks trades down by side', () => {
    expect(m.trades.long.count).toBe(3);
    close(m.trades.long.winRate, 2 / 3);
    close(m.trades.long.pnl, 120);
    close(m.trades.long.averageReturn, 0.04);
    expect(m.trades.short.count).toBe(2);
    close(m.trades.short.winRate, 0);
    close(m.trades.short.pnl, -70);
  });
});

describe('cost metrics', () => {
  it('adds costs back per bar to get the gross return and the fee drag', () => {
    // Capital 1000. Bar 1: net +1% (fees 2 paid): gross = 0.01 + 2/1000 = 0.012.
    // Bar 2: equity 1010, net -1% (fees 1, funding 0.5 → cost 1.5): gross = -0.01 + 1.5/1010.
    const m = calculatePerformanceMetrics([0.01, -0.01], [], {
      barsPerYear: 365,
      account: {
        initialCapital: 1000,
        fees: [2, 1],
        slippage: [0, 0],
        funding: [0, 0.5],
        tradedNotional: [1000, 500],
        exposure: [1, -0.5],
      },
    });
    const gross = 1.012 * (1 - 0.01 + 1.5 / 1010) - 1;
    close(m.costs.fees, 3);
    close(m.costs.funding, 0.5);
    close(m.costs.total, 3.5);
    close(m.costs.grossTotalReturn, gross);
    close(m.costs.feeDrag, gross - (1.01 * 0.99 - 1));
    // mean equity over the bars = (1010 + 999.9) / 2
    close(m.costs.turnover, 1500 / ((1010 + 999.9) / 2));
    close(m.costs.exposure, 1);
    close(m.costs.averageExposure, 0.75);
    close(m.costs.longExposure, 0.5);
    close(m.costs.shortExposure, 0.5);
  });

  it('rejects a cost series whose length differs from the returns', () => {
    expect(() =>
      calculatePerformanceMetrics([0.01, 0.02], [], {
        barsPerYear: 365,
        account: { initialCapital: 1, fees: [1] },
      }),
    ).toThrow(/account.fees has 1 entries, returns have 2/);
  });
});

describe('probabilistic and deflated Sharpe ratio (Bailey & López de Prado)', () => {
  it('reproduces the worked example of the deflated Sharpe ratio paper (DSR = 0.9004)', () => {
    // Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example:
    // annualised SR 2.5 over T = 1250 daily observations, N = 100 trials whose annualised SR
    // variance is 1/2, skewness -3, kurtosis 10. Expected max SR = 0.1132 (daily), DSR = 0.9004.
    const sr = 2.5 / Math.sqrt(250);
    const variance = 0.5 / 250;
    close(expectedMaxSharpe(100, variance), 0.1132, 5e-4);
    const dsr = deflatedSharpeRatio(
      { sharpe: sr, observations: 1250, skewness: -3, kurtosis: 10 },
      100,
      variance,
    );
    close(dsr, 0.9004, 1e-4);
  });

  it('computes the PSR from its closed form', () => {
    // SR = 0.1 per bar, T = 101, γ3 = -1, γ4 = 5, SR* = 0:
    // z = 0.1 × sqrt(100) / sqrt(1 + 0.1 + (4/4) × 0.01) = 1 / sqrt(1.11) = 0.949157995752499
    // Φ(0.949157995752499) = 0.8287299 (erf), checked with the normalCdf tested above
    const psr = probabilisticSharpeRatio({
      sharpe: 0.1,
      observations: 101,
      skewness: -1,
      kurtosis: 5,
    });
    close(psr, normalCdf(1 / Math.sqrt(1.11)), 1e-15);
    close(psr, 0.8287298693320726, 1e-13);
    // Minimum track record at 95%: 1 + 1.11 × (1.6448536269514722 / 0.1)² = 301.3195...
    close(
      minTrackRecordLength({ sharpe: 0.1, skewness: -1, kurtosis: 5 }),
      1 + 1.11 * (1.6448536269514722 / 0.1) ** 2,
      1e-12,
    );
  });

  it('feeds the fixture moments into PSR and deflates with the trials given', () => {
    const r = [0.01, -0.02, 0.03, 0, -0.01, 0.02];
    // population moments: m2 = 0.00175/6, m3 = Σd³/6 = 0 (symmetric), m4 = Σd⁴/6
    const d = [0.005, -0.025, 0.025, -0.005, -0.015, 0.015];
    const m2 = d.reduce((s, x) => s + x * x, 0) / 6;
    const m4 = d.reduce((s, x) => s + x ** 4, 0) / 6;
    const sr = 0.005 / Math.sqrt(0.00175 / 5);
    const expected = normalCdf(
      (sr * Math.sqrt(5)) / Math.sqrt(1 + ((m4 / (m2 * m2) - 1) / 4) * sr * sr),
    );
    const m = calculatePerformanceMetrics(r, [], { barsPerYear: 365 });
    close(m.trust.sharpePerBar, sr);
    close(m.trust.psr, expected, 1e-12);
    close(m.trust.dsr, expected, 1e-12); // one trial: no deflation
    // 10 trials with annualised Sharpe variance 4: benchmark = expectedMaxSharpe(10, 4/365)
    const d10 = calculatePerformanceMetrics(r, [], {
      barsPerYear: 365,
      trials: 10,
      trialSharpeVariance: 4,
    });
    const sr0 = expectedMaxSharpe(10, 4 / 365);
    close(
      d10.trust.dsr,
      normalCdf(((sr - sr0) * Math.sqrt(5)) / Math.sqrt(1 + ((m4 / (m2 * m2) - 1) / 4) * sr * sr)),
      1e-12,
    );
    expect(d10.trust.trialVarianceSource).toBe('given');
    expect(d10.trust.dsr as number).toBeLessThan(m.trust.psr as number);
    close(d10.trust.expectedMaxSharpe, sr0 * Math.sqrt(365));
  });

  it('uses the variance of the trials’ Sharpe ratios when they are given', () => {
    const r = [0.01, -0.02, 0.03, 0, -0.01, 0.02];
    const m = calculatePerformanceMetrics(r, [], { barsPerYear: 365, trialSharpes: [1, 2, 3] });
    // sample variance of [1,2,3] = 1 (annualised) → per bar 1/365; N = 3
    expect(m.trust.trials).toBe(3);
    expect(m.trust.trialVarianceSource).toBe('trials');
    close(m.trust.expectedMaxSharpe, expectedMaxSharpe(3, 1 / 365) * Math.sqrt(365));
  });
});

describe('degenerate inputs give null with a reason, never NaN', () => {
  it('no returns', () => {
    const m = calculatePerformanceMetrics([], [], { barsPerYear: 35_040 });
    assertNoNaN(m);
    expect(m.returns.sharpe).toBeNull();
    expect(m.returns.totalReturn).toBeNull();
    expect(m.nulls['returns.totalReturn']).toBe('no returns');
    expect(m.drawdown.maxDrawdown).toBeNull();
  });

  it('one bar', () => {
    const m = calculatePerformanceMetrics([0.01], [], { barsPerYear: 35_040 });
    assertNoNaN(m);
    close(m.returns.totalReturn, 0.01);
    expect(m.returns.volatility).toBeNull();
    expect(m.nulls['returns.sharpe']).toMatch(/one bar/);
    expect(m.trust.psr).toBeNull();
  });

  it('zero variance (a flat policy)', () => {
    const m = calculatePerformanceMetrics(new Float64Array(100), [], { barsPerYear: 35_040 });
    assertNoNaN(m);
    expect(m.returns.volatility).toBe(0);
    expect(m.returns.sharpe).toBeNull();
    expect(m.nulls['returns.sharpe']).toBe('zero variance of returns');
    expect(m.returns.sortino).toBeNull();
    expect(m.returns.calmar).toBeNull();
    expect(m.nulls['returns.calmar']).toBe('no drawdown');
    expect(m.drawdown.maxDrawdown).toBe(0);
    expect(m.returns.tailRatio).toBeNull();
  });

  it('no trades, and only winning trades', () => {
    const m = calculatePerformanceMetrics([0.01, 0.02], [], { barsPerYear: 365 });
    expect(m.trades.winRate).toBeNull();
    expect(m.nulls['trades.winRate']).toBe('no trades');
    const w = calculatePerformanceMetrics(
      [0.01, 0.02],
      [{ side: 'long', pnl: 5, entryNotional: 100, barsHeld: 1 }],
      { barsPerYear: 365 },
    );
    assertNoNaN(w);
    close(w.trades.winRate, 1);
    expect(w.trades.profitFactor).toBeNull();
    expect(w.nulls['trades.profitFactor']).toBe('no losing trades');
    expect(w.nulls['trades.sqn']).toBe('needs at least two trades');
  });

  it('ruin: equity falls to zero', () => {
    const m = calculatePerformanceMetrics([0.5, -1, 0], [], { barsPerYear: 365 });
    assertNoNaN(m);
    close(m.returns.totalReturn, -1);
    close(m.returns.cagr, -1);
    close(m.drawdown.maxDrawdown, 1);
  });

  it('rejects NaN returns and a non-positive bars-per-year', () => {
    expect(() => calculatePerformanceMetrics([0.1, NaN], [], { barsPerYear: 365 })).toThrow(
      RangeError,
    );
    expect(() => calculatePerformanceMetrics([0.1], [], { barsPerYear: 0 })).toThrow(/barsPerYear/);
  });

  it('property: any finite returns (incl. constant, tiny, ruinous) give finite-or-null metrics', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.double({ min: -1, max: 3, noNaN: true }), fc.constant(0)), {
          maxLength: 60,
        }),
        fc.array(fc.double({ min: -1e4, max: 1e4, noNaN: true }), { maxLength: 8 }),
        (r, pnls) => {
          const trades = pnls.map((pnl, i) => ({
            side: (i % 2 === 0 ? 'long' : 'short') as 'long' | 'short',
            pnl,
            entryNotional: 1000,
            barsHeld: i,
          }));
          const m = calculatePerformanceMetrics(r, trades, { barsPerYear: 35_040, trials: 5 });
          assertNoNaN(m);
          if (m.drawdown.maxDrawdown !== null) {
            expect(m.drawdown.maxDrawdown).toBeGreaterThanOrEqual(0);
            expect(m.drawdown.maxDrawdown).toBeLessThanOrEqual(1);
          }
          for (const p of [m.trust.psr, m.trust.dsr])
            if (p !== null) expect(p >= 0 && p <= 1).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: VaR and the tail ratio equal the sorted-array quantiles (selection is exact)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -0.2, max: 0.2, noNaN: true }), { minLength: 2, maxLength: 300 }),
        (r) => {
          const s = [...r].sort((a, b) => a - b);
          const q = (p: number): number => {
            const h = (s.length - 1) * p;
            const lo = Math.floor(h);
            return s[lo] + (h - lo) * (s[Math.min(lo + 1, s.length - 1)] - s[lo]);
          };
          const m = calculatePerformanceMetrics(r, [], { barsPerYear: 365 });
          expect(m.returns.var95).toBe(q(0.05));
          const below = s.filter((x) => x <= q(0.05));
          close(m.returns.cvar95, below.reduce((a, b) => a + b, 0) / below.length, 1e-12);
          const ratio = Math.abs(q(0.95)) / Math.abs(q(0.05));
          // A 5% quantile of 0 (or a denormal one that overflows the ratio) gives null.
          if (Number.isFinite(ratio)) close(m.returns.tailRatio, ratio, 1e-12);
          else expect(m.returns.tailRatio).toBeNull();
        },
      ),
      { numRuns: 300 },
    );
  });
});
