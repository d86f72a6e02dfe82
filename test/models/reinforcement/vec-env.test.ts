// VecEnv: a batch equals N single envs stepped alone, auto-reset keeps the final observation, and
// the batch buffer is reused.

import { describe, expect, it } from 'vitest';
import { CryptoTradingEnv } from '../../../src/models/reinforcement/trading-env.js';
import { VecEnv } from '../../../src/models/reinforcement/vec-env.js';
import { Rng } from '../../../src/utils/random.js';
import { singleFeatures, walkCandles } from './helpers.js';

describe('VecEnv', () => {
  const features = singleFeatures(walkCandles(400, 8), 6);
  const make = (): CryptoTradingEnv =>
    new CryptoTradingEnv(features, { transactionCost: 0.001, env: { maxEpisodeSteps: 30 } });

  it('steps N envs into one batch equal to the same envs stepped alone, with same-step auto-reset', () => {
    const n = 3;
    const vec = new VecEnv(Array.from({ length: n }, make));
    const solo = Array.from({ length: n }, make);
    const size = vec.observationSize;
    const batch0 = vec.reset(100);
    for (let i = 0; i < n; i++) {
      const [obs] = solo[i].reset({ seed: 100 + i });
      expect(Array.from(batch0.subarray(i * size, (i + 1) * size))).toEqual(Array.from(obs));
    }
    const rng = new Rng(1);
    const actions = new Int32Array(n);
    let resets = 0;
    for (let k = 0; k < 100; k++) {
      for (let i = 0; i < n; i++) actions[i] = rng.int(3);
      const r = vec.step(actions);
      expect(r.observations).toBe(batch0); // reused buffer
      for (let i = 0; i < n; i++) {
        const [obs, reward, term, trunc] = solo[i].step(actions[i]);
        expect(r.rewards[i]).toBeCloseTo(reward, 6);
        expect(r.terminated[i]).toBe(term ? 1 : 0);
        expect(r.truncated[i]).toBe(trunc ? 1 : 0);
        if (term || trunc) {
          resets++;
          expect(r.dones[i]).toBe(1);
          expect(Array.from(r.finalObservations[i])).toEqual(Array.from(obs));
          expect(r.infos[i].finalObservation).toBe(r.finalObservations[i]);
          const [first] = solo[i].reset();
          expect(Array.from(r.observations.subarray(i * size, (i + 1) * size))).toEqual(
            Array.from(first),
          );
        } else {
          expect(r.dones[i]).toBe(0);
          expect(Array.from(r.observations.subarray(i * size, (i + 1) * size))).toEqual(
            Array.from(obs),
          );
        }
      }
    }
    expect(resets).toBeGreaterThanOrEqual(n * 3);
  });

  it('batches action masks and rejects a wrong number of actions', () => {
    const vec = new VecEnv([
      new CryptoTradingEnv(features, { broker: { allowShort: false } }),
      new CryptoTradingEnv(features),
    ]);
    vec.reset(1);
    expect(Array.from(vec.actionMasks()!)).toEqual([0, 1, 1, 1, 1, 1]);
    expect(() => vec.step(new Int32Array(3))).toThrow(RangeError);
  });

  it('passes continuous actions through, one per env', () => {
    const vec = new VecEnv([
      new CryptoTradingEnv(features, { env: { actionType: 'continuous' } }),
      new CryptoTradingEnv(features, { env: { actionType: 'continuous' } }),
    ]);
    vec.reset(2);
    const r = vec.step(Float32Array.of(0.25, -0.75));
    expect(r.infos[0]).toMatchObject({ target: 0.25 });
    expect(r.infos[1]).toMatchObject({ target: -0.75 });
  });
});
