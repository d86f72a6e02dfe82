// The sanity environments an agent test relies on: each passes the env checker; `tiny`'s optimal
// return is the hand-computed one and no action sequence beats its dynamic programme; on
// `oracle-leak` the observation holds the return the action will earn, the perfect-foresight
// oracle earns a known positive return after fees and a rule reading the leak earns most of it;
// on `null` nothing observed predicts the next return and every baseline that does not read the
// future ends at or below zero after fees.

import { beforeAll, describe, expect, it } from 'vitest';
import {
  buyAndHoldPolicy,
  flatPolicy,
  randomPolicy,
  smaCrossPolicy,
} from '../../../src/evaluation/baselines.js';
import type { Policy } from '../../../src/evaluation/policy.js';
import { checkEnv, checkVecEnv } from '../../../src/models/reinforcement/env-checker.js';
import {
  nullMarket,
  oracleLeakMarket,
  sanityEnv,
  TinyEnv,
  type SanityMarket,
} from '../../../src/models/reinforcement/sanity-envs.js';
import { VecEnv } from '../../../src/models/reinforcement/vec-env.js';

function mean(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
}

describe('tiny', () => {
  it('passes the env checker, alone and vectorised', () => {
    const report = checkEnv(new TinyEnv());
    expect(report.problems).toEqual([]);
    expect(report.warnings).toEqual([]);
    const vec = checkVecEnv(new VecEnv([new TinyEnv(), new TinyEnv()]), { steps: 40 });
    expect(vec.problems).toEqual([]);
  });

  it('has the hand-computed optimal return: long through the up phases, short through the down ones', () => {
    // Defaults: phases +2%, +0.4%, -2%, -0.4%, fee 0.5% per unit of change, 32 steps (8 cycles).
    // Best: enter long in phase 0 (fee 0.5%), hold through phase 1, flip short in phase 2 (fee 1%),
    // hold through phase 3, flip long in phase 0 (fee 1%), ...: 1 entry and 15 flips; every phase
    // earns its |return|. Flat through the small phases would pay 2 fees of 0.5% for 0.4% twice
    // a cycle; holding long through the down phases would lose 2% for 1% of fees saved.
    const env = new TinyEnv();
    const expected =
      16 * Math.log(1.02) + 16 * Math.log(1.004) + Math.log(1 - 0.005) + 15 * Math.log(1 - 0.01);
    expect(env.optimalReturn).toBeCloseTo(expected, 12);
  });

  it('no action sequence beats the dynamic programme (exhaustive over 8 steps)', () => {
    const env = new TinyEnv({ episodeSteps: 8 });
    let best = -Infinity;
    for (let code = 0; code < 3 ** 8; code++) {
      env.reset();
      let sum = 0;
      for (let t = 0, c = code; t < 8; t++, c = Math.floor(c / 3)) sum += env.step(c % 3)[1];
      best = Math.max(best, sum);
    }
    expect(env.optimalReturn).toBeCloseTo(best, 12);
  });

  it('its stationary optimal policy, which reads only the observation, earns the optimal return through step()', () => {
    const env = new TinyEnv();
    let [obs] = env.reset();
    let sum = 0;
    for (;;) {
      const phase = obs.indexOf(1);
      const level = env.levels.indexOf(obs[env.phaseReturns.length]);
      const [next, reward, term, trunc] = env.step(env.optimalAction(phase, level));
      sum += reward;
      obs = next;
      if (term || trunc) break;
    }
    expect(sum).toBeCloseTo(env.optimalReturn, 12);
    expect(env.policyReturn(() => env.neutralAction)).toBe(0);
    // Always long: +2% and +0.4% phases earned, -2% and -0.4% lost, one entry fee.
    expect(env.policyReturn(() => 2)).toBeLessThan(env.optimalReturn);
  });

  it('rejects actions outside the space and steps after the end', () => {
    const env = new TinyEnv({ episodeSteps: 1 });
    env.reset();
    expect(() => env.step(3)).toThrow(RangeError);
    const [, , , trunc, info] = env.step(1);
    expect(trunc).toBe(true);
    expect(info.finalObservation).not.toBeNull();
    expect(() => env.step(1)).toThrow(/after the episode ended/);
  });
});

describe('oracle-leak', () => {
  let market: SanityMarket;
  beforeAll(() => {
    market = oracleLeakMarket({ seed: 3 });
  });

  it('passes the env checker on its training and evaluation rows', () => {
    for (const part of ['train', 'evaluation'] as const) {
      const report = checkEnv(market.makeEnv(part));
      expect(report.problems).toEqual([]);
    }
    const env = market.makeEnv();
    expect(env.observationSize).toBe(3);
    expect(env.columnNames).toEqual(['15m[t].next_return_z', '15m[t].ret_1', 'account.position']);
    expect([...(env.reset()[1].actionMask ?? [])]).toEqual([1, 1, 1]);
  });

  it('observes the log return from the next open to the one after, in units of its standard deviation', () => {
    const { open } = market.features.aligned.base;
    const env = market.makeEnv('train', 1);
    let [obs, info] = env.reset();
    const ratios: number[] = [];
    for (let k = 0; k < 50; k++) {
      const r = Math.log(open[info.row + 2] / open[info.row + 1]);
      ratios.push(r / obs[0]);
      [obs, , , , info] = env.step(1);
    }
    // One positive constant (the standard deviation) relates them; float32 storage: 1e-6.
    for (const q of ratios) expect(q / ratios[0]).toBeCloseTo(1, 5);
    expect(ratios[0]).toBeGreaterThan(0);
  });

  it('the perfect-foresight oracle earns a known positive return after fees; a rule reading the leak earns most of it, blind baselines little', () => {
    const oracle = market.oracleEpisodeReturns();
    expect(oracle.length).toBe(8);
    for (const r of oracle) expect(r).toBeGreaterThan(0);
    // The same oracle with costs off earns more: the costs are on.
    const free = oracleLeakMarket({ seed: 3, broker: { takerFeeRate: 0, makerFeeRate: 0 } });
    expect(free.oracleReturn()).toBeGreaterThan(market.oracleReturn() + 0.05);
    // Deterministic: the same seed, the same number.
    expect(oracleLeakMarket({ seed: 3 }).oracleReturn()).toBe(market.oracleReturn());
    // Long when the leak says up by more than 0.3 sd, short when down by more, else keep.
    const leakRule: Policy = {
      observation: market.observation,
      act(obs, _n, out) {
        out[0] = obs[0] > 0.3 ? 1 : obs[0] < -0.3 ? -1 : obs[2];
      },
    };
    const rule = mean(market.episodeReturns(leakRule));
    expect(rule).toBeGreaterThan(0.5 * market.oracleReturn());
    expect(Math.abs(mean(market.episodeReturns(buyAndHoldPolicy())))).toBeLessThan(
      0.2 * market.oracleReturn(),
    );
    expect(mean(market.episodeReturns(flatPolicy()))).toBe(0);
  });
});

describe('null', () => {
  let market: SanityMarket;
  beforeAll(() => {
    market = nullMarket({ seed: 5 });
  });

  it('passes the env checker', () => {
    const report = checkEnv(market.makeEnv());
    expect(report.problems).toEqual([]);
    expect(market.makeEnv().observationSize).toBe(5);
  });

  it('nothing observed predicts the next return (|correlation| below 3 / sqrt(n) for every column)', () => {
    const f = market.features.perTimeframe.get('15m')!;
    const { close } = market.features.aligned.base;
    const [from, to] = [market.trainRows[0], market.evaluationRows[1] - 1];
    const n = to - from;
    for (const name of market.observation.features['15m']!) {
      const j = f.names.indexOf(name);
      const x: number[] = [];
      const y: number[] = [];
      for (let i = from; i < to; i++) {
        x.push(f.values[i * f.cols + j]);
        y.push(Math.log(close[i + 1] / close[i]));
      }
      const mx = mean(x);
      const my = mean(y);
      let sxy = 0;
      let sxx = 0;
      let syy = 0;
      for (let k = 0; k < n; k++) {
        sxy += (x[k] - mx) * (y[k] - my);
        sxx += (x[k] - mx) ** 2;
        syy += (y[k] - my) ** 2;
      }
      expect(Math.abs(sxy / Math.sqrt(sxx * syy)), name).toBeLessThan(3 / Math.sqrt(n));
    }
  });

  it('every baseline that does not read the future ends at or below zero after fees', () => {
    const fee = market.config.broker.takerFeeRate;
    const slip = market.config.broker.slippage.fixedBps / 10_000;
    expect(fee).toBeGreaterThan(0);
    expect([...market.episodeReturns(flatPolicy())]).toEqual(new Array(8).fill(0));
    // Buy-and-hold: each episode's bars sum to zero, so it loses its entry fee and slippage (and
    // the borrow of the few units the fee leaves unfunded) on every episode.
    for (const r of market.episodeReturns(buyAndHoldPolicy())) {
      expect(r).toBeLessThan(0);
      expect(r).toBeCloseTo(Math.log((1 - fee) / (1 + slip)), 5);
    }
    // Random over 10 seeds: it repeats its actions on every episode, so each mirrored pair of
    // episodes cancels its long bars and loses on its short ones, before fees.
    const seeds: number[] = [];
    for (let s = 0; s < 10; s++) {
      const r = market.episodeReturns(
        randomPolicy({ seed: 100 + s, levels: [-1, 0, 1], switchProbability: 0.01 }),
      );
      for (let k = 0; k < r.length; k += 2) expect(r[k] + r[k + 1]).toBeLessThanOrEqual(0);
      seeds.push(mean(r));
    }
    expect(mean(seeds)).toBeLessThan(0);
    const sma = market.episodeReturns(
      smaCrossPolicy(market.features, { fastFeature: 'close_sma_10', slowFeature: 'close_sma_20' }),
    );
    expect(mean(sma)).toBeLessThan(0);
    // The oracle reads the future and is the only one that wins.
    expect(market.oracleReturn()).toBeGreaterThan(0.05);
  });

  it('is a shuffle: the same seed gives the same market, another seed another one', () => {
    const again = nullMarket({ seed: 5 });
    const other = nullMarket({ seed: 6 });
    const c = market.features.aligned.base.close;
    expect([...again.features.aligned.base.close]).toEqual([...c]);
    expect(other.features.aligned.base.close[500]).not.toBe(c[500]);
  });
});

describe('sanityEnv', () => {
  it('builds each sanity env by name', () => {
    expect(sanityEnv('tiny')).toBeInstanceOf(TinyEnv);
    for (const name of ['oracle-leak', 'null'] as const)
      expect(checkEnv(sanityEnv(name, { seed: 1 }), { steps: 50 }).ok).toBe(true);
  });
});
