// The TensorFlow.js engine of the package: which backend runs (tfjs-node when the user has it
// installed, else wasm; never the cpu backend in hot paths), and the wasm kernels re-registered at
// start-up so that training stays on the fast path. Stock wasm kernels leave XNNPACK whenever a
// matmul carries a transpose flag or a batch dimension, and `Slice` copies its whole source tensor
// per call; the kernels here do the transposes explicitly, fold 3-D x 2-D matmuls into one 2-D
// call, and slice by reading the source in place. They rely on backend internals, so tfjs is pinned
// to an exact version and a test checks them against the stock kernels. Never changes results
// beyond float32 rounding; never registers anything on a backend other than wasm.

import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { logger } from '../../utils/logger.js';

/** The tfjs version the kernel patches were written against (package.json pins it exactly). */
export const TFJS_PINNED_VERSION = '4.22.0';

/** Backend choice: `auto` = tfjs-node when installed, else wasm. */
export type BackendChoice = 'auto' | 'wasm' | 'tensorflow';

/** What `initTensorflow` set up. */
export interface TensorflowInfo {
  /** The active tfjs backend: `wasm` or `tensorflow` (tfjs-node). */
  backend: string;
  /** Whether the wasm kernels of this module are registered. */
  kernelsPatched: boolean;
  /** The tfjs-core version in use. */
  version: string;
}

let initPromise: Promise<TensorflowInfo> | null = null;
let initChoice: BackendChoice | null = null;

/**
 * Selects and initialises the tfjs backend once per process (later calls return the first
 * result). `auto` tries a dynamic import of `@tensorflow/tfjs-node` and falls back to wasm
 * (logging why) when it is absent or unusable. On wasm, the fast kernels are registered unless
 * `patchKernels` is false.
 * @throws {Error} when `choice` is `tensorflow` and tfjs-node cannot be loaded.
 */
export function initTensorflow(
  choice: BackendChoice = 'auto',
  options: { patchKernels?: boolean } = {},
): Promise<TensorflowInfo> {
  if (initPromise !== null) {
    if (initChoice !== choice && choice !== 'auto')
      logger.debug({ requested: choice, active: initChoice }, 'tfjs backend already initialised');
    return initPromise;
  }
  initChoice = choice;
  initPromise = doInit(choice, options.patchKernels ?? true);
  return initPromise;
}

async function tryNodeBackend(): Promise<string | null> {
  // A variable module name keeps bundlers and the type checker from requiring the package.
  const name = '@tensorflow/tfjs-node';
  try {
    await import(name);
  } catch (err) {
    return `tfjs-node not installed (${(err as Error).message.split('\n')[0]})`;
  }
  if (
    tf.findBackendFactory('tensorflow') === null ||
    tf.findBackendFactory('tensorflow') === undefined
  )
    return 'tfjs-node registered its backend on another copy of tfjs-core (versions differ)';
  try {
    if (await tf.setBackend('tensorflow')) return null;
  } catch (err) {
    return `tfjs-node failed to initialise (${(err as Error).message.split('\n')[0]})`;
  }
  return 'tfjs-node failed to initialise';
}

async function doInit(choice: BackendChoice, patch: boolean): Promise<TensorflowInfo> {
  if (choice !== 'wasm') {
    const why = await tryNodeBackend();
    if (why === null) {
      logger.debug({ backend: 'tensorflow' }, 'tfjs backend');
      return { backend: 'tensorflow', kernelsPatched: false, version: tf.version_core };
    }
    if (choice === 'tensorflow') throw new Error(`model.backend is tensorflow but ${why}`);
    logger.debug({ reason: why }, 'using the wasm backend');
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend failed to initialise');
  await tf.ready();
  if (tf.version_core !== TFJS_PINNED_VERSION)
    logger.warn(
      { found: tf.version_core, expected: TFJS_PINNED_VERSION },
      'tfjs version differs from the one the kernel patches were tested with',
    );
  if (patch) patchWasmKernels();
  return { backend: 'wasm', kernelsPatched: patch, version: tf.version_core };
}

/** The wasm backend, or null when another backend is active. */
export function wasmBackend(): BackendWasm | null {
  return tf.getBackend() === 'wasm' ? (tf.backend() as BackendWasm) : null;
}

// ---------------------------------------------------------------------------------------------
// Kernel patches

type Stock = Record<string, KernelConfig>;
const PATCHED_NAMES = [
  'BatchMatMul',
  '_FusedMatMul',
  'Slice',
  'Unpack',
  'SplitV',
  'Transpose',
] as const;
let stock: Stock | null = null;
let patched = false;

function stockKernel(name: string): KernelConfig {
  const k = stock?.[name] ?? tf.getKernel(name, 'wasm');
  if (k === undefined) throw new Error(`stock wasm kernel ${name} is not registered`);
  return k;
}

function disposeInfo(backend: BackendWasm, info: TensorInfo): void {
  backend.disposeData(info.dataId);
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Transposes the last two axes with the stock wasm Transpose kernel (a new tensor). */
function transposeLast2(backend: BackendWasm, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const perm: number[] = [];
  for (let i = 0; i < rank - 2; i++) perm.push(i);
  perm.push(rank - 1, rank - 2);
  return transposeJs(backend, x, perm);
}

/**
 * Transpose on the heap in JS: writes the output sequentially and reads the source with strides
 * (several times faster than the stock wasm kernel on the matrix shapes of training).
 */
function transposeJs(be: BackendWasm, x: TensorInfo, perm: number[]): TensorInfo {
  const rank = x.shape.length;
  const outShape = perm.map((p) => x.shape[p]);
  const out = be.makeOutput(outShape, x.dtype);
  const n = sizeOf(outShape);
  if (n === 0) return out;
  const src = be.typedArrayFromHeap(x);
  const dst = be.typedArrayFromHeap(out);
  const inStrides = tf.util.computeStrides(x.shape);
  // Source stride of each output axis (the last input axis has stride 1).
  const stride = perm.map((p) => (p === rank - 1 ? 1 : inStrides[p]));
  const inner = outShape[rank - 1];
  const innerStride = stride[rank - 1];
  const rows = n / inner;
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let base = 0;
  for (let row = 0; row < rows; row++) {
    copyStrided(src, dst, base, innerStride, row * inner, inner);
    for (let d = rank - 2; d >= 0; d--) {
      base += stride[d];
      if (++idx[d] < outShape[d]) break;
      base -= stride[d] * outShape[d];
      idx[d] = 0;
    }
  }
  return out;
}

function copyStrided(
  src: tf.TypedArray,
  dst: tf.TypedArray,
  from: number,
  step: number,
  to: number,
  count: number,
): void {
  for (let k = 0; k < count; k++) dst[to + k] = src[from + k * step];
}

const transposePatched: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { perm } = attrs as { perm: number[] };
  if (x.dtype === 'string' || x.dtype === 'complex64' || perm.every((p, i) => p === i))
    return stockKernel('Transpose').kernelFunc({ inputs, backend, attrs });
  return transposeJs(backend as BackendWasm, x, perm);
};

interface MatMulPlan {
  a: TensorInfo;
  b: TensorInfo;
  temps: TensorInfo[];
  outShape: number[];
  /** a reshaped to [1, batch*M, K] and b to [1, K, N]: one 2-D product. */
  folded: boolean;
}

/** Makes both operands flag-free (explicit transposes) and folds a's batch when b has none. */
function planMatMul(
  backend: BackendWasm,
  a0: TensorInfo,
  b0: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): MatMulPlan {
  const temps: TensorInfo[] = [];
  let a = a0;
  let b = b0;
  if (transposeA) {
    a = transposeLast2(backend, a0);
    temps.push(a);
  }
  if (transposeB) {
    b = transposeLast2(backend, b0);
    temps.push(b);
  }
  const ar = a.shape.length;
  const br = b.shape.length;
  const m = a.shape[ar - 2];
  const k = a.shape[ar - 1];
  const n = b.shape[br - 1];
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const outerOut = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const outShape = [...outerOut, m, n];
  if (batchB === 1 && sizeOf(outerOut) === batchA) {
    return {
      a: { dataId: a.dataId, shape: [1, batchA * m, k], dtype: a.dtype },
      b: { dataId: b.dataId, shape: [1, k, n], dtype: b.dtype },
      temps,
      outShape,
      folded: true,
    };
  }
  return { a, b, temps, outShape, folded: false };
}

const batchMatMulPatched: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as BackendWasm;
  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
  const plan = planMatMul(be, a, b, transposeA, transposeB);
  const out = stockKernel('BatchMatMul').kernelFunc({
    inputs: { a: plan.a, b: plan.b },
    backend,
    attrs: { transposeA: false, transposeB: false },
  }) as TensorInfo;
  for (const t of plan.temps) disposeInfo(be, t);
  out.shape = plan.outShape;
  return out;
};

/** Stock wasm kernels that apply a fused matmul's activation. */
const ACTIVATION_KERNELS: Record<string, string> = {
  relu: 'Relu',
  relu6: 'Relu6',
  sigmoid: 'Sigmoid',
  elu: 'Elu',
  leakyrelu: 'LeakyRelu',
  prelu: 'Prelu',
};

/** Runs a stock kernel by name and frees its input `x` when asked. */
function runStock(
  be: BackendWasm,
  name: string,
  inputs: Record<string, TensorInfo>,
  attrs: Record<string, unknown> = {},
): TensorInfo {
  return stockKernel(name).kernelFunc({ inputs, backend: be, attrs: attrs as never }) as TensorInfo;
}

const fusedMatMulPatched: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as BackendWasm;
  const { a, b, bias, preluActivationWeights } = inputs as {
    a: TensorInfo;
    b: TensorInfo;
    bias?: TensorInfo;
    preluActivationWeights?: TensorInfo;
  };
  const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as {
    transposeA: boolean;
    transposeB: boolean;
    activation: string;
    leakyreluAlpha?: number;
  };
  const plan = planMatMul(be, a, b, transposeA, transposeB);
  let out: TensorInfo;
  if (plan.folded) {
    // One 2-D product: the stock kernel runs XNNPACK with the bias and activation fused.
    out = stockKernel('_FusedMatMul').kernelFunc({
      inputs: { a: plan.a, b: plan.b, bias, preluActivationWeights },
      backend,
      attrs: { ...attrs, transposeA: false, transposeB: false },
    }) as TensorInfo;
    out.shape = plan.outShape;
  } else {
    // Batched: the stock fused kernel's loop adds the wrong bias, so the product, the bias and the
    // activation run as separate stock kernels.
    let y = batchMatMulPatched({
      inputs: { a: plan.a, b: plan.b },
      backend,
      attrs: { transposeA: false, transposeB: false },
    }) as TensorInfo;
    if (bias !== undefined) {
      const z = runStock(be, 'Add', { a: y, b: bias });
      disposeInfo(be, y);
      y = z;
    }
    const kernel = ACTIVATION_KERNELS[activation];
    if (kernel !== undefined) {
      const z =
        kernel === 'Prelu'
          ? runStock(be, kernel, { x: y, alpha: preluActivationWeights! })
          : runStock(
              be,
              kernel,
              { x: y },
              kernel === 'LeakyRelu' ? { alpha: leakyreluAlpha ?? 0.2 } : {},
            );
      disposeInfo(be, y);
      y = z;
    }
    out = y;
  }
  for (const t of plan.temps) disposeInfo(be, t);
  return out;
};

/** Slice reading the source in place (the stock kernel copies the whole source first). */
function sliceInPlace(
  be: BackendWasm,
  x: TensorInfo,
  begin: number | number[],
  size: number | number[],
): TensorInfo {
  const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  const out = be.makeOutput(s, x.dtype);
  const n = sizeOf(s);
  if (n === 0) return out;
  // Views are taken after the allocation: a heap growth detaches older views.
  const src = be.typedArrayFromHeap(x);
  const dst = be.typedArrayFromHeap(out);
  const strides = tf.util.computeStrides(x.shape);
  if (tf.slice_util.isSliceContinous(x.shape, b, s)) {
    const off = tf.slice_util.computeFlatOffset(b, strides);
    dst.set(src.subarray(off, off + n));
    return out;
  }
  const rank = x.shape.length;
  const inner = s[rank - 1];
  const rows = n / inner;
  // Walk every output row (all axes but the last) with an odometer over the outer axes.
  const idx = new Array<number>(rank - 1).fill(0);
  for (let row = 0; row < rows; row++) {
    let off = b[rank - 1];
    for (let d = 0; d < rank - 1; d++) off += (b[d] + idx[d]) * strides[d];
    dst.set(src.subarray(off, off + inner), row * inner);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < s[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

const slicePatched: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === 'string') return stockKernel('Slice').kernelFunc({ inputs, backend, attrs });
  const { begin, size } = attrs as { begin: number[]; size: number[] };
  return sliceInPlace(backend as BackendWasm, x, begin, size);
};

const unpackPatched: KernelFunc = ({ inputs, backend, attrs }) => {
  const { value } = inputs as { value: TensorInfo };
  if (value.dtype === 'string') return stockKernel('Unpack').kernelFunc({ inputs, backend, attrs });
  const rank = value.shape.length;
  let axis = (attrs as { axis: number }).axis;
  if (axis < 0) axis += rank;
  const outShape = value.shape.filter((_, i) => i !== axis);
  const begin = new Array<number>(rank).fill(0);
  const size = value.shape.slice();
  size[axis] = 1;
  const outs: TensorInfo[] = [];
  for (let i = 0; i < value.shape[axis]; i++) {
    begin[axis] = i;
    const t = sliceInPlace(backend as BackendWasm, value, begin, size);
    outs.push({ dataId: t.dataId, dtype: t.dtype, shape: outShape });
  }
  return outs;
};

const splitVPatched: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === 'string') return stockKernel('SplitV').kernelFunc({ inputs, backend, attrs });
  const { numOrSizeSplits, axis } = attrs as { numOrSizeSplits: number | number[]; axis: number };
  const ax = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
  const begin = new Array<number>(x.shape.length).fill(0);
  const size = x.shape.slice();
  return sizes.map((s) => {
    const sz = [...size];
    sz[ax] = s;
    const t = sliceInPlace(backend as BackendWasm, x, begin, sz);
    begin[ax] += s;
    return t;
  });
};

const PATCHES: Record<(typeof PATCHED_NAMES)[number], KernelFunc> = {
  BatchMatMul: batchMatMulPatched,
  _FusedMatMul: fusedMatMulPatched,
  Slice: slicePatched,
  Unpack: unpackPatched,
  SplitV: splitVPatched,
  Transpose: transposePatched,
};

/**
 * Re-registers the fast wasm kernels (BatchMatMul, _FusedMatMul, Slice, Unpack, SplitV,
 * Transpose).
 * Idempotent. The stock kernels stay available through `restoreStockKernels`.
 */
export function patchWasmKernels(): void {
  if (patched) return;
  if (stock === null) {
    stock = {};
    for (const name of PATCHED_NAMES) stock[name] = stockKernel(name);
  }
  for (const name of PATCHED_NAMES) {
    const original = stock[name];
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: PATCHES[name],
      setupFunc: original.setupFunc,
      disposeFunc: original.disposeFunc,
    });
  }
  patched = true;
}

/** Puts the stock wasm kernels back (tests compare both; training never calls this). */
export function restoreStockKernels(): void {
  if (!patched || stock === null) return;
  for (const name of PATCHED_NAMES) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(stock[name]);
  }
  patched = false;
}

/** Whether the fast wasm kernels are registered. */
export function wasmKernelsPatched(): boolean {
  return patched;
}
