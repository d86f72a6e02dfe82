// Walk-forward folds: exact boundaries, purge and embargo equal to the label horizon, the holdout
// guard, and per-fold and pooled results of a fixed policy.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LookAheadError } from '../../src/errors.js';
import { backtestStrategy } from '../../src/evaluation/backtest.js';
import { buyAndHoldPolicy, smaCrossPolicy } from '../../src/evaluation/baselines.js';
import { walkForwardBacktest, walkForwardReportInput } from '../../src/evaluation/walk-forward.js';
import { smaFeatures, walkCandles } from './fixtures.js';
import { assertOutsideHoldout, clipToHoldout, walkForwardSplits, type DateRange, type WalkForwardFold } from '../../src/data-processing/splits.js';

const DAY = 86_400_000;
const BAR = 15 * 60_000;

describe('walk-forward splits', () => {
  it('cuts rolling folds with the purge gap before each test window (hand-checked boundaries)', () => {
    // Span 100 days, train 30, test 10, purge 1 day: tests start at day 31, 41, ..., 81 (the next,
    // 91 + 10 = 101, does not fit); each train window is the 30 days ending one day (the purge)
    // before its test window: [0, 30) for the test at 31, ..., [50, 80) for the test at 81.
    const folds = walkForwardSplits({
      range: { fromMs: 0, toMs: 100 * DAY },
      trainMs: 30 * DAY,
      testMs: 10 * DAY,
      purgeMs: DAY,
      embargoMs: DAY,
    });
    expect(folds.map((f) => f.test.fromMs / DAY)).toEqual([31, 41, 51, 61, 71, 81]);
    expect(folds[0].train).toEqual([{ fromMs: 0, toMs: 30 * DAY }]);
    expect(folds[5].train).toEqual([{ fromMs: 50 * DAY, toMs: 80 * DAY }]);
    expect(folds[5].test).toEqual({ fromMs: 81 * DAY, toMs: 91 * DAY });
  });

  it('expanding folds train from the start of the span', () => {
    const folds = walkForwardSplits({
      range: { fromMs: 0, toMs: 100 * DAY },
      mode: 'expanding',
      trainMs: 30 * DAY,
      testMs: 20 * DAY,
      purgeMs: 0,
      embargoMs: 0,
    });
    expect(
      folds.map((f) => [f.train[0].fromMs / DAY, f.train[0].toMs / DAY, f.test.toMs / DAY]),
    ).toEqual([
      [0, 30, 50],
      [0, 50, 70],
      [0, 70, 90],
    ]);
  });

  it('purged k-fold trains on both sides, dropping the purge before and the embargo after the test block', () => {
    const folds = walkForwardSplits({
      range: { fromMs: 0, toMs: 100 * DAY },
      mode: 'purged-kfold',
      folds: 4,
      purgeMs: 2 * DAY,
      embargoMs: 3 * DAY,
    });
    expect(folds[1].test).toEqual({ fromMs: 25 * DAY, toMs: 50 * DAY });
    expect(folds[1].train).toEqual([
      { fromMs: 0, toMs: 23 * DAY },
      { fromMs: 53 * DAY, toMs: 100 * DAY },
    ]);
    expect(folds[0].train).toEqual([{ fromMs: 28 * DAY, toMs: 100 * DAY }]);
    expect(folds[3].train).toEqual([{ fromMs: 0, toMs: 73 * DAY }]);
  });

  it('property: with purge = label horizon h, no training label (row t → t + h bars) reaches a test bar', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 96 }),
        fc.integer({ min: 20, max: 200 }),
        fc.integer({ min: 5, max: 60 }),
        fc.constantFrom<'rolling' | 'expanding' | 'purged-kfold'>(
          'rolling',
          'expanding',
          'purged-kfold',
        ),
        (h, trainDays, testDays, mode) => {
          const folds = walkForwardSplits({
            range: { fromMs: 0, toMs: 400 * DAY },
            mode,
            trainMs: trainDays * DAY,
            testMs: testDays * DAY,
            folds: 5,
            purgeMs: h * BAR,
            embargoMs: h * BAR,
          });
          for (const f of folds)
            for (const tr of f.train) {
              // Last training bar opens at toMs − BAR; its label ends at the open of bar + h.
              const lastLabelEnd = tr.toMs - BAR + h * BAR;
              const firstTrainBar = tr.fromMs;
              const overlapsBefore = tr.toMs <= f.test.fromMs && lastLabelEnd >= f.test.fromMs;
              const insideTest = tr.fromMs < f.test.toMs && f.test.fromMs < tr.toMs;
              const tooSoonAfter =
                firstTrainBar >= f.test.toMs && firstTrainBar < f.test.toMs + h * BAR;
              expect(overlapsBefore || insideTest || tooSoonAfter).toBe(false);
            }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a span too short for one fold and bad lengths', () => {
    expect(() =>
      walkForwardSplits({
        range: { fromMs: 0, toMs: 10 * DAY },
        trainMs: 30 * DAY,
        testMs: DAY,
        purgeMs: 0,
        embargoMs: 0,
      }),
    ).toThrow(/too short for one fold/);
    expect(() =>
      walkForwardSplits({
        range: { fromMs: 0, toMs: 10 * DAY },
        trainMs: 0,
        testMs: DAY,
        purgeMs: 0,
        embargoMs: 0,
      }),
    ).toThrow(RangeError);
  });
});

describe('the holdout guard', () => {
  const holdout: DateRange = { fromMs: 300 * DAY, toMs: Infinity };
  it('throws a LookAheadError for a span reaching into the holdout unless it is opened', () => {
    const options = {
      range: { fromMs: 0, toMs: 400 * DAY },
      trainMs: 30 * DAY,
      testMs: 30 * DAY,
      purgeMs: 0,
      embargoMs: 0,
      holdout,
    };
    expect(() => walkForwardSplits(options)).toThrow(LookAheadError);
    expect(walkForwardSplits({ ...options, openHoldout: true }).length).toBe(12);
    expect(() => assertOutsideHoldout({ fromMs: 0, toMs: 300 * DAY }, holdout)).not.toThrow();
    expect(clipToHoldout({ fromMs: 0, toMs: 400 * DAY }, holdout)).toEqual({
      fromMs: 0,
      toMs: 300 * DAY,
    });
    let refused: unknown;
    try {
      clipToHoldout({ fromMs: 310 * DAY, toMs: 400 * DAY }, holdout);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(LookAheadError);
    expect((refused as LookAheadError).hint).toMatch(/--open-holdout/);
  });
});

describe('walk-forward backtests', () => {
  const c = walkCandles(96 * 60, { seed: 21 }); // 60 days of 15m bars from 2023-01-01
  const f = smaFeatures(c);
  const start = c.openTime[0];
  const folds = walkForwardSplits({
    range: { fromMs: start, toMs: start + 60 * DAY },
    trainMs: 20 * DAY,
    testMs: 10 * DAY,
    purgeMs: 16 * BAR,
    embargoMs: 16 * BAR,
  });

  it('gives per-fold results equal to a backtest of each test window, and pools them', async () => {
    const policy = smaCrossPolicy(f, { fastFeature: 'close_sma_10', slowFeature: 'close_sma_20' });
    const wf = await walkForwardBacktest({ policy, data: f, folds, transactionCost: 0.001 });
    expect(wf.folds).toHaveLength(folds.length);
    let growth = 1;
    let trades = 0;
    for (const fr of wf.folds) {
      const single = backtestStrategy({
        policy,
        data: f,
        range: fr.fold.test,
        transactionCost: 0.001,
      });
      expect(Array.from(fr.result!.equity)).toEqual(Array.from(single.equity));
      expect(fr.result!.time[0]).toBeGreaterThanOrEqual(fr.fold.test.fromMs);
      expect(fr.result!.time[fr.result!.rows - 1]).toBeLessThan(fr.fold.test.toMs);
      growth *= single.finalEquity / single.initialCapital;
      trades += single.trades.length;
    }
    expect(wf.pooled.returns.totalReturn).toBeCloseTo(growth - 1, 10);
    expect(wf.pooled.trades.count).toBe(trades);
    // Buy-and-hold per fold: one round trip each (closed at the fold's end).
    expect(wf.pooledBenchmark?.trades.count).toBe(folds.length);
    expect(wf.pooledEquity[wf.pooledEquity.length - 1]).toBeCloseTo(10_000 * growth, 6);
    // Pooled fees are each fold's fees rescaled to the pooled equity at its start.
    expect(wf.pooled.costs.fees).toBeGreaterThan(0);
    const input = walkForwardReportInput(wf, 'wf');
    expect(input.candles.openTime.length).toBe(wf.folds.reduce((s, x) => s + x.result!.rows, 0));
    expect(input.facts?.folds).toBe(folds.length);
  });

  it('calls a policy factory once per fold with the fold (where retraining plugs in)', async () => {
    const seen: WalkForwardFold[] = [];
    await walkForwardBacktest({
      policy: (fold) => {
        seen.push(fold);
        return buyAndHoldPolicy();
      },
      data: f,
      folds,
      benchmark: false,
    });
    expect(seen.map((x) => x.index)).toEqual(folds.map((x) => x.index));
  });
});
