import { describe, expect, it } from 'vitest';
import {
  addIndicatorNoise,
  calculateRealisticIndicators,
  createFeatureConfluences,
  generatePatternWithIndicators,
  LAGGING_INDICATORS,
  measureFalseSignals,
  simulateIndicatorLag,
  type ConfluenceType,
} from '../../src/synthetic-data/indicator-engineering.js';
import {
  generateContinuationPattern,
  generateReversalPattern,
  generateSupportResistanceReaction,
  type GeneratedPattern,
} from '../../src/synthetic-data/pattern-generator.js';
import { bollingerBands, macd, rsi, volumeZScore } from '../../src/data-processing/indicators.js';
import { readCandlesCsv } from '../../src/data-processing/file-formats.js';
import { sliceByTime } from '../../src/data-processing/candles.js';
import { DataValidationError } from '../../src/errors.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';

const g = generateReversalPattern(80, 'double_top', { seed: 4, timeframe: '4h' });

describe('calculateRealisticIndicators', () => {
  it('computes the indicators with the one indicators module, bit for bit', () => {
    const ind = calculateRealisticIndicators(g.candles);
    const c = g.candles.close;
    const expectSame = (a: Float64Array, b: Float64Array): void => {
      expect(a.length).toBe(b.length);
      for (let i = 0; i < a.length; i++) expect(Object.is(a[i], b[i])).toBe(true);
    };
    expectSame(ind.rsi, rsi(c, 14));
    expectSame(ind.macd_signal, macd(c).signal);
    expectSame(ind.bb_width, bollingerBands(c).bandwidth);
    expectSame(ind.volume_z, volumeZScore(g.candles.volume, { period: 20 }));
    // Warm-up rows are NaN, never zeros.
    expect(Number.isNaN(ind.rsi[0])).toBe(true);
  });
});

/** The confluence, checked here from indicators recomputed with the indicators module. */
function independentlyPresent(p: GeneratedPattern, type: ConfluenceType, at: number[]): boolean {
  const c = p.candles.close;
  if (type === 'bearish_divergence' || type === 'bullish_divergence') {
    const r = rsi(c, 14);
    const [a, b] = at;
    const d = type === 'bearish_divergence' ? 1 : -1;
    return d * (c[b] - c[a]) >= 0 && d * (r[b] - r[a]) < 0;
  }
  if (type === 'macd_cross') {
    const m = macd(c);
    const i = at[0];
    const before = m.macd[i - 1] - m.signal[i - 1];
    const after = m.macd[i] - m.signal[i];
    return before <= 0 !== after <= 0 && Math.abs(i - p.completionIndex) <= 4;
  }
  if (type === 'bollinger_squeeze') {
    const w = bollingerBands(c).bandwidth;
    const done = p.completionIndex;
    const before = Array.from(w.subarray(done - 66, done - 6)).filter((v) => !Number.isNaN(v));
    const low = Math.min(...Array.from(w.subarray(done - 6, done)));
    return before.filter((v) => v < low).length / before.length <= 0.15;
  }
  const z = volumeZScore(p.candles.volume, { period: 20 });
  return Math.max(z[at[0]], z[at[0] + 1]) >= 1.5;
}

describe('createFeatureConfluences', () => {
  const cases: Array<[ConfluenceType, () => GeneratedPattern]> = [
    [
      'bearish_divergence',
      () => generateReversalPattern(80, 'double_top', { seed: 11, timeframe: '4h' }),
    ],
    [
      'bullish_divergence',
      () => generateReversalPattern(80, 'double_bottom', { seed: 12, timeframe: '4h' }),
    ],
    [
      'bearish_divergence',
      () => generateReversalPattern(80, 'head_shoulders', { seed: 13, timeframe: '4h' }),
    ],
    [
      'macd_cross',
      () => generateReversalPattern(80, 'head_shoulders', { seed: 14, timeframe: '4h' }),
    ],
    [
      'bollinger_squeeze',
      () => generateContinuationPattern(90, 'bull_flag', { seed: 15, timeframe: '4h' }),
    ],
    [
      'bollinger_squeeze',
      () => generateContinuationPattern(90, 'descending_triangle', { seed: 16, timeframe: '4h' }),
    ],
    [
      'support_test_volume',
      () => generateSupportResistanceReaction(80, 'bounce', { seed: 17, timeframe: '4h' }),
    ],
  ];
  for (const [type, make] of cases)
    it(`shapes price and volume so that the true indicators show ${type}`, () => {
      const r = createFeatureConfluences(make(), type);
      expect(r.check.present).toBe(true);
      expect(independentlyPresent(r.pattern, type, r.check.at)).toBe(true);
      // Still the same pattern, still valid candles.
      expect(r.pattern.label.type).toBe(make().label.type);
      expect(r.attempts).toBeGreaterThanOrEqual(1);
    });

  it('refuses a divergence in a pattern with a single top', () => {
    const v = generateReversalPattern(60, 'v_top', { seed: 2, timeframe: '4h' });
    expect(() => createFeatureConfluences(v, 'bearish_divergence')).toThrow(DataValidationError);
  });
});

describe('generatePatternWithIndicators', () => {
  it('returns the pattern, its true indicators and the confluences that go with its family', () => {
    const p = generatePatternWithIndicators('double_top', {
      seed: 5,
      timeframe: '4h',
      confluences: ['bearish_divergence'],
    });
    expect(p.pattern.label.type).toBe('double_top');
    expect(p.indicators?.rsi.length).toBe(p.pattern.candles.close.length);
    const div = p.confluences.find((c) => c.type === 'bearish_divergence');
    expect(div?.present).toBe(true);
    expect(p.confluences.map((c) => c.type)).toContain('macd_cross');
    const without = generatePatternWithIndicators('bull_flag', { seed: 5 }, false);
    expect(without.indicators).toBeNull();
    expect(without.confluences.map((c) => c.type)).toContain('bollinger_squeeze');
  });
});

describe('augmentations', () => {
  const ind = calculateRealisticIndicators(g.candles);

  it('simulateIndicatorLag delays only lagging indicators, causally, without touching its input', () => {
    const before = Float64Array.from(ind.macd);
    const lagged = simulateIndicatorLag(g.candles, ind, { lagBars: 2 });
    for (let i = 2; i < ind.macd.length; i++)
      expect(Object.is(lagged.macd[i], ind.macd[i - 2])).toBe(true);
    expect(Number.isNaN(lagged.macd[1])).toBe(true);
    expect(Array.from(lagged.rsi)).toEqual(Array.from(ind.rsi));
    expect(Array.from(ind.macd)).toEqual(Array.from(before));
    expect(LAGGING_INDICATORS).toContain('macd');
    // Default: one bar on every lagging indicator.
    const one = simulateIndicatorLag(g.candles, ind);
    expect(Object.is(one.sma_20[50], ind.sma_20[49])).toBe(true);
  });

  it('addIndicatorNoise is seeded, keeps RSI in range, blurs without burying the signal, and counts the false signals it adds', () => {
    const a = addIndicatorNoise(ind, 'realistic', { seed: 3 });
    const b = addIndicatorNoise(ind, 'realistic', { seed: 3 });
    const c = addIndicatorNoise(ind, 'realistic', { seed: 4 });
    expect(Array.from(a.indicators.rsi)).toEqual(Array.from(b.indicators.rsi));
    expect(Array.from(a.indicators.rsi)).not.toEqual(Array.from(c.indicators.rsi));
    for (const v of a.indicators.rsi) if (!Number.isNaN(v)) expect(v >= 0 && v <= 100).toBe(true);
    // Correlation with the clean RSI stays high.
    const x = Array.from(ind.rsi).filter((v) => !Number.isNaN(v));
    const y = Array.from(a.indicators.rsi).filter((v) => !Number.isNaN(v));
    const mean = (v: number[]): number => v.reduce((s, t) => s + t, 0) / v.length;
    const mx = mean(x);
    const my = mean(y);
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (let i = 0; i < x.length; i++) {
      sxy += (x[i] - mx) * (y[i] - my);
      sxx += (x[i] - mx) ** 2;
      syy += (y[i] - my) ** 2;
    }
    expect(sxy / Math.sqrt(sxx * syy)).toBeGreaterThan(0.9);
    // More noise, more spurious crossings.
    const high = addIndicatorNoise(ind, 'high', { seed: 3 });
    const low = addIndicatorNoise(ind, 'low', { seed: 3 });
    const sum = (r: Record<string, number>): number => Object.values(r).reduce((s, t) => s + t, 0);
    expect(sum(high.extraCrossings)).toBeGreaterThan(sum(low.extraCrossings));
    expect(() => addIndicatorNoise(ind, -1)).toThrow(DataValidationError);
  });
});

describe('measureFalseSignals', () => {
  it('counts a signal as false when the move over the horizon goes against it', () => {
    const r = measureFalseSignals(g.frames.m15, { horizonBars: 8 });
    expect(r.overall.signals).toBeGreaterThan(20);
    expect(r.overall.rate).toBeCloseTo(r.overall.falseSignals / r.overall.signals, 12);
    for (const k of Object.values(r.perKind))
      if (k.signals > 0) expect(k.rate).toBeGreaterThanOrEqual(0);
  });

  describe.skipIf(!hasSharedData)(`on real BTC candles${SKIP_REASON}`, () => {
    it('gives false-signal rates in the same band for synthetic and real 15m candles', async () => {
      const { candles } = await readCandlesCsv(sharedFile('binance-BTCUSDT-15m.csv.gz'), {
        symbol: 'BTC/USDT',
        timeframe: '15m',
      });
      const real = measureFalseSignals(
        sliceByTime(candles, Date.UTC(2023, 0, 1), Date.UTC(2023, 3, 1)),
        {
          horizonBars: 16,
        },
      );
      const synth = measureFalseSignals(g.frames.m15, { horizonBars: 16 });
      // Neither market makes classic indicator signals reliable: both near a coin flip.
      for (const rate of [real.overall.rate, synth.overall.rate]) {
        expect(rate).toBeGreaterThan(0.35);
        expect(rate).toBeLessThan(0.65);
      }
    });
  });
});
