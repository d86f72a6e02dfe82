// The trading env on a scenario's markets: it passes the env checker alone and vectorised, draws
// every market, keeps episodes inside the traded range of their market and truncates them after
// the scenario's episode length.

import { beforeAll, describe, expect, it } from 'vitest';
import { scenarioMarkets, type ScenarioMarket } from '../../../src/evaluation/scenarios.js';
import { checkEnv, checkVecEnv } from '../../../src/models/reinforcement/env-checker.js';
import { marketEnv, ScenarioEnv } from '../../../src/models/reinforcement/scenario-env.js';
import { VecEnv } from '../../../src/models/reinforcement/vec-env.js';
import { defaultConfig, loadConfig } from '../../../src/utils/config.js';

describe('ScenarioEnv', () => {
  const config = loadConfig({ set: ['scenarios.synthetic.trend.episodeSteps=200'] });
  let markets: ScenarioMarket[];
  beforeAll(async () => {
    markets = await scenarioMarkets(config, 'trend', 'validation', { indices: [0, 1] });
  });

  it('passes the env checker, alone and in a VecEnv', () => {
    const report = checkEnv(new ScenarioEnv(markets, { config, seed: 3 }), { steps: 500 });
    expect(report.problems).toEqual([]);
    const vec = new VecEnv([0, 1, 2].map((i) => new ScenarioEnv(markets, { config, seed: i })));
    expect(checkVecEnv(vec, { steps: 250 }).problems).toEqual([]);
  });

  it("draws every market, keeps each episode inside its market's traded range and truncates it after episodeSteps", () => {
    const env = new ScenarioEnv(markets, { config, seed: 1 });
    const seen = new Set<number>();
    for (let episode = 0; episode < 8; episode++) {
      const [, first] = env.reset();
      const m = markets[env.market];
      seen.add(env.market);
      expect(first.timeMs - 900_000).toBeGreaterThanOrEqual(m.range.fromMs);
      let steps = 0;
      for (;;) {
        const [, , term, trunc, info] = env.step(env.neutralAction);
        steps++;
        expect(info.timeMs).toBeLessThanOrEqual(m.range.toMs);
        if (term || trunc) {
          expect(trunc).toBe(true);
          expect(info.truncationReason).toBe('max-steps');
          break;
        }
      }
      expect(steps).toBe(200);
    }
    expect(seen).toEqual(new Set([0, 1]));
  });

  it('takes a market by index, and the market env uses the scenario episode length by default', () => {
    const env = new ScenarioEnv(markets, { config, seed: 1 });
    env.reset({ options: { market: 1 } });
    expect(env.market).toBe(1);
    expect(() => env.reset({ options: { market: 2 } })).toThrow(RangeError);
    const single = marketEnv(markets[0], { config: defaultConfig() });
    expect(single.rangeStart).toBeGreaterThanOrEqual(markets[0].features.firstValidRow);
  });
});
