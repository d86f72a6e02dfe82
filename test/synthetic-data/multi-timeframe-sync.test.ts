import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  createTimeframeConfluences,
  ensurePatternVisibility,
  generateMultiTimeframeData,
  htfRsiDivergence,
  pathTimeframeTrend,
  timeframeTrend,
  type MultiTimeframeData,
  type PatternRequest,
} from '../../src/synthetic-data/multi-timeframe-sync.js';
import { PATTERN_TYPES, type PatternType } from '../../src/synthetic-data/pattern-generator.js';
import { resample } from '../../src/data-processing/resample.js';
import { TIMEFRAME_MS, validateCandles, type Candles } from '../../src/data-processing/candles.js';
import { DataValidationError } from '../../src/errors.js';
import { detect, type Detectable } from './pattern-detector.js';

const DAY = 86_400_000;

function sameCandles(a: Candles, b: Candles): boolean {
  if (a.openTime.length !== b.openTime.length) return false;
  for (const k of ['openTime', 'open', 'high', 'low', 'close', 'volume'] as const)
    for (let i = 0; i < a[k].length; i++) if (!Object.is(a[k][i], b[k][i])) return false;
  return true;
}

function expectExactFrames(d: MultiTimeframeData): void {
  const m15 = d.frames.get('15m') as Candles;
  for (const c of d.frames.values()) expect(validateCandles(c).count).toBe(0);
  expect(sameCandles(m15, resample(d.fine, '15m').candles)).toBe(true);
  expect(sameCandles(d.frames.get('4h') as Candles, resample(m15, '4h').candles)).toBe(true);
  expect(sameCandles(d.frames.get('1d') as Candles, resample(m15, '1d').candles)).toBe(true);
}

/** The primary window (config size) ending at a label's completion bar. */
function primaryWindow(
  d: MultiTimeframeData,
  k: number,
): { high: Float64Array; low: Float64Array; close: Float64Array } {
  const l = d.labels[k];
  const c = d.frames.get(l.primaryTimeframe) as Candles;
  const bars = d.windows[l.primaryTimeframe] as number;
  const end = c.openTime.indexOf(l.completionTimeMs - TIMEFRAME_MS[l.primaryTimeframe]) + 1;
  return {
    high: c.high.subarray(end - bars, end),
    low: c.low.subarray(end - bars, end),
    close: c.close.subarray(end - bars, end),
  };
}

const mixed: PatternRequest[] = [
  { type: 'double_top', primaryTimeframe: '4h' },
  { type: 'bull_flag', primaryTimeframe: '15m' },
  { type: 'head_shoulders', primaryTimeframe: '1d' },
  { type: 'support_bounce', primaryTimeframe: '15m' },
  { type: 'falling_wedge', primaryTimeframe: '4h' },
];

describe('generateMultiTimeframeData', () => {
  const d = generateMultiTimeframeData({ seed: 21, days: 60, patterns: mixed });

  it('generates at the finest step and aggregates exactly: 4h and 1d are 15m aggregated, 15m is 5m aggregated', () => {
    expect(d.fine.timeframe).toBe('5m');
    expectExactFrames(d);
    expect((d.frames.get('1d') as Candles).openTime.length).toBe(60);
  });

  it('labels every pattern on its primary grid, in time order, with the resolution after completion', () => {
    expect(d.labels.map((l) => l.type)).toEqual(mixed.map((r) => r.type));
    let prevEnd = 0;
    for (const l of d.labels) {
      const barMs = TIMEFRAME_MS[l.primaryTimeframe];
      expect(l.onsetTimeMs % barMs).toBe(0);
      expect((l.completionTimeMs - l.onsetTimeMs) % barMs).toBe(0);
      expect(l.onsetTimeMs).toBeGreaterThan(prevEnd);
      expect(l.resolutionTimeMs).toBeGreaterThan(l.completionTimeMs);
      prevEnd = l.resolutionTimeMs;
    }
  });

  it('is deterministic for a seed', () => {
    const again = generateMultiTimeframeData({ seed: 21, days: 60, patterns: mixed });
    expect(sameCandles(again.frames.get('15m') as Candles, d.frames.get('15m') as Candles)).toBe(
      true,
    );
  });

  it('keeps candles valid and aggregation exact for any seed and pattern set (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.array(
          fc.record({
            type: fc.constantFrom(...PATTERN_TYPES),
            primaryTimeframe: fc.constantFrom('15m' as const, '4h' as const),
            adversarial: fc.boolean(),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        (seed, patterns) => {
          const m = generateMultiTimeframeData({
            seed,
            days: 30,
            patterns: patterns as PatternRequest[],
            maxShiftBars: 2,
          });
          expectExactFrames(m);
          expect(m.labels.length).toBe(patterns.length);
        },
      ),
      { numRuns: 8 },
    );
  });

  it('refuses a pattern that does not fit and a primary timeframe it cannot draw on', () => {
    expect(() =>
      generateMultiTimeframeData({
        seed: 1,
        days: 5,
        patterns: [{ type: 'double_top', primaryTimeframe: '1d' }],
      }),
    ).toThrow(DataValidationError);
    expect(() =>
      generateMultiTimeframeData({
        seed: 1,
        days: 30,
        patterns: [{ type: 'double_top', primaryTimeframe: '1h' }],
      }),
    ).toThrow(DataValidationError);
  });

  it('scales every planted pattern by amplitudeScale (same skeletons) and refuses a non-positive one', () => {
    const scaled = (a: number): number[] =>
      generateMultiTimeframeData({
        seed: 21,
        days: 60,
        patterns: mixed.map((r) => ({ ...r, amplitudeScale: a })),
      }).labels.map((l) => l.heightAtr);
    const half = scaled(0.5);
    d.labels.forEach((l, k) => expect(half[k]).toBeCloseTo(0.5 * l.heightAtr, 9));
    expect(() => scaled(0)).toThrow(/amplitudeScale/);
  });
});

describe('ensurePatternVisibility', () => {
  it('makes the pattern clearest on its primary timeframe and readable there by an independent detector', () => {
    const types: PatternType[] = [
      'double_top',
      'ascending_triangle',
      'support_breakout',
      'rising_wedge',
      'uptrend',
      'head_shoulders',
    ];
    let clear = 0;
    let detected = 0;
    let total = 0;
    for (const [k, type] of types.entries()) {
      for (const tf of ['15m', '4h'] as const) {
        const raw = generateMultiTimeframeData({
          seed: 100 + k,
          days: 40,
          patterns: [{ type, primaryTimeframe: tf }],
        });
        const d = ensurePatternVisibility(raw, type, tf);
        const v = d.visibility[0];
        total++;
        if (v.clearestOnPrimary) clear++;
        if (detect(type as Detectable, primaryWindow(d, 0))) detected++;
        // Natural expression elsewhere: longer than the window on a finer timeframe, a few bars on a coarser one.
        for (const o of v.perTimeframe) {
          if (TIMEFRAME_MS[o.timeframe] < TIMEFRAME_MS[tf]) expect(o.fitsWindow).toBe(false);
          if (TIMEFRAME_MS[o.timeframe] > TIMEFRAME_MS[tf]) expect(o.barsSpanned).toBeLessThan(12);
        }
        expect(d.visibility[0].perTimeframe.find((o) => o.timeframe === tf)?.fitsWindow).toBe(true);
        expectExactFrames(d);
      }
    }
    expect(clear / total).toBeGreaterThanOrEqual(0.8);
    expect(detected / total).toBeGreaterThanOrEqual(0.8);
  });

  it('refuses a pattern the market does not hold', () => {
    const d = generateMultiTimeframeData({
      seed: 3,
      days: 20,
      patterns: [{ type: 'bull_flag', primaryTimeframe: '4h' }],
    });
    expect(() => ensurePatternVisibility(d, 'bear_flag', '4h')).toThrow(DataValidationError);
  });
});

/** Close of the 15m bar that closes at `closeMs`. */
function closeAt(d: MultiTimeframeData, closeMs: number): number {
  const m15 = d.frames.get('15m') as Candles;
  return m15.close[m15.openTime.indexOf(closeMs - 900_000)];
}

describe('outcomes decided by the higher timeframe (htfInfluence)', () => {
  // Back-to-back 15m and 4h patterns (half of them planned to fail) and a 1d one.
  const rng = (k: number): number => ((k * 2654435761) >>> 0) / 2 ** 32;
  const types: PatternType[] = ['bull_flag', 'double_top', 'support_bounce', 'falling_wedge'];
  const requests: PatternRequest[] = Array.from({ length: 32 }, (_, k) => ({
    type: types[k % types.length],
    primaryTimeframe: k === 12 ? '1d' : rng(k) < 0.6 ? '15m' : '4h',
    adversarial: rng(k + 100) < 0.5,
    delayBars: 1,
  }));
  const market = (htfInfluence: number): MultiTimeframeData =>
    generateMultiTimeframeData({
      seed: 5,
      days: 200,
      patterns: requests,
      htfInfluence,
      leadDays: 25,
    });
  const full = market(1);
  const none = market(0);

  it('reads the trend of a higher timeframe from the path before an onset as timeframeTrend reads it from the candles', () => {
    const m = full;
    const logClose = new Float64Array(m.planted.path.logReturn.length);
    let level = m.planted.path.initialLogPrice;
    m.planted.path.logReturn.forEach((r, i) => (logClose[i] = level += r));
    let agree = 0;
    let n = 0;
    for (let step = 30 * 288 + 7; step < logClose.length - 1; step += 97) {
      const onsetMs = m.basePath.startTimeMs + step * 300_000;
      for (const tf of ['4h', '1d'] as const) {
        const fromPath = pathTimeframeTrend(
          m.planted.path.logReturn,
          logClose[step - 1],
          step,
          tf,
          m.basePath.startTimeMs,
        );
        n++;
        if (fromPath === timeframeTrend(m.frames.get(tf) as Candles, onsetMs)) agree++;
      }
    }
    expect(n).toBeGreaterThan(500);
    expect(agree / n).toBeGreaterThanOrEqual(0.9);
  });

  it('at full influence the confluence of every higher timeframe decides: all confirming never fails, all contradicting always fails, a split keeps the plan', () => {
    let contradicted = 0;
    let confirmed = 0;
    let partial = 0;
    let agree = 0;
    full.labels.forEach((l, k) => {
      if (l.primaryTimeframe === '1d') {
        expect(l.htfAlignment).toBeNaN();
        expect(l.adversarial).toBe(requests[k].adversarial);
        return;
      }
      // 15m patterns average the 4h and 1d trends, 4h patterns read the 1d trend alone.
      const higher = l.primaryTimeframe === '15m' ? (['4h', '1d'] as const) : (['1d'] as const);
      expect(l.primaryTimeframe === '15m' ? [-1, -0.5, 0, 0.5, 1] : [-1, 0, 1]).toContain(
        l.htfAlignment,
      );
      const fromCandles =
        higher.reduce(
          (a, tf) => a + timeframeTrend(full.frames.get(tf) as Candles, l.onsetTimeMs),
          0,
        ) *
        (l.expectedDirection / higher.length);
      if (fromCandles === l.htfAlignment) agree++;
      if (l.htfAlignment === 0) expect(l.adversarial).toBe(requests[k].adversarial);
      else if (Math.abs(l.htfAlignment) === 1) expect(l.adversarial).toBe(l.htfAlignment < 0);
      else {
        partial++;
        // Half a confluence moves the draw only its way: a confirmed pattern fails only if it was
        // planned to, a contradicted one succeeds only if it was planned to.
        if (l.htfAlignment > 0 && l.adversarial) expect(requests[k].adversarial).toBe(true);
        if (l.htfAlignment < 0 && !l.adversarial) expect(requests[k].adversarial).toBe(false);
      }
      if (l.htfAlignment < 0) contradicted++;
      if (l.htfAlignment > 0) confirmed++;
      // What the market then did: from completion to resolution, with or against the textbook.
      const move = Math.log(closeAt(full, l.resolutionTimeMs) / closeAt(full, l.completionTimeMs));
      expect(Math.sign(move)).toBe(l.adversarial ? -l.expectedDirection : l.expectedDirection);
    });
    expect(contradicted).toBeGreaterThan(5);
    expect(confirmed).toBeGreaterThan(5);
    expect(partial).toBeGreaterThan(0);
    // The path-side trends agree with the candles' own (timeframeTrend) for most patterns.
    expect(agree / full.labels.filter((l) => l.primaryTimeframe !== '1d').length).toBeGreaterThan(
      0.8,
    );
  });

  it('without influence plants every outcome as requested and records no alignment', () => {
    none.labels.forEach((l, k) => {
      expect(l.adversarial).toBe(requests[k].adversarial);
      expect(l.htfAlignment).toBeNaN();
    });
    expect(() => market(1.5)).toThrow(DataValidationError);
  });

  it('keeps the market own returns through the resolution delay and starts the move after it', () => {
    for (const pp of none.planted.planted) {
      const plan = pp.plan;
      const completionEnd = plan.onsetStep + plan.spanBars * plan.barSteps - 1;
      const delayEnd = completionEnd + plan.barSteps;
      if (plan.consolidation !== null) continue; // volatility expands after a consolidation
      for (let i = completionEnd + 1; i <= delayEnd; i++)
        expect(none.planted.path.logReturn[i]).toBeCloseTo(none.basePath.logReturn[i], 12);
      // The resolution move is measured from where the delay ended.
      const [delayWp, resolutionWp] = pp.waypoints.slice(-2);
      expect(delayWp.step).toBe(delayEnd);
      expect(resolutionWp.logPrice - delayWp.logPrice).toBeCloseTo(
        plan.resolutionY * pp.atrLog * plan.amplitudeScale,
        12,
      );
    }
  });
});

describe('createTimeframeConfluences', () => {
  // Lower-timeframe patterns with room before them for a higher-timeframe trend.
  const requests = (seed: number): PatternRequest[] => [
    {
      type: seed % 2 === 0 ? 'bull_flag' : 'bear_flag',
      primaryTimeframe: '15m',
      onsetTimeMs: Date.UTC(2024, 0, 1) + 20 * DAY,
    },
    {
      type: seed % 2 === 0 ? 'double_bottom' : 'double_top',
      primaryTimeframe: '15m',
      onsetTimeMs: Date.UTC(2024, 0, 1) + 40 * DAY,
    },
  ];

  it('lays a higher-timeframe trend that confirms or contradicts the pattern, verified on the higher timeframe', () => {
    let confirms = 0;
    let contradicts = 0;
    let n = 0;
    for (let seed = 0; seed < 4; seed++) {
      const base = generateMultiTimeframeData({ seed, days: 50, patterns: requests(seed) });
      const up = createTimeframeConfluences(base, 'htf_confirms');
      const down = createTimeframeConfluences(base, 'htf_contradicts');
      expectExactFrames(up);
      for (const [k, l] of up.labels.entries()) {
        if (l.type === 'uptrend' || l.type === 'downtrend') continue;
        n++;
        // The trend of 4h at the pattern's onset, from 4h candles closed by then.
        const h4 = up.frames.get('4h') as Candles;
        if (timeframeTrend(h4, l.onsetTimeMs) === l.expectedDirection) confirms++;
        const dl = down.labels.find((x) => x.type === l.type) ?? down.labels[k];
        if (
          timeframeTrend(down.frames.get('4h') as Candles, dl.onsetTimeMs) === -l.expectedDirection
        )
          contradicts++;
      }
    }
    expect(confirms / n).toBeGreaterThanOrEqual(0.75);
    expect(contradicts / n).toBeGreaterThanOrEqual(0.75);
  });

  it('creates divergences between timeframes: the higher timeframe RSI fails to confirm its last extreme', () => {
    let found = 0;
    let n = 0;
    for (let seed = 0; seed < 4; seed++) {
      const base = generateMultiTimeframeData({
        seed: 50 + seed,
        days: 50,
        patterns: requests(seed),
      });
      const d = createTimeframeConfluences(base, 'tf_divergence');
      for (const l of d.labels) {
        if (l.primaryTimeframe !== '15m') continue;
        n++;
        const trendDir = -l.expectedDirection as 1 | -1;
        if (htfRsiDivergence(d.frames.get('4h') as Candles, l.onsetTimeMs, trendDir)) found++;
      }
    }
    expect(found / n).toBeGreaterThanOrEqual(0.6);
  });

  it('with higher-timeframe influence, a planted confirming trend lets the pattern resolve its textbook way and a contradicting one makes it fail', () => {
    let n = 0;
    let aligned = 0;
    for (let seed = 0; seed < 4; seed++) {
      const base = generateMultiTimeframeData({
        seed,
        days: 50,
        patterns: requests(seed).map((r) => ({ ...r, adversarial: seed % 2 === 0 })),
        htfInfluence: 1,
      });
      for (const [type, want] of [
        ['htf_confirms', 1],
        ['htf_contradicts', -1],
      ] as const) {
        const d = createTimeframeConfluences(base, type);
        for (const l of d.labels) {
          if (l.type === 'uptrend' || l.type === 'downtrend') continue;
          n++;
          if (l.htfAlignment === want) {
            aligned++;
            expect(l.adversarial).toBe(want < 0);
          }
        }
      }
    }
    expect(aligned / n).toBeGreaterThanOrEqual(0.75);
  });

  it('refuses an unknown confluence', () => {
    const d = generateMultiTimeframeData({ seed: 1, days: 50, patterns: requests(0) });
    expect(() => createTimeframeConfluences(d, 'sideways' as 'htf_confirms')).toThrow(
      DataValidationError,
    );
  });
});
