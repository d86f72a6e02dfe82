// Sequence-model benchmarks on the reference model of the sequence-model issue: three 1-layer GRU
// encoders (32 features, hidden 64, windows 64/32/16), stacked to [B, 3, 64], 4-head
// self-attention with residual + LayerNorm, flatten, dense 64 ReLU, dense 3, cross-entropy, Adam
// 1e-3, batch 64. Figures: optimizer steps/s with the fused GRU and patched kernels
// (`model.train_steps`), the same with stock tf.layers.gru and stock kernels
// (`model.train_steps_stock`), batched inference windows/s and batch-1 latency per decision.

import { variableParameter } from '../src/models/common/tensors.js';
import * as tf from '@tensorflow/tfjs';
import { report, timeBest } from './lib.js';
import {
  initTensorflow,
  patchWasmKernels,
  restoreStockKernels,
} from '../src/models/common/backend.js';
import { MultiTimeframeModel, type GruImplementation } from '../src/models/time-series/model.js';
import { Rng } from '../src/utils/random.js';
import { makeInputSpec } from '../src/data-processing/window-datasets.js';
import { Adam } from '../src/models/common/optimizer.js';

const info = await initTensorflow('wasm');
const spec = makeInputSpec(
  ['15m', '4h', '1d'],
  { '15m': 64, '4h': 32, '1d': 16 },
  { '15m': 32, '4h': 32, '1d': 32 },
);
const BATCH = 64;

function referenceModel(gru: GruImplementation): MultiTimeframeModel {
  return MultiTimeframeModel.create(
    {
      spec,
      cell: 'gru',
      gruImplementation: gru,
      hiddenDims: 64,
      numLayers: 1,
      pooling: 'last',
      attentionHeads: 4,
      denseUnits: 64,
      dropout: 0,
      patternClasses: [],
      // Cross-entropy only, as the reference (the return head is computed but weighs nothing).
      lossWeights: { direction: 1, forwardReturn: 0, pattern: 0 },
      inputClip: 10,
    },
    1,
  );
}

function windows(batch: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return spec.timeframes.map((t) =>
    Float32Array.from({ length: batch * spec.windows[t]! * 32 }, () => rng.normal()),
  );
}

/** Optimizer steps per second on one fixed batch (best of `reps` timed runs of `steps` steps). */
async function trainSteps(
  model: MultiTimeframeModel,
  steps: number,
  reps: number,
): Promise<number> {
  const w = windows(BATCH, 2);
  const xs = spec.timeframes.map((t, j) => tf.tensor3d(w[j], [BATCH, spec.windows[t]!, 32]));
  const rng = new Rng(3);
  const targets = {
    direction: Int32Array.from({ length: BATCH }, () => rng.int(3)),
    forwardReturn: new Float32Array(BATCH),
  };
  const vars = model.trainableVariables;
  const opt = new Adam([
    { name: 'model', params: vars.map((v) => variableParameter(v)), learningRate: 1e-3 },
  ]);
  const step = (): void => {
    const { value, grads } = tf.variableGrads(
      () => model.loss(xs, targets, null, null).total,
      vars,
    );
    opt.apply(vars.map((v) => grads[v.name].dataSync() as Float32Array));
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const ms = await timeBest(
    () => {
      for (let s = 0; s < steps; s++) step();
    },
    reps,
    1,
  );
  tf.dispose(xs);
  return (1000 * steps) / ms;
}

const params = {
  backend: info.backend,
  tfjs: info.version,
  batch: BATCH,
  windows: '64/32/16',
  features: 32,
  hidden: 64,
  heads: 4,
  note: 'best of 5 timed runs; the machine is shared, figures are noisy',
};

const fused = referenceModel('fused');
report('model.train_steps', await trainSteps(fused, 10, 5), 'steps/s', true, {
  ...params,
  gru: 'fused custom-gradient op, patched kernels',
  goal: '>= 11 (PyTorch 1.13, one thread: 22)',
});

// Inference: batched throughput (backtests) and batch-1 latency (live decisions).
const big = windows(256, 4);
const inferMs = await timeBest(() => fused.predictArrays(big, 256), 5, 2);
report('model.infer_windows', (256 * 1000) / inferMs, 'windows/s', true, {
  ...params,
  batch: 256,
  goal: '>= 2000',
});
const one = windows(1, 5);
for (let i = 0; i < 20; i++) fused.predictArrays(one, 1);
const lat: number[] = [];
for (let i = 0; i < 200; i++) {
  const t0 = performance.now();
  fused.predictArrays(one, 1);
  lat.push(performance.now() - t0);
}
lat.sort((a, b) => a - b);
report('model.infer_latency_ms', lat[100], 'ms', false, {
  ...params,
  batch: 1,
  statistic: 'median of 200 calls',
  p95: Number(lat[190].toFixed(3)),
  goal: '< 20',
});
fused.dispose();

// Baseline: stock tf.layers.gru on the stock kernels.
restoreStockKernels();
const stock = referenceModel('layers');
report('model.train_steps_stock', await trainSteps(stock, 3, 3), 'steps/s', true, {
  ...params,
  gru: 'tf.layers.gru (reset-before), stock kernels',
  note: 'best of 3 timed runs',
});
stock.dispose();
patchWasmKernels();
