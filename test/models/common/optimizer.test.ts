// The one optimizer: Adam step for step against TensorFlow.js' own Adam, global-norm clipping,
// weight averaging with its warm-up, parameter groups (own learning rates, frozen groups untouched,
// unfreezing later with fresh bias correction), and its state through a checkpoint.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initTensorflow } from '../../../src/models/common/backend.js';
import { readCheckpoint, writeCheckpoint } from '../../../src/models/common/checkpoint.js';
import { Adam, arrayParameter } from '../../../src/models/common/optimizer.js';
import { variableParameter } from '../../../src/models/common/tensors.js';

let dir: string;
beforeAll(async () => {
  await initTensorflow('wasm');
  dir = mkdtempSync(join(tmpdir(), 'ctm-optimizer-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f32 = (...x: number[]): Float32Array => Float32Array.from(x);

describe('Adam', () => {
  it('matches tfjs Adam step for step (no clipping, no decay)', () => {
    const init = [
      tf.tensor([0.5, -1, 2]),
      tf.tensor([
        [1, 2],
        [3, -4],
      ]),
    ];
    const ours = init.map((t) => tf.variable(t.clone()));
    const theirs = init.map((t) => tf.variable(t.clone()));
    const opt = new Adam(
      [{ name: 'all', params: ours.map((v) => variableParameter(v)), learningRate: 0.05 }],
      { epsilon: 1e-7 },
    );
    const ref = tf.train.adam(0.05, 0.9, 0.999, 1e-7);
    const loss = (vs: tf.Variable[]) => (): tf.Scalar =>
      tf.add(tf.sum(tf.square(tf.sub(vs[0], 1))), tf.sum(tf.pow(vs[1], 4))) as tf.Scalar;
    for (let s = 0; s < 8; s++) {
      const g1 = tf.variableGrads(loss(ours), ours);
      opt.apply(ours.map((v) => g1.grads[v.name].dataSync() as Float32Array));
      const g2 = tf.variableGrads(loss(theirs), theirs);
      ref.applyGradients(g2.grads as tf.NamedTensorMap as Parameters<typeof ref.applyGradients>[0]);
    }
    ours.forEach((v, k) => {
      const a = v.dataSync();
      const b = theirs[k].dataSync();
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 5);
    });
  });

  it('clips the global gradient norm and reports it before clipping', () => {
    const w = f32(0, 0);
    const opt = new Adam([{ name: 'w', params: [arrayParameter('w', w)], learningRate: 0.1 }], {
      clipNorm: 1,
    });
    const norm = opt.apply([f32(3, 4)]);
    expect(norm).toBeCloseTo(5, 6);
    // First Adam step moves each coordinate by lr regardless of scale: clipped or not, −0.1.
    expect(w[0]).toBeCloseTo(-0.1, 5);
    const state = opt.getState();
    expect(state.m[0][0]).toBeCloseTo(0.1 * 0.6, 6); // (1 − β1) · 3/5
    expect(state.v[0][1]).toBeCloseTo(0.001 * 0.64, 8); // (1 − β2) · (4/5)²
    expect(opt.apply([f32(NaN, 1)])).toBeNaN();
  });

  it('keeps a moving average of the weights with warm-up, saved and restored with its state', () => {
    const w = f32(1, -2);
    const make = (averageDecay?: number): Adam =>
      new Adam([{ name: 'w', params: [arrayParameter('w', w)], learningRate: 0.1 }], {
        ...(averageDecay === undefined ? {} : { averageDecay }),
      });
    const opt = make(0.5);
    const expected = [1, -2];
    for (let t = 0; t < 4; t++) {
      opt.apply([f32(1, -1)]);
      const keep = Math.min(0.5, (1 + t + 1) / (10 + t + 1)); // step counter after the update
      for (let i = 0; i < 2; i++) expected[i] = keep * expected[i] + (1 - keep) * w[i];
    }
    const avg = opt.averageWeights()![0];
    expect(avg[0]).toBeCloseTo(expected[0], 6);
    expect(avg[1]).toBeCloseTo(expected[1], 6);
    expect(avg[0]).not.toBeCloseTo(w[0], 3); // lags the weights
    const other = make(0.5);
    other.setState(opt.getState());
    expect(other.averageWeights()).toEqual(opt.averageWeights());
    expect(() => make().setState(opt.getState())).toThrow(/weight average/);
    expect(() => other.setState(make().getState())).toThrow(/weight average/);
    expect(make().averageWeights()).toBeNull();
    expect(() => make(1)).toThrow(RangeError);
  });
});

describe('parameter groups', () => {
  const twoGroups = (): { enc: Float32Array; head: Float32Array; opt: Adam } => {
    const enc = f32(1, 1);
    const head = f32(1, 1);
    const opt = new Adam(
      [
        { name: 'encoder', params: [arrayParameter('enc', enc)], learningRate: 0.01 },
        { name: 'head', params: [arrayParameter('head', head)], learningRate: 0.1 },
      ],
      { clipNorm: 0 },
    );
    return { enc, head, opt };
  };

  it('moves each group by its own learning rate on the first step', () => {
    const { enc, head, opt } = twoGroups();
    opt.apply([f32(2, -3), f32(2, -3)]);
    // Adam's first step is lr · sign(g).
    expect(enc[0]).toBeCloseTo(1 - 0.01, 6);
    expect(enc[1]).toBeCloseTo(1 + 0.01, 6);
    expect(head[0]).toBeCloseTo(1 - 0.1, 6);
    expect(head[1]).toBeCloseTo(1 + 0.1, 6);
  });

  it('leaves a frozen group byte-identical, ignores its gradients, and unfreezes at a lower rate with fresh bias correction', () => {
    const { enc, head, opt } = twoGroups();
    opt.setTrainable('encoder', false);
    const before = enc.slice();
    for (let s = 0; s < 5; s++) opt.apply([null, f32(1, 1)]);
    expect(enc).toEqual(before);
    expect(head[0]).toBeLessThan(0.6);
    expect(opt.getState().steps).toEqual([0, 5]);
    opt.setTrainable('encoder', true);
    opt.setLearningRate(0.001, 'encoder');
    opt.apply([f32(1, -1), f32(1, 1)]);
    // The encoder's first own step: lr · sign(g) (its counter starts at 1, not 6).
    expect(enc[0]).toBeCloseTo(1 - 0.001, 6);
    expect(enc[1]).toBeCloseTo(1 + 0.001, 6);
    expect(() => opt.apply([null, f32(1, 1)])).toThrow(/gradient of enc is missing/);
    expect(() => opt.setTrainable('decoder', true)).toThrow(/no parameter group decoder/);
  });

  it('restores its state from a checkpoint and continues exactly as the original', () => {
    const a = twoGroups();
    const b = twoGroups();
    for (let s = 0; s < 3; s++) a.opt.apply([f32(s, 1), f32(1, -s)]);
    writeCheckpoint(join(dir, 'opt'), {
      kind: 'test',
      settings: {},
      counters: { step: 3 },
      rng: {},
      state: null,
      tensors: a.opt.stateTensors('opt'),
    });
    const c = readCheckpoint(join(dir, 'opt'), { kind: 'test', settings: {} })!;
    b.enc.set(a.enc);
    b.head.set(a.head);
    b.opt.loadStateTensors(join(dir, 'opt'), c, 'opt');
    a.opt.apply([f32(0.5, 0.5), f32(-1, 2)]);
    b.opt.apply([f32(0.5, 0.5), f32(-1, 2)]);
    expect(b.enc).toEqual(a.enc);
    expect(b.head).toEqual(a.head);
  });
});
