// The fitted feature normaliser: statistics fitted on the rows of a training date range only,
// saved as JSON next to the model that uses them, and applied unchanged everywhere else (validation,
// test, backtests, the env, live). It refuses features built with another spec or other columns,
// naming the mismatch. It never refits itself and never looks at rows outside its fit range.

import { readFile } from 'node:fs/promises';
import { CheckpointError, DataValidationError } from '../errors.js';
import { writeJsonAtomic } from '../utils/fs.js';
import type { Timeframe } from './candles.js';
import type { FeatureMatrix, MultiTimeframeFeatures } from './feature-engineering.js';

/** How a column is centred and scaled: mean/std, or median/(IQR / 1.349). */
export type NormalizationMethod = 'zscore' | 'robust';

/** Options of `fitNormalizer`. */
export interface FitNormalizerOptions {
  /** Fit range `[fromMs, toMs)` on decision times (UTC ms): the training split. */
  fromMs: number;
  /** Exclusive end of the fit range (UTC ms, decision time). */
  toMs: number;
  /** Default `zscore`. */
  method?: NormalizationMethod;
  /** Normalised values are clipped to [-clip, clip]; null (default) = no clipping. */
  clip?: number | null;
}

/** Statistics of one timeframe's matrix. */
export interface NormalizerTimeframeStats {
  /** Column names, in column order. */
  names: string[];
  /** Centre per column: mean (zscore) or median (robust). */
  center: number[];
  /** Scale per column: std (zscore) or IQR / 1.349 (robust); 1 where that is 0 or undefined. */
  scale: number[];
  /** Rows of the fit range that were used. */
  rows: number;
}

/** The JSON form of a fitted normaliser (what `save` writes). */
export interface NormalizerJson {
  /** Format tag, always `ctm-normalizer`. */
  format: 'ctm-normalizer';
  /** Format version. */
  version: 1;
  /** How the columns were centred and scaled. */
  method: NormalizationMethod;
  /** Normalised values are clipped to [-clip, clip]; null = no clipping. */
  clip: number | null;
  /** Fit range, UTC ms and ISO. */
  fit: { fromMs: number; toMs: number; from: string; to: string };
  /** The feature spec the fitted features were built with (compared on apply). */
  featureSpec: unknown;
  /** Per timeframe, base first. */
  timeframes: Record<string, NormalizerTimeframeStats>;
}

/**
 * Fits a normaliser on the rows of every timeframe's matrix whose decision time lies in
 * `[fromMs, toMs)`, ignoring NaN. A column with zero or undefined spread gets scale 1.
 * @throws {DataValidationError} when a timeframe has no row in the fit range.
 */
export function fitNormalizer(
  features: MultiTimeframeFeatures,
  options: FitNormalizerOptions,
): FittedNormalizer {
  const method = options.method ?? 'zscore';
  const timeframes: Record<string, NormalizerTimeframeStats> = {};
  for (const tf of features.timeframes) {
    const m = features.perTimeframe.get(tf);
    if (m === undefined) continue;
    let first = 0;
    while (first < m.rows && m.time[first] < options.fromMs) first++;
    let end = first;
    while (end < m.rows && m.time[end] < options.toMs) end++;
    if (end === first)
      throw new DataValidationError({
        source: `${tf} features`,
        field: 'fit range',
        reason: `no ${tf} row with a decision time in [${iso(options.fromMs)}, ${iso(options.toMs)})`,
      });
    const center: number[] = [];
    const scale: number[] = [];
    const column = new Float64Array(end - first);
    for (let j = 0; j < m.cols; j++) {
      let k = 0;
      for (let r = first; r < end; r++) {
        const v = m.values[r * m.cols + j];
        if (v === v) column[k++] = v;
      }
      const [c, s] = method === 'robust' ? robustStats(column, k) : meanStd(column, k);
      center.push(c);
      scale.push(s > 0 && Number.isFinite(s) ? s : 1);
    }
    timeframes[tf] = { names: [...m.names], center, scale, rows: end - first };
  }
  return new FittedNormalizer({
    format: 'ctm-normalizer',
    version: 1,
    method,
    clip: options.clip ?? null,
    fit: {
      fromMs: options.fromMs,
      toMs: options.toMs,
      from: iso(options.fromMs),
      to: iso(options.toMs),
    },
    featureSpec: features.spec ?? null,
    timeframes,
  });
}

function iso(t: number): string {
  return Number.isFinite(t) ? new Date(t).toISOString() : String(t);
}

function meanStd(x: Float64Array, n: number): [number, number] {
  if (n === 0) return [0, 1];
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
  return [mean, Math.sqrt(ss / n)];
}

function robustStats(x: Float64Array, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const s = x.slice(0, n).sort();
  const q = (p: number): number => {
    const pos = p * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(n - 1, lo + 1);
    return s[lo] + (s[hi] - s[lo]) * (pos - lo);
  };
  return [q(0.5), (q(0.75) - q(0.25)) / 1.349];
}

/** First path at which two JSON-like values differ, or null when they are equal. */
function firstDifference(a: unknown, b: unknown, path: string): string | null {
  if (Object.is(a, b)) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null)
    return `${path || '(root)'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  if (Array.isArray(a) !== Array.isArray(b))
    return `${path || '(root)'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])];
  for (const k of keys) {
    const d = firstDifference(ra[k], rb[k], path === '' ? k : `${path}.${k}`);
    if (d !== null) return d;
  }
  return null;
}

/**
 * A fitted normaliser: `(x - center) / scale` per column (then clipped when `clip` is set); NaN
 * stays NaN. Create it with `fitNormalizer` or `FittedNormalizer.load`.
 */
export class FittedNormalizer {
  /** The fitted statistics, exactly as saved. */
  readonly json: NormalizerJson;
  /** Where it was loaded from (for messages), if anywhere. */
  readonly source: string;

  /** @throws {CheckpointError} when `json` is not a normaliser of this format. */
  constructor(json: NormalizerJson, source = 'normalizer') {
    if (json?.format !== 'ctm-normalizer' || json.version !== 1)
      throw new CheckpointError(source, 'not a ctm normaliser (format ctm-normalizer, version 1)');
    for (const [tf, st] of Object.entries(json.timeframes)) {
      if (st.center.length !== st.names.length || st.scale.length !== st.names.length)
        throw new CheckpointError(source, `timeframe ${tf}: stats do not match its column names`);
    }
    this.json = json;
    this.source = source;
  }

  /**
   * Loads a saved normaliser.
   * @throws {CheckpointError} naming the path when it is missing or not a normaliser.
   */
  static async load(path: string): Promise<FittedNormalizer> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new CheckpointError(path, 'cannot read the normaliser', { cause: err });
    }
    let json: NormalizerJson;
    try {
      json = JSON.parse(text) as NormalizerJson;
    } catch (err) {
      throw new CheckpointError(path, 'normaliser is not valid JSON', { cause: err });
    }
    return new FittedNormalizer(json, path);
  }

  /** Writes the normaliser as JSON, atomically. */
  async save(path: string): Promise<void> {
    await writeJsonAtomic(path, this.json);
  }

  /**
   * Checks that `features` were built with the spec and columns this normaliser was fitted on.
   * @throws {CheckpointError} naming the first mismatch (spec key, timeframe, column).
   */
  check(features: MultiTimeframeFeatures): void {
    const specDiff = firstDifference(this.json.featureSpec, features.spec ?? null, '');
    if (specDiff !== null)
      throw new CheckpointError(
        this.source,
        `fitted on another feature spec (features.${specDiff}, fitted vs given)`,
        { hint: 'refit the normaliser on the training range with the current features config' },
      );
    const fitted = Object.keys(this.json.timeframes);
    const given: string[] = features.timeframes.filter((tf) => features.perTimeframe.has(tf));
    for (const tf of given)
      if (!fitted.includes(tf))
        throw new CheckpointError(
          this.source,
          `not fitted on timeframe ${tf} (fitted: ${fitted.join(', ')})`,
        );
    for (const tf of fitted)
      if (!given.includes(tf))
        throw new CheckpointError(
          this.source,
          `fitted on timeframe ${tf}, which the features lack`,
        );
    for (const [tf, m] of features.perTimeframe) this.columns(tf, m.names);
  }

  /** Stats of timeframe `tf` for exactly the columns `names`, in order. */
  private columns(tf: string, names: readonly string[]): NormalizerTimeframeStats {
    const st = this.json.timeframes[tf];
    if (st === undefined) throw new CheckpointError(this.source, `not fitted on timeframe ${tf}`);
    const missing = names.filter((n) => !st.names.includes(n));
    const extra = st.names.filter((n) => !names.includes(n));
    if (missing.length > 0 || extra.length > 0)
      throw new CheckpointError(
        this.source,
        `${tf} columns differ from the fitted ones` +
          (missing.length > 0 ? `; not fitted: ${missing.join(', ')}` : '') +
          (extra.length > 0 ? `; fitted but absent: ${extra.join(', ')}` : ''),
      );
    const moved = names.findIndex((n, j) => st.names[j] !== n);
    if (moved >= 0)
      throw new CheckpointError(
        this.source,
        `${tf} column ${moved} is ${names[moved]}, fitted as ${st.names[moved]} (column order differs)`,
      );
    return st;
  }

  /**
   * Normalises a matrix of timeframe `tf` into a new matrix (same names, time and shape).
   * @throws {CheckpointError} when its columns are not the fitted ones of `tf`.
   */
  applyMatrix(matrix: FeatureMatrix, tf: Timeframe = matrix.timeframe): FeatureMatrix {
    const st = this.columns(tf, matrix.names);
    const values = new Float32Array(matrix.values.length);
    this.transform(
      matrix.values,
      values,
      matrix.cols,
      Float64Array.from(st.center),
      Float64Array.from(st.scale),
    );
    return { ...matrix, values };
  }

  /**
   * Normalises the decision-row view, whose columns are `<tf>.<name>` (stats of that timeframe's
   * column) or `x.<name>` (cross features, stats of the base matrix's column of that name).
   * @throws {CheckpointError} when a column has no fitted statistics.
   */
  applyDecisionRows(matrix: FeatureMatrix, base: Timeframe): FeatureMatrix {
    const center = new Float64Array(matrix.cols);
    const scale = new Float64Array(matrix.cols);
    matrix.names.forEach((name, j) => {
      const dot = name.indexOf('.');
      const prefix = name.slice(0, dot);
      const tf = prefix === 'x' ? base : prefix;
      const col = prefix === 'x' ? name : name.slice(dot + 1);
      const st = this.json.timeframes[tf];
      const k = st === undefined ? -1 : st.names.indexOf(col);
      if (k < 0) throw new CheckpointError(this.source, `decision column ${name} was not fitted`);
      center[j] = st.center[k];
      scale[j] = st.scale[k];
    });
    const values = new Float32Array(matrix.values.length);
    this.transform(matrix.values, values, matrix.cols, center, scale);
    return { ...matrix, values };
  }

  /**
   * Normalised copies of every per-timeframe matrix and the decision rows, after `check`.
   * @throws {CheckpointError} naming the mismatch when the features do not match the fit.
   */
  apply(features: MultiTimeframeFeatures): MultiTimeframeFeatures {
    this.check(features);
    const perTimeframe = new Map<Timeframe, FeatureMatrix>();
    for (const [tf, m] of features.perTimeframe) perTimeframe.set(tf, this.applyMatrix(m, tf));
    const decisionRows = this.applyDecisionRows(features.decisionRows, features.base);
    const formingRows = new Map<Timeframe, FeatureMatrix>();
    for (const [tf, m] of features.formingRows ?? []) formingRows.set(tf, this.applyMatrix(m, tf));
    return {
      ...features,
      perTimeframe,
      decisionRows,
      ...(features.formingRows === undefined ? {} : { formingRows }),
    };
  }

  private transform(
    src: Float32Array,
    dst: Float32Array,
    cols: number,
    center: Float64Array,
    scale: Float64Array,
  ): void {
    const clip = this.json.clip ?? Infinity;
    const rows = cols === 0 ? 0 : src.length / cols;
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let j = 0; j < cols; j++) {
        let z = (src[o + j] - center[j]) / scale[j];
        if (z > clip) z = clip;
        else if (z < -clip) z = -clip;
        dst[o + j] = z;
      }
    }
  }
}
