// The re-registered wasm kernels must compute what the stock kernels compute: matmuls (every
// transpose flag, folded 3-D x 2-D, batched, broadcast, fused bias + activation) to float32
// rounding, slices, unstacks, splits and transposes bit for bit, and gradients through them.

import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  initTensorflow,
  patchWasmKernels,
  restoreStockKernels,
  wasmKernelsPatched,
} from '../../../src/models/common/backend.js';
import { Rng } from '../../../src/utils/random.js';

beforeAll(async () => {
  const info = await initTensorflow('wasm');
  expect(info.backend).toBe('wasm');
  expect(info.kernelsPatched).toBe(true);
});

let seed = 1;
function rand(shape: number[]): tf.Tensor {
  const rng = new Rng(seed++);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.normal()),
    shape,
  );
}

/** Runs `f` with the stock kernels, then with the patched ones; returns both results as arrays. */
function stockAndPatched(
  f: () => tf.Tensor | tf.Tensor[],
): [Float32Array[], Float32Array[], number[][]] {
  const run = (): [Float32Array[], number[][]] => {
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const values = list.map((t) => t.dataSync() as Float32Array);
    const shapes = list.map((t) => t.shape);
    tf.dispose(list);
    return [values, shapes];
  };
  restoreStockKernels();
  expect(wasmKernelsPatched()).toBe(false);
  const [stock, stockShapes] = run();
  patchWasmKernels();
  expect(wasmKernelsPatched()).toBe(true);
  const [patched, shapes] = run();
  expect(shapes).toEqual(stockShapes);
  return [stock, patched, shapes];
}

/** Max |a − b| / (1 + |a|) over all values. */
function maxRelDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((x, k) => {
    expect(b[k].length).toBe(x.length);
    for (let i = 0; i < x.length; i++)
      m = Math.max(m, Math.abs(x[i] - b[k][i]) / (1 + Math.abs(x[i])));
  });
  return m;
}

// float32 accumulation over <= 64 terms of unit-variance products: a few ulps of the sum's scale.
const MATMUL_TOL = 2e-5;

describe('patched matmul kernels', () => {
  it('equal the stock BatchMatMul for every transpose flag, folded, batched and broadcast shapes', () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 7], [7, 3], false, false],
      [[7, 5], [7, 3], true, false],
      [[5, 7], [3, 7], false, true],
      [[7, 5], [3, 7], true, true],
      [[4, 6, 7], [7, 3], false, false], // 3-D x 2-D: folded into one 2-D product
      [[4, 7, 6], [7, 3], true, false],
      [[4, 6, 7], [3, 7], false, true],
      [[4, 6, 7], [4, 7, 3], false, false], // batched x batched
      [[4, 7, 6], [4, 3, 7], true, true],
      [[1, 6, 7], [4, 7, 3], false, false], // broadcast a
      [[2, 3, 4, 5], [2, 3, 5, 4], false, false], // attention-like 4-D
      [[2, 3, 4, 5], [2, 3, 4, 5], false, true],
    ];
    for (const [sa, sb, ta, tb] of cases) {
      const a = rand(sa);
      const b = rand(sb);
      const [stock, patched] = stockAndPatched(() => tf.matMul(a, b, ta, tb));
      expect(maxRelDiff(stock, patched), `${sa} x ${sb} ${ta} ${tb}`).toBeLessThan(MATMUL_TOL);
    }
  });

  it('equal matMul + bias + activation for every flag (the stock _FusedMatMul slow path adds the wrong bias)', () => {
    for (const [sa, sb, ta, tb] of [
      [[6, 7], [7, 5], false, false],
      [[7, 6], [5, 7], true, true],
      [[6, 7], [5, 7], false, true],
      [[3, 6, 7], [7, 5], false, false],
      [[3, 7, 6], [3, 5, 7], true, true],
    ] as [number[], number[], boolean, boolean][]) {
      const a = rand(sa);
      const b = rand(sb);
      const bias = rand([5]);
      for (const activation of ['linear', 'relu', 'sigmoid'] as const) {
        const reference = tf.tidy(() => {
          const y = tf.add(tf.matMul(a, b, ta, tb), bias);
          return activation === 'relu' ? tf.relu(y) : activation === 'sigmoid' ? tf.sigmoid(y) : y;
        });
        const expected = [reference.dataSync() as Float32Array];
        reference.dispose();
        const [stock, patched] = stockAndPatched(() =>
          tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias, activation }),
        );
        expect(maxRelDiff(expected, patched), `${sa} x ${sb} ${activation}`).toBeLessThan(
          MATMUL_TOL,
        );
        // Without flags or batch the stock kernel takes XNNPACK too and agrees.
        if (!ta && !tb && sa.length === 2)
          expect(maxRelDiff(stock, patched), `${sa} x ${sb} ${activation}`).toBeLessThan(
            MATMUL_TOL,
          );
      }
    }
    // The stock slow path's bias bug, pinned so that a fixed tfjs shows up here.
    const a = rand([7, 6]);
    const b = rand([5, 7]);
    const bias = rand([5]);
    const [stock, patched] = stockAndPatched(() =>
      tf.fused.matMul({ a, b, transposeA: true, transposeB: true, bias }),
    );
    expect(maxRelDiff(stock, patched)).toBeGreaterThan(1e-3);
  });

  it('give the same gradients as the stock kernels (property over shapes and flags)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.boolean(),
        fc.boolean(),
        (batch, m, k, n, ta, tb) => {
          // tfjs has no gradient for rank-broadcast matmuls: 2-D x 2-D, or equal batches.
          const outer = batch === 1 ? [] : [batch];
          const a = rand([...outer, ...(ta ? [k, m] : [m, k])]);
          const b = rand([...outer, ...(tb ? [n, k] : [k, n])]);
          const r = rand([...outer, m, n]);
          const [stock, patched] = stockAndPatched(() =>
            tf.grads((x: tf.Tensor, y: tf.Tensor) =>
              tf.sum(tf.mul(tf.relu(tf.matMul(x, y, ta, tb)), r)),
            )([a, b]),
          );
          expect(maxRelDiff(stock, patched)).toBeLessThan(MATMUL_TOL);
        },
      ),
      { numRuns: 25, seed: 7 },
    );
  });
});

describe('patched slicing and transpose kernels', () => {
  it('slice contiguous and strided regions of 1-D to 5-D tensors bit for bit', () => {
    const x1 = rand([20]);
    const x2 = rand([6, 7]);
    const x3 = rand([4, 5, 6]);
    const x4 = rand([3, 4, 5, 6]);
    const x5 = rand([2, 3, 4, 3, 5]);
    const [stock, patched] = stockAndPatched(() => [
      tf.slice(x1, [3], [9]),
      tf.slice(x2, [2, 0], [3, 7]), // contiguous rows
      tf.slice(x2, [1, 2], [4, 3]),
      tf.slice(x3, [1, 0, 2], [2, 5, 3]),
      tf.slice(x3, [3, 4, 0], [1, 1, 6]),
      tf.slice(x4, [1, 1, 1, 1], [2, 2, 3, 4]),
      tf.slice(x5, [1, 0, 1, 1, 2], [1, 3, 2, 2, 3]),
      tf.slice(x3, [0, 0, 0], [0, 5, 6]), // empty
    ]);
    expect(patched).toEqual(stock);
  });

  it('unstack and split along every axis bit for bit', () => {
    const x = rand([3, 4, 5]);
    const [stock, patched] = stockAndPatched(() => [
      ...tf.unstack(x, 0),
      ...tf.unstack(x, 1),
      ...tf.unstack(x, 2),
      ...tf.split(x, [1, 2], 0),
      ...tf.split(x, 2, 1),
      ...tf.split(x, [2, 1, 2], 2),
      ...tf.split(x, [1, -1], -1),
    ]);
    expect(patched).toEqual(stock);
  });

  it('transpose any permutation bit for bit', () => {
    const x = rand([2, 3, 4, 5]);
    const y = rand([7, 9]);
    const perms = [
      [1, 0, 2, 3],
      [0, 2, 1, 3],
      [0, 1, 3, 2],
      [3, 2, 1, 0],
      [2, 0, 3, 1],
      [0, 1, 2, 3],
    ];
    const [stock, patched] = stockAndPatched(() => [
      ...perms.map((p) => tf.transpose(x, p)),
      tf.transpose(y),
      tf.transpose(tf.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'int32')),
    ]);
    expect(patched).toEqual(stock);
  });

  it('carry gradients through slice, unstack, split and transpose exactly as the stock kernels', () => {
    const x = rand([4, 6, 5]);
    const [stock, patched] = stockAndPatched(() => {
      const f = (v: tf.Tensor): tf.Scalar => {
        const parts = tf.unstack(tf.transpose(v, [1, 0, 2]));
        const [p, q] = tf.split(tf.slice(v, [1, 1, 0], [2, 4, 5]), [2, 3], 2);
        return tf.add(
          tf.sum(tf.mul(parts[2], parts[4])),
          tf.sum(tf.mul(tf.sum(p), tf.sum(tf.square(q)))),
        ) as tf.Scalar;
      };
      return tf.grad(f)(x);
    });
    expect(maxRelDiff(stock, patched)).toBeLessThan(1e-6);
  });
});
