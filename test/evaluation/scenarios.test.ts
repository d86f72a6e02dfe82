// Scenarios as agents and `ctm compare` rely on them: every synthetic scenario generates the same
// markets from the same seeds, with the generator's labels of the kinds it names, traded only after
// the features' warm-up; train / validation / test seeds are disjoint (the config refuses overlaps);
// the real scenario cuts yearly walk-forward folds; a curriculum names known scenarios.

import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, UsageError } from '../../src/errors.js';
import {
  checkScenarioName,
  parseCurriculum,
  realFoldRanges,
  scenarioFingerprint,
  scenarioMarkets,
  scenarioNames,
  scenarioSeeds,
  SCENARIO_SPLITS,
  type ScenarioMarket,
} from '../../src/evaluation/scenarios.js';
import { defaultConfig, loadConfig } from '../../src/utils/config.js';
import { hasSharedData, SHARED_DATA_DIR, SKIP_REASON } from '../helpers/shared-data.js';

const config = defaultConfig();

describe('synthetic scenarios', () => {
  const markets = new Map<string, ScenarioMarket>();
  beforeAll(async () => {
    for (const name of ['trend', 'pullback', 'patterns', 'mix'])
      markets.set(name, (await scenarioMarkets(config, name, 'train', { indices: [1] }))[0]);
  });

  it('the defaults name trend, pullback, patterns and mix (then real), with disjoint seeds per split', () => {
    expect(scenarioNames(config)).toEqual(['trend', 'pullback', 'patterns', 'mix', 'real']);
    for (const name of ['trend', 'pullback', 'patterns', 'mix']) {
      const sc = config.scenarios.synthetic[name];
      const all = SCENARIO_SPLITS.flatMap((s) => scenarioSeeds(sc, s));
      expect(new Set(all).size).toBe(all.length);
      expect(scenarioSeeds(sc, 'test').length).toBeGreaterThanOrEqual(8);
    }
  });

  it('generates the same market from the same seed, and another from another seed', async () => {
    const again = (await scenarioMarkets(config, 'mix', 'train', { indices: [1] }))[0];
    const first = markets.get('mix')!;
    expect(again.name).toBe('mix/train/4101');
    expect(again.seed).toBe(4101);
    expect(again.features.aligned.base.close).toEqual(first.features.aligned.base.close);
    expect(again.labels).toEqual(first.labels);
    const other = (await scenarioMarkets(config, 'mix', 'train', { indices: [0] }))[0];
    expect(other.features.aligned.base.close[5000]).not.toBe(
      first.features.aligned.base.close[5000],
    );
  });

  it('each market carries the labels of what was planted, of the kinds its scenario names', () => {
    const kinds: Record<string, (t: string) => boolean> = {
      trend: (t) => t === 'uptrend' || t === 'downtrend',
      pullback: (t) =>
        ['bull_flag', 'bear_flag', 'support_retest', 'resistance_retest'].includes(t),
      patterns: () => true,
      mix: () => true,
    };
    for (const [name, m] of markets) {
      expect(m.labels.length, name).toBeGreaterThan(3);
      for (const l of m.labels) {
        expect(kinds[name](l.type), `${name}: ${l.type}`).toBe(true);
        expect(l.completionTimeMs).toBeGreaterThan(l.onsetTimeMs);
        expect([-1, 0, 1]).toContain(l.expectedDirection);
        // Patterns are planted after the warm-up, inside the traded range.
        expect(l.onsetTimeMs).toBeGreaterThanOrEqual(m.range.fromMs);
        expect(l.completionTimeMs).toBeLessThanOrEqual(m.range.toMs);
      }
      if (name !== 'mix')
        expect(
          m.labels.some((l) => l.adversarial),
          name,
        ).toBe(false);
    }
    expect(markets.get('mix')!.labels.some((l) => l.adversarial)).toBe(true);
  });

  it('trades only after the features are warm: the range starts at or after the first valid row', () => {
    for (const m of markets.values()) {
      const base = m.features.aligned.base;
      expect(m.range.fromMs).toBeGreaterThanOrEqual(base.openTime[m.features.firstValidRow]);
      // 60 days of 15m bars are traded.
      expect((m.range.toMs - m.range.fromMs) / 900_000).toBe(60 * 96);
      expect(m.episodeSteps).toBe(960);
    }
  });
});

describe('scenario config', () => {
  it('refuses overlapping train / validation / test seeds, naming the key', () => {
    expect(() =>
      loadConfig({ set: ['scenarios.synthetic.trend.seeds.test={ from: 1110, count: 8 }'] }),
    ).toThrow(/scenarios\.synthetic\.trend\.seeds\.test.*overlap the train seeds 1100\.\.1115/);
  });

  it('takes a new named scenario, and refuses a curriculum naming an unknown one', () => {
    const mine = {
      ...config.scenarios.synthetic.trend,
      days: 10,
      patternWeights: { double_top: 1 },
    };
    const c = loadConfig({ overrides: [{ scenarios: { synthetic: { mine } } }] });
    expect(scenarioNames(c)).toContain('mine');
    expect(c.scenarios.synthetic.mine.patternWeights).toEqual({ double_top: 1 });
    expect(parseCurriculum(c, 'trend, mine ,mix')).toEqual(['trend', 'mine', 'mix']);
    expect(parseCurriculum(c)).toEqual(['trend', 'pullback', 'patterns', 'mix']);
    expect(() => parseCurriculum(c, 'trend,nosuch')).toThrow(UsageError);
    expect(() => loadConfig({ set: ['scenarios.curriculum=[trend, nosuch]'] })).toThrow(
      /scenarios\.curriculum\.1.*unknown scenario nosuch/,
    );
    expect(() => checkScenarioName(c, 'mxi')).toThrow(/unknown scenario mxi/);
  });

  it('names an unknown pattern type of a scenario by its key', async () => {
    const c = loadConfig({ set: ['scenarios.synthetic.trend.patternWeights.uptrnd=1'] });
    await expect(scenarioMarkets(c, 'trend', 'test', { indices: [0] })).rejects.toThrow(
      ConfigError,
    );
    await expect(scenarioMarkets(c, 'trend', 'test', { indices: [0] })).rejects.toThrow(
      /scenarios\.synthetic\.trend\.patternWeights\.uptrnd/,
    );
  });

  it('fingerprints a scenario split by its config: same config same hash, another split or seeds another', () => {
    const a = scenarioFingerprint(config, 'mix', 'test');
    expect(scenarioFingerprint(defaultConfig(), 'mix', 'test')).toEqual(a);
    expect(scenarioFingerprint(config, 'mix', 'train').hash).not.toBe(a.hash);
    const moved = loadConfig({ set: ['scenarios.synthetic.mix.seeds.test.from=4400'] });
    expect(scenarioFingerprint(moved, 'mix', 'test').hash).not.toBe(a.hash);
  });
});

describe('the real scenario', () => {
  it('cuts yearly walk-forward folds: test years 2021-2023, training before each (purged), validation its last 90 days', () => {
    const test = realFoldRanges(config, 'test');
    expect(test.map((r) => new Date(r.fromMs).toISOString().slice(0, 10))).toEqual([
      '2021-01-01',
      '2022-01-01',
      '2023-01-01',
    ]);
    const train = realFoldRanges(config, 'train');
    const val = realFoldRanges(config, 'validation');
    for (let k = 0; k < 3; k++) {
      expect(train[k].fromMs).toBe(Date.UTC(2018, 0, 1));
      expect(train[k].toMs).toBe(val[k].fromMs);
      expect(val[k].toMs - val[k].fromMs).toBe(90 * 86_400_000);
      expect(val[k].toMs).toBeLessThan(test[k].fromMs);
    }
  });

  it.skipIf(!hasSharedData)(
    `reads the test years from a data directory${SKIP_REASON}`,
    async () => {
      const c = loadConfig({ set: ['backtest.warmupDays=100'] });
      const [m2022] = await scenarioMarkets(c, 'real', 'test', {
        indices: [1],
        dataDir: SHARED_DATA_DIR,
      });
      expect(m2022.name).toBe('real/test/2022');
      expect(m2022.labels).toEqual([]);
      expect(m2022.range).toEqual({ fromMs: Date.UTC(2022, 0, 1), toMs: Date.UTC(2023, 0, 1) });
      const base = m2022.features.aligned.base;
      expect(base.openTime[base.openTime.length - 1]).toBe(Date.UTC(2023, 0, 1) - 900_000);
    },
  );
});
