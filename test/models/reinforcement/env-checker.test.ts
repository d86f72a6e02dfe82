// The env checker accepts the trading env (flat and dict forms) and a VecEnv of it, and rejects
// three deliberately broken envs: an observation outside its space, a NaN observation, and an
// episode that terminates (instead of truncating) when the data runs out.

import { describe, expect, it } from 'vitest';
import {
  assertEnv,
  checkEnv,
  checkVecEnv,
  EnvCheckError,
} from '../../../src/models/reinforcement/env-checker.js';
import {
  CryptoTradingEnv,
  DictObservationEnv,
} from '../../../src/models/reinforcement/trading-env.js';
import { VecEnv } from '../../../src/models/reinforcement/vec-env.js';
import {
  Box,
  Discrete,
  type Env,
  type ResetOptions,
  type ResetResult,
  type StepResult,
} from '../../../src/models/reinforcement/spaces.js';
import { Rng } from '../../../src/utils/random.js';
import { singleFeatures, walkCandles } from './helpers.js';

type Breakage = 'none' | 'out-of-space' | 'nan' | 'terminate-at-end';

/** A tiny valid env (a walk over 40 steps, obs in [0, 1]^2), broken on purpose when asked. */
class ToyEnv implements Env<Float32Array, number, Record<string, unknown>> {
  readonly observationSpace = new Box(0, 1, [2]);
  readonly actionSpace = new Discrete(2);
  readonly neutralAction = 0;
  private readonly obs = new Float32Array(2);
  private t = 0;
  private rng = new Rng(0);
  constructor(private readonly breakage: Breakage) {}

  reset(options: ResetOptions = {}): ResetResult<Float32Array, Record<string, unknown>> {
    if (options.seed !== undefined) this.rng = new Rng(options.seed);
    this.t = 0;
    this.obs[0] = this.rng.next();
    this.obs[1] = 0;
    return [this.obs, {}];
  }

  step(action: number): StepResult<Float32Array, Record<string, unknown>> {
    this.t++;
    this.obs[0] = this.rng.next();
    this.obs[1] = this.t / 40;
    if (this.breakage === 'out-of-space' && this.t === 7) this.obs[0] = 1.5;
    if (this.breakage === 'nan' && this.t === 5) this.obs[1] = NaN;
    const end = this.t >= 40;
    const reward = action === 1 ? this.obs[0] - 0.5 : 0;
    if (this.breakage === 'terminate-at-end') return [this.obs, reward, end, false, {}];
    return [this.obs, reward, false, end, {}];
  }
}

describe('env checker', () => {
  const features = singleFeatures(walkCandles(600, 3), 8);

  it('passes the trading env (discrete and continuous actions) and its dict form', () => {
    const env = new CryptoTradingEnv(features, { transactionCost: 0.001 });
    const r = checkEnv(env, { seed: 1, steps: 400 });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    const cont = new CryptoTradingEnv(features, { env: { actionType: 'continuous' } });
    expect(checkEnv(cont, { seed: 2 }).problems).toEqual([]);
    const dict = new DictObservationEnv(new CryptoTradingEnv(features));
    const [obs] = dict.reset({ seed: 1 });
    expect(Object.keys(obs)).toEqual(['15m', 'account']);
    expect(obs['15m'].length).toBe(8 * 3);
    expect(checkEnv(dict, { seed: 3 }).problems).toEqual([]);
    expect(assertEnv(env).ok).toBe(true);
  });

  it('passes a VecEnv of trading envs, whose episodes end and auto-reset', () => {
    const vec = new VecEnv(
      Array.from(
        { length: 4 },
        () => new CryptoTradingEnv(features, { env: { maxEpisodeSteps: 25 } }),
      ),
    );
    const r = checkVecEnv(vec, { seed: 5, steps: 80 });
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.steps).toBe(4 * 80);
  });

  it('passes the valid toy env', () => {
    expect(checkEnv(new ToyEnv('none')).problems).toEqual([]);
  });

  it('rejects an observation outside its space, naming the step, index and bounds', () => {
    const r = checkEnv(new ToyEnv('out-of-space'));
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/step 7 observation\[0\] = 1\.5 is outside \[0, 1\]/);
  });

  it('rejects a NaN observation, naming the step and index', () => {
    const r = checkEnv(new ToyEnv('nan'));
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/step 5 observation holds NaN at index 1/);
    expect(() => assertEnv(new ToyEnv('nan'))).toThrow(EnvCheckError);
  });

  it('rejects an env that terminates when the data runs out', () => {
    const r = checkEnv(new ToyEnv('terminate-at-end'));
    expect(r.ok).toBe(false);
    expect(r.problems.join(' ')).toMatch(/terminated after 40 steps under the neutral action/);
  });

  it('rejects a non-deterministic env', () => {
    class Drifting extends ToyEnv {
      private calls = 0;
      override reset(
        options: ResetOptions = {},
      ): ResetResult<Float32Array, Record<string, unknown>> {
        const out = super.reset({ seed: (options.seed ?? 0) + this.calls++ });
        return out;
      }
    }
    const r = checkEnv(new Drifting('none'));
    expect(r.problems.join(' ')).toMatch(/not deterministic/);
  });
});
