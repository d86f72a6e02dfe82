// The multilayer perceptron of the RL agents (DQN's Q-network, PPO's actor and critic, heads on top
// of the sequence model's encoders), in plain typed arrays: forward and backward passes written out
// by hand. At these sizes (two hidden layers of 64, batches of 32-256) TensorFlow.js spends far more
// time dispatching ops than computing, so acting one observation at a time and the agents' gradient
// steps run here; `mlpForwardTf` (tensors.ts) reads the same weights into tfjs, and a test holds the
// two to 1e-6. Weights are [out, in] row-major per layer (PyTorch's layout), so every product is a
// register-blocked loop (two rows by four outputs: eight accumulators, each input loaded once per
// block), three to four times faster than a plain triple loop in V8. Workspaces hold every activation
// a backward pass needs, so a forward/backward pair allocates nothing once grown to its batch.

import type { Rng } from '../../utils/random.js';
import { glorotUniform, orthogonal } from './init.js';
import { arrayParameter, type Parameter } from './optimizer.js';

/** Activation of a layer. */
export type Activation = 'tanh' | 'relu' | 'identity';

/** Shape and initialisation of an MLP. */
export interface MlpSpec {
  /** Layer widths, input first, output last: `[obsSize, 64, 64, actions]`. At least two. */
  readonly sizes: readonly number[];
  /** Activation of the hidden layers. */
  readonly activation: Activation;
  /** Activation of the output layer; default `identity`. */
  readonly outputActivation?: Activation;
  /** `orthogonal` (default; PPO/CleanRL) or `glorot` (Keras' default). Biases start at 0. */
  readonly init?: 'orthogonal' | 'glorot';
  /** Gain of the hidden layers' orthogonal init; default √2. */
  readonly hiddenGain?: number;
  /** Gain of the output layer's orthogonal init (0.01 for a policy head, 1 for a value head); default 1. */
  readonly outputGain?: number;
}

/** Activations of one forward pass, kept for the backward pass (see `Mlp.workspace`). */
export class MlpWorkspace {
  /** Rows the buffers hold. */
  capacity = 0;
  /** Rows of the last forward pass. */
  rows = 0;
  /** The input of the last forward pass (the caller's array: keep it unchanged until backward). */
  input: Float32Array = new Float32Array(0);
  /** Output of every layer after its activation, [rows, width] each. */
  acts: Float32Array[] = [];
  /** Backward scratch: the error signal at a layer's output, two buffers used in turn. */
  deltas: [Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0)];

  constructor(private readonly widths: readonly number[]) {}

  /** Grows the buffers to `rows` (allocates only when growing). */
  ensure(rows: number): void {
    if (rows <= this.capacity) return;
    const cap = Math.max(rows, this.capacity * 2);
    this.acts = this.widths.slice(1).map((w) => new Float32Array(cap * w));
    const widest = Math.max(...this.widths);
    this.deltas = [new Float32Array(cap * widest), new Float32Array(cap * widest)];
    this.capacity = cap;
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels (row-major; 2 x 4 register blocks, remainders one by one)

/** out[r, o] = bias[o] + Σ_i x[r, i] · W[o, i], for W [O, I]. */
function denseForward(
  x: Float32Array,
  W: Float32Array,
  bias: Float32Array,
  out: Float32Array,
  R: number,
  I: number,
  O: number,
): void {
  let r = 0;
  for (; r + 1 < R; r += 2) {
    const xa = r * I;
    const xb = xa + I;
    let o = 0;
    for (; o + 3 < O; o += 4) {
      const w0 = o * I;
      const w1 = w0 + I;
      const w2 = w1 + I;
      const w3 = w2 + I;
      let a0 = bias[o];
      let a1 = bias[o + 1];
      let a2 = bias[o + 2];
      let a3 = bias[o + 3];
      let c0 = a0;
      let c1 = a1;
      let c2 = a2;
      let c3 = a3;
      for (let i = 0; i < I; i++) {
        const u = x[xa + i];
        const v = x[xb + i];
        const k0 = W[w0 + i];
        const k1 = W[w1 + i];
        const k2 = W[w2 + i];
        const k3 = W[w3 + i];
        a0 += u * k0;
        a1 += u * k1;
        a2 += u * k2;
        a3 += u * k3;
        c0 += v * k0;
        c1 += v * k1;
        c2 += v * k2;
        c3 += v * k3;
      }
      const oa = r * O + o;
      const oc = oa + O;
      out[oa] = a0;
      out[oa + 1] = a1;
      out[oa + 2] = a2;
      out[oa + 3] = a3;
      out[oc] = c0;
      out[oc + 1] = c1;
      out[oc + 2] = c2;
      out[oc + 3] = c3;
    }
    for (; o < O; o++) {
      const w0 = o * I;
      let a = bias[o];
      let c = a;
      for (let i = 0; i < I; i++) {
        a += x[xa + i] * W[w0 + i];
        c += x[xb + i] * W[w0 + i];
      }
      out[r * O + o] = a;
      out[(r + 1) * O + o] = c;
    }
  }
  for (; r < R; r++) {
    const xa = r * I;
    for (let o = 0; o < O; o++) {
      const w0 = o * I;
      let a = bias[o];
      for (let i = 0; i < I; i++) a += x[xa + i] * W[w0 + i];
      out[r * O + o] = a;
    }
  }
}

/** dX[r, i] = Σ_o d[r, o] · W[o, i], for W [O, I]. */
function denseInputGrad(
  d: Float32Array,
  W: Float32Array,
  dX: Float32Array,
  R: number,
  I: number,
  O: number,
): void {
  let r = 0;
  for (; r + 1 < R; r += 2) {
    const da = r * O;
    const db = da + O;
    let i = 0;
    for (; i + 3 < I; i += 4) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let c0 = 0;
      let c1 = 0;
      let c2 = 0;
      let c3 = 0;
      let w = i;
      for (let o = 0; o < O; o++, w += I) {
        const u = d[da + o];
        const v = d[db + o];
        const k0 = W[w];
        const k1 = W[w + 1];
        const k2 = W[w + 2];
        const k3 = W[w + 3];
        a0 += u * k0;
        a1 += u * k1;
        a2 += u * k2;
        a3 += u * k3;
        c0 += v * k0;
        c1 += v * k1;
        c2 += v * k2;
        c3 += v * k3;
      }
      const oa = r * I + i;
      const oc = oa + I;
      dX[oa] = a0;
      dX[oa + 1] = a1;
      dX[oa + 2] = a2;
      dX[oa + 3] = a3;
      dX[oc] = c0;
      dX[oc + 1] = c1;
      dX[oc + 2] = c2;
      dX[oc + 3] = c3;
    }
    for (; i < I; i++) {
      let a = 0;
      let c = 0;
      for (let o = 0, w = i; o < O; o++, w += I) {
        a += d[da + o] * W[w];
        c += d[db + o] * W[w];
      }
      dX[r * I + i] = a;
      dX[(r + 1) * I + i] = c;
    }
  }
  for (; r < R; r++) {
    const da = r * O;
    for (let i = 0; i < I; i++) {
      let a = 0;
      for (let o = 0, w = i; o < O; o++, w += I) a += d[da + o] * W[w];
      dX[r * I + i] = a;
    }
  }
}

/** gW[o, i] = Σ_r d[r, o] · x[r, i] and gb[o] = Σ_r d[r, o] (overwritten). */
function denseWeightGrad(
  d: Float32Array,
  x: Float32Array,
  gW: Float32Array,
  gb: Float32Array,
  R: number,
  I: number,
  O: number,
): void {
  for (let o = 0; o < O; o++) {
    let s = 0;
    for (let r = 0, k = o; r < R; r++, k += O) s += d[k];
    gb[o] = s;
  }
  let o = 0;
  for (; o + 1 < O; o += 2) {
    let i = 0;
    for (; i + 3 < I; i += 4) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let c0 = 0;
      let c1 = 0;
      let c2 = 0;
      let c3 = 0;
      for (let r = 0, dk = o, xk = i; r < R; r++, dk += O, xk += I) {
        const u = d[dk];
        const v = d[dk + 1];
        const k0 = x[xk];
        const k1 = x[xk + 1];
        const k2 = x[xk + 2];
        const k3 = x[xk + 3];
        a0 += u * k0;
        a1 += u * k1;
        a2 += u * k2;
        a3 += u * k3;
        c0 += v * k0;
        c1 += v * k1;
        c2 += v * k2;
        c3 += v * k3;
      }
      const oa = o * I + i;
      const oc = oa + I;
      gW[oa] = a0;
      gW[oa + 1] = a1;
      gW[oa + 2] = a2;
      gW[oa + 3] = a3;
      gW[oc] = c0;
      gW[oc + 1] = c1;
      gW[oc + 2] = c2;
      gW[oc + 3] = c3;
    }
    for (; i < I; i++) {
      let a = 0;
      let c = 0;
      for (let r = 0, dk = o, xk = i; r < R; r++, dk += O, xk += I) {
        a += d[dk] * x[xk];
        c += d[dk + 1] * x[xk];
      }
      gW[o * I + i] = a;
      gW[(o + 1) * I + i] = c;
    }
  }
  for (; o < O; o++)
    for (let i = 0; i < I; i++) {
      let a = 0;
      for (let r = 0, dk = o, xk = i; r < R; r++, dk += O, xk += I) a += d[dk] * x[xk];
      gW[o * I + i] = a;
    }
}

function activate(a: Activation, x: Float32Array, n: number): void {
  if (a === 'tanh') for (let i = 0; i < n; i++) x[i] = Math.tanh(x[i]);
  else if (a === 'relu') for (let i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

/** Multiplies `delta` by the activation's derivative, given the activation's output `y`. */
function activationGrad(a: Activation, y: Float32Array, delta: Float32Array, n: number): void {
  if (a === 'tanh') for (let i = 0; i < n; i++) delta[i] *= 1 - y[i] * y[i];
  else if (a === 'relu') for (let i = 0; i < n; i++) if (!(y[i] > 0)) delta[i] = 0;
}

/**
 * A multilayer perceptron in typed arrays.
 * @example
 * const q = Mlp.create({ sizes: [obsSize, 64, 64, 3], activation: 'relu' }, rng);
 * const ws = q.workspace();
 * const out = q.forward(obs, batch, ws);        // [batch, 3]
 * q.backward(ws, dOut, grads);                  // grads[2l] = dW_l, grads[2l+1] = db_l
 */
export class Mlp {
  /** Shape and initialisation. */
  readonly spec: MlpSpec;
  /** Weights: W_0, b_0, W_1, b_1, ... (W_l is [out, in] row-major, PyTorch's layout). */
  readonly weights: Float32Array[];
  /** Names of the weights (`layer0.w`, `layer0.b`, ...). */
  readonly names: string[];
  private readonly layers: number;
  private readonly own: MlpWorkspace;

  /**
   * An MLP with the given weights (copied), e.g. from a checkpoint.
   * @throws {RangeError} on fewer than two sizes, a non-positive width, or mis-sized weights.
   */
  constructor(spec: MlpSpec, weights: readonly Float32Array[]) {
    const s = spec.sizes;
    if (s.length < 2 || s.some((w) => !(Number.isInteger(w) && w > 0)))
      throw new RangeError(
        `mlp: sizes must be at least two whole numbers > 0, got [${s.join(', ')}]`,
      );
    this.spec = spec;
    this.layers = s.length - 1;
    if (weights.length !== 2 * this.layers)
      throw new RangeError(`mlp: ${weights.length} weight arrays for ${this.layers} layers`);
    this.weights = [];
    this.names = [];
    for (let l = 0; l < this.layers; l++) {
      const w = weights[2 * l];
      const b = weights[2 * l + 1];
      if (w.length !== s[l] * s[l + 1] || b.length !== s[l + 1])
        throw new RangeError(
          `mlp: layer ${l} weights have ${w.length}/${b.length} values, expected ${s[l] * s[l + 1]}/${s[l + 1]}`,
        );
      this.weights.push(Float32Array.from(w), Float32Array.from(b));
      this.names.push(`layer${l}.w`, `layer${l}.b`);
    }
    this.own = this.workspace();
  }

  /** A new MLP initialised from `rng` (orthogonal with gains, or Glorot; zero biases). */
  static create(spec: MlpSpec, rng: Rng): Mlp {
    const s = spec.sizes;
    const weights: Float32Array[] = [];
    for (let l = 0; l + 1 < s.length; l++) {
      const last = l + 2 === s.length;
      const gain = last ? (spec.outputGain ?? 1) : (spec.hiddenGain ?? Math.SQRT2);
      weights.push(
        spec.init === 'glorot'
          ? glorotUniform(rng, s[l + 1], s[l])
          : orthogonal(rng, s[l + 1], s[l], gain),
        new Float32Array(s[l + 1]),
      );
    }
    return new Mlp(spec, weights);
  }

  /** Input width. */
  get inputSize(): number {
    return this.spec.sizes[0];
  }

  /** Output width. */
  get outputSize(): number {
    return this.spec.sizes[this.spec.sizes.length - 1];
  }

  /** Number of weights (biases included). */
  get parameterCount(): number {
    return this.weights.reduce((n, w) => n + w.length, 0);
  }

  /** The weights as optimizer parameters (updated in place), named `<prefix>.layer0.w` etc. */
  parameters(prefix: string): Parameter[] {
    return this.weights.map((w, k) => arrayParameter(`${prefix}.${this.names[k]}`, w));
  }

  /** Zeroed gradient arrays shaped like the weights. */
  gradientBuffers(): Float32Array[] {
    return this.weights.map((w) => new Float32Array(w.length));
  }

  /** A workspace for forward/backward passes of this network. */
  workspace(): MlpWorkspace {
    return new MlpWorkspace(this.spec.sizes);
  }

  /** Copies every weight of `other` (same spec): a hard target-network sync. */
  copyFrom(other: Mlp): void {
    for (let k = 0; k < this.weights.length; k++) this.weights[k].set(other.weights[k]);
  }

  /** Polyak update towards `other`: θ ← τ·θ_other + (1 − τ)·θ. */
  polyakFrom(other: Mlp, tau: number): void {
    for (let k = 0; k < this.weights.length; k++) {
      const a = this.weights[k];
      const b = other.weights[k];
      for (let i = 0; i < a.length; i++) a[i] = tau * b[i] + (1 - tau) * a[i];
    }
  }

  /**
   * Forward pass of `rows` inputs ([rows, inputSize] row-major in `x`) into the workspace (default:
   * the network's own). Returns the output buffer view [rows, outputSize] (valid until the next pass
   * on that workspace).
   */
  forward(x: Float32Array, rows: number, ws: MlpWorkspace = this.own): Float32Array {
    ws.ensure(rows);
    ws.rows = rows;
    ws.input = x;
    const sizes = this.spec.sizes;
    let inp = x;
    for (let l = 0; l < this.layers; l++) {
      const out = ws.acts[l];
      denseForward(
        inp,
        this.weights[2 * l],
        this.weights[2 * l + 1],
        out,
        rows,
        sizes[l],
        sizes[l + 1],
      );
      const last = l === this.layers - 1;
      activate(
        last ? (this.spec.outputActivation ?? 'identity') : this.spec.activation,
        out,
        rows * sizes[l + 1],
      );
      inp = out;
    }
    return ws.acts[this.layers - 1].subarray(0, rows * this.outputSize);
  }

  /**
   * Backward pass of the last forward pass on `ws`: given dL/d(output) in `dOut` ([rows,
   * outputSize]), writes dL/dW and dL/db into `grads` (overwritten; shaped as `weights`) and, when
   * given, dL/d(input) into `dInput` ([rows, inputSize]).
   */
  backward(
    ws: MlpWorkspace,
    dOut: Float32Array,
    grads: readonly Float32Array[],
    dInput?: Float32Array,
  ): void {
    const rows = ws.rows;
    const sizes = this.spec.sizes;
    const L = this.layers;
    let delta = ws.deltas[0];
    let prev = ws.deltas[1];
    const outN = rows * sizes[L];
    for (let i = 0; i < outN; i++) delta[i] = dOut[i];
    activationGrad(this.spec.outputActivation ?? 'identity', ws.acts[L - 1], delta, outN);
    for (let l = L - 1; l >= 0; l--) {
      const I = sizes[l];
      const O = sizes[l + 1];
      const inp = l === 0 ? ws.input : ws.acts[l - 1];
      denseWeightGrad(delta, inp, grads[2 * l], grads[2 * l + 1], rows, I, O);
      const target = l > 0 ? prev : (dInput ?? null);
      if (target === null) break;
      denseInputGrad(delta, this.weights[2 * l], target, rows, I, O);
      if (l > 0) {
        activationGrad(this.spec.activation, ws.acts[l - 1], prev, rows * I);
        const t = delta;
        delta = prev;
        prev = t;
      }
    }
  }
}
