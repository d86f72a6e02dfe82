// The labelled training dataset (the spec's dataset_builder): samples cut at decision times from
// long generated multi-timeframe markets with chart patterns planted at random times, their inputs
// being windows per timeframe of the one feature registry (cut with `copyWindow`, exactly as the env
// cuts observations), their labels the planted pattern and what the market then did. Splits by time
// with purge and embargo, written atomically in the on-disk format of
// data-processing/dataset-format.ts (manifest.json plus binary shards, read back there by the batch
// iterator the trainer consumes). Forward-return labels never cross their split; no input or
// pattern label uses a bar after its decision time.

import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { DataValidationError, UsageError } from '../errors.js';
import {
  lowerBound,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import { resample } from '../data-processing/resample.js';
import { readCandlesCsv } from '../data-processing/file-formats.js';
import { repairCandles } from '../data-processing/candles.js';
import {
  buildFeatures,
  copyWindow,
  type FeatureMatrix,
  type FeatureSpec,
  type MultiTimeframeFeatures,
} from '../data-processing/feature-engineering.js';
import type { NormalizerJson } from '../data-processing/normalizer.js';
import type { LookAheadMatrix } from '../data-processing/lookahead.js';
import { defaultConfig, rangeMs, type Config } from '../utils/config.js';
import { writeFileAtomicSync } from '../utils/fs.js';
import { logger } from '../utils/logger.js';
import { createProgress } from '../utils/progress.js';
import { Rng } from '../utils/random.js';
import { loadCalibration } from './calibration.js';
import type { BaseProcessParams } from './base-process.js';
import {
  isPatternType,
  MIN_SPAN_BARS,
  PATTERN_TYPES,
  type PatternLabel,
  type PatternType,
} from './pattern-generator.js';
import {
  aggregateFrames,
  type MultiTimeframeData,
  DEFAULT_RESOLUTION_BARS,
  drawSpanBars,
  generateMultiTimeframeData,
  higherTimeframe,
  PATTERN_TIMEFRAMES,
  timeframeTrend,
  type PatternRequest,
} from './multi-timeframe-sync.js';
import { addIndicatorNoise, lagColumn } from './indicator-engineering.js';
import {
  DATASET_FORMAT,
  DATASET_SPLITS,
  DATASET_VERSION,
  LABEL_COLUMNS,
  LABEL_COUNT as NCOL,
  LABEL_DEFINITIONS,
  LABEL_INDEX as COL,
  type DatasetManifest,
  type DatasetSplit,
} from '../data-processing/dataset-format.js';
import type { ModelInputSpec } from '../data-processing/window-datasets.js';

// ---------------------------------------------------------------------------------------------
// Labels

/** Pattern classes of the dataset: class 0 is "no pattern completes here", class k the k-th type. */
export const PATTERN_CLASSES: readonly string[] = Object.freeze(['none', ...PATTERN_TYPES]);

/** A pattern class name: a pattern type or `none`. */
export type PatternClass = PatternType | 'none';

/** Primary timeframe codes of the label column `timeframe`. */
export const TIMEFRAME_CODES: readonly string[] = Object.freeze(['none', ...PATTERN_TIMEFRAMES]);

/** Action classes of the label column `action` (the trainer's direction classes). */
export const ACTION_CLASSES = ['short', 'flat', 'long'] as const;

const BASE_TF: Timeframe = '15m';
const BASE_MS = TIMEFRAME_MS[BASE_TF];
const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------
// DatasetSettings

/** Relative weights of pattern classes (`none` included); missing types weigh 0. */
export type PatternDistribution = Partial<Record<PatternClass, number>>;

/** Options of `buildSyntheticDataset`. */
export interface BuildDatasetOptions {
  /** Directory to write (created atomically: built beside it, then renamed into place). */
  outDir: string;
  /** Resolved configuration (default: config/default.yaml). */
  config?: Config;
  /** Seed of everything (default: config `seed`). */
  seed?: number;
  /** Include indicator feature families (default: config `dataset.withIndicators`). */
  withIndicators?: boolean;
  /** Base-process parameters (default: config `dataset.calibration`). */
  params?: BaseProcessParams;
  /** Replace `outDir` when it exists (default false: refuse). */
  overwrite?: boolean;
  /** Real 15m candles for sample-level mixing (default: config `dataset.real.file`, if any). */
  real?: Candles | null;
  /** Worker threads generating markets (default: config `dataset.workers`; 1 = in this thread). */
  workers?: number;
  /** Days of the features' warm-up, when already known (default: measured on a probe market). */
  warmupDays?: number;
}

/** Resolved settings of a build (plain data: they are sent to worker threads). */
export interface DatasetSettings {
  /** The config `dataset` section. */
  cfg: Config['dataset'];
  /** Seed of the whole build. */
  seed: number;
  /** Base-process parameters the markets are generated with. */
  params: BaseProcessParams;
  /** Name of the calibration (or the symbol of the given params). */
  calibration: string;
  /** Window length in bars per timeframe (15m, 4h, 1d). */
  windows: Record<Timeframe, number>;
  /** Feature registry settings (indicator families emptied when `withIndicators` is off). */
  featureSpec: FeatureSpec;
  /** Pattern timeframes, in input order. */
  timeframes: Timeframe[];
  /** Relative weight of each pattern type when a pattern is planned. */
  classWeights: Array<[PatternType, number]>;
  /** Relative weight of each primary timeframe when a pattern is planned. */
  tfWeights: Array<[Timeframe, number]>;
  /** Fraction of samples without a pattern (`none`), in [0, 1]. */
  noneShare: number;
  /** Round-trip cost as a fraction (fees and slippage, both legs); the action label's flat band. */
  cost: number;
  /** Embargo after each split start, ms. */
  embargoMs: number;
  /** Days of each market before features are valid (measured on a probe market). */
  warmupDays: number;
  /** Whether indicator feature families are included. */
  withIndicators: boolean;
}

function usage(message: string, hint?: string): never {
  throw new UsageError(message, { hint });
}

/** The feature spec without indicator families (price, volume and candle shape only). */
export function priceOnlyFeatureSpec(spec: FeatureSpec): FeatureSpec {
  return {
    ...spec,
    sma: [],
    ema: [],
    rsi: [],
    macd: [],
    bollinger: [],
    atr: [],
    adx: [],
    stochastic: [],
    williamsR: [],
    cci: [],
    roc: [],
    obv: [],
    mfi: [],
    vwap: [],
    vwapDaily: false,
    donchian: [],
    keltner: [],
    supportResistance: { ...spec.supportResistance, enabled: false },
    cross: { ...spec.cross, rsi: false, supportResistance: false },
  };
}

/**
 * The resolved settings of a build: config `dataset` with the distribution, windows, feature spec,
 * calibration, costs and the features' warm-up measured on a probe market.
 * @throws {UsageError} for bad weights or settings
 */
export function resolveDatasetSettings(
  patternDistribution: PatternDistribution,
  options: Omit<BuildDatasetOptions, 'outDir'>,
): DatasetSettings {
  const s = resolveSettings(patternDistribution, options);
  s.warmupDays = options.warmupDays ?? measureWarmupDays(s);
  return s;
}

function resolveSettings(
  patternDistribution: PatternDistribution,
  options: Omit<BuildDatasetOptions, 'outDir'>,
): DatasetSettings {
  const config = options.config ?? defaultConfig();
  const cfg = config.dataset;
  const seed = options.seed ?? config.seed;
  const timeframes = [...PATTERN_TIMEFRAMES];
  const windows = {} as Record<Timeframe, number>;
  for (const tf of timeframes) {
    const w = config.windows[tf];
    if (w === undefined)
      usage(`windows.${tf} is not set`, 'the dataset cuts windows of 15m, 4h and 1d');
    windows[tf] = w;
  }
  const given = Object.entries(patternDistribution).filter(([, w]) => w !== undefined);
  for (const [k, w] of given) {
    if (k !== 'none' && !isPatternType(k))
      usage(
        `unknown pattern class "${k}" in the pattern distribution`,
        `use none or one of ${PATTERN_TYPES.join(', ')}`,
      );
    if (!(typeof w === 'number' && w >= 0 && Number.isFinite(w)))
      usage(`weight of ${k} must be a number >= 0, got ${String(w)}`);
  }
  let classWeights: Array<[PatternType, number]>;
  let noneShare: number;
  if (given.length > 0) {
    const total = given.reduce((s, [, w]) => s + (w as number), 0);
    if (!(total > 0)) usage('the pattern distribution has no positive weight');
    noneShare = (patternDistribution.none ?? 0) / total;
    classWeights = PATTERN_TYPES.map((t) => [t, patternDistribution[t] ?? 0]);
  } else {
    noneShare = cfg.noneFraction;
    for (const k of Object.keys(cfg.patternWeights))
      if (!isPatternType(k)) usage(`unknown pattern type "${k}" in dataset.patternWeights`);
    classWeights = PATTERN_TYPES.map((t) => [t, cfg.patternWeights[t] ?? 0]);
  }
  if (noneShare < 1 && !classWeights.some(([, w]) => w > 0))
    usage('no pattern type has a positive weight');
  const tfWeights = timeframes.map(
    (tf) => [tf, cfg.timeframeWeights[tf] ?? 0] as [Timeframe, number],
  );
  if (!tfWeights.some(([, w]) => w > 0)) usage('dataset.timeframeWeights has no positive weight');
  const withIndicators = options.withIndicators ?? cfg.withIndicators;
  const featureSpec = withIndicators ? config.features : priceOnlyFeatureSpec(config.features);
  const cost =
    cfg.roundTripCost ??
    2 * (config.broker.takerFeeRate + config.broker.slippage.fixedBps / 10_000);
  const f = cfg.splits;
  if (!(f.train > 0 && f.validation >= 0 && f.test >= 0))
    usage('dataset.splits must be shares >= 0 with train > 0');
  for (const tf of timeframes) {
    const h = cfg.horizonBars[tf] ?? DEFAULT_RESOLUTION_BARS[tf];
    if (!(h > cfg.resolutionDelayBars))
      usage(
        `dataset.horizonBars.${tf} (${h}) must exceed dataset.resolutionDelayBars (${cfg.resolutionDelayBars})`,
        'the resolution, delay included, lands within the label horizon',
      );
  }
  return {
    cfg,
    seed,
    params: options.params ?? loadCalibration(cfg.calibration),
    calibration: options.params === undefined ? cfg.calibration : options.params.symbol,
    windows,
    featureSpec,
    timeframes,
    classWeights,
    tfWeights,
    noneShare,
    cost,
    embargoMs: cfg.embargoHours * 3_600_000,
    warmupDays: 0,
    withIndicators,
  };
}

function pick<T>(weights: ReadonlyArray<[T, number]>, rng: Rng): T {
  let total = 0;
  for (const [, w] of weights) total += w;
  let u = rng.next() * total;
  for (const [v, w] of weights) {
    u -= w;
    if (u < 0 && w > 0) return v;
  }
  const last = weights.filter(([, w]) => w > 0);
  return last[last.length - 1][0];
}

/** Days before features are valid for every window (measured once on a probe market). */
function measureWarmupDays(s: DatasetSettings): number {
  const probeDays = 200;
  const probe = generateMultiTimeframeData({
    patterns: [],
    days: probeDays,
    seed: s.seed,
    params: s.params,
    windows: s.windows,
  });
  const f = buildFeatures(probe.frames, { spec: s.featureSpec, windows: s.windows });
  const days = Math.ceil(((f.firstValidRow + 1) * BASE_MS) / DAY_MS) + 1;
  if (days >= probeDays - 10)
    usage(
      `the feature spec needs ${days} days of warm-up`,
      'shorten the longest 1d periods in `features`',
    );
  return days;
}

// ---------------------------------------------------------------------------------------------
// Adversarial examples and blending with real data

/**
 * Creates adversarial examples in a list of pattern requests: `numAdversarial` of its directional
 * patterns (seeded choice) become look-alikes that complete exactly as the textbook pattern and
 * then resolve the other way (a double top whose neckline break fails and rallies back to the
 * tops; a breakout that falls back into its range). They keep their pattern type and expected
 * direction; their samples are labelled with what actually happened (forward return, action) and
 * `adversarial = 1`.
 * @param baseDataset pattern requests (e.g. those of a generated market)
 * @returns a new list, the chosen requests marked `adversarial`
 * @throws {DataValidationError} when fewer directional patterns than `numAdversarial` exist
 */
export function createAdversarialExamples(
  baseDataset: readonly PatternRequest[],
  numAdversarial: number,
  options: { seed?: number } = {},
): PatternRequest[] {
  const directional = baseDataset
    .map((r, k) => ({ r, k }))
    .filter(({ r }) => r.type !== 'sideways' && !r.adversarial);
  if (!(Number.isInteger(numAdversarial) && numAdversarial >= 0))
    throw new DataValidationError({
      source: 'createAdversarialExamples',
      field: 'numAdversarial',
      reason: `must be a whole number >= 0, got ${numAdversarial}`,
    });
  if (numAdversarial > directional.length)
    throw new DataValidationError({
      source: 'createAdversarialExamples',
      field: 'numAdversarial',
      reason: `${numAdversarial} asked, only ${directional.length} directional patterns`,
    });
  const rng = new Rng(options.seed ?? 0);
  rng.shuffle(directional);
  const chosen = new Set(directional.slice(0, numAdversarial).map(({ k }) => k));
  return baseDataset.map((r, k) => (chosen.has(k) ? { ...r, adversarial: true } : { ...r }));
}

/** A market stitched from real candles and synthetic pattern segments. */
export interface BlendedMarket {
  /** 15m, 4h and 1d candles (4h and 1d exact aggregates of the stitched 15m). */
  frames: Map<Timeframe, Candles>;
  /** Labels of the planted patterns, in the real timeline. */
  labels: PatternLabel[];
  /** Where each part came from, in time order. */
  segments: Array<{ fromMs: number; toMs: number; source: 'real' | 'synthetic' }>;
  /** Per synthetic segment: log-return jump at its two joins, in units of the real 15m return std. */
  joins: Array<{ startJump: number; endJump: number; volatilityRatio: number }>;
}

/** Options of `blendSyntheticWithReal`. */
export interface BlendOptions {
  /** Seed of the synthetic segments and their placement. Default 0. */
  seed?: number;
  /** Base-process parameters of the synthetic segments. Default the `btc` calibration. */
  params?: BaseProcessParams;
  /** Days of each synthetic segment (default 8; a 1d pattern needs about 20). */
  segmentDays?: number;
}

function robustStd(x: ArrayLike<number>): number {
  const v: number[] = [];
  for (let i = 0; i < x.length; i++) if (x[i] === x[i]) v.push(Math.abs(x[i]));
  if (v.length === 0) return NaN;
  v.sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)] * 1.4826;
}

function logReturns(c: Candles, from: number, to: number): Float64Array {
  const out = new Float64Array(Math.max(0, to - from - 1));
  for (let i = from + 1; i < to; i++) out[i - from - 1] = Math.log(c.close[i] / c.close[i - 1]);
  return out;
}

/**
 * Blends synthetic patterns with real candles. Real 15m candles are kept as they are except
 * where synthetic pattern segments replace them: each segment (whole UTC days) is generated with
 * the real close before it as its first open and the real local volatility (robust std of the 15m
 * returns over the 3 days before) as its volatility, its volume rescaled to the real local volume;
 * the real candles after it are rescaled so they continue from its last close (returns unchanged).
 * `blendRatio` is the share of time given to synthetic segments, spread evenly. The patterns are
 * planted in the segments on their primary timeframes. 4h and 1d are aggregated exactly from the
 * stitched 15m. (Sample-level mixing at a ratio is `dataset.real.sampleRatio` of the builder.)
 * @param syntheticData the pattern requests to plant (one per segment, cycled; onsets ignored)
 * @param realData real 15m candles (gaps allowed)
 * @param blendRatio share of time that is synthetic, in [0, 1)
 * @throws {DataValidationError} when the real candles are not 15m or too short for one segment
 */
export function blendSyntheticWithReal(
  syntheticData: readonly PatternRequest[],
  realData: Candles,
  blendRatio = 0.5,
  options: BlendOptions = {},
): BlendedMarket {
  if (realData.timeframe !== BASE_TF)
    throw new DataValidationError({
      source: realData.symbol,
      field: 'timeframe',
      reason: `real data must be 15m, got ${realData.timeframe}`,
    });
  if (!(blendRatio >= 0 && blendRatio < 1))
    throw new DataValidationError({
      source: 'blendSyntheticWithReal',
      field: 'blendRatio',
      reason: `must be in [0, 1), got ${blendRatio}`,
    });
  const segDays = options.segmentDays ?? 8;
  const n = realData.openTime.length;
  const first = Math.ceil(realData.openTime[0] / DAY_MS) * DAY_MS + 4 * DAY_MS;
  const last = realData.openTime[n - 1] - segDays * DAY_MS;
  if (!(last > first) || syntheticData.length === 0)
    throw new DataValidationError({
      source: realData.symbol,
      reason: `too short for a ${segDays}-day synthetic segment after 4 days of context (or no patterns)`,
    });
  const totalDays = Math.floor((last - first) / DAY_MS);
  const count = blendRatio > 0 ? Math.max(1, Math.floor((totalDays * blendRatio) / segDays)) : 0;
  const stride = count > 0 ? Math.floor(totalDays / count) : 0;
  const params = options.params ?? loadCalibration('btc');
  const rng = new Rng(options.seed ?? 0);
  // Output columns (same grid as the real data).
  const cols = {
    openTime: Float64Array.from(realData.openTime),
    open: Float64Array.from(realData.open),
    high: Float64Array.from(realData.high),
    low: Float64Array.from(realData.low),
    close: Float64Array.from(realData.close),
    volume: Float64Array.from(realData.volume),
  };
  const labels: PatternLabel[] = [];
  const segments: BlendedMarket['segments'] = [];
  const joins: BlendedMarket['joins'] = [];
  let scale = 1; // multiplier of real prices after the previous segment
  let cursor = 0; // first row not yet rescaled
  let realFrom = realData.openTime[0];
  for (let s = 0; s < count; s++) {
    const startMs = first + s * stride * DAY_MS;
    const endMs = startMs + segDays * DAY_MS;
    const a = lowerBound(cols.openTime, startMs);
    const b = lowerBound(cols.openTime, endMs);
    // Real rows up to the segment take the running scale.
    for (let i = cursor; i < a; i++) rescaleRow(cols, i, scale);
    const ctx = lowerBound(cols.openTime, startMs - 3 * DAY_MS);
    const realStd = robustStd(logReturns({ ...realData, ...cols } as Candles, ctx, a));
    let vSum = 0;
    for (let i = ctx; i < a; i++) vSum += cols.volume[i];
    const realVolume = a > ctx ? vSum / (a - ctx) : 1;
    const req = syntheticData[s % syntheticData.length];
    // The pattern must fit the segment after half a day of lead-in: its span shrinks if needed.
    const barMs = TIMEFRAME_MS[req.primaryTimeframe];
    const resolution = req.resolutionBars ?? DEFAULT_RESOLUTION_BARS[req.primaryTimeframe] ?? 4;
    const room = Math.floor(((segDays - 0.5) * DAY_MS) / barMs) - resolution - 8;
    if (room < MIN_SPAN_BARS)
      throw new DataValidationError({
        source: 'blendSyntheticWithReal',
        field: 'segmentDays',
        reason: `a ${req.primaryTimeframe} pattern needs more than ${segDays}-day segments`,
      });
    const windowBars = defaultConfig().windows[req.primaryTimeframe] ?? 32;
    const spanBars = Math.min(req.spanBars ?? Math.round(0.8 * windowBars), room);
    const segmentSeed = rng.nextU32();
    const generate = (volatilityScale: number): MultiTimeframeData =>
      generateMultiTimeframeData(
        {
          patterns: [{ ...req, onsetTimeMs: undefined, spanBars, resolutionBars: resolution }],
          days: segDays,
          seed: segmentSeed,
          params,
          startTimeMs: startMs,
          initialPrice: cols.close[a - 1],
          volatilityScale,
          leadDays: 0.5,
          maxShiftBars: 2,
        },
        ['15m'],
      );
    // Match the real local volatility: measure the segment's own, then rescale its shocks.
    const probe = generate(1).frames.get('15m') as Candles;
    const probeStd = robustStd(logReturns(probe, 0, probe.openTime.length));
    const mkt = generate(realStd > 0 && probeStd > 0 ? realStd / probeStd : 1);
    const m15 = mkt.frames.get('15m') as Candles;
    let sv = 0;
    for (let i = 0; i < m15.volume.length; i++) sv += m15.volume[i];
    const vScale = sv > 0 ? realVolume / (sv / m15.volume.length) : 1;
    // Replace real rows in [a, b) by the synthetic bars at the same open times.
    for (let i = a; i < b; i++) {
      const k = Math.round((cols.openTime[i] - startMs) / BASE_MS);
      cols.open[i] = m15.open[k];
      cols.high[i] = m15.high[k];
      cols.low[i] = m15.low[k];
      cols.close[i] = m15.close[k];
      cols.volume[i] = m15.volume[k] * vScale;
    }
    const synthLast = cols.close[b - 1];
    const realPrev = realData.close[b - 1];
    scale = synthLast / realPrev;
    cursor = b;
    segments.push({ fromMs: realFrom, toMs: startMs, source: 'real' });
    segments.push({ fromMs: startMs, toMs: endMs, source: 'synthetic' });
    realFrom = endMs;
    labels.push(...mkt.labels);
    const std = realStd > 0 ? realStd : 1;
    const afterOpen = b < n ? realData.open[b] * scale : synthLast;
    joins.push({
      startJump: Math.log(cols.open[a] / cols.close[a - 1]) / std,
      endJump: Math.log(afterOpen / synthLast) / std,
      volatilityRatio: robustStd(logReturns({ ...realData, ...cols } as Candles, a, b)) / std,
    });
  }
  for (let i = cursor; i < n; i++) rescaleRow(cols, i, scale);
  segments.push({ fromMs: realFrom, toMs: realData.openTime[n - 1] + BASE_MS, source: 'real' });
  const m15 = { symbol: realData.symbol, timeframe: BASE_TF, ...cols } as Candles;
  const frames = new Map<Timeframe, Candles>([
    ['15m', m15],
    ['4h', resample(m15, '4h').candles],
    ['1d', resample(m15, '1d').candles],
  ]);
  return { frames, labels, segments, joins };
}

function rescaleRow(
  c: { open: Float64Array; high: Float64Array; low: Float64Array; close: Float64Array },
  i: number,
  k: number,
): void {
  if (k === 1) return;
  c.open[i] *= k;
  c.high[i] *= k;
  c.low[i] *= k;
  c.close[i] *= k;
}

// ---------------------------------------------------------------------------------------------
// Cutting samples

/** Samples cut from one market, before they are routed to shards. */
interface SampleBlock {
  count: number;
  /** Windows per timeframe (spec order), `count` rows of T x F floats each. */
  windows: Float32Array[];
  labels: Float64Array;
  split: Int8Array;
  purged: number;
}

/**
 * The model inputs of samples: windows of every timeframe ending at the given base rows, cut with
 * `copyWindow` from the features (the same cut the env makes). Into `out` at `offset` samples.
 */
function cutWindows(
  features: MultiTimeframeFeatures,
  timeframes: readonly Timeframe[],
  windows: Record<Timeframe, number>,
  row: number,
  out: Float32Array[],
  sample: number,
): void {
  timeframes.forEach((tf, j) => {
    const cols = (features.perTimeframe.get(tf) as FeatureMatrix).cols;
    const size = windows[tf] * cols;
    copyWindow(features, tf, row, windows[tf], out[j], sample * size);
  });
}

/**
 * The dataset's inputs and causal labels as look-ahead matrices (one row per decision time, the
 * row's time being the decision time): per timeframe the flattened window, and `labels` with the
 * higher-timeframe trend. Computed by the same code path as the builder (`buildFeatures`, then
 * `copyWindow`), so `checkLookAhead` can verify that no input or pattern label uses a candle after
 * its decision time. Decision times without a base row in `candles` are skipped.
 */
export function datasetInputMatrices(
  candles: ReadonlyMap<Timeframe, Candles>,
  decisionTimesMs: readonly number[],
  options: { spec?: FeatureSpec; windows?: Partial<Record<Timeframe, number>> } = {},
): Map<string, LookAheadMatrix> {
  const config = defaultConfig();
  const windows = { ...config.windows, ...options.windows } as Record<Timeframe, number>;
  const features = buildFeatures(candles, { spec: options.spec ?? config.features, windows });
  const base = candles.get(BASE_TF) as Candles;
  const rows: number[] = [];
  const times: number[] = [];
  for (const t of decisionTimesMs) {
    const r = lowerBound(base.openTime, t - BASE_MS);
    if (r < base.openTime.length && base.openTime[r] + BASE_MS === t) {
      rows.push(r);
      times.push(t);
    }
  }
  const out = new Map<string, LookAheadMatrix>();
  const tfs = PATTERN_TIMEFRAMES.filter((tf) => features.perTimeframe.has(tf));
  const bufs = tfs.map(
    (tf) =>
      new Float32Array(
        rows.length * windows[tf] * (features.perTimeframe.get(tf) as FeatureMatrix).cols,
      ),
  );
  rows.forEach((r, k) => cutWindows(features, tfs, windows, r, bufs, k));
  tfs.forEach((tf, j) => {
    const cols = windows[tf] * (features.perTimeframe.get(tf) as FeatureMatrix).cols;
    out.set(`window.${tf}`, {
      names: Array.from({ length: cols }, (_, i) => `${tf}[${i}]`),
      time: Float64Array.from(times),
      values: bufs[j],
      rows: rows.length,
      cols,
    });
  });
  const htf = new Float64Array(rows.length * 2);
  times.forEach((t, k) => {
    const h4 = candles.get('4h');
    const d1 = candles.get('1d');
    htf[2 * k] = h4 === undefined ? NaN : timeframeTrend(h4, t);
    htf[2 * k + 1] = d1 === undefined ? NaN : timeframeTrend(d1, t);
  });
  out.set('labels', {
    names: ['htfTrend.4h', 'htfTrend.1d'],
    time: Float64Array.from(times),
    values: htf,
    rows: rows.length,
    cols: 2,
  });
  return out;
}

/** Columns an augmentation may touch: names of indicator-derived features. */
const INDICATOR_FEATURE =
  /^(x\.)?(close_sma|close_ema|rsi|macd|bb_|atr|adx|di_|stoch|willr|cci|roc|obv|mfi|vwap|donchian|keltner)/;
const LAGGING_FEATURE =
  /^(x\.)?(close_sma|close_ema|macd|bb_|atr|adx|di_|obv|vwap|donchian|keltner)/;

/** Features with augmented indicator columns (lagged or noised copies), for dataset samples only. */
function augmentedFeatures(
  features: MultiTimeframeFeatures,
  kind: 'lag' | 'noise',
  cfg: Config['dataset']['augment'],
  seed: number,
): MultiTimeframeFeatures {
  const perTimeframe = new Map<Timeframe, FeatureMatrix>();
  for (const [tf, m] of features.perTimeframe) {
    const values = Float32Array.from(m.values);
    const pattern = kind === 'lag' ? LAGGING_FEATURE : INDICATOR_FEATURE;
    const cols = m.names.map((name, j) => ({ name, j })).filter(({ name }) => pattern.test(name));
    const set: Record<string, Float64Array> = {};
    for (const { name, j } of cols) {
      const col = new Float64Array(m.rows);
      for (let r = 0; r < m.rows; r++) col[r] = m.values[r * m.cols + j];
      set[name] = col;
    }
    const changed =
      kind === 'lag'
        ? Object.fromEntries(Object.entries(set).map(([k, v]) => [k, lagColumn(v, cfg.lagBars)]))
        : addIndicatorNoise(set, cfg.noiseLevel, { seed: seed + tf.length }).indicators;
    for (const { name, j } of cols) {
      const col = changed[name];
      for (let r = 0; r < m.rows; r++) values[r * m.cols + j] = col[r];
    }
    perTimeframe.set(tf, { ...m, values });
  }
  return { ...features, perTimeframe };
}

interface Decision {
  row: number;
  label: PatternLabel | null;
  series: number;
}

/** Which split a decision time falls in (by shares of [fromMs, toMs)), or -1 when purged. */
function splitOf(t: number, horizonMs: number, bounds: number[], embargoMs: number): number {
  for (let s = 0; s < 3; s++) {
    const from = bounds[s];
    const to = bounds[s + 1];
    if (t < from || t >= to) continue;
    if (s > 0 && t < from + embargoMs) return -1;
    if (t + horizonMs > to) return -1;
    return s;
  }
  return -1;
}

/** Samples of one generated market, with the feature names of its windows. */
export interface SeriesBlock extends SampleBlock {
  /** Market index. */
  series: number;
  /** Feature names of the windows, per timeframe, in column order. */
  featureNames: Record<string, string[]>;
}

/** `none` samples per market when the distribution asks for nothing else. */
const NONE_ONLY_PER_SERIES = 200;

/** Open time of the first bar of every generated market of a dataset (UTC). */
export const SERIES_START_MS = Date.UTC(2024, 0, 1);

/**
 * Market `k` of a dataset: patterns planned back to back after the warm-up (types, timeframes,
 * spans and gaps drawn from the settings), a share turned adversarial (`createAdversarialExamples`
 * at `dataset.adversarialFraction`), planted and aggregated by `generateMultiTimeframeData`, where
 * the higher timeframes' confluence at each 15m or 4h pattern's onset moves that draw toward
 * success or failure (`dataset.htfInfluence`, see `htfOutcomeRule`), and each resolution starts
 * `dataset.resolutionDelayBars` primary bars after completion. A pure function of the settings
 * and k: the dataset's samples of market k are cut from exactly this market.
 */
export function seriesMarket(k: number, s: DatasetSettings): MultiTimeframeData {
  const cfg = s.cfg;
  const rng = new Rng(s.seed).fork(`series-${k}`);
  const days = cfg.seriesDays;
  const endMs = SERIES_START_MS + days * DAY_MS;
  // Plan the patterns back to back (with gaps that leave room for the visibility search).
  const requests: PatternRequest[] = [];
  let cursor = SERIES_START_MS + s.warmupDays * DAY_MS;
  const tail =
    2 * DAY_MS +
    Math.max(...s.timeframes.map((tf) => (cfg.horizonBars[tf] ?? 1) * 1.4 * TIMEFRAME_MS[tf]));
  for (;;) {
    const type = pick(s.classWeights, rng);
    const tf = pick(s.tfWeights, rng);
    const barMs = TIMEFRAME_MS[tf];
    const span = drawSpanBars(tf, s.windows, rng);
    const horizon = cfg.horizonBars[tf] ?? DEFAULT_RESOLUTION_BARS[tf];
    // The resolution starts after the delay and lands within the horizon of every decision (all
    // inside the delay), so the forward label sees the move completed.
    const delay = cfg.resolutionDelayBars;
    const resolution = delay + Math.max(1, Math.round((horizon - delay) * rng.uniform(0.6, 1)));
    const slack = Math.ceil(cfg.visibilityShift * span);
    const gap = slack + 1 + rng.int(slack + 3);
    const onset = Math.ceil((cursor + gap * barMs) / barMs) * barMs;
    const end = onset + (span + resolution + slack) * barMs;
    if (end + tail > endMs) break;
    requests.push({
      type,
      primaryTimeframe: tf,
      onsetTimeMs: onset,
      spanBars: span,
      resolutionBars: resolution,
      delayBars: delay,
      noiseLevel: cfg.noiseLevel,
      amplitudeScale: cfg.amplitudeScale,
    });
    cursor = end;
  }
  const directional = requests.filter((r) => r.type !== 'sideways').length;
  const planned = createAdversarialExamples(
    requests,
    Math.round(cfg.adversarialFraction * directional),
    { seed: rng.nextU32() },
  );
  return generateMultiTimeframeData({
    patterns: planned,
    days,
    seed: rng.nextU32(),
    params: s.params,
    startTimeMs: SERIES_START_MS,
    windows: s.windows,
    maxShiftBars: 0,
    maxShiftFraction: cfg.visibilityShift,
    maxAmplitudeScale: cfg.maxAmplitudeScale,
    htfInfluence: cfg.htfInfluence,
  });
}

/** Generates market `k` and cuts its samples (a pure function of the settings and k). */
export function seriesSamples(k: number, s: DatasetSettings): SeriesBlock {
  const cfg = s.cfg;
  const rng = new Rng(s.seed).fork(`samples-${k}`);
  const startMs = SERIES_START_MS;
  const endMs = startMs + cfg.seriesDays * DAY_MS;
  const usableFrom = startMs + s.warmupDays * DAY_MS;
  const data = seriesMarket(k, s);
  const features = buildFeatures(data.frames, { spec: s.featureSpec, windows: s.windows });
  const base = data.frames.get(BASE_TF) as Candles;
  const n = base.openTime.length;
  const first = Math.max(features.firstValidRow, Math.ceil((usableFrom - startMs) / BASE_MS));
  // Decisions: the completion bar's close of each pattern, plus later rows in its next primary bar.
  const decisions: Decision[] = [];
  const busy: Array<[number, number]> = [];
  for (const label of data.labels) {
    const tf = label.primaryTimeframe;
    const barRows = TIMEFRAME_MS[tf] / BASE_MS;
    const row0 = Math.round((label.completionTimeMs - BASE_MS - startMs) / BASE_MS);
    busy.push([row0, row0 + barRows - 1]);
    if (row0 < first || row0 >= n) continue;
    const rows = new Set<number>([row0]);
    const want = Math.min(cfg.decisionsPerPattern[tf] ?? 1, barRows);
    while (rows.size < want) rows.add(row0 + rng.int(barRows));
    for (const row of [...rows].sort((a, b) => a - b)) decisions.push({ row, label, series: k });
  }
  const noneCount =
    s.noneShare >= 1
      ? NONE_ONLY_PER_SERIES
      : Math.round((decisions.length * s.noneShare) / (1 - s.noneShare));
  busy.sort((a, b) => a[0] - b[0]);
  const isBusy = (row: number): boolean => busy.some(([a, b]) => row >= a && row <= b);
  const maxH =
    Math.max(...Object.values(cfg.horizonBars).map((h) => h as number)) * (DAY_MS / BASE_MS);
  for (let tries = 0, got = 0; got < noneCount && tries < noneCount * 20; tries++) {
    const row = first + rng.int(Math.max(1, n - first - Math.min(maxH, n - first - 1)));
    if (isBusy(row)) continue;
    decisions.push({ row, label: null, series: k });
    got++;
  }
  decisions.sort((a, b) => a.row - b.row);
  // Splits: shares of the usable span, in time order.
  const f = cfg.splits;
  const total = f.train + f.validation + f.test;
  const span = endMs - usableFrom;
  const bounds = [
    usableFrom,
    usableFrom + (span * f.train) / total,
    usableFrom + (span * (f.train + f.validation)) / total,
    endMs,
  ];
  const aug = cfg.augment;
  const lagged = aug.lagFraction > 0 ? augmentedFeatures(features, 'lag', aug, s.seed + k) : null;
  const noisy =
    aug.noiseFraction > 0 ? augmentedFeatures(features, 'noise', aug, s.seed + k) : null;
  const sizes = s.timeframes.map(
    (tf) => s.windows[tf] * (features.perTimeframe.get(tf) as FeatureMatrix).cols,
  );
  const windows = sizes.map((z) => new Float32Array(z * decisions.length));
  const labels = new Float64Array(NCOL * decisions.length).fill(NaN);
  const split = new Int8Array(decisions.length);
  let count = 0;
  let purged = 0;
  const h4 = data.frames.get('4h') as Candles;
  const d1 = data.frames.get('1d') as Candles;
  for (const d of decisions) {
    const label = d.label;
    const tf = label?.primaryTimeframe ?? BASE_TF;
    const hBars = (cfg.horizonBars[tf] ?? 1) * (TIMEFRAME_MS[tf] / BASE_MS);
    const decisionMs = base.openTime[d.row] + BASE_MS;
    const sp = splitOf(decisionMs, hBars * BASE_MS, bounds, s.embargoMs);
    if (sp < 0 || d.row + hBars >= n) {
      purged++;
      continue;
    }
    const lagBars = lagged !== null && rng.next() < aug.lagFraction ? aug.lagBars : 0;
    const noised = noisy !== null && rng.next() < aug.noiseFraction;
    const src =
      lagBars > 0
        ? (lagged as MultiTimeframeFeatures)
        : noised
          ? (noisy as MultiTimeframeFeatures)
          : features;
    cutWindows(src, s.timeframes, s.windows, d.row, windows, count);
    const fwd = Math.log(base.close[d.row + hBars] / base.close[d.row]);
    const o = count * NCOL;
    labels[o + COL.pattern] = label === null ? 0 : PATTERN_CLASSES.indexOf(label.type);
    labels[o + COL.timeframe] =
      label === null ? 0 : TIMEFRAME_CODES.indexOf(label.primaryTimeframe);
    labels[o + COL.onsetTimeMs] = label?.onsetTimeMs ?? NaN;
    labels[o + COL.completionTimeMs] = label?.completionTimeMs ?? NaN;
    labels[o + COL.decisionTimeMs] = decisionMs;
    labels[o + COL.expectedDirection] = label?.expectedDirection ?? 0;
    labels[o + COL.horizonBars] = hBars;
    labels[o + COL.forwardReturn] = fwd;
    labels[o + COL.action] = fwd > s.cost ? 2 : fwd < -s.cost ? 0 : 1;
    labels[o + COL.adversarial] = label?.adversarial === true ? 1 : 0;
    labels[o + COL.htfAlignment] = label?.htfAlignment ?? NaN;
    labels[o + COL.series] = k;
    labels[o + COL.heightAtr] = label?.heightAtr ?? NaN;
    const htf = higherTimeframe(tf);
    labels[o + COL.htfTrend] =
      htf === null ? NaN : timeframeTrend(htf === '4h' ? h4 : d1, decisionMs);
    labels[o + COL.lagBars] = lagBars;
    labels[o + COL.indicatorNoise] = noised && lagBars === 0 ? 1 : 0;
    labels[o + COL.source] = 0;
    split[count] = sp;
    count++;
  }
  const featureNames = Object.fromEntries(
    s.timeframes.map((tf) => [tf, [...(features.perTimeframe.get(tf) as FeatureMatrix).names]]),
  );
  return { series: k, count, windows, labels, split, purged, featureNames };
}

/** Real samples: windows of real candles at random rows, split by the configured date ranges. */
function realSamples(
  real: Candles,
  count: number,
  s: DatasetSettings,
  config: Config,
): SampleBlock & { ranges: Record<DatasetSplit, { fromMs: number; toMs: number }> } {
  const { candles: m15 } = repairCandles(real);
  const frames = aggregateFrames(m15, ['15m', '4h', '1d']);
  frames.set('15m', m15);
  const features = buildFeatures(frames, { spec: s.featureSpec, windows: s.windows });
  const n = m15.openTime.length;
  const hBars = s.cfg.horizonBars[BASE_TF] ?? 16;
  const ranges = {
    train: rangeMs(config.splits.train),
    validation: rangeMs(config.splits.validation),
    test: rangeMs(config.splits.test),
  };
  const rng = new Rng(s.seed).fork('real');
  const sizes = s.timeframes.map(
    (tf) => s.windows[tf] * (features.perTimeframe.get(tf) as FeatureMatrix).cols,
  );
  const windows = sizes.map((z) => new Float32Array(z * count));
  const labels = new Float64Array(NCOL * count).fill(NaN);
  const split = new Int8Array(count);
  const rows: number[] = [];
  for (let tries = 0; rows.length < count && tries < count * 50; tries++) {
    const row = features.firstValidRow + rng.int(Math.max(1, n - hBars - features.firstValidRow));
    const t = m15.openTime[row] + BASE_MS;
    // The label's end must be the bar hBars later (no gap inside the horizon) in the same split.
    if (m15.openTime[row + hBars] !== m15.openTime[row] + hBars * BASE_MS) continue;
    const sp = DATASET_SPLITS.findIndex((name) => {
      const r = ranges[name];
      return t >= r.fromMs + (name === 'train' ? 0 : s.embargoMs) && t + hBars * BASE_MS <= r.toMs;
    });
    if (sp < 0) continue;
    rows.push(row);
    split[rows.length - 1] = sp;
  }
  if (rows.length === 0) {
    const iso = (ms: number | undefined): string =>
      ms === undefined ? 'none' : new Date(ms).toISOString().slice(0, 16);
    throw new DataValidationError(
      {
        source: s.cfg.real.file ?? 'real candles',
        reason: `no real sample fits: ${n} 15m candles (${iso(m15.openTime[0])} to ${iso(m15.openTime[n - 1])}) need ${features.firstValidRow < n ? features.firstValidRow : 'more than ' + n} rows of feature warm-up, then ${hBars} gap-free bars per label inside a split (splits.train/validation/test)`,
      },
      { hint: 'give a longer 15m file inside the configured splits, or --real-ratio 0' },
    );
  }
  rows.forEach((row, k) => {
    cutWindows(features, s.timeframes, s.windows, row, windows, k);
    const t = m15.openTime[row] + BASE_MS;
    const fwd = Math.log(m15.close[row + hBars] / m15.close[row]);
    const o = k * NCOL;
    labels[o + COL.pattern] = -1;
    labels[o + COL.timeframe] = 0;
    labels[o + COL.decisionTimeMs] = t;
    labels[o + COL.expectedDirection] = 0;
    labels[o + COL.horizonBars] = hBars;
    labels[o + COL.forwardReturn] = fwd;
    labels[o + COL.action] = fwd > s.cost ? 2 : fwd < -s.cost ? 0 : 1;
    labels[o + COL.adversarial] = 0;
    labels[o + COL.series] = -1;
    labels[o + COL.htfTrend] = timeframeTrend(frames.get('4h') as Candles, t);
    labels[o + COL.lagBars] = 0;
    labels[o + COL.indicatorNoise] = 0;
    labels[o + COL.source] = 1;
  });
  return {
    count: rows.length,
    windows,
    labels,
    split: split.subarray(0, rows.length),
    purged: count - rows.length,
    ranges,
  };
}

// ---------------------------------------------------------------------------------------------
// Writing

class ShardWriter {
  readonly shards: Array<{ name: string; samples: number }> = [];
  private readonly buffers: Float32Array[];
  private readonly labels: Float64Array;
  private used = 0;

  constructor(
    private readonly dir: string,
    private readonly split: DatasetSplit,
    private readonly sizes: number[],
    private readonly timeframes: readonly Timeframe[],
    private readonly capacity: number,
  ) {
    this.buffers = sizes.map((z) => new Float32Array(z * capacity));
    this.labels = new Float64Array(NCOL * capacity);
  }

  add(block: SampleBlock, k: number): void {
    this.sizes.forEach((z, j) =>
      this.buffers[j].set(block.windows[j].subarray(k * z, (k + 1) * z), this.used * z),
    );
    this.labels.set(block.labels.subarray(k * NCOL, (k + 1) * NCOL), this.used * NCOL);
    this.used++;
    if (this.used === this.capacity) this.flush();
  }

  flush(): void {
    if (this.used === 0) return;
    const name = `${this.split}-${String(this.shards.length).padStart(5, '0')}`;
    this.timeframes.forEach((tf, j) => {
      const data = this.buffers[j].subarray(0, this.used * this.sizes[j]);
      writeFileAtomicSync(
        join(this.dir, `${name}.${tf}.f32`),
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      );
    });
    const lab = this.labels.subarray(0, this.used * NCOL);
    writeFileAtomicSync(
      join(this.dir, `${name}.labels.f64`),
      new Uint8Array(lab.buffer, lab.byteOffset, lab.byteLength),
    );
    this.shards.push({ name, samples: this.used });
    this.used = 0;
  }
}

/** Running mean and variance per column of the training windows (the normaliser's statistics). */
class ColumnStats {
  readonly sum: Float64Array;
  readonly sumSq: Float64Array;
  count = 0;
  constructor(readonly cols: number) {
    this.sum = new Float64Array(cols);
    this.sumSq = new Float64Array(cols);
  }
  addWindow(w: Float32Array, offset: number, rows: number): void {
    for (let r = 0; r < rows; r++) {
      const o = offset + r * this.cols;
      for (let j = 0; j < this.cols; j++) {
        const v = w[o + j];
        this.sum[j] += v;
        this.sumSq[j] += v * v;
      }
    }
    this.count += rows;
  }
}

/**
 * Worker threads generating markets in parallel. Market k is a pure function of the settings and
 * k, so the dataset is the same whatever the number of workers; blocks are handed out in order.
 */
class SeriesPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting = new Map<
    number,
    { resolve: (b: SeriesBlock) => void; reject: (e: unknown) => void }
  >();
  private readonly done = new Map<number, SeriesBlock>();
  private readonly failed = new Map<number, unknown>();
  private next = 0;
  private closed = false;
  private broken: unknown = null;

  constructor(size: number, settings: DatasetSettings) {
    // From the TypeScript sources (tests, tsx) the worker registers tsx's loader first.
    const ts = import.meta.url.endsWith('.ts');
    const file = new URL(ts ? './dataset-worker.ts' : './dataset-worker.js', import.meta.url);
    const boot = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(file.href)}); });`;
    for (let i = 0; i < size; i++) {
      const w = ts
        ? new Worker(boot, { eval: true, workerData: settings })
        : new Worker(file, { workerData: settings });
      w.on('message', (msg: { k: number; block?: SeriesBlock; error?: string }) => {
        if (msg.block !== undefined) this.settle(msg.k, msg.block, undefined);
        else this.settle(msg.k, undefined, new Error(msg.error ?? 'dataset worker failed'));
        this.idle.push(w);
        this.pump();
      });
      w.on('error', (err) => this.fail(err));
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private settle(k: number, block: SeriesBlock | undefined, err: unknown): void {
    const waiter = this.waiting.get(k);
    if (waiter !== undefined) {
      this.waiting.delete(k);
      if (block !== undefined) waiter.resolve(block);
      else waiter.reject(err);
    } else if (block !== undefined) this.done.set(k, block);
    else this.failed.set(k, err);
  }

  private fail(err: unknown): void {
    this.broken = err;
    for (const [, w] of this.waiting) w.reject(err);
    this.waiting.clear();
  }

  /** Keeps every idle worker busy with the next market, up to a few ahead of the reader. */
  private pump(): void {
    while (!this.closed && this.idle.length > 0 && this.done.size < 2 * this.workers.length) {
      const w = this.idle.pop() as Worker;
      w.postMessage({ k: this.next++ });
    }
  }

  /** Market k's block; markets must be asked for in order 0, 1, 2, ... */
  get(k: number): Promise<SeriesBlock> {
    if (this.broken !== null) return Promise.reject(this.broken);
    const ready = this.done.get(k);
    const failed = this.failed.get(k);
    let p: Promise<SeriesBlock>;
    if (ready !== undefined) {
      this.done.delete(k);
      p = Promise.resolve(ready);
    } else if (failed !== undefined) p = Promise.reject(failed);
    else
      p = new Promise<SeriesBlock>((resolve, reject) => this.waiting.set(k, { resolve, reject }));
    this.pump();
    return p;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Builds a labelled synthetic dataset and writes it to `options.outDir`: long multi-timeframe
 * markets (config `dataset.seriesDays` each) are generated with patterns planted back to back at
 * random times (types by `patternDistribution`, primary timeframes by `dataset.timeframeWeights`,
 * a share of them adversarial look-alikes), features are computed once per market with the one
 * feature registry, and samples are cut at decision times: each pattern's completion (plus later
 * rows while its primary window is unchanged) and random times where nothing completes (`none`).
 * Labels: pattern type, primary timeframe, onset and completion times, expected direction,
 * realised forward return over the configured horizon and the action it implies after round-trip
 * costs. Splits by time inside every market (purge: no label crosses its split's end; embargo after
 * each split start). Written as `manifest.json`, binary shards (`<split>-<n>.<tf>.f32`, float32
 * windows [samples, bars, features]; `<split>-<n>.labels.f64`, float64 [samples, LABEL_COLUMNS])
 * and `normalizer.json` (fitted on the training windows), built in a sibling directory and renamed
 * into place so a reader never sees half a dataset. Deterministic for a seed.
 * @param numSamples samples to write (about; purged samples are replaced by further markets)
 * @param patternDistribution relative weights of pattern classes including `none`; empty: config
 * @throws {UsageError} for bad settings or an existing `outDir` without `overwrite`
 * @example await buildSyntheticDataset(20_000, {}, { outDir: 'data/ds' });
 */
export async function buildSyntheticDataset(
  numSamples: number,
  patternDistribution: PatternDistribution,
  options: BuildDatasetOptions,
): Promise<DatasetManifest> {
  const started = Date.now();
  if (!(Number.isInteger(numSamples) && numSamples > 0))
    usage(`numSamples must be a whole number > 0, got ${numSamples}`);
  const config = options.config ?? defaultConfig();
  const s = resolveDatasetSettings(patternDistribution, { ...options, config });
  const outDir = resolve(options.outDir);
  if (existsSync(outDir) && options.overwrite !== true)
    usage(`${outDir} exists`, 'choose another --out or pass --force to replace it');
  const tmp = join(dirname(outDir), `.${outDir.split('/').pop()}.partial-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const real =
    options.real ??
    (s.cfg.real.file !== null && s.cfg.real.sampleRatio > 0
      ? (await readCandlesCsv(s.cfg.real.file, { symbol: s.cfg.real.symbol, timeframe: BASE_TF }))
          .candles
      : null);
  const realRatio = real !== null ? s.cfg.real.sampleRatio : 0;
  const progress = createProgress('dataset', numSamples, { unit: 'samples' });
  const counts: DatasetManifest['counts'] = {
    byPattern: Object.fromEntries(PATTERN_CLASSES.map((c) => [c, 0])),
    byTimeframe: Object.fromEntries(TIMEFRAME_CODES.map((c) => [c, 0])),
    byAction: Object.fromEntries(ACTION_CLASSES.map((c) => [c, 0])),
    adversarial: 0,
    real: 0,
    bySplitPattern: { train: {}, validation: {}, test: {} },
  };
  const splitCounts: Record<DatasetSplit, number> = { train: 0, validation: 0, test: 0 };
  let writers: ShardWriter[] | null = null;
  let stats: ColumnStats[] | null = null;
  let featureNames: Record<string, readonly string[]> = {};
  let purged = 0;
  let written = 0;
  let series = 0;
  let realRanges: DatasetManifest['splits']['realRanges'];
  const route = (block: SampleBlock, take: number): void => {
    for (let k = 0; k < take; k++) {
      const sp = DATASET_SPLITS[block.split[k]];
      (writers as ShardWriter[])[block.split[k]].add(block, k);
      splitCounts[sp]++;
      const o = k * NCOL;
      const pc = block.labels[o + COL.pattern];
      const cls = pc < 0 ? 'unknown' : PATTERN_CLASSES[pc];
      if (pc >= 0) counts.byPattern[cls]++;
      counts.byTimeframe[TIMEFRAME_CODES[block.labels[o + COL.timeframe]]]++;
      counts.byAction[ACTION_CLASSES[block.labels[o + COL.action]]]++;
      counts.adversarial += block.labels[o + COL.adversarial];
      counts.real += block.labels[o + COL.source];
      counts.bySplitPattern[sp][cls] = (counts.bySplitPattern[sp][cls] ?? 0) + 1;
      if (sp === 'train')
        s.timeframes.forEach((tf, j) => {
          const z = s.windows[tf] * (stats as ColumnStats[])[j].cols;
          (stats as ColumnStats[])[j].addWindow(block.windows[j], k * z, s.windows[tf]);
        });
    }
    written += take;
    progress.tick(take);
  };
  const workerCount = options.workers ?? s.cfg.workers ?? Math.min(4, availableParallelism());
  const source = workerCount > 1 ? new SeriesPool(workerCount, s) : null;
  try {
    const realTarget = Math.round(numSamples * realRatio);
    const synthTarget = numSamples - realTarget;
    let synthWritten = 0;
    while (synthWritten < synthTarget) {
      const block = source !== null ? await source.get(series) : seriesSamples(series, s);
      if (writers === null) {
        featureNames = block.featureNames;
        const sizes = s.timeframes.map((tf) => s.windows[tf] * featureNames[tf].length);
        writers = DATASET_SPLITS.map(
          (sp) => new ShardWriter(tmp, sp, sizes, s.timeframes, s.cfg.shardSize),
        );
        stats = s.timeframes.map((tf) => new ColumnStats(featureNames[tf].length));
      }
      purged += block.purged;
      const take = Math.min(block.count, synthTarget - synthWritten);
      route(block, take);
      synthWritten += take;
      series++;
      if (synthWritten === 0 && series >= 4)
        usage('the generated markets yield no samples', 'increase dataset.seriesDays');
    }
    if (realTarget > 0 && real !== null) {
      if (writers === null) usage('a dataset needs synthetic samples besides the real ones');
      const block = realSamples(real, realTarget, s, config);
      purged += block.purged;
      realRanges = block.ranges;
      route(block, block.count);
    }
    for (const w of writers as ShardWriter[]) w.flush();
  } catch (err) {
    progress.stop();
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    await source?.close();
  }
  progress.stop();
  const spec: ModelInputSpec = {
    timeframes: s.timeframes,
    windows: { ...s.windows },
    features: featureNames,
  };
  const normalizer = normalizerFromStats(stats as ColumnStats[], s, featureNames);
  writeFileAtomicSync(join(tmp, 'normalizer.json'), JSON.stringify(normalizer, null, 2) + '\n');
  const manifest: DatasetManifest = {
    format: DATASET_FORMAT,
    version: DATASET_VERSION,
    createdAt: new Date().toISOString(),
    seed: s.seed,
    samples: written,
    spec,
    featureSpec: s.featureSpec,
    patternClasses: PATTERN_CLASSES,
    timeframeCodes: TIMEFRAME_CODES,
    actionClasses: ACTION_CLASSES,
    labels: {
      columns: LABEL_COLUMNS,
      definitions: LABEL_DEFINITIONS,
      roundTripCost: s.cost,
      horizonBars: s.cfg.horizonBars,
    },
    splits: {
      method:
        'by time inside every generated market: shares of its span after the warm-up, in order train, validation, test; purge: a sample whose forward horizon crosses its split end is dropped; embargo: samples decided within embargoMs after a split start are dropped',
      fractions: s.cfg.splits,
      embargoMs: s.embargoMs,
      counts: splitCounts,
      purged,
      ...(realRanges === undefined ? {} : { realRanges }),
    },
    counts,
    shards: {
      train: (writers as ShardWriter[])[0].shards,
      validation: (writers as ShardWriter[])[1].shards,
      test: (writers as ShardWriter[])[2].shards,
    },
    normalizer: 'normalizer.json',
    generator: {
      calibration: s.calibration,
      seriesDays: s.cfg.seriesDays,
      series,
      warmupDays: s.warmupDays,
      decisionsPerPattern: s.cfg.decisionsPerPattern,
      adversarialFraction: s.cfg.adversarialFraction,
      htfInfluence: s.cfg.htfInfluence,
      resolutionDelayBars: s.cfg.resolutionDelayBars,
      noneFraction: s.noneShare,
      patternWeights: Object.fromEntries(s.classWeights),
      timeframeWeights: s.cfg.timeframeWeights,
      amplitudeScale: s.cfg.amplitudeScale,
      visibilityShift: s.cfg.visibilityShift,
      maxAmplitudeScale: s.cfg.maxAmplitudeScale,
      noiseLevel: s.cfg.noiseLevel,
      withIndicators: s.withIndicators,
      augment: s.cfg.augment,
      realSampleRatio: realRatio,
      elapsedMs: Date.now() - started,
    },
  };
  writeFileAtomicSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  if (existsSync(outDir)) rmSync(outDir, { recursive: true, force: true });
  renameSync(tmp, outDir);
  logger.info(
    { outDir, samples: written, series, purged, seconds: (Date.now() - started) / 1000 },
    'dataset written',
  );
  return manifest;
}

function normalizerFromStats(
  stats: ColumnStats[],
  s: DatasetSettings,
  names: Record<string, readonly string[]>,
): NormalizerJson {
  // The training share of every market's usable span (all markets share one calendar).
  const f = s.cfg.splits;
  const fromMs = SERIES_START_MS + s.warmupDays * DAY_MS;
  const span = s.cfg.seriesDays * DAY_MS - s.warmupDays * DAY_MS;
  const toMs = fromMs + (span * f.train) / (f.train + f.validation + f.test);
  const timeframes: NormalizerJson['timeframes'] = {};
  s.timeframes.forEach((tf, j) => {
    const st = stats[j];
    const center: number[] = [];
    const scale: number[] = [];
    for (let c = 0; c < st.cols; c++) {
      const mean = st.count > 0 ? st.sum[c] / st.count : 0;
      const v = st.count > 0 ? st.sumSq[c] / st.count - mean * mean : 1;
      const sd = Math.sqrt(Math.max(0, v));
      center.push(mean);
      scale.push(sd > 0 && Number.isFinite(sd) ? sd : 1);
    }
    timeframes[tf] = { names: [...names[tf]], center, scale, rows: st.count };
  });
  return {
    format: 'ctm-normalizer',
    version: 1,
    method: 'zscore',
    clip: null,
    fit: {
      fromMs,
      toMs,
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
    },
    featureSpec: s.featureSpec,
    timeframes,
  };
}
