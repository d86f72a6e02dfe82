// Weight initialisers of every network in the package (sequence model, DQN, PPO), seeded: the same
// Rng state gives the same weights on every backend and machine. Pure typed-array code; never
// loads TensorFlow.js.

import type { Rng } from '../../utils/random.js';

/** Glorot-uniform matrix [rows, cols] (fan-in rows, fan-out cols), row-major. */
export function glorotUniform(rng: Rng, rows: number, cols: number): Float32Array {
  const limit = Math.sqrt(6 / (rows + cols));
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-limit, limit);
  return out;
}

/**
 * Orthogonal matrix [rows, cols] times `gain` (Gram–Schmidt on a Gaussian matrix, over the longer
 * side), as Keras' `orthogonal` and PyTorch's `orthogonal_` initialisers: orthonormal rows when
 * rows <= cols, orthonormal columns otherwise. PPO's customary gains: √2 for hidden layers, 0.01
 * for the policy head, 1 for the value head.
 */
export function orthogonal(rng: Rng, rows: number, cols: number, gain = 1): Float32Array {
  const n = Math.max(rows, cols);
  const k = Math.min(rows, cols);
  // k orthonormal vectors of length n.
  const v = new Float64Array(k * n);
  for (let i = 0; i < k; i++) {
    for (;;) {
      for (let j = 0; j < n; j++) v[i * n + j] = rng.normal();
      for (let p = 0; p < i; p++) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += v[i * n + j] * v[p * n + j];
        for (let j = 0; j < n; j++) v[i * n + j] -= dot * v[p * n + j];
      }
      let norm = 0;
      for (let j = 0; j < n; j++) norm += v[i * n + j] * v[i * n + j];
      norm = Math.sqrt(norm);
      if (norm > 1e-6) {
        for (let j = 0; j < n; j++) v[i * n + j] /= norm;
        break;
      }
    }
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++)
      out[r * cols + c] = (rows <= cols ? v[r * n + c] : v[c * n + r]) * gain;
  return out;
}

/** Recurrent kernel [H, gates·H]: one orthogonal [H, H] block per gate. */
export function orthogonalGates(rng: Rng, units: number, gates: number): Float32Array {
  const out = new Float32Array(units * gates * units);
  for (let g = 0; g < gates; g++) {
    const block = orthogonal(rng, units, units);
    for (let i = 0; i < units; i++)
      for (let j = 0; j < units; j++) out[i * gates * units + g * units + j] = block[i * units + j];
  }
  return out;
}

/** A zero-filled array of `size` floats (biases). */
export function zeros(size: number): Float32Array {
  return new Float32Array(size);
}
