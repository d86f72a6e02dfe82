// The custom-gradient GRU op: its forward pass against a float64 reference written here, and its
// gradients (wasm kernels and plain-ops recurrence alike) against tfjs autodiff of the same
// formula and against central finite differences of the float64 reference.

import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initTensorflow } from '../../../src/models/common/backend.js';
import { gruSequence, gruStep, type GruRecurrence } from '../../../src/models/time-series/gru.js';
import { Rng } from '../../../src/utils/random.js';

beforeAll(async () => {
  await initTensorflow('wasm');
});

interface Problem {
  B: number;
  T: number;
  F: number;
  H: number;
  x: Float64Array;
  W: Float64Array;
  U: Float64Array;
  bih: Float64Array;
  bhh: Float64Array;
  /** Projection of the output in the scalar loss L = Σ out ⊙ proj. */
  proj: Float64Array;
}

function problem(
  seed: number,
  B: number,
  T: number,
  F: number,
  H: number,
  sequences: boolean,
): Problem {
  const rng = new Rng(seed);
  const arr = (n: number, s: number): Float64Array =>
    Float64Array.from({ length: n }, () => s * rng.normal());
  return {
    B,
    T,
    F,
    H,
    x: arr(B * T * F, 1),
    W: arr(F * 3 * H, 0.5),
    U: arr(H * 3 * H, 0.5),
    bih: arr(3 * H, 0.3),
    bhh: arr(3 * H, 0.3),
    proj: arr(sequences ? B * T * H : B * H, 1),
  };
}

const sig = (v: number): number => 1 / (1 + Math.exp(-v));

/** Float64 reference GRU (reset-after, gates z, r, n): all states [B, T, H]. */
function referenceStates(p: Problem): Float64Array {
  const { B, T, F, H } = p;
  const G = 3 * H;
  const out = new Float64Array(B * T * H);
  for (let b = 0; b < B; b++) {
    let h = new Float64Array(H);
    for (let t = 0; t < T; t++) {
      const gx = new Float64Array(G);
      const gh = new Float64Array(G);
      for (let g = 0; g < G; g++) {
        let sx = p.bih[g];
        for (let f = 0; f < F; f++) sx += p.x[(b * T + t) * F + f] * p.W[f * G + g];
        let sh = p.bhh[g];
        for (let i = 0; i < H; i++) sh += h[i] * p.U[i * G + g];
        gx[g] = sx;
        gh[g] = sh;
      }
      const next = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        const z = sig(gx[j] + gh[j]);
        const r = sig(gx[H + j] + gh[H + j]);
        const n = Math.tanh(gx[2 * H + j] + r * gh[2 * H + j]);
        next[j] = (1 - z) * n + z * h[j];
        out[(b * T + t) * H + j] = next[j];
      }
      h = next;
    }
  }
  return out;
}

function referenceLoss(p: Problem, sequences: boolean): number {
  const s = referenceStates(p);
  let loss = 0;
  if (sequences) for (let i = 0; i < s.length; i++) loss += s[i] * p.proj[i];
  else
    for (let b = 0; b < p.B; b++)
      for (let j = 0; j < p.H; j++) loss += s[(b * p.T + p.T - 1) * p.H + j] * p.proj[b * p.H + j];
  return loss;
}

function tensors(p: Problem) {
  const f = (a: Float64Array, shape: number[]): tf.Tensor => tf.tensor(Float32Array.from(a), shape);
  return {
    x: f(p.x, [p.B, p.T, p.F]) as tf.Tensor3D,
    W: f(p.W, [p.F, 3 * p.H]),
    U: f(p.U, [p.H, 3 * p.H]),
    bih: f(p.bih, [3 * p.H]),
    bhh: f(p.bhh, [3 * p.H]),
  };
}

/** The same GRU written with plain tfjs ops, differentiated by tfjs autodiff. */
function autodiffGru(
  x: tf.Tensor,
  W: tf.Tensor,
  U: tf.Tensor,
  bih: tf.Tensor,
  bhh: tf.Tensor,
  sequences: boolean,
): tf.Tensor {
  const [B, T, F] = x.shape;
  const H = U.shape[0];
  const xp = tf.reshape(tf.add(tf.matMul(tf.reshape(x, [B * T!, F!]), W), bih), [B, T!, 3 * H]);
  let h: tf.Tensor = tf.zeros([B, H]);
  const states: tf.Tensor[] = [];
  for (let t = 0; t < T!; t++) {
    const gx = tf.reshape(tf.slice(xp, [0, t, 0], [B, 1, 3 * H]), [B, 3 * H]);
    const gh = tf.add(tf.matMul(h, U), bhh);
    const z = tf.sigmoid(tf.add(tf.slice(gx, [0, 0], [B, H]), tf.slice(gh, [0, 0], [B, H])));
    const r = tf.sigmoid(tf.add(tf.slice(gx, [0, H], [B, H]), tf.slice(gh, [0, H], [B, H])));
    const n = tf.tanh(
      tf.add(tf.slice(gx, [0, 2 * H], [B, H]), tf.mul(r, tf.slice(gh, [0, 2 * H], [B, H]))),
    );
    h = tf.add(tf.mul(tf.sub(1, z), n), tf.mul(z, h));
    states.push(h);
  }
  return sequences ? tf.stack(states, 1) : h;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Max |a − b| relative to the scale of b (float32 tolerance). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / Math.max(1, maxAbs(b));
}

const RECURRENCES: GruRecurrence[] = ['kernel', 'ops'];

describe('gruSequence forward', () => {
  for (const recurrence of RECURRENCES)
    it(`matches the float64 reference (${recurrence} recurrence, last state and all states)`, () => {
      const p = problem(1, 3, 7, 4, 5, true);
      const ref = referenceStates(p);
      const w = tensors(p);
      const all = gruSequence(w.x, w, { returnSequences: true, recurrence });
      expect(all.shape).toEqual([3, 7, 5]);
      expect(relErr(all.dataSync(), ref)).toBeLessThan(1e-6);
      const last = gruSequence(w.x, w, { recurrence });
      expect(last.shape).toEqual([3, 5]);
      const refLast = new Float64Array(15);
      for (let b = 0; b < 3; b++)
        for (let j = 0; j < 5; j++) refLast[b * 5 + j] = ref[(b * 7 + 6) * 5 + j];
      expect(relErr(last.dataSync(), refLast)).toBeLessThan(1e-6);
      tf.dispose([all, last, ...Object.values(w)]);
    });

  it('gruStep from a zero state equals the first step of gruSequence', () => {
    const p = problem(2, 4, 1, 3, 6, false);
    const w = tensors(p);
    const step = gruStep(tf.reshape(w.x, [4, 3]) as tf.Tensor2D, tf.zeros([4, 6]), w);
    const seq = gruSequence(w.x, w);
    expect(relErr(step.dataSync(), seq.dataSync())).toBeLessThan(1e-6);
    tf.dispose([step, seq, ...Object.values(w)]);
  });

  it('refuses weights that do not fit the input', () => {
    const p = problem(3, 2, 3, 4, 5, false);
    const w = tensors(p);
    expect(() => gruSequence(tf.zeros([2, 3, 5]) as tf.Tensor3D, w)).toThrow(/does not fit/);
    tf.dispose(Object.values(w));
  });
});

describe('gruSequence gradients', () => {
  for (const sequences of [false, true])
    for (const recurrence of RECURRENCES)
      it(`equal tfjs autodiff of the plain formula (${recurrence}, ${sequences ? 'all states' : 'last state'})`, () => {
        const p = problem(10 + (sequences ? 1 : 0), 4, 9, 3, 6, sequences);
        const w = tensors(p);
        const proj = tf.tensor(Float32Array.from(p.proj), sequences ? [4, 9, 6] : [4, 6]);
        const args = [w.x, w.W, w.U, w.bih, w.bhh];
        const ours = tf.grads((x, W, U, bih, bhh) =>
          tf.sum(
            tf.mul(
              gruSequence(
                x as tf.Tensor3D,
                { W, U, bih, bhh },
                { returnSequences: sequences, recurrence },
              ),
              proj,
            ),
          ),
        )(args);
        const plain = tf.grads((x, W, U, bih, bhh) =>
          tf.sum(tf.mul(autodiffGru(x, W, U, bih, bhh, sequences), proj)),
        )(args);
        ['x', 'W', 'U', 'bih', 'bhh'].forEach((name, k) => {
          expect(ours[k].shape, name).toEqual(plain[k].shape);
          // float32: both sides round differently; relative to the gradient's scale.
          expect(relErr(ours[k].dataSync(), plain[k].dataSync()), name).toBeLessThan(2e-5);
          expect(maxAbs(plain[k].dataSync()), `${name} is not trivially zero`).toBeGreaterThan(
            1e-3,
          );
        });
        tf.dispose([...ours, ...plain, proj, ...Object.values(w)]);
      });

  it('agree with central finite differences of the float64 reference', () => {
    for (const sequences of [false, true]) {
      const p = problem(20, 2, 6, 3, 4, sequences);
      const w = tensors(p);
      const proj = tf.tensor(Float32Array.from(p.proj), sequences ? [2, 6, 4] : [2, 4]);
      const grads = tf.grads((x, W, U, bih, bhh) =>
        tf.sum(
          tf.mul(
            gruSequence(x as tf.Tensor3D, { W, U, bih, bhh }, { returnSequences: sequences }),
            proj,
          ),
        ),
      )([w.x, w.W, w.U, w.bih, w.bhh]);
      const rng = new Rng(21);
      const params = [p.x, p.W, p.U, p.bih, p.bhh];
      params.forEach((arr, k) => {
        const analytic = grads[k].dataSync();
        for (let trial = 0; trial < 6; trial++) {
          const i = rng.int(arr.length);
          const eps = 1e-5;
          const keep = arr[i];
          arr[i] = keep + eps;
          const up = referenceLoss(p, sequences);
          arr[i] = keep - eps;
          const down = referenceLoss(p, sequences);
          arr[i] = keep;
          const numeric = (up - down) / (2 * eps);
          expect(Math.abs(analytic[i] - numeric), `param ${k}[${i}]`).toBeLessThan(
            1e-4 * Math.max(1, Math.abs(numeric)),
          );
        }
      });
      tf.dispose([...grads, proj, ...Object.values(w)]);
    }
  });

  it('returns a zero input gradient when the input gradient is switched off', () => {
    const p = problem(30, 2, 4, 3, 4, false);
    const w = tensors(p);
    const [dx, dW] = tf.grads((x, W) =>
      tf.sum(gruSequence(x as tf.Tensor3D, { ...w, W }, { inputGradient: false })),
    )([w.x, w.W]);
    expect(maxAbs(dx.dataSync())).toBe(0);
    expect(maxAbs(dW.dataSync())).toBeGreaterThan(0);
    tf.dispose([dx, dW, ...Object.values(w)]);
  });
});
