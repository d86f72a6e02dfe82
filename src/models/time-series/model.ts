// The multi-timeframe sequence model (the spec's MultiTimeframeModel): one recurrent encoder per
// timeframe (GRU or LSTM stacks; the GRU is the fast custom-gradient op of gru.ts, or the stock
// tf.layers.gru as a fallback), each giving one embedding (last state, or attention pooling over
// time), multi-head self-attention across the timeframe embeddings with a residual and LayerNorm,
// then dense heads for the direction class (down / flat / up), the forward return and, optionally,
// the pattern type. Owns its fitted feature normaliser and target scale, and saves them with the
// weights in one directory. Never reads data itself: windows come in as tensors or typed arrays.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import type { Timeframe } from '../../data-processing/candles.js';
import { CheckpointError } from '../../errors.js';
import type { Config } from '../../utils/config.js';
import { writeFileAtomicSync } from '../../utils/fs.js';
import { logger } from '../../utils/logger.js';
import { Rng } from '../../utils/random.js';
import { FittedNormalizer, type NormalizerJson } from '../../data-processing/normalizer.js';
import { specMismatch, type ModelInputSpec } from '../../data-processing/window-datasets.js';
import { glorotUniform, orthogonalGates } from '../common/init.js';
import { assignValues } from '../common/tensors.js';
import { gruSequence, type GruRecurrence } from './gru.js';

/** Direction classes of the direction head, in output order. */
export const DIRECTION_CLASSES = ['down', 'flat', 'up'] as const;

/** Recurrent cell of the encoders. */
export type RecurrentCell = 'gru' | 'lstm';
/** GRU implementation: the fused custom-gradient op (fast) or the stock tf.layers.gru (fallback). */
export type GruImplementation = 'fused' | 'layers';
/** How an encoder turns its states into one embedding. */
export type Pooling = 'last' | 'attention';

/** Architecture and loss settings of a model (config section `model`, plus the data's spec). */
export interface MultiTimeframeModelConfig {
  /** The input spec: timeframes, window lengths (bars) and feature names the model reads. */
  readonly spec: ModelInputSpec;
  /** Recurrent cell of every encoder layer. */
  readonly cell: RecurrentCell;
  /** GRU implementation (read only when `cell` is `gru`). */
  readonly gruImplementation: GruImplementation;
  /** Units of every recurrent layer (the embedding size of each timeframe). */
  readonly hiddenDims: number;
  /** Recurrent layers per timeframe. */
  readonly numLayers: number;
  /** How each encoder pools its states into one embedding: last state or attention pooling. */
  readonly pooling: Pooling;
  /** Heads of the attention across timeframes; 0 turns the fusion into a plain concatenation. */
  readonly attentionHeads: number;
  /** Units of the dense layer before the heads. */
  readonly denseUnits: number;
  /** Dropout rate on the fused vector and after the dense layer, in [0, 1). */
  readonly dropout: number;
  /** Pattern classes of the optional pattern head (empty: no pattern head). */
  readonly patternClasses: readonly string[];
  /** Multi-task loss weights. */
  readonly lossWeights: {
    readonly direction: number;
    readonly forwardReturn: number;
    readonly pattern: number;
  };
  /** Normalised inputs are clipped to ±inputClip. */
  readonly inputClip: number;
}

/** Scale of the forward-return target (fitted on training labels): z = (r − mean) / std. */
export interface TargetScale {
  /** Mean of the training forward returns (log return). */
  readonly mean: number;
  /** Standard deviation of the training forward returns (log return), > 0. */
  readonly std: number;
}

/** Tensors of one forward pass. */
export interface ModelOutputs {
  /** Direction logits [B, 3]. */
  directionLogits: tf.Tensor2D;
  /** Standardised forward-return prediction [B]. */
  forwardReturnZ: tf.Tensor1D;
  /** Pattern logits [B, P], when the model has a pattern head. */
  patternLogits: tf.Tensor2D | null;
}

/** Predictions in user units. */
export interface ModelPrediction {
  /** Direction probabilities [B, 3] (down, flat, up). */
  direction: tf.Tensor2D;
  /** Forward return (log return over the label horizon) [B]. */
  forwardReturn: tf.Tensor1D;
  /** Pattern probabilities [B, P], when the model has a pattern head. */
  pattern: tf.Tensor2D | null;
}

/** Targets of one batch. */
export interface ModelTargets {
  /** Direction class per sample (0 down, 1 flat, 2 up). */
  direction: Int32Array;
  /** Forward return per sample (raw; the model standardises it). */
  forwardReturn: Float32Array;
  /** Pattern class per sample, -1 when unknown; omitted when there is none. */
  pattern?: Int32Array;
}

/** Loss of one batch: the weighted total and its parts. */
export interface ModelLoss {
  /** Weighted sum of the parts (`lossWeights`): the training objective. */
  total: tf.Scalar;
  /** Class-weighted mean cross-entropy of the direction head. */
  direction: tf.Scalar;
  /** Huber loss (delta 1) of the standardised forward return. */
  forwardReturn: tf.Scalar;
  /**
   * Mean cross-entropy of the pattern head over samples with a known pattern; null without a
   * pattern head or labels.
   */
  pattern: tf.Scalar | null;
}

/**
 * The encoders (and fusion) of a model as the feature extractor of an RL policy. It owns a copy of
 * the weights (fine-tuning it never changes the model it came from) and the model's normaliser.
 */
export interface FeatureExtractor {
  /** The input spec the extractor reads (timeframes, windows, feature names). */
  readonly spec: ModelInputSpec;
  /** Length of the feature vector `extract` returns per sample. */
  readonly outputSize: number;
  /** The extractor's own trainable variables (freeze them or fine-tune them). */
  readonly variables: readonly tf.Variable[];
  /** Stable names of `variables` (`enc.15m.0.W`, ...). */
  readonly variableNames: readonly string[];
  /**
   * Features [B, outputSize] from raw windows (one [B, T, F] tensor per timeframe, spec order):
   * normalised with the model's normaliser, encoded, fused (`fused` level) or only concatenated
   * (`encoders` level).
   */
  extract(xs: readonly tf.Tensor3D[]): tf.Tensor2D;
  /** Copies of the variables' values, in `variableNames` order. */
  getWeights(): Float32Array[];
  /** Sets the variables' values (`variableNames` order). @throws {RangeError} on a size mismatch. */
  setWeights(values: readonly Float32Array[]): void;
  /** Frees the extractor's copy of the weights. */
  dispose(): void;
}

interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

interface Encoder {
  tf: Timeframe;
  /** Fused GRU layers: [W, U, bih, bhh] per layer. */
  fused: tf.Variable[][];
  /** Stock layers (GRU fallback or LSTM). */
  stock: tf.layers.Layer[];
  /** Attention-pooling vector [H, 1], when pooling is `attention`. */
  poolV: tf.Variable | null;
}

const FORMAT = 'ctm-sequence-model';

let cpuWarned = false;

/** The cpu backend is 10-30x slower than wasm per op: say so once when a model is made on it. */
function warnOnCpuBackend(): void {
  if (cpuWarned || tf.getBackend() !== 'cpu') return;
  cpuWarned = true;
  logger.warn('tfjs runs on the cpu backend: call initTensorflow() first (wasm is 10-30x faster)');
}

/** Frees the tensors of a forward pass. */
export function disposeOutputs(out: ModelOutputs): void {
  tf.dispose([out.directionLogits, out.forwardReturnZ, out.patternLogits ?? []].flat());
}
const FORMAT_VERSION = 1;

/** A trainable variable holding `values` (the initial tensor is freed: the variable shares its data). */
function variable(values: Float32Array, shape: number[]): tf.Variable {
  const t = tf.tensor(values, shape, 'float32');
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

function zerosVar(shape: number[]): tf.Variable {
  return variable(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
}

/** Per-timeframe centre and inverse scale of a normaliser for the columns of a spec. */
export interface SpecNormalization {
  /** Centre subtracted from each column of the timeframe, spec column order. */
  center: Float32Array;
  /**
   * 1 / scale of each column. `fitNormalizer` stores a scale of 1 for a constant column (it then
   * passes through centred); 0 appears only for a scale of 0 in a hand-written normaliser file,
   * and zeroes that column.
   */
  invScale: Float32Array;
}

/**
 * The statistics of `normalizer` for every column of `spec` (looked up by name), in spec order;
 * a zero scale (possible only in a hand-written normaliser file: `fitNormalizer` stores 1 for a
 * constant column) gives inverse scale 0, which zeroes the column.
 * @throws {CheckpointError} when the normaliser lacks a timeframe or column of the spec.
 */
export function normalizerStats(
  normalizer: FittedNormalizer,
  spec: ModelInputSpec,
): SpecNormalization[] {
  return spec.timeframes.map((t) => {
    const st = normalizer.json.timeframes[t];
    if (st === undefined)
      throw new CheckpointError(normalizer.source, `normaliser was not fitted on ${t}`);
    const names = spec.features[t] ?? [];
    const center = new Float32Array(names.length);
    const invScale = new Float32Array(names.length);
    names.forEach((name, j) => {
      const k = st.names.indexOf(name);
      if (k < 0)
        throw new CheckpointError(
          normalizer.source,
          `normaliser has no statistics for ${t}.${name}`,
        );
      center[j] = st.center[k];
      invScale[j] = st.scale[k] > 0 ? 1 / st.scale[k] : 0;
    });
    return { center, invScale };
  });
}

/**
 * The architecture of config section `model` for the data's spec (and pattern classes, when the
 * data carry pattern labels).
 */
export function modelConfigFromSection(
  section: Config['model'],
  spec: ModelInputSpec,
  patternClasses: readonly string[] = [],
): MultiTimeframeModelConfig {
  return {
    spec,
    cell: section.cell,
    gruImplementation: section.gruImplementation,
    hiddenDims: section.hiddenDims,
    numLayers: section.numLayers,
    pooling: section.pooling,
    attentionHeads: section.attentionHeads,
    denseUnits: section.denseUnits,
    dropout: section.dropout,
    patternClasses: [...patternClasses],
    lossWeights: { ...section.lossWeights },
    inputClip: section.inputClip,
  };
}

function validateConfig(c: MultiTimeframeModelConfig): void {
  const bad = (what: string): never => {
    throw new RangeError(`MultiTimeframeModel: ${what}`);
  };
  if (c.spec.timeframes.length === 0) bad('no timeframes');
  for (const t of c.spec.timeframes) {
    if (!((c.spec.windows[t] ?? 0) > 0)) bad(`window of ${t} must be positive`);
    if (!((c.spec.features[t]?.length ?? 0) > 0)) bad(`no features for ${t}`);
  }
  if (!(Number.isInteger(c.hiddenDims) && c.hiddenDims > 0))
    bad('hiddenDims must be a positive integer');
  if (!(Number.isInteger(c.numLayers) && c.numLayers > 0))
    bad('numLayers must be a positive integer');
  if (c.attentionHeads > 0 && c.hiddenDims % c.attentionHeads !== 0)
    bad(`hiddenDims ${c.hiddenDims} is not divisible by attentionHeads ${c.attentionHeads}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) bad('dropout must be in [0, 1)');
  if (!(c.denseUnits > 0)) bad('denseUnits must be positive');
}

/**
 * The multi-timeframe sequence model. Create with `MultiTimeframeModel.create(config, seed)` (the
 * same seed gives the same initial weights) or `MultiTimeframeModel.load(dir)`. Call
 * `initTensorflow()` first.
 * @example
 * const model = MultiTimeframeModel.create(config, 42);
 * const { direction } = model.predict(x15m, x4h, x1d); // probabilities [B, 3]
 */
export class MultiTimeframeModel {
  /** Architecture, loss weights and input spec the model was built with. */
  readonly config: MultiTimeframeModelConfig;
  /**
   * Feature normaliser fitted on the training rows (set by training; null until then: inputs
   * pass through, NaN as 0). Saved with the model.
   */
  normalizer: FittedNormalizer | null = null;
  /** Forward-return target scale (set by training). */
  targetScale: TargetScale = { mean: 0, std: 1 };
  /** GRU recurrence implementation (`auto`: wasm kernels on wasm). Not saved. */
  recurrence: GruRecurrence = 'auto';

  private readonly encoders: Encoder[] = [];
  private readonly named: NamedVariable[] = [];
  private readonly attn: {
    wqkv: tf.Variable;
    bqkv: tf.Variable;
    wo: tf.Variable;
    bo: tf.Variable;
    gamma: tf.Variable;
    beta: tf.Variable;
  } | null;
  private readonly dense: { w: tf.Variable; b: tf.Variable };
  private readonly headDir: { w: tf.Variable; b: tf.Variable };
  private readonly headRet: { w: tf.Variable; b: tf.Variable };
  private readonly headPat: { w: tf.Variable; b: tf.Variable } | null;
  private normStats: SpecNormalization[] | null = null;
  private normTensors: { mean: tf.Tensor; invStd: tf.Tensor }[] | null = null;
  private disposed = false;

  private constructor(config: MultiTimeframeModelConfig, seed: number) {
    validateConfig(config);
    this.config = config;
    const rng = new Rng(seed).fork('model-init');
    const H = config.hiddenDims;
    const add = (name: string, v: tf.Variable): tf.Variable => {
      this.named.push({ name, variable: v });
      return v;
    };
    for (const t of config.spec.timeframes) {
      const F = config.spec.features[t]!.length;
      const enc: Encoder = { tf: t, fused: [], stock: [], poolV: null };
      const lastSequences = config.pooling === 'attention';
      for (let l = 0; l < config.numLayers; l++) {
        const inDim = l === 0 ? F : H;
        const prefix = `enc.${t}.${l}`;
        if (config.cell === 'gru' && config.gruImplementation === 'fused') {
          enc.fused.push([
            add(`${prefix}.W`, variable(glorotUniform(rng, inDim, 3 * H), [inDim, 3 * H])),
            add(`${prefix}.U`, variable(orthogonalGates(rng, H, 3), [H, 3 * H])),
            add(`${prefix}.bih`, zerosVar([3 * H])),
            add(`${prefix}.bhh`, zerosVar([3 * H])),
          ]);
        } else {
          const gates = config.cell === 'gru' ? 3 : 4;
          const returnSequences = l < config.numLayers - 1 || lastSequences;
          const layer =
            config.cell === 'gru'
              ? tf.layers.gru({ units: H, returnSequences, recurrentActivation: 'sigmoid' })
              : tf.layers.lstm({ units: H, returnSequences, recurrentActivation: 'sigmoid' });
          // Building through apply (a direct build() leaves the RNN layer unbuilt).
          tf.tidy(() => {
            layer.apply(tf.zeros([1, config.spec.windows[t]!, inDim]));
          });
          const bias = new Float32Array(gates * H);
          // LSTM forget-gate bias 1 (as Keras' unitForgetBias).
          if (config.cell === 'lstm') bias.fill(1, H, 2 * H);
          const initial = [
            tf.tensor(glorotUniform(rng, inDim, gates * H), [inDim, gates * H]),
            tf.tensor(orthogonalGates(rng, H, gates), [H, gates * H]),
            tf.tensor(bias, [gates * H]),
          ];
          layer.setWeights(initial);
          tf.dispose(initial);
          const names = ['kernel', 'recurrent', 'bias'];
          layer.trainableWeights.forEach((w, i) =>
            add(`${prefix}.${names[i]}`, w.read() as tf.Variable),
          );
          enc.stock.push(layer);
        }
      }
      if (config.pooling === 'attention')
        enc.poolV = add(`enc.${t}.pool`, variable(glorotUniform(rng, H, 1), [H, 1]));
      this.encoders.push(enc);
    }
    if (config.attentionHeads > 0) {
      const wqkv = new Float32Array(H * 3 * H);
      for (let g = 0; g < 3; g++) {
        const block = glorotUniform(rng, H, H);
        for (let i = 0; i < H; i++)
          for (let j = 0; j < H; j++) wqkv[i * 3 * H + g * H + j] = block[i * H + j];
      }
      this.attn = {
        wqkv: add('fusion.wqkv', variable(wqkv, [H, 3 * H])),
        bqkv: add('fusion.bqkv', zerosVar([3 * H])),
        wo: add('fusion.wo', variable(glorotUniform(rng, H, H), [H, H])),
        bo: add('fusion.bo', zerosVar([H])),
        gamma: add('fusion.ln.gamma', variable(new Float32Array(H).fill(1), [H])),
        beta: add('fusion.ln.beta', zerosVar([H])),
      };
    } else {
      this.attn = null;
    }
    const fused = H * config.spec.timeframes.length;
    const D = config.denseUnits;
    this.dense = {
      w: add('dense.w', variable(glorotUniform(rng, fused, D), [fused, D])),
      b: add('dense.b', zerosVar([D])),
    };
    this.headDir = {
      w: add('head.direction.w', variable(glorotUniform(rng, D, 3), [D, 3])),
      b: add('head.direction.b', zerosVar([3])),
    };
    this.headRet = {
      w: add('head.return.w', variable(glorotUniform(rng, D, 1), [D, 1])),
      b: add('head.return.b', zerosVar([1])),
    };
    const P = config.patternClasses.length;
    this.headPat =
      P > 0
        ? {
            w: add('head.pattern.w', variable(glorotUniform(rng, D, P), [D, P])),
            b: add('head.pattern.b', zerosVar([P])),
          }
        : null;
  }

  /**
   * Creates a model with weights initialised from `seed` (Glorot-uniform kernels, orthogonal
   * recurrent kernels, zero biases).
   * @throws {RangeError} on an invalid configuration.
   */
  static create(config: MultiTimeframeModelConfig, seed: number): MultiTimeframeModel {
    warnOnCpuBackend();
    return new MultiTimeframeModel(config, seed);
  }

  /** The model's feature spec (what `predict` expects, in order). */
  get spec(): ModelInputSpec {
    return this.config.spec;
  }

  /** Trainable variables in a stable order (the order of `weightNames`). */
  get trainableVariables(): tf.Variable[] {
    return this.named.map((n) => n.variable);
  }

  /** Stable names of the weights (`enc.15m.0.W`, `fusion.wqkv`, `head.direction.w`, ...). */
  get weightNames(): string[] {
    return this.named.map((n) => n.name);
  }

  /** Number of trainable parameters. */
  get parameterCount(): number {
    return this.named.reduce((s, n) => s + n.variable.size, 0);
  }

  /**
   * Sets the feature normaliser. Its statistics are looked up by feature name for every column of
   * the spec.
   * @throws {CheckpointError} when it lacks a timeframe or feature of the spec.
   */
  setNormalizer(normalizer: FittedNormalizer | null): void {
    const stats = normalizer === null ? null : normalizerStats(normalizer, this.config.spec);
    this.normalizer = normalizer;
    this.normStats = stats;
    if (this.normTensors !== null) tf.dispose(this.normTensors.flatMap((n) => [n.mean, n.invStd]));
    this.normTensors = null;
  }

  private normalize(x: tf.Tensor3D, i: number): tf.Tensor3D {
    const clip = this.config.inputClip;
    if (this.normStats === null) {
      return tf.clipByValue(tf.where(tf.isNaN(x), tf.zerosLike(x), x), -clip, clip) as tf.Tensor3D;
    }
    if (this.normTensors === null) {
      this.normTensors = this.normStats.map((s) => ({
        mean: tf.keep(tf.tensor1d(s.center)),
        invStd: tf.keep(tf.tensor1d(s.invScale)),
      }));
    }
    const { mean, invStd } = this.normTensors[i];
    const z = tf.mul(tf.sub(x, mean), invStd);
    return tf.clipByValue(tf.where(tf.isNaN(z), tf.zerosLike(z), z), -clip, clip) as tf.Tensor3D;
  }

  private checkInputs(xs: readonly tf.Tensor[]): number {
    const spec = this.config.spec;
    if (xs.length !== spec.timeframes.length)
      throw new RangeError(
        `expected ${spec.timeframes.length} inputs (${spec.timeframes.join(', ')}), got ${xs.length}`,
      );
    const B = xs[0].shape[0];
    xs.forEach((x, i) => {
      const t = spec.timeframes[i];
      const want = [B, spec.windows[t]!, spec.features[t]!.length];
      if (x.rank !== 3 || x.shape.some((d, k) => d !== want[k]))
        throw new RangeError(`input ${t} has shape [${x.shape}], expected [${want}]`);
    });
    return B;
  }

  private encode(enc: Encoder, x: tf.Tensor3D): tf.Tensor2D {
    const c = this.config;
    const H = c.hiddenDims;
    const attentionPool = c.pooling === 'attention';
    let h: tf.Tensor = x;
    for (let l = 0; l < c.numLayers; l++) {
      const sequences = l < c.numLayers - 1 || attentionPool;
      if (enc.fused.length > 0) {
        const [W, U, bih, bhh] = enc.fused[l];
        h = gruSequence(
          h as tf.Tensor3D,
          { W, U, bih, bhh },
          {
            returnSequences: sequences,
            inputGradient: l > 0,
            recurrence: this.recurrence,
          },
        );
      } else {
        h = enc.stock[l].apply(h) as tf.Tensor;
      }
    }
    if (!attentionPool) return h as tf.Tensor2D;
    // Attention pooling over time: α = softmax_t(h_t · v), embedding = Σ_t α_t h_t.
    const [B, T] = h.shape;
    const scores = tf.reshape(tf.matMul(tf.reshape(h, [B * T!, H]), enc.poolV!), [B, T!]);
    const alpha = tf.reshape(tf.softmax(scores), [B, T!, 1]);
    return tf.sum(tf.mul(h, alpha), 1) as tf.Tensor2D;
  }

  private fuse(embeddings: tf.Tensor2D[]): tf.Tensor2D {
    const c = this.config;
    const H = c.hiddenDims;
    const n = embeddings.length;
    const B = embeddings[0].shape[0];
    const e = tf.reshape(tf.stack(embeddings, 1), [B * n, H]) as tf.Tensor2D;
    if (this.attn === null) return tf.reshape(e, [B, n * H]);
    const heads = c.attentionHeads;
    const d = H / heads;
    const qkv = tf.fused.matMul({ a: e, b: this.attn.wqkv, bias: this.attn.bqkv });
    const split = (k: number): tf.Tensor =>
      tf.transpose(
        tf.reshape(tf.slice(qkv, [0, k * H], [B * n, H]), [B, n, heads, d]),
        [0, 2, 1, 3],
      );
    const q = split(0);
    const kk = split(1);
    const v = split(2);
    const att = tf.softmax(tf.mul(tf.matMul(q, kk, false, true), 1 / Math.sqrt(d)));
    const ctx = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B * n, H]);
    const out = tf.add(
      tf.fused.matMul({ a: ctx as tf.Tensor2D, b: this.attn.wo, bias: this.attn.bo }),
      e,
    );
    const { mean, variance } = tf.moments(out, 1, true);
    const ln = tf.add(
      tf.mul(tf.mul(tf.sub(out, mean), tf.rsqrt(tf.add(variance, 1e-5))), this.attn.gamma),
      this.attn.beta,
    );
    return tf.reshape(ln, [B, n * H]);
  }

  private dropout(x: tf.Tensor2D, rng: Rng | null): tf.Tensor2D {
    const p = this.config.dropout;
    if (rng === null || p === 0) return x;
    const mask = new Float32Array(x.size);
    const keep = 1 / (1 - p);
    for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < p ? 0 : keep;
    return tf.mul(x, tf.tensor(mask, x.shape)) as tf.Tensor2D;
  }

  /**
   * Forward pass on raw windows (normalised inside). `dropoutRng` non-null = training mode
   * (dropout masks drawn from it, so a run is reproducible and resumable).
   * @throws {RangeError} when the inputs do not match the spec.
   */
  forward(xs: readonly tf.Tensor3D[], dropoutRng: Rng | null = null): ModelOutputs {
    const B = this.checkInputs(xs);
    return tf.tidy(() => {
      const embeddings = this.encoders.map((enc, i) => this.encode(enc, this.normalize(xs[i], i)));
      const fused = this.dropout(this.fuse(embeddings), dropoutRng);
      const dense = tf.fused.matMul({
        a: fused,
        b: this.dense.w,
        bias: this.dense.b,
        activation: 'relu',
      }) as tf.Tensor2D;
      const hidden = this.dropout(dense, dropoutRng);
      const directionLogits = tf.fused.matMul({
        a: hidden,
        b: this.headDir.w,
        bias: this.headDir.b,
      });
      const forwardReturnZ = tf.reshape(
        tf.fused.matMul({ a: hidden, b: this.headRet.w, bias: this.headRet.b }),
        [B],
      ) as tf.Tensor1D;
      const patternLogits =
        this.headPat === null
          ? null
          : tf.fused.matMul({ a: hidden, b: this.headPat.w, bias: this.headPat.b });
      return { directionLogits, forwardReturnZ, patternLogits } as unknown as Record<
        string,
        tf.Tensor
      >;
    }) as unknown as ModelOutputs;
  }

  /** Probabilities and the forward return in user units, from the outputs of `forward`. */
  predictionFrom(out: ModelOutputs): ModelPrediction {
    const { mean, std } = this.targetScale;
    return {
      direction: tf.softmax(out.directionLogits),
      forwardReturn: tf.tidy(() => tf.add(tf.mul(out.forwardReturnZ, std), mean)),
      pattern: out.patternLogits === null ? null : tf.softmax(out.patternLogits),
    };
  }

  /**
   * Predicts from raw windows, one [B, T, F] tensor per timeframe in spec order (for the default
   * spec: `predict(x15m, x4h, x1d)`). Returns probabilities and the forward return in user units.
   * @throws {RangeError} when the inputs do not match the spec.
   */
  predict(...xs: tf.Tensor3D[]): ModelPrediction {
    const out = this.forward(xs, null);
    const pred = this.predictionFrom(out);
    disposeOutputs(out);
    return pred;
  }

  /**
   * Predicts from typed arrays (each [B, T, F] row-major, spec order): direction probabilities
   * [B·3], forward return [B] and pattern probabilities [B·P] (or null).
   */
  predictArrays(
    windows: readonly Float32Array[],
    batch: number,
  ): { direction: Float32Array; forwardReturn: Float32Array; pattern: Float32Array | null } {
    const spec = this.config.spec;
    const xs = windows.map((w, i) => {
      const t = spec.timeframes[i];
      return tf.tensor3d(w, [batch, spec.windows[t]!, spec.features[t]!.length]);
    });
    const p = this.predict(...xs);
    const result = {
      direction: p.direction.dataSync() as Float32Array,
      forwardReturn: p.forwardReturn.dataSync() as Float32Array,
      pattern: p.pattern === null ? null : (p.pattern.dataSync() as Float32Array),
    };
    tf.dispose([...xs, p.direction, p.forwardReturn, p.pattern ?? []].flat());
    return result;
  }

  /**
   * Multi-task loss from the outputs of `forward`: weighted cross-entropy of the direction (class
   * weights as PyTorch's `CrossEntropyLoss(weight)`: Σ w_y·CE / Σ w_y), Huber loss (δ = 1) of the
   * standardised forward return, and cross-entropy of the pattern over samples with a known one.
   */
  lossFrom(out: ModelOutputs, targets: ModelTargets, classWeights: Float32Array | null): ModelLoss {
    const B = targets.direction.length;
    const w = this.config.lossWeights;
    return tf.tidy(() => {
      const sampleW = new Float32Array(B);
      let wSum = 0;
      for (let i = 0; i < B; i++) {
        sampleW[i] = classWeights === null ? 1 : classWeights[targets.direction[i]];
        wSum += sampleW[i];
      }
      const onehot = tf.oneHot(tf.tensor1d(targets.direction, 'int32'), 3);
      const ce = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(out.directionLogits)), 1));
      const direction = tf.div(tf.sum(tf.mul(ce, tf.tensor1d(sampleW))), Math.max(wSum, 1e-12));
      const zTarget = new Float32Array(B);
      const { mean, std } = this.targetScale;
      for (let i = 0; i < B; i++) zTarget[i] = (targets.forwardReturn[i] - mean) / std;
      const forwardReturn = tf.losses.huberLoss(
        tf.tensor1d(zTarget),
        out.forwardReturnZ,
        undefined,
        1,
      );
      let total = tf.add(tf.mul(direction, w.direction), tf.mul(forwardReturn, w.forwardReturn));
      let pattern: tf.Tensor | null = null;
      if (out.patternLogits !== null && targets.pattern !== undefined) {
        const P = this.config.patternClasses.length;
        const mask = new Float32Array(B);
        const cls = new Int32Array(B);
        let known = 0;
        for (let i = 0; i < B; i++) {
          const p = targets.pattern[i];
          if (p >= 0 && p < P) {
            mask[i] = 1;
            cls[i] = p;
            known++;
          }
        }
        const logp = tf.logSoftmax(out.patternLogits);
        const pce = tf.neg(tf.sum(tf.mul(tf.oneHot(tf.tensor1d(cls, 'int32'), P), logp), 1));
        pattern = tf.div(tf.sum(tf.mul(pce, tf.tensor1d(mask))), Math.max(1, known));
        total = tf.add(total, tf.mul(pattern, w.pattern));
      }
      // tidy keeps every tensor of the returned object (null entries are skipped).
      return { total, direction, forwardReturn, pattern } as unknown as tf.TensorContainer;
    }) as unknown as ModelLoss;
  }

  /**
   * Forward pass and multi-task loss of a batch (see `lossFrom`); also returns the direction
   * logits of the pass. `dropoutRng` non-null = training mode.
   */
  loss(
    xs: readonly tf.Tensor3D[],
    targets: ModelTargets,
    classWeights: Float32Array | null,
    dropoutRng: Rng | null,
  ): ModelLoss & { directionLogits: tf.Tensor2D } {
    const out = this.forward(xs, dropoutRng);
    const l = this.lossFrom(out, targets, classWeights);
    tf.dispose([out.forwardReturnZ, out.patternLogits ?? []].flat());
    return { ...l, directionLogits: out.directionLogits };
  }

  /**
   * The encoders as a feature extractor for an RL policy, on a copy of the weights (and of the
   * normaliser): training the extractor never changes this model. `level: 'fused'` (default)
   * returns the fused vector after attention [B, n·H]; `'encoders'` the concatenated timeframe
   * embeddings. Dispose the extractor when done.
   */
  featureExtractor(level: 'fused' | 'encoders' = 'fused'): FeatureExtractor {
    const copy = new MultiTimeframeModel(this.config, 0);
    copy.setWeights(this.getWeights());
    copy.setNormalizer(this.normalizer);
    copy.targetScale = { ...this.targetScale };
    copy.recurrence = this.recurrence;
    return copy.ownExtractor(level);
  }

  /** The extractor over this model's own variables (it disposes the model). */
  private ownExtractor(level: 'fused' | 'encoders'): FeatureExtractor {
    const spec = this.config.spec;
    const n = spec.timeframes.length;
    const picked = this.named.filter(
      (v) => v.name.startsWith('enc.') || (level === 'fused' && v.name.startsWith('fusion.')),
    );
    const vars = picked.map((v) => v.variable);
    return {
      spec,
      outputSize: n * this.config.hiddenDims,
      variables: vars,
      variableNames: picked.map((v) => v.name),
      extract: (xs) => {
        this.checkInputs(xs);
        return tf.tidy(() => {
          const emb = this.encoders.map((enc, i) => this.encode(enc, this.normalize(xs[i], i)));
          if (level === 'fused') return this.fuse(emb);
          return tf.concat(emb, 1) as tf.Tensor2D;
        });
      },
      getWeights: () => vars.map((v) => Float32Array.from(v.dataSync() as Float32Array)),
      setWeights: (values) => {
        if (values.length !== vars.length)
          throw new RangeError(`extractor has ${vars.length} variables, got ${values.length} arrays`);
        vars.forEach((v, k) => {
          if (values[k].length !== v.size)
            throw new RangeError(`${picked[k].name} has ${v.size} values, got ${values[k].length}`);
          assignValues(v, values[k]);
        });
      },
      dispose: () => this.dispose(),
    };
  }

  /** Copies of the weights by name. */
  getWeights(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const n of this.named) out.set(n.name, n.variable.dataSync() as Float32Array);
    return out;
  }

  /**
   * Sets weights by name (every weight of the model must be present with its size).
   * @throws {RangeError} on a missing or mis-sized weight.
   */
  setWeights(weights: ReadonlyMap<string, Float32Array>): void {
    for (const n of this.named) {
      const v = weights.get(n.name);
      if (v === undefined) throw new RangeError(`weight ${n.name} missing`);
      if (v.length !== n.variable.size)
        throw new RangeError(
          `weight ${n.name} has ${v.length} values, expected ${n.variable.size}`,
        );
    }
    for (const n of this.named) assignValues(n.variable, weights.get(n.name)!);
  }

  /**
   * Saves the model into directory `dir`: model.json (format, config, spec, normaliser, target
   * scale, weight manifest) and a weights file named by its hash. model.json is written last and
   * atomically, so a crash leaves the previous model readable; stale weight files are removed.
   */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const manifest: { name: string; shape: number[]; offset: number; length: number }[] = [];
    let total = 0;
    for (const n of this.named) {
      manifest.push({
        name: n.name,
        shape: n.variable.shape,
        offset: total,
        length: n.variable.size,
      });
      total += n.variable.size;
    }
    const all = new Float32Array(total);
    for (let i = 0; i < this.named.length; i++)
      all.set(this.named[i].variable.dataSync() as Float32Array, manifest[i].offset);
    const bytes = new Uint8Array(all.buffer);
    const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    const weightsFile = `weights-${hash}.bin`;
    writeFileAtomicSync(join(dir, weightsFile), bytes);
    const doc = {
      format: FORMAT,
      version: FORMAT_VERSION,
      tfjsVersion: tf.version_core,
      config: this.config,
      normalizer: this.normalizer === null ? null : this.normalizer.json,
      targetScale: this.targetScale,
      weightsFile,
      weights: manifest,
    };
    writeFileAtomicSync(join(dir, 'model.json'), JSON.stringify(doc, null, 1) + '\n');
    for (const f of readdirSync(dir))
      if (/^weights-[0-9a-f]+\.bin$/.test(f) && f !== weightsFile)
        rmSync(join(dir, f), { force: true });
  }

  /**
   * Loads a model saved with `save`. With `expectedSpec`, refuses (CheckpointError) a model whose
   * feature spec differs from the data's.
   * @throws {CheckpointError} when the directory is missing, corrupt, of another format, or the
   * spec does not match.
   */
  static load(dir: string, expectedSpec?: ModelInputSpec): MultiTimeframeModel {
    const file = join(dir, 'model.json');
    if (!existsSync(file)) throw new CheckpointError(dir, 'not a model directory (no model.json)');
    let doc: {
      format: string;
      version: number;
      config: MultiTimeframeModelConfig;
      normalizer: NormalizerJson | null;
      targetScale: TargetScale;
      weightsFile: string;
      weights: { name: string; shape: number[]; offset: number; length: number }[];
    };
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as typeof doc;
    } catch (err) {
      throw new CheckpointError(file, 'model.json is not valid JSON', { cause: err });
    }
    if (doc.format !== FORMAT || doc.version !== FORMAT_VERSION)
      throw new CheckpointError(file, `not a ${FORMAT} v${FORMAT_VERSION} model`);
    if (expectedSpec !== undefined) {
      const why = specMismatch(doc.config.spec, expectedSpec);
      if (why !== null)
        throw new CheckpointError(dir, `model does not fit the data: ${why}`, {
          hint: 'build features with the same feature set and windows the model was trained on',
        });
    }
    const wfile = join(dir, doc.weightsFile);
    if (!existsSync(wfile)) throw new CheckpointError(wfile, 'weights file missing');
    const buf = readFileSync(wfile);
    const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    warnOnCpuBackend();
    const model = new MultiTimeframeModel(doc.config, 0);
    const weights = new Map<string, Float32Array>();
    for (const w of doc.weights) {
      if (w.offset + w.length > all.length)
        throw new CheckpointError(wfile, `weights file too short for ${w.name}`);
      weights.set(w.name, all.subarray(w.offset, w.offset + w.length));
    }
    try {
      model.setWeights(weights);
    } catch (err) {
      model.dispose();
      throw new CheckpointError(dir, (err as Error).message, { cause: err });
    }
    try {
      if (doc.normalizer !== null) model.setNormalizer(new FittedNormalizer(doc.normalizer, file));
    } catch (err) {
      model.dispose();
      throw err;
    }
    model.targetScale = doc.targetScale;
    return model;
  }

  /** Frees every tensor of the model. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    // Stock layers own their variables; the others are ours.
    const owned = new Set(
      this.encoders.flatMap((e) => e.stock.flatMap((l) => l.trainableWeights.map((w) => w.read()))),
    );
    for (const enc of this.encoders) for (const l of enc.stock) l.dispose();
    for (const n of this.named) if (!owned.has(n.variable)) n.variable.dispose();
    if (this.normTensors !== null) tf.dispose(this.normTensors.flatMap((n) => [n.mean, n.invStd]));
  }
}
