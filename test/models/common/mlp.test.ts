// The typed-array MLP against TensorFlow.js on the same weights: forward outputs and every gradient
// (weights, biases, input) to 1e-6, for tanh and relu hidden layers and a tanh output; the init
// gains (a 0.01-gain policy head starts near zero); target-network copies and Polyak updates; and the
// running normalisation statistics against a direct computation.

import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initTensorflow } from '../../../src/models/common/backend.js';
import { Mlp, type MlpSpec } from '../../../src/models/common/mlp.js';
import { RunningMeanStd } from '../../../src/models/common/normalization.js';
import { mlpForwardTf } from '../../../src/models/common/tensors.js';
import { Rng } from '../../../src/utils/random.js';

beforeAll(async () => {
  await initTensorflow('wasm');
});

function randomArray(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('Mlp equals TensorFlow.js on the same weights', () => {
  const specs: MlpSpec[] = [
    { sizes: [7, 16, 16, 3], activation: 'tanh' },
    { sizes: [5, 12, 4], activation: 'relu', init: 'glorot' },
    { sizes: [6, 8, 8, 2], activation: 'relu', outputActivation: 'tanh', outputGain: 0.5 },
  ];
  for (const spec of specs)
    it(`forward and backward agree to 1e-6: [${spec.sizes.join(', ')}] ${spec.activation}/${spec.outputActivation ?? 'identity'}`, () => {
      const rng = new Rng(spec.sizes.reduce((a, b) => a * 31 + b, 7));
      const mlp = Mlp.create(spec, rng);
      // Non-zero biases, so their gradients and their part of the output are tested too.
      for (let l = 1; l < mlp.weights.length; l += 2)
        mlp.weights[l].set(randomArray(rng, mlp.weights[l].length, 0.1));
      const rows = 9;
      const I = spec.sizes[0];
      const O = spec.sizes[spec.sizes.length - 1];
      const x = randomArray(rng, rows * I);
      const dOut = randomArray(rng, rows * O);
      const ws = mlp.workspace();
      const out = Float32Array.from(mlp.forward(x, rows, ws));
      const grads = mlp.gradientBuffers();
      const dx = new Float32Array(rows * I);
      mlp.backward(ws, dOut, grads, dx);

      const xT = tf.tensor2d(x, [rows, I]);
      const ref = mlpForwardTf(mlp, xT);
      expect(maxAbsDiff(out, ref.dataSync())).toBeLessThan(1e-6);
      // Gradients of sum(out · dOut) with respect to weights and input, through tfjs autodiff.
      const vars = mlp.weights.map((w, k) => {
        const sizes = spec.sizes;
        const l = k >> 1;
        return tf.variable(k % 2 === 0 ? tf.tensor2d(w, [sizes[l + 1], sizes[l]]) : tf.tensor1d(w));
      });
      const dOutT = tf.tensor2d(dOut, [rows, O]);
      const forward = (input: tf.Tensor2D): tf.Tensor2D => {
        let h = input;
        for (let l = 0; l < vars.length / 2; l++) {
          h = tf.add(
            tf.matMul(h, vars[2 * l] as tf.Variable<tf.Rank.R2>, false, true),
            vars[2 * l + 1],
          );
          const last = l === vars.length / 2 - 1;
          const a = last ? (spec.outputActivation ?? 'identity') : spec.activation;
          if (a === 'tanh') h = tf.tanh(h);
          else if (a === 'relu') h = tf.relu(h);
        }
        return h;
      };
      const { grads: g } = tf.variableGrads(
        () => tf.sum(tf.mul(forward(xT), dOutT)) as tf.Scalar,
        vars,
      );
      vars.forEach((v, k) => expect(maxAbsDiff(grads[k], g[v.name].dataSync())).toBeLessThan(1e-6));
      const gx = tf.grad((input: tf.Tensor) =>
        tf.sum(tf.mul(forward(input as tf.Tensor2D), dOutT)),
      )(xT);
      expect(maxAbsDiff(dx, gx.dataSync())).toBeLessThan(1e-6);
      tf.dispose([xT, ref, dOutT, gx, ...vars, ...Object.values(g)]);
    });

  it('allocates its workspace once: a second pass of the same size reuses the buffers', () => {
    const mlp = Mlp.create({ sizes: [3, 4, 2], activation: 'tanh' }, new Rng(1));
    const ws = mlp.workspace();
    const x = Float32Array.of(1, 2, 3, 4, 5, 6);
    const a = mlp.forward(x, 2, ws);
    const buffer = a.buffer;
    const copy = Float32Array.from(a);
    const b = mlp.forward(x, 2, ws);
    expect(b.buffer).toBe(buffer);
    expect(Float32Array.from(b)).toEqual(copy);
  });
});

describe('initialisation and target networks', () => {
  it('starts a policy head with gain 0.01 near zero and is reproducible from its seed', () => {
    const spec: MlpSpec = { sizes: [10, 64, 64, 3], activation: 'tanh', outputGain: 0.01 };
    const a = Mlp.create(spec, new Rng(4));
    const b = Mlp.create(spec, new Rng(4));
    expect(b.weights).toEqual(a.weights);
    const out = a.forward(randomArray(new Rng(5), 10 * 20), 20);
    expect(Math.max(...out.map(Math.abs))).toBeLessThan(0.05);
  });

  it('copies weights for a hard sync and moves by τ for a Polyak update', () => {
    const spec: MlpSpec = { sizes: [2, 3, 1], activation: 'relu' };
    const online = Mlp.create(spec, new Rng(1));
    const target = Mlp.create(spec, new Rng(2));
    const before = target.weights.map((w) => w.slice());
    target.polyakFrom(online, 0.25);
    target.weights.forEach((w, k) =>
      w.forEach((v, i) =>
        expect(v).toBeCloseTo(0.25 * online.weights[k][i] + 0.75 * before[k][i], 6),
      ),
    );
    target.copyFrom(online);
    expect(target.weights).toEqual(online.weights);
  });
});

describe('RunningMeanStd', () => {
  it('equals the mean and variance of all rows seen, whatever the batching', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: 2, maxLength: 2 }),
          {
            minLength: 1,
            maxLength: 40,
          },
        ),
        fc.integer({ min: 1, max: 7 }),
        (rowsList, chunk) => {
          const rms = new RunningMeanStd(2, 0);
          for (let i = 0; i < rowsList.length; i += chunk) {
            const part = rowsList.slice(i, i + chunk);
            rms.update(part.flat(), part.length);
          }
          for (let j = 0; j < 2; j++) {
            const col = rowsList.map((r) => r[j]);
            const mean = col.reduce((a, b) => a + b, 0) / col.length;
            const variance = col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length;
            expect(rms.mean[j]).toBeCloseTo(mean, 6);
            expect(rms.variance[j]).toBeCloseTo(variance, 4);
          }
        },
      ),
      { numRuns: 50, seed: 11 },
    );
  });

  it('normalises and clips, skipping rows with a non-finite value', () => {
    const rms = new RunningMeanStd(1, 0);
    rms.update([1, 3, NaN], 3);
    expect(rms.mean[0]).toBeCloseTo(2, 12);
    expect(rms.variance[0]).toBeCloseTo(1, 12);
    const out = rms.normalize([4, 1e9, NaN], 3, new Float32Array(3), 5);
    expect(out[0]).toBeCloseTo(2, 5);
    expect(out[1]).toBe(5);
    expect(out[2]).toBe(0);
  });
});
