// The GRU encoder: one custom-gradient op per sequence, in the reset-after form (PyTorch/cuDNN):
//   z = σ(x·Wz + bz + h·Uz + cz),  r = σ(x·Wr + br + h·Ur + cr)
//   n = tanh(x·Wn + bn + r ⊙ (h·Un + cn)),  h' = (1 − z) ⊙ n + z ⊙ h
// with W [F, 3H], U [H, 3H], input bias b [3H], recurrent bias c [3H], gates ordered z, r, n.
// The input projection of all timesteps is one matmul; the recurrence runs either as two wasm
// kernels registered here (per step one XNNPACK matmul plus the gate arithmetic over the heap in
// place, forward and backward) or, on other backends, as plain tfjs ops; the weight gradients are a
// few large matmuls over all T·B rows.
// Never allocates per timestep on the wasm path; never changes results beyond float32 rounding.

import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { wasmBackend } from '../common/backend.js';

// ---------------------------------------------------------------------------------------------
// wasm kernels of the recurrence

const FORWARD_KERNEL = 'CtmGruForward';
const BACKWARD_KERNEL = 'CtmGruBackward';

type FusedMatMulFn = (
  aId: number,
  aShapePtr: number,
  aRank: number,
  bId: number,
  bShapePtr: number,
  bRank: number,
  transposeA: number,
  transposeB: number,
  activation: number,
  biasId: number,
  preluId: number,
  leakyAlpha: number,
  outId: number,
) => void;

/** The parts of the Emscripten module of the wasm backend used here. */
interface WasmModule {
  cwrap(name: string, returnType: null, argTypes: string[]): unknown;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  HEAPU8: Uint8Array;
}

function wasmModule(be: BackendWasm): WasmModule {
  return be.wasm as unknown as WasmModule;
}

const matMulFns = new WeakMap<BackendWasm, FusedMatMulFn>();

/**
 * The backend's XNNPACK matmul entry point (`out = a·b + bias`, a [1,M,K], b [1,K,N]), taking
 * shape pointers on the heap: with numeric arguments only, cwrap hands back the raw export.
 */
function fusedMatMulFn(be: BackendWasm): FusedMatMulFn {
  let fn = matMulFns.get(be);
  if (fn === undefined) {
    fn = wasmModule(be).cwrap(
      '_FusedMatMul',
      null,
      new Array<'number'>(13).fill('number'),
    ) as unknown as FusedMatMulFn;
    matMulFns.set(be, fn);
  }
  return fn;
}

/** Writes a rank-3 shape [1, rows, cols] into freshly allocated heap memory; returns its address. */
function heapShape(be: BackendWasm, rows: number, cols: number): number {
  const ptr = wasmModule(be)._malloc(12);
  const view = new Int32Array(wasmModule(be).HEAPU8.buffer, ptr, 3);
  view[0] = 1;
  view[1] = rows;
  view[2] = cols;
  return ptr;
}

function tensorId(be: BackendWasm, t: TensorInfo): number {
  return be.dataIdMap.get(t.dataId)!.id;
}

/** Float32 views of tensors on the wasm heap, refreshed when the heap grows. */
class HeapViews {
  private buffer: ArrayBufferLike | null = null;
  readonly views: Float32Array[] = [];
  constructor(
    private readonly be: BackendWasm,
    private readonly infos: TensorInfo[],
  ) {
    this.refresh();
  }
  refresh(): boolean {
    const buf = wasmModule(this.be).HEAPU8.buffer;
    if (buf === this.buffer) return false;
    this.buffer = buf;
    for (let i = 0; i < this.infos.length; i++)
      this.views[i] = this.be.typedArrayFromHeap(this.infos[i]) as Float32Array;
    return true;
  }
}

type SigmoidFn = (xId: number, outId: number) => void;
const sigmoidFns = new WeakMap<BackendWasm, SigmoidFn>();

/** The backend's vectorised sigmoid over a whole tensor (`out = 1 / (1 + exp(-x))`). */
function sigmoidFn(be: BackendWasm): SigmoidFn {
  let fn = sigmoidFns.get(be);
  if (fn === undefined) {
    fn = wasmModule(be).cwrap('Sigmoid', null, ['number', 'number']) as unknown as SigmoidFn;
    sigmoidFns.set(be, fn);
  }
  return fn;
}

/** Forward step, part 1: pre-activations of z and r, `zrIn = xp[:, t, :2H] + gh[:, :2H]`. */
function forwardZrInput(
  xpV: Float32Array,
  ghV: Float32Array,
  zrIn: Float32Array,
  t: number,
  T: number,
  B: number,
  H: number,
): void {
  const G = 3 * H;
  const H2 = 2 * H;
  for (let b = 0; b < B; b++) {
    const xo = (b * T + t) * G;
    const go = b * G;
    const zo = b * H2;
    for (let k = 0; k < H2; k++) zrIn[zo + k] = xpV[xo + k] + ghV[go + k];
  }
}

/** Forward step, part 2: `nIn = 2 · (xp[:, t, 2H:] + r ⊙ gh[:, 2H:])` (tanh(a) = 2σ(2a) − 1). */
function forwardNInput(
  xpV: Float32Array,
  ghV: Float32Array,
  zr: Float32Array,
  nIn: Float32Array,
  t: number,
  T: number,
  B: number,
  H: number,
): void {
  const G = 3 * H;
  for (let b = 0; b < B; b++) {
    const xo = (b * T + t) * G + 2 * H;
    const go = b * G + 2 * H;
    const ro = b * 2 * H + H;
    const no = b * H;
    for (let j = 0; j < H; j++) nIn[no + j] = 2 * (xpV[xo + j] + zr[ro + j] * ghV[go + j]);
  }
}

/** Forward step, part 3: n, the new state hs[t + 1] and the cache row of step t. */
function forwardState(
  ghV: Float32Array,
  zr: Float32Array,
  sn: Float32Array,
  hsV: Float32Array,
  cV: Float32Array,
  t: number,
  B: number,
  H: number,
): void {
  const G = 3 * H;
  const hIn = t * B * H;
  const hOut = (t + 1) * B * H;
  for (let b = 0; b < B; b++) {
    const go = b * G + 2 * H;
    const zo = b * 2 * H;
    const ho = b * H;
    const co = (t * B + b) * 4 * H;
    for (let j = 0; j < H; j++) {
      const z = zr[zo + j];
      const n = 2 * sn[ho + j] - 1;
      const hp = hsV[hIn + ho + j];
      hsV[hOut + ho + j] = n + z * (hp - n);
      cV[co + j] = z;
      cV[co + H + j] = zr[zo + H + j];
      cV[co + 2 * H + j] = n;
      cV[co + 3 * H + j] = ghV[go + j];
    }
  }
}

/**
 * Forward recurrence. Inputs: xp [B·T, 3H] (input projection incl. input bias, batch-major rows
 * b·T + t), U [H, 3H], bhh [3H]. Outputs: hs [T+1, B, H] (hs[0] = 0) and the gate cache
 * [T, B, 4H] (z, r, n, h·Un + cn) the backward kernel reads.
 */
const gruForwardKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as BackendWasm;
  const { xp, U, bhh } = inputs as { xp: TensorInfo; U: TensorInfo; bhh: TensorInfo };
  const B = (attrs as { batch: number }).batch;
  const H = U.shape[0];
  const G = 3 * H;
  const T = xp.shape[0] / B;
  const hs = be.makeOutput([T + 1, B, H], 'float32');
  const cache = be.makeOutput([T, B, 4 * H], 'float32');
  const hPrev = be.makeOutput([B, H], 'float32');
  const gh = be.makeOutput([B, G], 'float32');
  const zrIn = be.makeOutput([B, 2 * H], 'float32');
  const zr = be.makeOutput([B, 2 * H], 'float32');
  const nIn = be.makeOutput([B, H], 'float32');
  const sn = be.makeOutput([B, H], 'float32');
  const mm = fusedMatMulFn(be);
  const sig = sigmoidFn(be);
  const hPrevId = tensorId(be, hPrev);
  const uId = tensorId(be, U);
  const bId = tensorId(be, bhh);
  const ghId = tensorId(be, gh);
  const zrInId = tensorId(be, zrIn);
  const zrId = tensorId(be, zr);
  const nInId = tensorId(be, nIn);
  const snId = tensorId(be, sn);
  const aShape = heapShape(be, B, H);
  const bShape = heapShape(be, H, G);
  const heap = new HeapViews(be, [xp, hs, cache, hPrev, gh, zrIn, zr, nIn, sn]);
  let [xpV, hsV, cV, hpV, ghV, zrInV, zrV, nInV, snV] = heap.views;
  const BH = B * H;
  hsV.fill(0, 0, BH);
  for (let t = 0; t < T; t++) {
    hpV.set(hsV.subarray(t * BH, (t + 1) * BH));
    mm(hPrevId, aShape, 3, uId, bShape, 3, 0, 0, 0, bId, 0, 0, ghId);
    if (heap.refresh()) [xpV, hsV, cV, hpV, ghV, zrInV, zrV, nInV, snV] = heap.views;
    forwardZrInput(xpV, ghV, zrInV, t, T, B, H);
    sig(zrInId, zrId);
    forwardNInput(xpV, ghV, zrV, nInV, t, T, B, H);
    sig(nInId, snId);
    forwardState(ghV, zrV, snV, hsV, cV, t, B, H);
  }
  for (const s of [hPrev, gh, zrIn, zr, nIn, sn]) be.disposeData(s.dataId);
  wasmModule(be)._free(aShape);
  wasmModule(be)._free(bShape);
  return [hs, cache];
};

/**
 * Backward step t: from the gradient `acc` of state t+1 (hs[t + 1]), writes the gradients of the
 * input projection (dxp, batch-major) and of h·U + c (dgh, time-major) of step t, accumulates the
 * bias gradients, and leaves in `partial` the direct part d ⊙ z of the gradient of state t.
 */
function backwardGates(
  cV: Float32Array,
  hsV: Float32Array,
  acc: Float64Array,
  dxV: Float32Array,
  dgV: Float32Array,
  partial: Float64Array,
  sumX: Float64Array,
  sumH: Float64Array,
  t: number,
  T: number,
  B: number,
  H: number,
): void {
  const G = 3 * H;
  const hpOff = t * B * H;
  for (let b = 0; b < B; b++) {
    const xo = (b * T + t) * G;
    const go = (t * B + b) * G;
    const co = (t * B + b) * 4 * H;
    const ho = b * H;
    for (let j = 0; j < H; j++) {
      const z = cV[co + j];
      const r = cV[co + H + j];
      const n = cV[co + 2 * H + j];
      const ghn = cV[co + 3 * H + j];
      const hp = hsV[hpOff + ho + j];
      const d = acc[ho + j];
      const daz = d * (hp - n) * z * (1 - z);
      const dan = d * (1 - z) * (1 - n * n);
      const dar = dan * ghn * r * (1 - r);
      const dgn = dan * r;
      dxV[xo + j] = daz;
      dxV[xo + H + j] = dar;
      dxV[xo + 2 * H + j] = dan;
      dgV[go + j] = daz;
      dgV[go + H + j] = dar;
      dgV[go + 2 * H + j] = dgn;
      sumX[j] += daz;
      sumX[H + j] += dar;
      sumX[2 * H + j] += dan;
      sumH[2 * H + j] += dgn;
      partial[ho + j] = d * z;
    }
  }
}

/**
 * Backward recurrence. Inputs: dh ([B, H] gradient of the last state, or [T, B, H] of every state
 * when attr `sequences`), hs, cache (from the forward kernel), U [H, 3H]. Outputs: dxp [B·T, 3H]
 * (batch-major, the gradient of the input projection), dgh [T·B, 3H] (time-major, of h·U + c),
 * dbih [3H], dbhh [3H].
 */
const gruBackwardKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as BackendWasm;
  const { dh, hs, cache, U } = inputs as {
    dh: TensorInfo;
    hs: TensorInfo;
    cache: TensorInfo;
    U: TensorInfo;
  };
  const sequences = (attrs as { sequences: boolean }).sequences;
  const T = hs.shape[0] - 1;
  const B = hs.shape[1];
  const H = hs.shape[2];
  const G = 3 * H;
  const BH = B * H;
  const dxp = be.makeOutput([B * T, G], 'float32');
  const dgh = be.makeOutput([T * B, G], 'float32');
  const dbih = be.makeOutput([G], 'float32');
  const dbhh = be.makeOutput([G], 'float32');
  const ut = be.makeOutput([G, H], 'float32');
  const aScratch = be.makeOutput([B, G], 'float32');
  const dhOut = be.makeOutput([B, H], 'float32');
  const mm = fusedMatMulFn(be);
  const aId = tensorId(be, aScratch);
  const utId = tensorId(be, ut);
  const outId = tensorId(be, dhOut);
  const aShape = heapShape(be, B, G);
  const bShape = heapShape(be, G, H);
  // U transposed once, the right operand of every step's matmul.
  const uV = be.typedArrayFromHeap(U) as Float32Array;
  const utV = be.typedArrayFromHeap(ut) as Float32Array;
  for (let i = 0; i < H; i++) for (let g = 0; g < G; g++) utV[g * H + i] = uV[i * G + g];
  const heap = new HeapViews(be, [dh, hs, cache, dxp, dgh, aScratch, dhOut]);
  let [dhV, hsV, cV, dxV, dgV, aV, outV] = heap.views;
  const acc = new Float64Array(BH);
  const partial = new Float64Array(BH);
  const sumX = new Float64Array(G);
  const sumH = new Float64Array(G);
  if (!sequences) for (let k = 0; k < BH; k++) acc[k] = dhV[k];
  for (let t = T - 1; t >= 0; t--) {
    if (sequences) for (let k = 0; k < BH; k++) acc[k] += dhV[t * BH + k];
    backwardGates(cV, hsV, acc, dxV, dgV, partial, sumX, sumH, t, T, B, H);
    if (t === 0) break;
    aV.set(dgV.subarray(t * B * G, (t + 1) * B * G));
    mm(aId, aShape, 3, utId, bShape, 3, 0, 0, 0, 0, 0, 0, outId);
    if (heap.refresh()) [dhV, hsV, cV, dxV, dgV, aV, outV] = heap.views;
    for (let k = 0; k < BH; k++) acc[k] = partial[k] + outV[k];
  }
  // The z and r parts of dgh equal those of dxp: their sums too.
  for (let k = 0; k < 2 * H; k++) sumH[k] = sumX[k];
  const dbihV = be.typedArrayFromHeap(dbih) as Float32Array;
  const dbhhV = be.typedArrayFromHeap(dbhh) as Float32Array;
  for (let g = 0; g < G; g++) {
    dbihV[g] = sumX[g];
    dbhhV[g] = sumH[g];
  }
  for (const s of [ut, aScratch, dhOut]) be.disposeData(s.dataId);
  wasmModule(be)._free(aShape);
  wasmModule(be)._free(bShape);
  return [dxp, dgh, dbih, dbhh];
};

let kernelsRegistered = false;

function ensureGruKernels(): void {
  if (kernelsRegistered) return;
  tf.registerKernel({
    kernelName: FORWARD_KERNEL,
    backendName: 'wasm',
    kernelFunc: gruForwardKernel,
  });
  tf.registerKernel({
    kernelName: BACKWARD_KERNEL,
    backendName: 'wasm',
    kernelFunc: gruBackwardKernel,
  });
  kernelsRegistered = true;
}

// ---------------------------------------------------------------------------------------------
// The same recurrence as plain tfjs ops (any backend)

function forwardOps(xp: tf.Tensor2D, U: tf.Tensor, bhh: tf.Tensor, B: number): tf.Tensor[] {
  const H = U.shape[0];
  const T = xp.shape[0] / B;
  const steps = tf.unstack(tf.transpose(tf.reshape(xp, [B, T, 3 * H]), [1, 0, 2]));
  let h: tf.Tensor2D = tf.zeros([B, H]);
  const hs: tf.Tensor[] = [h];
  const cache: tf.Tensor[] = [];
  for (let t = 0; t < T; t++) {
    const gh = tf.fused.matMul({ a: h, b: U as tf.Tensor2D, bias: bhh });
    const [xz, xr, xn] = tf.split(steps[t], 3, 1);
    const [hz, hr, hn] = tf.split(gh, 3, 1);
    const z = tf.sigmoid(tf.add(xz, hz));
    const r = tf.sigmoid(tf.add(xr, hr));
    const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
    h = tf.add(n, tf.mul(z, tf.sub(h, n)));
    hs.push(h);
    cache.push(tf.concat([z, r, n, hn], 1));
  }
  return [tf.stack(hs), tf.stack(cache)];
}

function backwardOps(
  dh: tf.Tensor,
  hs: tf.Tensor,
  cache: tf.Tensor,
  U: tf.Tensor,
  sequences: boolean,
): tf.Tensor[] {
  const T = hs.shape[0] - 1;
  const B = hs.shape[1]!;
  const H = hs.shape[2]!;
  const hList = tf.unstack(hs);
  const cList = tf.unstack(cache);
  const dhList = sequences ? tf.unstack(dh) : [];
  const ut = tf.transpose(U);
  let acc: tf.Tensor = sequences ? tf.zeros([B, H]) : dh;
  const dxs: tf.Tensor[] = new Array<tf.Tensor>(T);
  const dgs: tf.Tensor[] = new Array<tf.Tensor>(T);
  for (let t = T - 1; t >= 0; t--) {
    if (sequences) acc = tf.add(acc, dhList[t]);
    const [z, r, n, ghn] = tf.split(cList[t], 4, 1);
    const hp = hList[t];
    const dz = tf.mul(acc, tf.sub(hp, n));
    const dan = tf.mul(tf.mul(acc, tf.sub(1, z)), tf.sub(1, tf.square(n)));
    const daz = tf.mul(dz, tf.mul(z, tf.sub(1, z)));
    const dar = tf.mul(tf.mul(dan, ghn), tf.mul(r, tf.sub(1, r)));
    const dgh = tf.concat([daz, dar, tf.mul(dan, r)], 1);
    dxs[t] = tf.concat([daz, dar, dan], 1);
    dgs[t] = dgh;
    acc = tf.add(tf.mul(acc, z), tf.matMul(dgh, ut));
  }
  const dxp = tf.reshape(tf.transpose(tf.stack(dxs), [1, 0, 2]), [B * T, 3 * H]);
  const dgh = tf.reshape(tf.stack(dgs), [T * B, 3 * H]);
  return [dxp, dgh, tf.sum(dxp, 0), tf.sum(dgh, 0)];
}

// ---------------------------------------------------------------------------------------------
// The op

/** How the recurrence runs: wasm kernels, plain tfjs ops, or whichever fits the backend. */
export type GruRecurrence = 'auto' | 'kernel' | 'ops';

/** Options of `gruSequence`. */
export interface GruSequenceOptions {
  /** Return every hidden state [B, T, H] instead of the last one [B, H]. Default false. */
  returnSequences?: boolean;
  /** Compute the gradient of the input (needed for stacked layers). Default true. */
  inputGradient?: boolean;
  /** Recurrence implementation; `auto` = wasm kernels on wasm, tfjs ops elsewhere. */
  recurrence?: GruRecurrence;
}

/** The weights of one GRU layer (reset-after form, gates z, r, n). */
export interface GruWeights {
  /** Input kernel [F, 3H]. */
  W: tf.Tensor;
  /** Recurrent kernel [H, 3H]. */
  U: tf.Tensor;
  /** Input bias [3H]. */
  bih: tf.Tensor;
  /** Recurrent bias [3H]. */
  bhh: tf.Tensor;
}

function useKernels(mode: GruRecurrence): boolean {
  if (mode === 'ops') return false;
  const be = wasmBackend();
  if (be === null) {
    if (mode === 'kernel') throw new Error('GRU recurrence "kernel" needs the wasm backend');
    return false;
  }
  ensureGruKernels();
  return true;
}

/**
 * Runs a GRU over x [B, T, F] from a zero initial state, as one op with a hand-written gradient.
 * Returns the last hidden state [B, H] (or all states [B, T, H] with `returnSequences`).
 * @throws {Error} on shape mismatches, or `recurrence: 'kernel'` off the wasm backend.
 */
export function gruSequence(
  x: tf.Tensor3D,
  weights: GruWeights,
  options: GruSequenceOptions = {},
): tf.Tensor {
  const sequences = options.returnSequences ?? false;
  const inputGradient = options.inputGradient ?? true;
  const kernels = useKernels(options.recurrence ?? 'auto');
  const [B, T, F] = x.shape;
  const H = weights.U.shape[0];
  if (weights.W.shape[0] !== F || weights.W.shape[1] !== 3 * H || weights.U.shape[1] !== 3 * H)
    throw new Error(
      `gruSequence: input [${x.shape}] does not fit W [${weights.W.shape}], U [${weights.U.shape}]`,
    );
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, W, U, bih, bhh] = args as tf.Tensor[];
    const save = args[5] as tf.GradSaveFunc;
    const x2d = tf.reshape(xi, [B * T, F]) as tf.Tensor2D;
    const xp = tf.fused.matMul({ a: x2d, b: W as tf.Tensor2D, bias: bih }) as tf.Tensor2D;
    const [hs, cache] = kernels
      ? (tf.engine().runKernel(FORWARD_KERNEL, { xp, U, bhh }, { batch: B }) as tf.Tensor[])
      : forwardOps(xp, U, bhh, B);
    save([x2d, W, U, hs, cache]);
    const value = sequences
      ? tf.transpose(tf.slice(hs, [1, 0, 0], [T, B, H]), [1, 0, 2])
      : tf.reshape(tf.slice(hs, [T, 0, 0], [1, B, H]), [B, H]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [sx, sW, sU, shs, scache] = saved;
      const dh = sequences ? tf.transpose(dy, [1, 0, 2]) : dy;
      const [dxp, dgh, dbih, dbhh] = kernels
        ? (tf.engine().runKernel(
            BACKWARD_KERNEL,
            { dh, hs: shs, cache: scache, U: sU },
            {
              sequences,
            },
          ) as tf.Tensor[])
        : backwardOps(dh, shs, scache, sU, sequences);
      const hPrev = tf.reshape(tf.slice(shs, [0, 0, 0], [T, B, H]), [T * B, H]);
      const dU = tf.matMul(hPrev, dgh, true, false);
      const dW = tf.matMul(sx, dxp, true, false);
      const dx = inputGradient
        ? tf.reshape(tf.matMul(dxp, sW, false, true), [B, T, F])
        : tf.zeros([B, T, F]);
      return [dx, dW, dU, dbih, dbhh];
    };
    return { value, gradFunc };
  });
  return op(x, weights.W, weights.U, weights.bih, weights.bhh);
}

/**
 * One GRU step with a carried state, for inference (RL policies, streaming): h' from x [B, F]
 * and h [B, H]. Plain tfjs ops, no gradient bookkeeping beyond tfjs' own.
 */
export function gruStep(x: tf.Tensor2D, h: tf.Tensor2D, weights: GruWeights): tf.Tensor2D {
  return tf.tidy(() => {
    const H = weights.U.shape[0];
    const gx = tf.fused.matMul({ a: x, b: weights.W as tf.Tensor2D, bias: weights.bih });
    const gh = tf.fused.matMul({ a: h, b: weights.U as tf.Tensor2D, bias: weights.bhh });
    const zr = tf.sigmoid(
      tf.add(tf.slice(gx, [0, 0], [-1, 2 * H]), tf.slice(gh, [0, 0], [-1, 2 * H])),
    );
    const z = tf.slice(zr, [0, 0], [-1, H]);
    const r = tf.slice(zr, [0, H], [-1, H]);
    const n = tf.tanh(
      tf.add(tf.slice(gx, [0, 2 * H], [-1, H]), tf.mul(r, tf.slice(gh, [0, 2 * H], [-1, H]))),
    );
    return tf.add(n, tf.mul(z, tf.sub(h, n))) as tf.Tensor2D;
  });
}
