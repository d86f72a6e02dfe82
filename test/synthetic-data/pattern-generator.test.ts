import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  addRealisticNoise,
  CONTINUATION_TYPES,
  createRealisticVolumeProfile,
  generateContinuationPattern,
  generateReversalPattern,
  generateSupportResistanceReaction,
  generateTrendPattern,
  PATTERN_TYPES,
  patternFamily,
  REVERSAL_TYPES,
  type GeneratedPattern,
  type PatternType,
} from '../../src/synthetic-data/pattern-generator.js';
import { resample } from '../../src/data-processing/resample.js';
import { validateCandles, type Candles } from '../../src/data-processing/candles.js';
import { DataValidationError } from '../../src/errors.js';
import { detect, type Detectable } from './pattern-detector.js';

function sameCandles(a: Candles, b: Candles): boolean {
  if (a.openTime.length !== b.openTime.length) return false;
  for (const k of ['openTime', 'open', 'high', 'low', 'close', 'volume'] as const)
    for (let i = 0; i < a[k].length; i++) if (!Object.is(a[k][i], b[k][i])) return false;
  return true;
}

/** A pattern of any type through the spec function of its family. */
function generate(
  type: PatternType,
  seed: number,
  timeframe: '15m' | '4h' | '1d' = '4h',
): GeneratedPattern {
  const length = timeframe === '1d' ? 24 : 44;
  const o = { seed, timeframe };
  switch (patternFamily(type)) {
    case 'trend':
      return generateTrendPattern(length, type as 'uptrend', o);
    case 'reversal':
      return generateReversalPattern(length, type as 'double_top', o);
    case 'continuation':
      return generateContinuationPattern(length, type as 'bull_flag', o);
    default: {
      const [level, ...rest] = type.split('_');
      return generateSupportResistanceReaction(length, rest.join('_') as 'bounce', {
        ...o,
        level: level as 'support',
      });
    }
  }
}

/** The window of the primary timeframe the model sees at completion (`bars` bars). */
function windowAtCompletion(
  g: GeneratedPattern,
  bars: number,
): { high: Float64Array; low: Float64Array; close: Float64Array } {
  const frame =
    g.timeframe === '4h' ? g.frames.h4 : g.timeframe === '1d' ? g.frames.d1 : g.frames.m15;
  const end = frame.openTime.indexOf(g.candles.openTime[g.completionIndex]) + 1;
  return {
    high: frame.high.subarray(end - bars, end),
    low: frame.low.subarray(end - bars, end),
    close: frame.close.subarray(end - bars, end),
  };
}

describe('the spec generate* functions', () => {
  it('produce valid candles of the asked length whose 4h and 1d are exact aggregates of 15m', () => {
    for (const type of ['double_top', 'bull_flag', 'support_bounce', 'uptrend'] as PatternType[]) {
      const g = generate(type, 3);
      expect(g.candles.openTime.length).toBe(44);
      expect(g.candles.timeframe).toBe('4h');
      for (const c of [g.frames.fine, g.frames.m15, g.frames.h4, g.frames.d1])
        expect(validateCandles(c).count).toBe(0);
      expect(sameCandles(g.frames.h4, resample(g.frames.m15, '4h').candles)).toBe(true);
      expect(sameCandles(g.frames.d1, resample(g.frames.m15, '1d').candles)).toBe(true);
      expect(sameCandles(g.frames.m15, resample(g.frames.fine, '15m').candles)).toBe(true);
      // The label places the pattern inside the candles, completed before its resolution.
      expect(g.label.type).toBe(type);
      expect(g.label.onsetTimeMs).toBe(g.candles.openTime[g.onsetIndex]);
      expect(g.label.completionTimeMs).toBe(g.candles.openTime[g.completionIndex] + 14_400_000);
      expect(g.label.resolutionTimeMs).toBeGreaterThan(g.label.completionTimeMs);
    }
  });

  it('keep OHLC valid for any seed, type, timeframe, length and noise level (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom(...PATTERN_TYPES),
        fc.constantFrom('15m' as const, '4h' as const),
        fc.integer({ min: 20, max: 70 }),
        fc.double({ min: 0.02, max: 0.15, noNaN: true }),
        (seed, type, timeframe, length, noiseLevel) => {
          const family = patternFamily(type);
          const o = { seed, timeframe, noiseLevel };
          const g =
            family === 'trend'
              ? generateTrendPattern(length, type as 'uptrend', o)
              : family === 'reversal'
                ? generateReversalPattern(length, type as 'double_top', o)
                : family === 'continuation'
                  ? generateContinuationPattern(length, type as 'bull_flag', o)
                  : generateSupportResistanceReaction(length, 'bounce', o);
          expect(validateCandles(g.candles).count).toBe(0);
          expect(g.candles.openTime.length).toBe(length);
        },
      ),
      { numRuns: 12 },
    );
  });

  it('reject unknown types, strengths and too-short lengths with a typed error naming the field', () => {
    const expectField = (fn: () => unknown, field: string): void => {
      try {
        fn();
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(DataValidationError);
        expect((err as DataValidationError).field).toBe(field);
      }
    };
    expectField(() => generateReversalPattern(40, 'cup_handle' as 'double_top'), 'patternType');
    expectField(() => generateTrendPattern(40, 'bullish' as 'uptrend'), 'trendType');
    expectField(
      () => generateSupportResistanceReaction(40, 'bounce', { strength: 'huge' as 'weak' }),
      'strength',
    );
    expectField(() => generateReversalPattern(12, 'double_top'), 'length');
    expectField(
      () => generateTrendPattern(40, 'uptrend', { volatilityProfile: 'extreme' as 'low' }),
      'volatilityProfile',
    );
    expectField(() => generateReversalPattern(40, 'double_top', { timeframe: '1m' }), 'timeframe');
  });

  it('draw every pattern type so that an independent rule-based detector finds it on its primary timeframe', () => {
    // The detector (test/synthetic-data/pattern-detector.ts) knows nothing of the generator.
    let found = 0;
    let total = 0;
    const missed: string[] = [];
    for (const type of PATTERN_TYPES) {
      for (let seed = 0; seed < 4; seed++) {
        const g = generate(type, 100 + seed);
        total++;
        if (detect(type as Detectable, windowAtCompletion(g, 32))) found++;
        else missed.push(`${type}#${seed}`);
      }
    }
    expect(found / total, `missed: ${missed.join(', ')}`).toBeGreaterThanOrEqual(0.9);
  });
});

describe('pattern parameters', () => {
  it('volatility profiles scale the trend noise: high > medium > low', () => {
    const spread = (profile: 'low' | 'medium' | 'high'): number => {
      let s = 0;
      for (let seed = 0; seed < 4; seed++) {
        const g = generateTrendPattern(60, 'uptrend', {
          seed,
          volatilityProfile: profile,
          timeframe: '4h',
        });
        const c = g.candles;
        for (let i = 0; i < c.close.length; i++) s += Math.log(c.high[i] / c.low[i]);
      }
      return s;
    };
    const low = spread('low');
    const medium = spread('medium');
    const high = spread('high');
    expect(low).toBeLessThan(medium);
    expect(medium).toBeLessThan(high);
  });

  it('a strong support is respected more exactly than a weak one', () => {
    // Spread of the closes at the touches around the support level, in ATRs (label key points).
    const spread = (strength: 'weak' | 'strong'): number => {
      let s = 0;
      for (let seed = 0; seed < 6; seed++) {
        const g = generateSupportResistanceReaction(44, 'bounce', {
          seed,
          strength,
          timeframe: '4h',
        });
        const level = g.label.levels.find((l) => l.kind === 'support')!.price;
        for (const p of g.label.keyPoints.filter((k) => k.role === 'touch'))
          s += Math.abs(Math.log(p.price / level)) / (g.label.atr / level);
      }
      return s;
    };
    expect(spread('strong')).toBeLessThan(spread('weak'));
  });

  it('continuation patterns contract volatility in the consolidation and expand at the breakout', () => {
    for (const type of ['bull_flag', 'ascending_triangle', 'symmetric_triangle'] as const) {
      let inside = 0;
      let before = 0;
      for (let seed = 0; seed < 5; seed++) {
        const g = generateContinuationPattern(60, type, { seed, timeframe: '4h' });
        const c = g.candles;
        const done = g.completionIndex;
        const span = done - g.onsetIndex;
        const r = (i: number): number => Math.log(c.high[i] / c.low[i]);
        for (let i = done - Math.floor(span / 3); i < done - 1; i++)
          inside += r(i) / Math.floor(span / 3);
        for (let i = g.onsetIndex - 8; i < g.onsetIndex; i++) before += r(i) / 8;
      }
      expect(inside, type).toBeLessThan(before);
    }
  });
});

describe('createRealisticVolumeProfile', () => {
  it('raises volume into breakouts ahead of price, lowers it in consolidations, spikes it at key levels', () => {
    // Summed over patterns, so the base volume's own heavy-tailed swings average out.
    let pole = 0;
    let body = 0;
    let lead = 0;
    let breakout = 0;
    let touch = 0;
    let between = 0;
    const n = 12;
    for (let seed = 0; seed < n; seed++) {
      const flag = generateContinuationPattern(60, 'bull_flag', { seed, timeframe: '4h' });
      const v = createRealisticVolumeProfile(flag);
      const done = flag.completionIndex;
      const span = done - flag.onsetIndex;
      const poleEnd = flag.onsetIndex + Math.round(0.28 * span);
      const mean = (a: number, b: number): number => {
        let s = 0;
        for (let i = a; i < b; i++) s += v[i];
        return s / (b - a);
      };
      pole += mean(flag.onsetIndex + 2, poleEnd + 1);
      body += mean(poleEnd + 3, done - 3);
      lead += mean(done - 2, done); // the two bars before the breakout bar: still inside the flag
      breakout += v[done];
      const sr = generateSupportResistanceReaction(60, 'bounce', { seed, timeframe: '4h' });
      const vs = createRealisticVolumeProfile(sr);
      const idx = sr.label.keyPoints
        .filter((p) => p.role === 'touch')
        .map((p) => sr.candles.openTime.indexOf(p.timeMs - 14_400_000));
      touch += idx.reduce((s, i) => s + vs[i], 0) / idx.length;
      let all = 0;
      for (let i = sr.onsetIndex; i <= sr.completionIndex; i++) all += vs[i];
      between += all / (sr.completionIndex - sr.onsetIndex + 1);
    }
    expect(body).toBeLessThan(pole); // declines in the consolidation
    expect(lead).toBeGreaterThan(body); // rises ahead of the breakout (volume precedes price)
    expect(breakout).toBeGreaterThan(lead); // and peaks on the breakout bar
    expect(touch).toBeGreaterThan(between); // spikes at the key level
  });

  it('returns the planted volume for the planted type, and another profile for another type', () => {
    const g = generateReversalPattern(44, 'double_top', { seed: 2, timeframe: '4h' });
    const own = createRealisticVolumeProfile(g);
    // The candles' volume is the planted one plus the trading of their stop-run spikes: never
    // less, and a few percent more on average (a 4h bar holds 48 fine steps).
    let ratio = 0;
    for (let i = 0; i < own.length; i++) {
      expect(g.candles.volume[i]).toBeGreaterThanOrEqual(own[i] * (1 - 1e-9));
      expect(g.candles.volume[i]).toBeLessThan(1.5 * own[i]);
      ratio += g.candles.volume[i] / own[i] / own.length;
    }
    expect(ratio).toBeLessThan(1.2);
    const other = createRealisticVolumeProfile(g, 'bull_flag');
    expect(other.some((v, i) => Math.abs(v - own[i]) > 1e-9 * own[i])).toBe(true);
  });
});

describe('addRealisticNoise', () => {
  const clean = generateTrendPattern(96, 'uptrend', { seed: 9, timeframe: '4h' }).candles;

  it('keeps the clean closes at its anchors and OHLC valid, for every profile', () => {
    for (const profile of ['market_like', 'choppy', 'trending'] as const) {
      const noisy = addRealisticNoise(clean, profile, { seed: 1, anchorEvery: 4 });
      expect(validateCandles(noisy).count).toBe(0);
      expect(Array.from(noisy.openTime)).toEqual(Array.from(clean.openTime));
      for (let b = 3; b < clean.close.length; b += 4)
        expect(Math.abs(noisy.close[b] / clean.close[b] - 1)).toBeLessThan(1e-6);
      // And it is noise: the closes in between differ.
      expect(noisy.close[1]).not.toBe(clean.close[1]);
    }
  });

  it('choppy noise reverts (negative bar-return autocorrelation) where trending noise persists', () => {
    const acf1 = (c: Candles): number => {
      const r: number[] = [];
      for (let i = 1; i < c.close.length; i++) r.push(Math.log(c.close[i] / c.close[i - 1]));
      const m = r.reduce((a, b) => a + b, 0) / r.length;
      let num = 0;
      let den = 0;
      for (let i = 0; i < r.length; i++) {
        den += (r[i] - m) ** 2;
        if (i > 0) num += (r[i] - m) * (r[i - 1] - m);
      }
      return num / den;
    };
    let choppy = 0;
    let trending = 0;
    const flat = generateTrendPattern(200, 'sideways', { seed: 4, timeframe: '15m' }).candles;
    for (let seed = 0; seed < 6; seed++) {
      choppy += acf1(addRealisticNoise(flat, 'choppy', { seed, anchorEvery: 16 }));
      trending += acf1(addRealisticNoise(flat, 'trending', { seed, anchorEvery: 16 }));
    }
    expect(choppy).toBeLessThan(trending);
    expect(choppy / 6).toBeLessThan(0);
  });

  it('refuses candles with a gap, naming the row', () => {
    const cut = {
      ...clean,
      openTime: Float64Array.from(clean.openTime, (t, i) => (i >= 10 ? t + 14_400_000 : t)),
    };
    try {
      addRealisticNoise(cut);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DataValidationError);
      expect((err as DataValidationError).row).toBe(10);
    }
  });
});

describe('pattern catalogue', () => {
  it('covers the spec: trends, reversals, continuations and support/resistance reactions', () => {
    expect(REVERSAL_TYPES).toEqual(
      expect.arrayContaining([
        'double_top',
        'double_bottom',
        'head_shoulders',
        'inverse_head_shoulders',
        'triple_top',
        'triple_bottom',
        'v_top',
        'v_bottom',
        'rounding_top',
        'rounding_bottom',
      ]),
    );
    expect(CONTINUATION_TYPES).toEqual(
      expect.arrayContaining([
        'bull_flag',
        'bear_flag',
        'ascending_triangle',
        'descending_triangle',
        'symmetric_triangle',
        'rising_wedge',
        'falling_wedge',
      ]),
    );
    for (const reaction of ['bounce', 'breakout', 'false_breakout', 'retest'] as const)
      for (const level of ['support', 'resistance'] as const) {
        const g = generateSupportResistanceReaction(40, reaction, { level, seed: 1 });
        expect(g.label.type).toBe(`${level}_${reaction}`);
      }
  });

  it('labels each pattern with its textbook direction', () => {
    const dir = (t: PatternType): number => generate(t, 5).label.expectedDirection;
    expect(dir('double_top')).toBe(-1);
    expect(dir('inverse_head_shoulders')).toBe(1);
    expect(dir('bull_flag')).toBe(1);
    expect(dir('rising_wedge')).toBe(-1);
    expect(dir('resistance_false_breakout')).toBe(-1);
    expect(dir('support_retest')).toBe(-1);
    expect(dir('sideways')).toBe(0);
  });
});
