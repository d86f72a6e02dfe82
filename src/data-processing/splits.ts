// Date splits, written once: half-open UTC date ranges, the train / validation / test / holdout
// ranges of config section `splits`, the guard that keeps the holdout closed, and walk-forward
// folds (rolling, expanding, purged k-fold, whole calendar years) with purge and embargo, and the
// configured data range (`data.startDate`/`endDate`). Every evaluation, trainer and experiment cuts
// its data here. Never lets a train range overlap its test range or the label horizon before it,
// and never lets a read touch a closed holdout.

import { DataValidationError, LookAheadError } from '../errors.js';
import { rangeMs, type Config } from '../utils/config.js';

/** A half-open UTC date range `[fromMs, toMs)` in epoch ms. */
export interface DateRange {
  /** Inclusive start, UTC ms. */
  readonly fromMs: number;
  /** Exclusive end, UTC ms. */
  readonly toMs: number;
}

/** One fold: where a policy may be fitted and where it is evaluated. */
export interface WalkForwardFold {
  /** 0-based fold number, in test-window order. */
  readonly index: number;
  /** Training ranges (one in walk-forward modes; up to two, around the test block, in k-fold). */
  readonly train: readonly DateRange[];
  /** The range evaluated. */
  readonly test: DateRange;
}

/**
 * How folds are cut. `rolling`: a train window of fixed length before each test window;
 * `expanding`: train from the start of the span; `purged-kfold`: contiguous test blocks with
 * training on both sides (López de Prado's purged k-fold), where the embargo after each test block
 * matters.
 */
export type WalkForwardMode = 'rolling' | 'expanding' | 'purged-kfold';

/** Options of `walkForwardSplits`. Lengths are in ms. */
export interface WalkForwardOptions {
  /** The span folds are cut from. */
  readonly range: DateRange;
  /** How folds are cut. Default rolling. */
  readonly mode?: WalkForwardMode;
  /** Train window length (rolling), minimum train length (expanding); unused in k-fold. */
  readonly trainMs?: number;
  /** Test window length (walk-forward modes). */
  readonly testMs?: number;
  /** Distance between consecutive test windows (default `testMs`: contiguous, non-overlapping). */
  readonly stepMs?: number;
  /** Number of folds (purged-kfold only). */
  readonly folds?: number;
  /**
   * Gap between the end of training data and the start of a test window: training rows whose
   * label (forward) horizon reaches into the test window are dropped. Set it to the label horizon.
   */
  readonly purgeMs: number;
  /**
   * Gap after a test window before training data may resume (purged-kfold; serial correlation
   * guard). Set it to the label horizon. Forward-only modes never train after a test window.
   */
  readonly embargoMs: number;
  /** The holdout split; the span must not touch it unless `openHoldout`. */
  readonly holdout?: DateRange;
  /** Allow the span to touch the holdout (the final evaluation). Default false. */
  readonly openHoldout?: boolean;
}

function overlaps(a: DateRange, b: DateRange): boolean {
  return a.fromMs < b.toMs && b.fromMs < a.toMs;
}

function days(ms: number): string {
  return (ms / 86_400_000).toFixed(ms % 86_400_000 === 0 ? 0 : 2);
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : ms > 0 ? '+inf' : '-inf';
}

/**
 * Refuses a read of `range` that overlaps the holdout split unless the holdout is opened
 * explicitly (`--open-holdout`).
 * @throws {LookAheadError} naming both ranges.
 */
export function assertOutsideHoldout(
  range: DateRange,
  holdout: DateRange | undefined,
  openHoldout = false,
): void {
  if (holdout === undefined || openHoldout || holdout.fromMs >= holdout.toMs) return;
  if (overlaps(range, holdout))
    throw new LookAheadError(
      `range [${iso(range.fromMs)}, ${iso(range.toMs)}) reads the holdout split [${iso(holdout.fromMs)}, ${iso(holdout.toMs)})`,
      {
        hint: 'end the range before splits.holdout.from, or pass --open-holdout for the final evaluation',
      },
    );
}

/**
 * Clips `range` so that it ends before the holdout when the holdout is closed and starts before
 * the range ends (the default data range of an evaluation). A range lying entirely inside a closed
 * holdout is refused.
 * @throws {LookAheadError} when nothing is left outside the holdout.
 */
export function clipToHoldout(
  range: DateRange,
  holdout: DateRange | undefined,
  openHoldout = false,
): DateRange {
  if (holdout === undefined || openHoldout || !overlaps(range, holdout)) return range;
  if (holdout.fromMs > range.fromMs) return { fromMs: range.fromMs, toMs: holdout.fromMs };
  if (holdout.toMs < range.toMs) return { fromMs: holdout.toMs, toMs: range.toMs };
  assertOutsideHoldout(range, holdout, openHoldout);
  return range;
}

/**
 * Cuts train/test folds from a date span.
 * @throws {RangeError} on non-positive lengths or a missing option of the chosen mode
 * @throws {DataValidationError} when the span is too short for one fold (in days: what it needs,
 *   what it got)
 * @throws {LookAheadError} when the span overlaps a closed holdout
 * @example
 * const folds = walkForwardSplits({ range, trainMs: 365 * DAY, testMs: 90 * DAY,
 *   purgeMs: 16 * 15 * MIN, embargoMs: 16 * 15 * MIN });
 */
export function walkForwardSplits(options: WalkForwardOptions): WalkForwardFold[] {
  const { range, purgeMs, embargoMs } = options;
  const mode = options.mode ?? 'rolling';
  assertOutsideHoldout(range, options.holdout, options.openHoldout);
  if (
    !(range.toMs > range.fromMs) ||
    !Number.isFinite(range.fromMs) ||
    !Number.isFinite(range.toMs)
  )
    throw new RangeError(
      `walk-forward span [${iso(range.fromMs)}, ${iso(range.toMs)}) is empty or unbounded`,
    );
  if (!(purgeMs >= 0) || !(embargoMs >= 0))
    throw new RangeError(`purge (${purgeMs} ms) and embargo (${embargoMs} ms) must be >= 0`);
  const folds: WalkForwardFold[] = [];
  if (mode === 'purged-kfold') {
    const k = options.folds ?? 0;
    if (!(Number.isInteger(k) && k >= 2))
      throw new RangeError(`purged-kfold needs folds >= 2, got ${k}`);
    const span = range.toMs - range.fromMs;
    for (let i = 0; i < k; i++) {
      const test = {
        fromMs: range.fromMs + Math.floor((span * i) / k),
        toMs: range.fromMs + Math.floor((span * (i + 1)) / k),
      };
      const train: DateRange[] = [];
      const before = { fromMs: range.fromMs, toMs: test.fromMs - purgeMs };
      const after = { fromMs: test.toMs + embargoMs, toMs: range.toMs };
      if (before.toMs > before.fromMs) train.push(before);
      if (after.toMs > after.fromMs) train.push(after);
      folds.push({ index: i, train, test });
    }
    return folds;
  }
  const trainMs = options.trainMs ?? 0;
  const testMs = options.testMs ?? 0;
  const stepMs = options.stepMs ?? testMs;
  if (!(trainMs > 0) || !(testMs > 0) || !(stepMs > 0))
    throw new RangeError(
      `walk-forward needs trainMs, testMs and stepMs > 0 (got ${trainMs}, ${testMs}, ${stepMs})`,
    );
  for (
    let start = range.fromMs + trainMs + purgeMs;
    start + testMs <= range.toMs;
    start += stepMs
  ) {
    const trainTo = start - purgeMs;
    const trainFrom = mode === 'expanding' ? range.fromMs : trainTo - trainMs;
    folds.push({
      index: folds.length,
      train: [{ fromMs: trainFrom, toMs: trainTo }],
      test: { fromMs: start, toMs: start + testMs },
    });
  }
  if (folds.length === 0)
    throw new DataValidationError(
      {
        reason: `span [${iso(range.fromMs)}, ${iso(range.toMs)}) of ${days(range.toMs - range.fromMs)} days is too short for one fold of train ${days(trainMs)} + purge ${days(purgeMs)} + test ${days(testMs)} days`,
      },
      { hint: 'give more data, or shorter train and test windows' },
    );
  return folds;
}

/**
 * The configured data range (`data.startDate` to `data.endDate`: what is read from the store or a
 * data directory, and downloaded), in epoch ms; a null end is ±Infinity.
 */
export function configDataRange(config: Config): DateRange {
  return rangeMs({ from: config.data.startDate, to: config.data.endDate });
}

/** The four ranges of config section `splits`, in epoch ms (`null` ends are ±Infinity). */
export function configSplits(config: Config): {
  train: DateRange;
  validation: DateRange;
  test: DateRange;
  holdout: DateRange;
} {
  return {
    train: rangeMs(config.splits.train),
    validation: rangeMs(config.splits.validation),
    test: rangeMs(config.splits.test),
    holdout: rangeMs(config.splits.holdout),
  };
}

/**
 * Yearly walk-forward folds: each test range is one calendar year (UTC), trained on everything
 * from `fromMs` up to the test year minus the purge (expanding window).
 * @throws {RangeError} when a test year starts at or before `fromMs`
 * @throws {LookAheadError} when a test year overlaps a closed holdout
 */
export function yearlyFolds(options: {
  /** Start of the training data (UTC ms). */
  fromMs: number;
  /** Test years, e.g. [2021, 2022, 2023]. */
  testYears: readonly number[];
  /** Gap before each test year (the label horizon), ms. */
  purgeMs: number;
  /** The holdout split and whether it is open. */
  holdout?: DateRange;
  openHoldout?: boolean;
}): WalkForwardFold[] {
  return options.testYears.map((year, index) => {
    const test = { fromMs: Date.UTC(year, 0, 1), toMs: Date.UTC(year + 1, 0, 1) };
    if (!(test.fromMs - options.purgeMs > options.fromMs))
      throw new RangeError(
        `test year ${year} leaves no training data after ${iso(options.fromMs)} (purge ${options.purgeMs} ms)`,
      );
    assertOutsideHoldout(test, options.holdout, options.openHoldout);
    return {
      index,
      train: [{ fromMs: options.fromMs, toMs: test.fromMs - options.purgeMs }],
      test,
    };
  });
}
