// PPO on hand-made numbers: GAE over a trajectory with a truncation and a termination in the
// middle (the truncation bootstraps from V(final observation), the termination does not, and
// nothing crosses either), the clipped surrogate and value losses and their gradients, the ratio of
// the first minibatch equal to 1, masked actions never sampled, and refused hyperparameters.

import { describe, expect, it } from 'vitest';
import {
  clippedSurrogate,
  clippedSurrogateGrad,
  computeGae,
  PPOAgent,
  valueLoss,
} from '../../../src/models/reinforcement/ppo-agent.js';
import { ConfigError } from '../../../src/errors.js';

const f32 = (...x: number[]): Float32Array => Float32Array.from(x);

describe('GAE', () => {
  it('bootstraps a truncation from V(final), never a termination, and stops both sums', () => {
    // One env, 6 steps. Step 1 truncates (final value 10), step 3 terminates; the rollout then
    // continues into a third episode whose last step bootstraps from lastValues.
    const r = f32(1, 2, 3, 4, 5, 6);
    const v = f32(0.5, 1, 1.5, 2, 2.5, 3);
    const ended = Uint8Array.of(0, 1, 0, 1, 0, 0);
    const boot = f32(0, 10, 0, 0, 0, 0);
    const last = f32(7);
    const g = 0.9;
    const l = 0.8;
    const adv = new Float32Array(6);
    const ret = new Float32Array(6);
    computeGae(r, v, ended, boot, last, 6, 1, g, l, adv, ret);
    // Hand computation, from the end.
    const d5 = 6 + g * 7 - 3;
    const a5 = d5;
    const d4 = 5 + g * 3 - 2.5;
    const a4 = d4 + g * l * a5;
    const a3 = 4 + 0 - 2; // terminated: no bootstrap, no carry
    const d2 = 3 + g * 2 - 1.5;
    const a2 = d2 + g * l * a3;
    const a1 = 2 + g * 10 - 1; // truncated: bootstrap from V(final) = 10, no carry
    const d0 = 1 + g * 1 - 0.5;
    const a0 = d0 + g * l * a1;
    const expected = [a0, a1, a2, a3, a4, a5];
    expected.forEach((a, t) => {
      expect(adv[t]).toBeCloseTo(a, 5);
      expect(ret[t]).toBeCloseTo(a + v[t], 5);
    });
  });

  it('keeps envs apart in a step-major rollout', () => {
    const adv = new Float32Array(4);
    const ret = new Float32Array(4);
    // T = 2, N = 2: env 0 rewards 1, 1; env 1 rewards 0, 0; zero values; env 1 ends at t = 0.
    computeGae(
      f32(1, 0, 1, 0),
      new Float32Array(4),
      Uint8Array.of(0, 1, 0, 0),
      new Float32Array(4),
      f32(0, 0),
      2,
      2,
      1,
      1,
      adv,
      ret,
    );
    expect(Array.from(adv)).toEqual([2, 0, 1, 0]);
  });
});

describe('losses', () => {
  it('clips the surrogate: gradient only while the ratio may still move in the advantage direction', () => {
    const e = 0.2;
    expect(clippedSurrogate(1.1, 2, e)).toBeCloseTo(-2.2, 12);
    expect(clippedSurrogate(1.5, 2, e)).toBeCloseTo(-2.4, 12); // capped at 1 + ε for A > 0
    expect(clippedSurrogate(0.5, 2, e)).toBeCloseTo(-1, 12); // below 1 − ε: the unclipped (worse) term
    expect(clippedSurrogate(0.5, -2, e)).toBeCloseTo(1.6, 12); // A < 0: capped at 1 − ε
    expect(clippedSurrogate(1.5, -2, e)).toBeCloseTo(3, 12);
    expect(clippedSurrogateGrad(1.1, 2, e)).toBe(-2);
    expect(clippedSurrogateGrad(1.5, 2, e)).toBe(0);
    expect(clippedSurrogateGrad(0.5, 2, e)).toBe(-2);
    expect(clippedSurrogateGrad(0.5, -2, e)).toBe(0);
    expect(clippedSurrogateGrad(1.5, -2, e)).toBe(2);
  });

  it('clips the value update around the old value when asked', () => {
    expect(valueLoss(3, 1, 0, null)).toEqual([4, 4]);
    // v moved +3 from the old value 0; clipped at +0.5: (0.5 − 1)² = 0.25 < (3 − 1)² = 4 → unclipped.
    expect(valueLoss(3, 1, 0, 0.5)).toEqual([4, 4]);
    // Target 5: unclipped (3 − 5)² = 4, clipped (0.5 − 5)² = 20.25 → the clipped branch, no gradient.
    const [l, d] = valueLoss(3, 5, 0, 0.5);
    expect(l).toBeCloseTo(20.25, 12);
    expect(d).toBe(0);
  });
});

describe('PPOAgent', () => {
  it("has ratio 1 on the first minibatch of an update run through the spec's train()", () => {
    const agent = new PPOAgent(2, 3, 16, 1e-2, { seed: 3, nSteps: 8, batchSize: 4, nEpochs: 4 });
    // A trajectory where action 2 is always rewarded.
    const T = 8;
    const states = new Float32Array(T * 2).map((_, k) => (k % 2 === 0 ? 1 : -1));
    const actions: number[] = [];
    const logps: number[] = [];
    const rewards: number[] = [];
    for (let t = 0; t < T; t++) {
      const s = agent.selectAction(states.subarray(t * 2, t * 2 + 2));
      actions.push(s.action);
      logps.push(s.logProb);
      rewards.push(s.action === 2 ? 1 : 0);
    }
    const stats = agent.train(states, actions, rewards, states, new Array(T).fill(0), {
      oldLogProbs: logps,
      truncated: [0, 0, 0, 0, 0, 0, 0, 1],
    });
    expect(Math.abs(stats.firstRatio - 1)).toBeLessThan(1e-6);
    expect(stats.epochs).toBe(4);
    expect(stats.approxKl).toBeGreaterThan(0);
  });

  it('never samples a masked action', () => {
    const agent = new PPOAgent(2, 3, 8, 3e-4, { seed: 4, nSteps: 8, batchSize: 4 });
    const seen = new Set<number>();
    for (let k = 0; k < 300; k++)
      seen.add(agent.selectAction(f32(0.3, -0.2), Uint8Array.of(0, 1, 1)).action);
    expect([...seen].sort()).toEqual([1, 2]);
  });

  it('keeps continuous actions inside [-1, 1]', () => {
    const agent = new PPOAgent(2, 1, 8, 3e-4, { seed: 5, actionType: 'continuous', logStdInit: 1 });
    for (let k = 0; k < 200; k++) {
      const a = agent.selectAction(f32(0.1, 0.2)).action;
      expect(a).toBeGreaterThanOrEqual(-1);
      expect(a).toBeLessThanOrEqual(1);
    }
  });

  it('refuses hyperparameters that cannot work, naming the key', () => {
    expect(() => new PPOAgent(2, 3, 8, 3e-4, { gaeLambda: 2 })).toThrow(/ppo\.gaeLambda/);
    expect(() => new PPOAgent(2, 3, 8, 3e-4, { gamma: 0 })).toThrow(ConfigError);
  });
});
