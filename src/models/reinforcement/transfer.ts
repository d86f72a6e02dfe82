// Transfer from the sequence model into the RL agents: the observation adapter that turns the
// env's flat observation (ObservationSpec layout) into the per-timeframe windows the encoders read,
// the embedding cache (encoders read only market windows, never the account, so a frozen encoder's
// embedding of each base row is computed once per market), the embedding env the frozen phase
// trains on (embedding + account fields, at MLP speed), and the deployed policy (raw observation ->
// adapter -> encoder -> MLP head), which is what the backtester and the live loop run. The encoder
// is the extractor's own copy of the weights (model.featureExtractor): the sequence model is never
// changed. Never reads a feature row after the decision time: windows come from the one
// ObservationBuilder.

import * as tf from '@tensorflow/tfjs';
import type { MultiTimeframeFeatures } from '../../data-processing/feature-engineering.js';
import type { ModelInputSpec } from '../../data-processing/window-datasets.js';
import {
  ACCOUNT_FIELDS,
  ObservationBuilder,
  accountFieldsOf,
  type ObservationSpec,
  type Policy,
} from '../../evaluation/policy.js';
import type { FeatureExtractor } from '../time-series/model.js';
import type { PpoInputHooks, Rollout } from './ppo-agent.js';
import {
  Box,
  type Env,
  type EnvSnapshot,
  type ObservationCodec,
  type ResetOptions,
  type ResetResult,
  type StepResult,
} from './spaces.js';
import type { CryptoTradingEnv, TradingAction, TradingEnvInfo } from './trading-env.js';

// ---------------------------------------------------------------------------------------------
// Observation adapter

/**
 * Maps flat observations of `observation` (the env's, backtester's or live loop's layout) to the
 * per-timeframe windows [T, F] of `model` (newest rows last) and to the account fields.
 * @throws {RangeError} naming the timeframe, window or feature the observation lacks.
 */
export class ObservationAdapter {
  /** Floats per flat observation. */
  readonly observationSize: number;
  /** Per model timeframe, the index in the flat observation of each window value [T·F]. */
  readonly windowIndex: Int32Array[];
  /** Index in the flat observation of each account field (the observation's order). */
  readonly accountIndex: Int32Array;
  /** Floats per window of each model timeframe (T·F). */
  readonly windowSizes: number[];

  constructor(
    readonly observation: ObservationSpec,
    readonly model: ModelInputSpec,
  ) {
    const offsets = new Map<string, number>();
    let off = 0;
    for (const t of observation.timeframes) {
      offsets.set(t, off);
      off += (observation.windows[t] ?? 0) * (observation.features[t]?.length ?? 0);
    }
    const account = accountFieldsOf(observation);
    this.observationSize = off + account.length;
    this.accountIndex = Int32Array.from(account, (_, j) => off + j);
    this.windowIndex = model.timeframes.map((t) => {
      const base = offsets.get(t);
      if (base === undefined)
        throw new RangeError(`the observation has no ${t} window, which the encoder reads`);
      const W = observation.windows[t] ?? 0;
      const T = model.windows[t] ?? 0;
      if (T > W)
        throw new RangeError(`the observation's ${t} window has ${W} bars, the encoder reads ${T}`);
      const cols = observation.features[t] ?? [];
      const names = model.features[t] ?? [];
      const at = names.map((n) => {
        const k = cols.indexOf(n);
        if (k < 0)
          throw new RangeError(`the observation lacks feature ${t}.${n}, which the encoder reads`);
        return k;
      });
      const idx = new Int32Array(T * names.length);
      for (let r = 0; r < T; r++)
        for (let f = 0; f < names.length; f++)
          idx[r * names.length + f] = base + (W - T + r) * cols.length + at[f];
      return idx;
    });
    this.windowSizes = this.windowIndex.map((a) => a.length);
  }

  /** Writes the windows of `rows` observations into `out[j]` ([rows, T_j·F_j] each). */
  windows(obs: Float32Array, rows: number, out: readonly Float32Array[]): void {
    const S = this.observationSize;
    for (let j = 0; j < this.windowIndex.length; j++) {
      const idx = this.windowIndex[j];
      const o = out[j];
      const n = idx.length;
      for (let r = 0; r < rows; r++) for (let k = 0; k < n; k++) o[r * n + k] = obs[r * S + idx[k]];
    }
  }

  /** Writes the account fields of `rows` observations into `out` ([rows, fields]). */
  account(obs: Float32Array, rows: number, out: Float32Array): void {
    const S = this.observationSize;
    const idx = this.accountIndex;
    for (let r = 0; r < rows; r++)
      for (let k = 0; k < idx.length; k++) out[r * idx.length + k] = obs[r * S + idx[k]];
  }
}

/** The windows as tensors [rows, T, F] per timeframe of `spec` (caller disposes). */
export function windowTensors(
  spec: ModelInputSpec,
  windows: readonly Float32Array[],
  rows: number,
): tf.Tensor3D[] {
  return spec.timeframes.map((t, j) =>
    tf.tensor3d(
      windows[j].subarray(0, rows * (spec.windows[t] ?? 0) * (spec.features[t]?.length ?? 0)),
      [rows, spec.windows[t] ?? 0, spec.features[t]?.length ?? 0],
    ),
  );
}

/** Embeddings [rows, E] of raw windows through `encoder` into `out` (batched tfjs call). */
export function embedWindows(
  encoder: FeatureExtractor,
  windows: readonly Float32Array[],
  rows: number,
  out: Float32Array,
  outOffset = 0,
): void {
  const xs = windowTensors(encoder.spec, windows, rows);
  const e = encoder.extract(xs);
  out.set(e.dataSync() as Float32Array, outOffset);
  tf.dispose([...xs, e]);
}

// ---------------------------------------------------------------------------------------------
// Embedding cache

/** The market-window spec of an encoder (no account fields). */
function windowSpec(model: ModelInputSpec): ObservationSpec {
  return {
    timeframes: model.timeframes,
    windows: model.windows,
    features: model.features,
    account: false,
  };
}

/**
 * Embeddings of a market's base rows through an encoder, computed when first asked (in batches of
 * the rows asked together) and kept until `invalidate` (the encoder changed).
 */
export class EmbeddingCache {
  /** Floats per embedding. */
  readonly size: number;
  private readonly values: Float32Array;
  private readonly valid: Uint8Array;
  private readonly builder: ObservationBuilder;
  private readonly windowBuf: Float32Array[];
  /** Floats per window of each timeframe (T·F). */
  readonly sizes: number[];
  private scratch = new Float32Array(0);

  constructor(
    readonly encoder: FeatureExtractor,
    readonly features: MultiTimeframeFeatures,
    private readonly batch = 256,
  ) {
    this.size = encoder.outputSize;
    const rows = features.rowIndex.get(features.base)?.length ?? 0;
    this.values = new Float32Array(rows * this.size);
    this.valid = new Uint8Array(rows);
    this.builder = new ObservationBuilder(features, windowSpec(encoder.spec));
    this.sizes = encoder.spec.timeframes.map(
      (t) => (encoder.spec.windows[t] ?? 0) * (encoder.spec.features[t]?.length ?? 0),
    );
    this.windowBuf = this.sizes.map((s) => new Float32Array(batch * s));
  }

  /** Marks every embedding stale (after the encoder's weights changed). */
  invalidate(): void {
    this.valid.fill(0);
  }

  /** Computes the embeddings of every row in [from, to) not yet cached. */
  fill(from: number, to: number): void {
    const pending: number[] = [];
    for (let r = from; r < to; r++) if (this.valid[r] === 0) pending.push(r);
    for (let k = 0; k < pending.length; k += this.batch)
      this.compute(pending.slice(k, k + this.batch));
  }

  /** The embedding of base row `row` (computed now when stale) written into `out` at `offset`. */
  get(row: number, out: Float32Array, offset: number): void {
    if (this.valid[row] === 0) this.compute([row]);
    const E = this.size;
    for (let k = 0; k < E; k++) out[offset + k] = this.values[row * E + k];
  }

  /** Writes the raw windows of base row `row` into `buffers[j]` at sample `at` ([*, T_j·F_j]). */
  writeWindows(row: number, buffers: readonly Float32Array[], at: number): void {
    if (this.scratch.length !== this.builder.size)
      this.scratch = new Float32Array(this.builder.size);
    this.builder.build(row, null, this.scratch, 0);
    // The window spec lays the timeframes out back to back: split it per timeframe.
    let o = 0;
    this.sizes.forEach((s, j) => {
      buffers[j].set(this.scratch.subarray(o, o + s), at * s);
      o += s;
    });
  }

  private compute(rows: readonly number[]): void {
    const n = rows.length;
    rows.forEach((row, i) => this.writeWindows(row, this.windowBuf, i));
    const out = new Float32Array(n * this.size);
    embedWindows(this.encoder, this.windowBuf, n, out);
    rows.forEach((row, i) => {
      this.values.set(out.subarray(i * this.size, (i + 1) * this.size), row * this.size);
      this.valid[row] = 1;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The embedding env (frozen phase)

/** What an embedding env wraps: a trading env, or a scenario env over several markets. */
export type MarketEnv = Env<Float32Array, TradingAction, TradingEnvInfo> & {
  readonly actionSpace: CryptoTradingEnv['actionSpace'];
  readonly neutralAction: TradingAction;
  observationCodec(): ObservationCodec<TradingEnvInfo>;
  snapshot(): EnvSnapshot;
  restore(snapshot: EnvSnapshot): void;
};

/**
 * A trading env whose observations are the encoder's embedding of the decision row followed by
 * the account fields: what an agent on a frozen encoder sees, computed from the caches (one per
 * market, indexed by `info.market`; MLP speed). Everything else (actions, rewards, flags, infos,
 * masks, snapshots) is the wrapped env's.
 */
export class EmbeddingEnv implements Env<Float32Array, TradingAction, TradingEnvInfo> {
  /** Box of the embedding and the account fields. */
  readonly observationSpace: Box;
  /** The wrapped env's action space. */
  readonly actionSpace: CryptoTradingEnv['actionSpace'];
  /** The wrapped env's neutral action. */
  readonly neutralAction: TradingAction;
  private obs: Float32Array;
  private readonly record: Float32Array;
  private readonly codec: ObservationCodec<TradingEnvInfo>;

  constructor(
    readonly env: MarketEnv,
    readonly caches: readonly EmbeddingCache[],
    readonly accountFields: readonly (typeof ACCOUNT_FIELDS)[number][],
  ) {
    const size = caches[0].size + accountFields.length;
    this.observationSpace = new Box(-Infinity, Infinity, [size]);
    this.actionSpace = env.actionSpace;
    this.neutralAction = env.neutralAction;
    this.obs = new Float32Array(size);
    this.codec = env.observationCodec();
    this.record = new Float32Array(this.codec.size);
  }

  private write(info: TradingEnvInfo): Float32Array {
    writeEmbeddingObservation(this.caches[info.market], info, this.accountFields, this.obs, 0);
    return this.obs;
  }

  reset(options?: ResetOptions): ResetResult<Float32Array, TradingEnvInfo> {
    const [, info] = this.env.reset(options);
    return [this.write(info), info];
  }

  step(action: TradingAction): StepResult<Float32Array, TradingEnvInfo> {
    const r = this.env.step(action);
    const info = r[4];
    this.write(info);
    if (info.finalObservation !== null) info.finalObservation = this.obs;
    return [this.obs, r[1], r[2], r[3], info];
  }

  actionMasks(): Uint8Array | null {
    return this.env.actionMasks?.() ?? null;
  }

  useObservationBuffer(buffer: Float32Array): void {
    if (buffer.length !== this.obs.length)
      throw new RangeError(
        `useObservationBuffer: ${buffer.length} floats, observations ${this.obs.length}`,
      );
    buffer.set(this.obs);
    this.obs = buffer;
  }

  /** The wrapped env's records (market, row, account), decoded through the caches. */
  observationCodec(): ObservationCodec<TradingEnvInfo> {
    const inner = this.codec;
    const caches = this.caches;
    const fields = this.accountFields;
    const info = {
      market: 0,
      row: 0,
      position: 0,
      unrealizedPnl: 0,
      barsInPosition: 0,
      drawdown: 0,
    };
    const market = inner.size === 6;
    return {
      size: inner.size,
      encode: (i, out, offset) => inner.encode(i, out, offset),
      current: (out, offset) => inner.current(out, offset),
      decode(record, offset, out, outOffset) {
        decodeRecord(record, offset, market, info);
        writeEmbeddingObservation(caches[info.market], info, fields, out, outOffset);
      },
    };
  }

  snapshot(): EnvSnapshot {
    return this.env.snapshot();
  }

  restore(snapshot: EnvSnapshot): void {
    this.env.restore(snapshot);
    this.codec.current(this.record, 0);
    const info = {
      market: 0,
      row: 0,
      position: 0,
      unrealizedPnl: 0,
      barsInPosition: 0,
      drawdown: 0,
    };
    decodeRecord(this.record, 0, this.codec.size === 6, info);
    writeEmbeddingObservation(this.caches[info.market], info, this.accountFields, this.obs, 0);
  }
}

/**
 * Reads a trading-env record (row and four account fields), or a scenario-env record (the market
 * first), into `info`.
 */
export function decodeRecord(
  record: Float32Array,
  offset: number,
  withMarket: boolean,
  info: Pick<
    TradingEnvInfo,
    'market' | 'row' | 'position' | 'unrealizedPnl' | 'barsInPosition' | 'drawdown'
  >,
): void {
  const o = withMarket ? offset + 1 : offset;
  info.market = withMarket ? record[offset] : 0;
  info.row = record[o];
  info.position = record[o + 1];
  info.unrealizedPnl = record[o + 2];
  info.barsInPosition = record[o + 3];
  info.drawdown = record[o + 4];
}

/** [embedding of info.row, account fields (as the observation builder writes them)] into `out`. */
function writeEmbeddingObservation(
  cache: EmbeddingCache,
  info: Pick<TradingEnvInfo, 'row' | 'position' | 'unrealizedPnl' | 'barsInPosition' | 'drawdown'>,
  fields: readonly (typeof ACCOUNT_FIELDS)[number][],
  out: Float32Array,
  offset: number,
): void {
  cache.get(info.row, out, offset);
  writeAccountFields(info, fields, out, offset + cache.size);
}

/** The account fields of `info` as the observation builder writes them, into `out` at `offset`. */
function writeAccountFields(
  info: Pick<TradingEnvInfo, 'position' | 'unrealizedPnl' | 'barsInPosition' | 'drawdown'>,
  fields: readonly (typeof ACCOUNT_FIELDS)[number][],
  out: Float32Array,
  offset: number,
): void {
  let o = offset;
  for (const f of fields)
    out[o++] =
      f === 'position'
        ? info.position
        : f === 'unrealizedPnl'
          ? info.unrealizedPnl
          : f === 'timeInPosition'
            ? Math.log1p(info.barsInPosition)
            : info.drawdown;
}

// ---------------------------------------------------------------------------------------------
// The deployed policy

/**
 * An agent over an encoder as a Policy on raw observations: the adapter cuts the encoder's windows
 * out of each observation, the encoder embeds them, the agent's head scores [embedding, account].
 * `head` maps agent inputs [rows, E + k] to the target positions.
 */
export class EncoderPolicy implements Policy {
  private readonly adapter: ObservationAdapter;
  private windowBuf: Float32Array[] = [];
  private inputs = new Float32Array(0);
  private account = new Float32Array(0);

  constructor(
    readonly observation: ObservationSpec,
    private readonly encoder: FeatureExtractor,
    private readonly head: (
      inputs: Float32Array,
      rows: number,
      out: Float32Array,
      mask?: Uint8Array,
    ) => void,
  ) {
    this.adapter = new ObservationAdapter(observation, encoder.spec);
  }

  act(obs: Float32Array, numEnvs: number, out: Float32Array, mask?: Uint8Array): void {
    const E = this.encoder.outputSize;
    const K = this.adapter.accountIndex.length;
    if (
      this.windowBuf.length === 0 ||
      this.windowBuf[0].length < numEnvs * this.adapter.windowSizes[0]
    ) {
      this.windowBuf = this.adapter.windowSizes.map((s) => new Float32Array(numEnvs * s));
      this.inputs = new Float32Array(numEnvs * (E + K));
      this.account = new Float32Array(numEnvs * K);
    }
    this.adapter.windows(obs, numEnvs, this.windowBuf);
    this.adapter.account(obs, numEnvs, this.account);
    const emb = new Float32Array(numEnvs * E);
    embedWindows(this.encoder, this.windowBuf, numEnvs, emb);
    for (let i = 0; i < numEnvs; i++) {
      this.inputs.set(emb.subarray(i * E, (i + 1) * E), i * (E + K));
      this.inputs.set(this.account.subarray(i * K, (i + 1) * K), i * (E + K) + E);
    }
    this.head(this.inputs, numEnvs, out, mask);
  }
}

// ---------------------------------------------------------------------------------------------
// Fine-tuning the encoder inside PPO's update

/**
 * PPO's input hooks for a trainable encoder (the fine-tuning phase): each minibatch's samples are
 * re-embedded with the encoder's current weights from their base rows (the rollout's records),
 * joined with their account fields and normalised with the agent's statistics; the gradient of the
 * loss with respect to those inputs is carried back into the encoder's variables through
 * TensorFlow.js (a vector-Jacobian product), for the optimizer's `encoder` group.
 */
export function encoderInputHooks(
  encoder: FeatureExtractor,
  caches: readonly EmbeddingCache[],
  accountFields: readonly (typeof ACCOUNT_FIELDS)[number][],
  agent: {
    normalize(x: Float32Array, rows: number, out: Float32Array): Float32Array;
    observationStats: { variance: Float64Array } | null;
  },
): PpoInputHooks {
  const E = encoder.outputSize;
  const K = accountFields.length;
  const D = E + K;
  let windowBuf: Float32Array[] = [];
  let raw = new Float32Array(0);
  let kept: tf.Tensor3D[] = [];
  const info = { market: 0, row: 0, position: 0, unrealizedPnl: 0, barsInPosition: 0, drawdown: 0 };
  return {
    inputs(roll: Rollout, indices: Int32Array, out: Float32Array): void {
      const B = indices.length;
      const R = roll.recordSize;
      if (raw.length < B * D) {
        windowBuf = caches[0].sizes.map((s) => new Float32Array(B * s));
        raw = new Float32Array(B * D);
      }
      const emb = new Float32Array(B * E);
      for (let b = 0; b < B; b++) {
        const k = indices[b];
        decodeRecord(roll.records, k * R, R === 6, info);
        caches[info.market].writeWindows(info.row, windowBuf, b);
        writeAccountFields(info, accountFields, raw, b * D + E);
      }
      tf.dispose(kept);
      kept = windowTensors(encoder.spec, windowBuf, B);
      const e = encoder.extract(kept);
      emb.set(e.dataSync() as Float32Array);
      e.dispose();
      for (let b = 0; b < B; b++) raw.set(emb.subarray(b * E, (b + 1) * E), b * D);
      agent.normalize(raw, B, out);
    },
    backward(dInputs: Float32Array, rows: number, grads: Float32Array[]): void {
      // d(normalised)/d(raw) = 1 / sqrt(var + 1e-8) per column (the clip rarely binds).
      const v = agent.observationStats?.variance ?? null;
      const dEmb = new Float32Array(rows * E);
      for (let b = 0; b < rows; b++)
        for (let j = 0; j < E; j++)
          dEmb[b * E + j] = dInputs[b * D + j] / (v === null ? 1 : Math.sqrt(v[j] + 1e-8));
      const dT = tf.tensor2d(dEmb, [rows, E]);
      const vars = encoder.variables;
      const { value, grads: g } = tf.variableGrads(
        () => tf.sum(tf.mul(encoder.extract(kept), dT)) as tf.Scalar,
        [...vars],
      );
      vars.forEach((variable, k) => grads[k].set(g[variable.name].dataSync() as Float32Array));
      tf.dispose([value, dT, ...Object.values(g), ...kept]);
      kept = [];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Setting up a transfer run

/** The encoder of a sequence-model run for an agent, and the embedding envs over markets. */
export interface TransferEnvs {
  /** The extractor (its own copy of the model's encoder weights). */
  readonly encoder: FeatureExtractor;
  /** One cache per market (index = `info.market`). */
  readonly caches: readonly EmbeddingCache[];
  /** Embedding envs over the given envs, in order. */
  readonly envs: readonly EmbeddingEnv[];
}

/**
 * Wraps market envs into embedding envs over `encoder`, one cache per market of `features`
 * (shared by every env).
 * @throws {RangeError} when the markets' features lack what the encoder reads.
 */
export function embeddingEnvs(
  encoder: FeatureExtractor,
  features: readonly MultiTimeframeFeatures[],
  envs: readonly MarketEnv[],
  accountFields: readonly (typeof ACCOUNT_FIELDS)[number][],
): TransferEnvs {
  const caches = features.map((f) => new EmbeddingCache(encoder, f));
  return { encoder, caches, envs: envs.map((env) => new EmbeddingEnv(env, caches, accountFields)) };
}
