// The bridge between TensorFlow.js variables and the typed-array side of the core: a variable as an
// optimizer `Parameter`, and setting a variable's values without leaking the temporary tensor.

import * as tf from '@tensorflow/tfjs';
import type { Mlp } from './mlp.js';
import type { Parameter } from './optimizer.js';

/** Sets a variable's values (the temporary tensor is freed: `assign` only shares its data). */
export function assignValues(v: tf.Variable, values: Float32Array): void {
  const t = tf.tensor(values, v.shape, 'float32');
  v.assign(t);
  t.dispose();
}

/**
 * A tfjs variable as an optimizer parameter: `read` returns a copy of its values, `write` assigns
 * new ones.
 */
export function variableParameter(v: tf.Variable, name: string = v.name): Parameter {
  return {
    name,
    size: v.size,
    read: () => Float32Array.from(v.dataSync() as Float32Array),
    write: (values) => assignValues(v, values),
  };
}

/**
 * The forward pass of a typed-array `Mlp` built from TensorFlow.js ops on the same weights: the
 * reference the typed-array pass is tested against, and the way to run an MLP inside a tfjs graph.
 */
export function mlpForwardTf(mlp: Mlp, x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const sizes = mlp.spec.sizes;
    let h: tf.Tensor2D = x;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const w = tf.tensor2d(mlp.weights[2 * l], [sizes[l + 1], sizes[l]]);
      const b = tf.tensor1d(mlp.weights[2 * l + 1]);
      h = tf.add(tf.matMul(h, w, false, true), b);
      const a =
        l + 2 === sizes.length ? (mlp.spec.outputActivation ?? 'identity') : mlp.spec.activation;
      if (a === 'tanh') h = tf.tanh(h);
      else if (a === 'relu') h = tf.relu(h);
    }
    return h;
  });
}
