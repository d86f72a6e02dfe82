// What every decision maker is asked, and the one ObservationBuilder that feeds it. The RL
// environment, the backtester and paper/live trading all build observations here, from the
// per-timeframe feature windows known at the decision time plus the account state, so a policy sees
// exactly the same numbers wherever it runs. Never reads a feature row after the decision time.

import type { Timeframe } from '../data-processing/candles.js';
import type {
  FeatureMatrix,
  MultiTimeframeFeatures,
} from '../data-processing/feature-engineering.js';

/** Account fields an observation may carry, in this order (timeInPosition is log1p(bars held)). */
export const ACCOUNT_FIELDS = ['position', 'unrealizedPnl', 'timeInPosition', 'drawdown'] as const;

/** One account field of an observation. */
export type AccountField = (typeof ACCOUNT_FIELDS)[number];

/** Account state at a decision time, as the broker reports it. */
export interface AccountSnapshot {
  /** Signed exposure: position notional / (leverage × equity), in [-1, 1] (short < 0). */
  position: number;
  /** Unrealised pnl of the open position as a fraction of equity. */
  unrealizedPnl: number;
  /** Bars since the current position was opened (0 when flat). */
  barsInPosition: number;
  /** Drawdown from the running equity peak, a fraction >= 0. */
  drawdown: number;
}

/**
 * Which numbers a policy reads: for each timeframe (base first) a window of `windows[tf]` bars of
 * the named feature columns, oldest first, then optionally the account fields. The flat layout is
 * `[tf0 window rows x features] [tf1 ...] ... [account]`.
 */
export interface ObservationSpec {
  /** Timeframes in observation order, base first. */
  readonly timeframes: readonly Timeframe[];
  /** Window length in bars per timeframe. */
  readonly windows: Readonly<Partial<Record<Timeframe, number>>>;
  /** Feature names per timeframe, in the order the policy wants them (a subset of the matrix's). */
  readonly features: Readonly<Partial<Record<Timeframe, readonly string[]>>>;
  /**
   * Account fields appended after the windows: `true` = every field of `ACCOUNT_FIELDS`, `false` =
   * none, or a list of fields in the order wanted (e.g. `['position']`).
   */
  readonly account: boolean | readonly AccountField[];
}

/** The account fields a spec appends, in order. */
export function accountFieldsOf(spec: ObservationSpec): readonly AccountField[] {
  if (spec.account === true) return ACCOUNT_FIELDS;
  if (spec.account === false) return [];
  for (const f of spec.account)
    if (!ACCOUNT_FIELDS.includes(f))
      throw new RangeError(`observation spec: unknown account field ${String(f)}`);
  return spec.account;
}

/**
 * A decision maker: sequence-model signals, RL agents, rule baselines and user modules
 * (`--policy ./my-policy.js`) all implement it. `act` writes one target position per env,
 * `out[i]` in [-1, 1] (-1 = full short, 0 = flat, 1 = full long), from `numEnvs` observations laid
 * out back to back in `obs` (each `observationSize(spec)` floats). `mask`, when given, holds
 * per-env flags of allowed discrete levels (policy-specific layout).
 */
export interface Policy {
  /** What the policy reads (windows, features and account fields). */
  readonly observation: ObservationSpec;
  /** Called at the start of an episode or backtest. */
  reset?(numEnvs: number): void;
  /**
   * Writes a target position in [-1, 1] per env to `out[0..numEnvs)` from the observations in
   * `obs`.
   */
  act(obs: Float32Array, numEnvs: number, out: Float32Array, mask?: Uint8Array): void;
}

/** Number of floats in one observation of `spec`. */
export function observationSize(spec: ObservationSpec): number {
  let n = 0;
  for (const tf of spec.timeframes) n += (spec.windows[tf] ?? 0) * (spec.features[tf]?.length ?? 0);
  return n + accountFieldsOf(spec).length;
}

/**
 * Names of every float of an observation, e.g. `15m[t-63].rsi_14`, ..., `account.position`.
 */
export function observationColumnNames(spec: ObservationSpec): string[] {
  const names: string[] = [];
  for (const tf of spec.timeframes) {
    const w = spec.windows[tf] ?? 0;
    const cols = spec.features[tf] ?? [];
    for (let r = 0; r < w; r++) {
      const lag = w - 1 - r;
      for (const c of cols) names.push(`${tf}[t${lag === 0 ? '' : `-${lag}`}].${c}`);
    }
  }
  for (const f of accountFieldsOf(spec)) names.push(`account.${f}`);
  return names;
}

/** The spec that reads every feature of every timeframe of `features` with the given windows. */
export function fullObservationSpec(
  features: MultiTimeframeFeatures,
  windows: Partial<Record<Timeframe, number>>,
  account: boolean | readonly AccountField[] = true,
): ObservationSpec {
  const spec: Partial<Record<Timeframe, readonly string[]>> = {};
  for (const tf of features.timeframes)
    spec[tf] = [...(features.perTimeframe.get(tf)?.names ?? [])];
  return { timeframes: [...features.timeframes], windows: { ...windows }, features: spec, account };
}

interface Part {
  tf: Timeframe;
  length: number;
  cols: number;
  /** Column indices into the matrix, or null when the spec takes every column in matrix order. */
  select: Int32Array | null;
  values: Float32Array;
  matrixCols: number;
  rowIndex: Int32Array;
  offset: number;
  /** Forming mode: the matrix of candles in progress on the base rows (the window's newest row). */
  forming: Float32Array | null;
}

/** Forming-mode rows of a higher timeframe, when the features carry them. */
export function formingRowsOf(
  features: MultiTimeframeFeatures,
  tf: Timeframe,
): FeatureMatrix | undefined {
  const f = (features as { formingRows?: ReadonlyMap<Timeframe, FeatureMatrix> }).formingRows;
  return f?.get(tf);
}

/** Observations of at least this many floats use the sliding shadow buffer. */
const SHADOW_MIN_SIZE = 256;
/** A row index no window can have (marks an empty shadow). */
const NO_ROW = -2147483648;

/**
 * Writes window slots [r0, r1) of `part` (slot r = matrix row first + r; NaN before row 0) into
 * `out` at `o`.
 */
function writeRows(
  part: Part,
  first: number,
  r0: number,
  r1: number,
  out: Float32Array,
  o: number,
): void {
  const cols = part.cols;
  const values = part.values;
  const sel = part.select;
  const mc = part.matrixCols;
  // Rows before the matrix start (or no known row at all: first + length - 1 < 0) are NaN.
  let r = r0;
  for (; r < r1 && first + r < 0; r++) {
    const dst = o + r * cols;
    for (let c = 0; c < cols; c++) out[dst + c] = NaN;
  }
  if (r >= r1) return;
  if (sel === null) {
    const src = (first + r) * cols;
    const dst = o + r * cols;
    const count = (r1 - r) * cols;
    for (let k = 0; k < count; k++) out[dst + k] = values[src + k];
  } else {
    for (; r < r1; r++) {
      const src = (first + r) * mc;
      const dst = o + r * cols;
      for (let c = 0; c < cols; c++) out[dst + c] = values[src + sel[c]];
    }
  }
}

const ACC_POSITION = 0;
const ACC_UPNL = 1;
const ACC_TIME = 2;
const ACC_DRAWDOWN = 3;

/**
 * Builds observations of a spec from multi-timeframe features and account snapshots into
 * caller-provided buffers. Allocates nothing per call. Window rows are those `copyWindow` maps a
 * base row to (the row of each timeframe known at its decision time, oldest first, NaN before a
 * matrix's first row), copied straight from the matrices.
 * @example
 * const ob = new ObservationBuilder(features, policy.observation);
 * const obs = new Float32Array(ob.size);
 * ob.build(row, account, obs, 0);
 */
export class ObservationBuilder {
  /** Floats per observation. */
  readonly size: number;
  /** The observation spec the builder lays out. */
  readonly spec: ObservationSpec;
  /** The account fields appended, in order. */
  readonly accountFields: readonly AccountField[];
  private readonly parts: Part[];
  private readonly features: MultiTimeframeFeatures;
  /** Codes of the account fields (ACC_*), in order. */
  private readonly accountCodes: Int32Array;
  /**
   * Large observations are assembled in a private shadow buffer whose windows slide by one row
   * (a native memmove) instead of being recopied, then copied out whole; null for small ones.
   */
  private readonly shadow: Float32Array | null;
  /** Per part, the last matrix row whose window the shadow holds. */
  private readonly prevLast: Int32Array;

  /** @throws {RangeError} when the spec names a timeframe, feature or account field the features lack. */
  constructor(features: MultiTimeframeFeatures, spec: ObservationSpec) {
    this.features = features;
    this.spec = spec;
    this.parts = [];
    let offset = 0;
    for (const tf of spec.timeframes) {
      const matrix = features.perTimeframe.get(tf);
      const rowIndex = features.rowIndex.get(tf);
      if (matrix === undefined || rowIndex === undefined)
        throw new RangeError(`observation spec reads timeframe ${tf}, which the features lack`);
      const names = spec.features[tf] ?? [];
      const length = spec.windows[tf] ?? 0;
      const idx = names.map((name) => {
        const k = matrix.names.indexOf(name);
        if (k < 0)
          throw new RangeError(
            `observation spec reads feature ${tf}.${name}, which the features lack`,
          );
        return k;
      });
      const identity = idx.length === matrix.cols && idx.every((k, j) => k === j);
      this.parts.push({
        tf,
        length,
        cols: names.length,
        select: identity ? null : Int32Array.from(idx),
        values: matrix.values,
        matrixCols: matrix.cols,
        rowIndex,
        offset,
        forming: formingRowsOf(features, tf)?.values ?? null,
      });
      offset += length * names.length;
    }
    this.accountFields = accountFieldsOf(spec);
    this.accountCodes = Int32Array.from(this.accountFields, (f) => ACCOUNT_FIELDS.indexOf(f));
    this.size = offset + this.accountFields.length;
    this.shadow = this.size >= SHADOW_MIN_SIZE ? new Float32Array(this.size) : null;
    this.prevLast = new Int32Array(this.parts.length).fill(NO_ROW);
  }

  /** Number of base rows the features cover. */
  get baseRows(): number {
    return this.features.rowIndex.get(this.features.base)?.length ?? 0;
  }

  /**
   * Writes the observation at base row `baseRow` (the decision is made at that row's close) into
   * `out[offset ... offset + size)`. `account` may be null when the spec has no account fields
   * (null writes a flat, fresh account otherwise).
   * @throws {RangeError} when `baseRow` is outside the base rows.
   */
  build(baseRow: number, account: AccountSnapshot | null, out: Float32Array, offset: number): void {
    const parts = this.parts;
    const shadow = this.shadow;
    const target = shadow ?? out;
    const base = shadow === null ? offset : 0;
    for (let p = 0; p < parts.length; p++) {
      const part = parts[p];
      if (part.length === 0) continue;
      const rowIndex = part.rowIndex;
      if (!(baseRow >= 0 && baseRow < rowIndex.length))
        throw new RangeError(`observation: base row ${baseRow} outside [0, ${rowIndex.length})`);
      const o = base + part.offset;
      const last = rowIndex[baseRow];
      const forming = part.forming;
      // In forming mode the newest slot is the candle in progress; closed rows fill the others.
      const length = forming === null ? part.length : part.length - 1;
      const cols = part.cols;
      const first = last - length + 1;
      if (shadow === null) writeRows(part, first, 0, length, target, o);
      else {
        // The shadow holds this part's window for `prevLast`: keep it, slide it by one row, or
        // rewrite it.
        const prev = this.prevLast[p];
        if (last !== prev) {
          if (last === prev + 1 && length > 1) {
            shadow.copyWithin(o, o + cols, o + length * cols);
            writeRows(part, first, length - 1, length, shadow, o);
          } else writeRows(part, first, 0, length, shadow, o);
          this.prevLast[p] = last;
        }
      }
      if (forming !== null) {
        const fsrc = baseRow * part.matrixCols;
        const dst = o + length * cols;
        const sel = part.select;
        if (sel === null) for (let c = 0; c < cols; c++) target[dst + c] = forming[fsrc + c];
        else for (let c = 0; c < cols; c++) target[dst + c] = forming[fsrc + sel[c]];
      }
    }
    const codes = this.accountCodes;
    if (codes.length > 0) {
      const a = base + this.size - codes.length;
      for (let j = 0; j < codes.length; j++) {
        const code = codes[j];
        target[a + j] =
          account === null
            ? 0
            : code === ACC_POSITION
              ? account.position
              : code === ACC_UPNL
                ? account.unrealizedPnl
                : code === ACC_TIME
                  ? Math.log1p(account.barsInPosition)
                  : code === ACC_DRAWDOWN
                    ? account.drawdown
                    : NaN;
      }
    }
    if (shadow !== null) out.set(shadow, offset);
  }
}

/**
 * `policy` deciding every `k` bars and holding its targets in between (what an agent trained with
 * `env.decisionInterval` k does when it is backtested or traded): `act` asks the policy on the
 * first bar after `reset` and every k-th bar after, and repeats its last targets otherwise. k = 1
 * returns `policy` itself.
 * @throws {RangeError} when k is not a whole number >= 1.
 */
export function decideEvery(policy: Policy, k: number): Policy {
  if (!(Number.isInteger(k) && k >= 1))
    throw new RangeError(`decision interval must be a whole number >= 1, got ${k}`);
  if (k === 1) return policy;
  let bar = 0;
  let held = new Float32Array(0);
  return {
    observation: policy.observation,
    reset(numEnvs) {
      bar = 0;
      held = new Float32Array(numEnvs);
      policy.reset?.(numEnvs);
    },
    act(obs, numEnvs, out, mask) {
      if (held.length < numEnvs) {
        const grown = new Float32Array(numEnvs);
        grown.set(held);
        held = grown;
      }
      if (bar % k === 0) {
        policy.act(obs, numEnvs, out, mask);
        held.set(out.subarray(0, numEnvs));
      } else out.set(held.subarray(0, numEnvs));
      bar++;
    },
  };
}
