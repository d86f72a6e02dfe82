// DQN on hand-made numbers: TD targets (Double DQN takes the argmax from the online net and the
// value from the target net; masked actions are never the argmax; a terminated transition does not
// bootstrap, a truncated one does), n-step sums that stop at episode ends, proportional priorities
// and importance weights, the Huber gradient of one train step, and bad hyperparameters refused by
// name before anything is built.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { DQNAgent, maskedArgmax, tdTargets } from '../../../src/models/reinforcement/dqn-agent.js';
import {
  NStepAccumulator,
  ReplayBuffer,
  SegmentTree,
  type TransitionSink,
} from '../../../src/models/reinforcement/buffers.js';
import { Rng } from '../../../src/utils/random.js';

const f32 = (...x: number[]): Float32Array => Float32Array.from(x);

describe('TD targets', () => {
  // Two samples, three actions. Online Q(s') prefers action 2 in sample 0; target Q(s') prefers 0.
  const qNextOnline = f32(1, 0, 5, /* sample 1 */ 0, 3, 1);
  const qNextTarget = f32(10, 2, 4, /* sample 1 */ 7, 6, 9);
  const returns = f32(0.5, -1);
  const discounts = f32(0.9, 0.81);

  it('Double DQN: the online net picks, the target net values', () => {
    const y = tdTargets(
      qNextTarget,
      qNextOnline,
      returns,
      discounts,
      null,
      3,
      2,
      new Float32Array(2),
    );
    expect(y[0]).toBeCloseTo(0.5 + 0.9 * 4, 6); // argmax online = 2, target Q = 4
    expect(y[1]).toBeCloseTo(-1 + 0.81 * 6, 6); // argmax online = 1, target Q = 6
  });

  it('plain DQN: the max of the target net', () => {
    const y = tdTargets(qNextTarget, null, returns, discounts, null, 3, 2, new Float32Array(2));
    expect(y[0]).toBeCloseTo(0.5 + 0.9 * 10, 6);
    expect(y[1]).toBeCloseTo(-1 + 0.81 * 9, 6);
  });

  it('excludes masked actions from the argmax', () => {
    const masks = Uint8Array.of(1, 1, 0, /* sample 1 */ 1, 0, 1);
    const y = tdTargets(
      qNextTarget,
      qNextOnline,
      returns,
      discounts,
      masks,
      3,
      2,
      new Float32Array(2),
    );
    expect(y[0]).toBeCloseTo(0.5 + 0.9 * 10, 6); // action 2 masked: online argmax is 0
    expect(y[1]).toBeCloseTo(-1 + 0.81 * 9, 6); // action 1 masked: online argmax is 2
    expect(maskedArgmax(f32(3, 9, 1), 0, 3, Uint8Array.of(1, 0, 1), 0)).toBe(0);
  });

  it('a terminated transition (discount 0) is its return alone; a truncated one bootstraps', () => {
    const y = tdTargets(
      qNextTarget,
      qNextOnline,
      returns,
      f32(0, 0.99),
      null,
      3,
      2,
      new Float32Array(2),
    );
    expect(y[0]).toBe(0.5);
    expect(y[1]).toBeCloseTo(-1 + 0.99 * 6, 6);
  });
});

describe('n-step transitions', () => {
  interface Out {
    obs: number;
    action: number;
    ret: number;
    discount: number;
    next: number;
  }
  function collect(): { sink: TransitionSink; out: Out[] } {
    const out: Out[] = [];
    const sink: TransitionSink = (_slot, obs, oo, action, ret, discount, next, no) =>
      out.push({ obs: obs[oo], action, ret, discount, next: next[no] });
    return { sink, out };
  }
  const g = 0.5;

  it('sums n rewards and bootstraps with γ^n while the episode runs', () => {
    const acc = new NStepAccumulator(1, 3, g, 1);
    const { sink, out } = collect();
    // Observations are numbered by time: s0, s1, ...; rewards r_t = t + 1.
    for (let t = 0; t < 4; t++)
      acc.push(0, f32(t), 0, t, t + 1, f32(t + 1), 0, null, false, false, sink);
    expect(out).toEqual([
      { obs: 0, action: 0, ret: 1 + g * 2 + g * g * 3, discount: g ** 3, next: 3 },
      { obs: 1, action: 1, ret: 2 + g * 3 + g * g * 4, discount: g ** 3, next: 4 },
    ]);
  });

  it('stops the sums at a termination (no bootstrap) and at a truncation (bootstrap from the final state)', () => {
    for (const terminated of [true, false]) {
      const acc = new NStepAccumulator(1, 3, g, 1);
      const { sink, out } = collect();
      acc.push(0, f32(0), 0, 0, 1, f32(1), 0, null, false, false, sink);
      acc.push(0, f32(1), 0, 1, 2, f32(2), 0, null, false, false, sink);
      // Episode ends after s2 -> s3 (final).
      acc.push(0, f32(2), 0, 2, 3, f32(3), 0, null, terminated, !terminated, sink);
      const d = (k: number): number => (terminated ? 0 : g ** k);
      expect(out).toEqual([
        { obs: 0, action: 0, ret: 1 + g * 2 + g * g * 3, discount: d(3), next: 3 },
        { obs: 1, action: 1, ret: 2 + g * 3, discount: d(2), next: 3 },
        { obs: 2, action: 2, ret: 3, discount: d(1), next: 3 },
      ]);
      // The next episode starts clean: nothing pending crosses the boundary.
      acc.push(0, f32(10), 0, 0, 5, f32(11), 0, null, true, false, sink);
      expect(out[3]).toEqual({ obs: 10, action: 0, ret: 5, discount: 0, next: 11 });
    }
  });

  it('keeps envs apart', () => {
    const acc = new NStepAccumulator(2, 2, g, 1);
    const { sink, out } = collect();
    acc.push(0, f32(0), 0, 0, 1, f32(1), 0, null, false, false, sink);
    acc.push(1, f32(100), 0, 1, 10, f32(101), 0, null, false, false, sink);
    acc.push(0, f32(1), 0, 0, 2, f32(2), 0, null, false, false, sink);
    expect(out).toEqual([{ obs: 0, action: 0, ret: 1 + g * 2, discount: g * g, next: 2 }]);
  });
});

describe('prioritised replay', () => {
  it('finds the leaf of a prefix sum and keeps the minimum', () => {
    const sum = new SegmentTree(5, 'sum');
    const min = new SegmentTree(5, 'min');
    [1, 2, 3, 4, 0.5].forEach((p, i) => {
      sum.set(i, p);
      min.set(i, p);
    });
    expect(sum.root).toBeCloseTo(10.5, 12);
    expect(min.root).toBe(0.5);
    expect([0, 0.99, 1, 2.99, 3, 5.99, 6, 9.99, 10, 10.4].map((m) => sum.find(m))).toEqual([
      0, 0, 1, 1, 2, 2, 3, 3, 4, 4,
    ]);
  });

  it('samples in proportion to priority^α with importance weights (N·P(i))^−β / max', () => {
    const buf = new ReplayBuffer({
      capacity: 4,
      recordSize: 1,
      maskSize: 0,
      prioritized: true,
      alpha: 0.5,
    });
    for (let i = 0; i < 4; i++) buf.add(0, f32(i), 0, 0, 0, 1, f32(i), 0, null);
    // New transitions get the max priority (1): uniform so far.
    expect([0, 1, 2, 3].map((i) => buf.priority(i))).toEqual([1, 1, 1, 1]);
    buf.updatePriorities(Int32Array.of(0, 1, 2, 3), f32(0, 3, 8, 15), 1);
    // priority = |δ| + 1 → 1, 4, 9, 16; stored as priority^0.5 → 1, 2, 3, 4 (total 10).
    expect([0, 1, 2, 3].map((i) => buf.priority(i))).toEqual([1, 2, 3, 4]);
    const rng = new Rng(3);
    const counts = [0, 0, 0, 0];
    for (let k = 0; k < 5000; k++) {
      const s = buf.sampleBatch(rng, 4, 1);
      for (const i of s.indices) counts[i]++;
    }
    const n = counts.reduce((a, b) => a + b, 0);
    counts.forEach((c, i) => expect(c / n).toBeCloseTo((i + 1) / 10, 1));
    // β = 1: w_i = (4 · P(i))^−1 / max_j (4 · P(j))^−1 = P_min / P(i) = 1 / (i + 1).
    const s = buf.sampleBatch(rng, 4, 1);
    for (let b = 0; b < 4; b++) expect(s.weights[b]).toBeCloseTo(1 / (s.indices[b] + 1), 6);
    // β = 0.5: w_i = (P_min / P(i))^0.5.
    const h = buf.sampleBatch(rng, 4, 0.5);
    for (let b = 0; b < 4; b++)
      expect(h.weights[b]).toBeCloseTo(Math.sqrt(1 / (h.indices[b] + 1)), 6);
    // A new transition enters at the largest priority seen (16).
    buf.add(0, f32(9), 0, 0, 0, 1, f32(9), 0, null);
    expect(buf.priority(0)).toBeCloseTo(4, 12);
  });

  it('overwrites the oldest transition when full', () => {
    const buf = new ReplayBuffer({ capacity: 3, recordSize: 2, maskSize: 2 });
    for (let i = 0; i < 5; i++)
      buf.add(i, f32(i, -i), 0, i % 2, i, 0.9, f32(i + 1, 0), 0, Uint8Array.of(1, 0));
    expect(buf.size).toBe(3);
    expect(Array.from(buf.actions)).toEqual([1, 0, 0]); // slots 0, 1 rewritten by transitions 3, 4
    expect(Array.from(buf.returns)).toEqual([3, 4, 2]);
    expect(Array.from(buf.nextMasks)).toEqual([1, 0, 1, 0, 1, 0]);
  });
});

describe('DQNAgent', () => {
  it('takes a gradient step that lowers the Huber loss of a fixed batch and reports TD errors', () => {
    const agent = new DQNAgent(2, 3, 16, 0.01, {
      seed: 1,
      normalizeObservations: false,
      dueling: true,
    });
    const batch = {
      size: 4,
      states: f32(1, 0, 0, 1, 1, 1, -1, 0),
      actions: Int32Array.of(0, 1, 2, 0),
      returns: f32(1, -1, 0.5, 2),
      discounts: f32(0, 0, 0, 0),
      nextStates: new Float32Array(8),
      nextMasks: null,
      weights: null,
    };
    const first = agent.train(batch);
    expect(first.tdErrors.length).toBe(4);
    let last = first.loss;
    for (let k = 0; k < 200; k++) last = agent.train(batch).loss;
    expect(last).toBeLessThan(first.loss / 10);
    // With terminal targets the TD error is Q(s, a) − R: the Q-values now sit on the returns.
    const q = agent.qValues(batch.states, 4);
    expect(q[0 * 3 + 0]).toBeCloseTo(1, 1);
    expect(q[1 * 3 + 1]).toBeCloseTo(-1, 1);
    expect(agent.selectAction(f32(1, 0), 0)).toBe(0);
  });

  it('explores only among allowed actions', () => {
    const agent = new DQNAgent(2, 3, 8, 1e-3, { seed: 2 });
    const seen = new Set<number>();
    for (let k = 0; k < 200; k++)
      seen.add(agent.selectAction(f32(0, 0), 1, Uint8Array.of(1, 0, 1)));
    expect([...seen].sort()).toEqual([0, 2]);
  });

  it('refuses hyperparameters that cannot work, naming the key', () => {
    expect(() => new DQNAgent(2, 3, 8, 1e-3, { bufferSize: 16, batchSize: 32 })).toThrow(
      /dqn\.bufferSize: 16 is smaller than one batch/,
    );
    expect(() => new DQNAgent(2, 3, 8, 1e-3, { gamma: 1.5 })).toThrow(ConfigError);
    expect(() => new DQNAgent(2, 3, 8, 1e-3, { gamma: 0 })).toThrow(/dqn\.gamma/);
  });
});
