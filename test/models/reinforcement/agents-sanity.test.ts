// The agents on the sanity environments, before any market (what "learns" means, with known
// answers): `tiny` is solved exactly (the greedy episode earns the optimal return computed by
// dynamic programming), `oracle-leak` (the next return is in the observation) earns at least half
// of the perfect-foresight oracle's after-fee return on held-out episodes, and `null` (shuffled
// returns, costs on) earns no profit: the mean over 5 seeds is at most zero plus two standard
// errors. Short runs: these test the algorithms, not their scale.

import { describe, expect, it } from 'vitest';
import { DiscreteAgentPolicy } from '../../../src/models/reinforcement/agent-policy.js';
import { DQNAgent } from '../../../src/models/reinforcement/dqn-agent.js';
import { PPOAgent } from '../../../src/models/reinforcement/ppo-agent.js';
import {
  nullMarket,
  oracleLeakMarket,
  TinyEnv,
  type SanityMarket,
} from '../../../src/models/reinforcement/sanity-envs.js';
import { VecEnv } from '../../../src/models/reinforcement/vec-env.js';

/** The greedy episode return of a scorer on a fresh TinyEnv. */
function tinyGreedyReturn(score: (obs: Float32Array) => Float32Array): number {
  const env = new TinyEnv();
  let [obs] = env.reset();
  let sum = 0;
  for (;;) {
    const q = score(obs);
    let a = 0;
    for (let j = 1; j < q.length; j++) if (q[j] > q[a]) a = j;
    const [o, r, term, trunc] = env.step(a);
    sum += r;
    obs = o;
    if (term || trunc) return sum;
  }
}

/** Mean evaluation-episode return of a scorer on a sanity market (greedy, through the broker). */
function evaluate(
  market: SanityMarket,
  score: (o: Float32Array, n: number) => Float32Array,
): number {
  const env = market.makeEnv('evaluation');
  const r = market.episodeReturns(new DiscreteAgentPolicy(env.builder.spec, [-1, 0, 1], score));
  return r.reduce((a, b) => a + b, 0) / r.length;
}

function meanAndSe(x: readonly number[]): { mean: number; se: number } {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const sd = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / (x.length - 1));
  return { mean, se: sd / Math.sqrt(x.length) };
}

/** DQN with the shipped defaults (n-step, prioritised, double, dueling, reward scale 100). */
function trainDqn(vec: VecEnv<object>, seed: number, steps: number): DQNAgent {
  const agent = new DQNAgent(vec.observationSize, 3, 64, 1e-3, {
    seed,
    learningStarts: 500,
    targetUpdateInterval: 500,
    bufferSize: 50_000,
  });
  agent.learn({ env: vec, totalTimesteps: steps });
  return agent;
}

/** PPO's sanity recipe: four envs, short rollouts, lr 1e-3. */
function trainPpo(vec: VecEnv<object>, seed: number, steps: number, nSteps: number): PPOAgent {
  const agent = new PPOAgent(vec.observationSize, 3, 64, 1e-3, { seed, nSteps, batchSize: 64 });
  agent.learn({ env: vec, totalTimesteps: steps });
  return agent;
}

describe('DQN on the sanity environments', () => {
  it('solves tiny: the greedy episode earns the optimal return', () => {
    const vec = new VecEnv([new TinyEnv()]);
    const agent = new DQNAgent(vec.observationSize, 3, 64, 1e-3, {
      seed: 1,
      learningStarts: 200,
      targetUpdateInterval: 200,
      bufferSize: 10_000,
    });
    agent.learn({ env: vec, totalTimesteps: 6000 });
    expect(tinyGreedyReturn((o) => agent.qValues(o, 1))).toBeCloseTo(
      new TinyEnv().optimalReturn,
      6,
    );
  });

  it('earns at least half of the oracle on oracle-leak (held-out episodes, after fees)', () => {
    const market = oracleLeakMarket({ seed: 1 });
    const agent = trainDqn(new VecEnv([market.makeEnv('train', 1)]), 1, 8000);
    expect(evaluate(market, (o, n) => agent.qValues(o, n))).toBeGreaterThanOrEqual(
      0.5 * market.oracleReturn(),
    );
  });

  it('makes no profit on null: mean over 5 seeds <= 0 + 2 standard errors', () => {
    const returns = [1, 2, 3, 4, 5].map((seed) => {
      const market = nullMarket({ seed });
      const agent = trainDqn(new VecEnv([market.makeEnv('train', seed)]), seed, 2000);
      return evaluate(market, (o, n) => agent.qValues(o, n));
    });
    const { mean, se } = meanAndSe(returns);
    expect(mean).toBeLessThanOrEqual(2 * se);
  });
});

describe('PPO on the sanity environments', () => {
  it('solves tiny: the greedy episode earns the optimal return', () => {
    const vec = new VecEnv(Array.from({ length: 4 }, () => new TinyEnv()));
    const agent = trainPpo(vec, 1, 8192, 128);
    expect(tinyGreedyReturn((o) => agent.scores(o, 1))).toBeCloseTo(new TinyEnv().optimalReturn, 6);
  });

  it('earns at least half of the oracle on oracle-leak (held-out episodes, after fees)', () => {
    const market = oracleLeakMarket({ seed: 1 });
    const vec = new VecEnv(Array.from({ length: 4 }, (_, i) => market.makeEnv('train', 100 + i)));
    const agent = trainPpo(vec, 1, 12_288, 256);
    expect(evaluate(market, (o, n) => agent.scores(o, n))).toBeGreaterThanOrEqual(
      0.5 * market.oracleReturn(),
    );
  });

  it('makes no profit on null: mean over 5 seeds <= 0 + 2 standard errors', () => {
    const returns = [1, 2, 3, 4, 5].map((seed) => {
      const market = nullMarket({ seed });
      const vec = new VecEnv(
        Array.from({ length: 4 }, (_, i) => market.makeEnv('train', 10 * seed + i)),
      );
      const agent = trainPpo(vec, seed, 2048, 256);
      return evaluate(market, (o, n) => agent.scores(o, n));
    });
    const { mean, se } = meanAndSe(returns);
    expect(mean).toBeLessThanOrEqual(2 * se);
  });
});
