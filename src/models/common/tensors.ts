// The bridge between TensorFlow.js variables and the typed-array side of the core: a variable as an
// optimizer `Parameter`, and setting a variable's values without leaking the temporary tensor.

import * as tf from '@tensorflow/tfjs';
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
