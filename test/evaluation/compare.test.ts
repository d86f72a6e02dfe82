// `comparePolicies` / `runCompare` as `ctm compare` and the agents' experiments use them: every
// policy on every market of a scenario split, random over its seeds, spot buy-and-hold and random
// always there as references, mean ± sd per figure over (seed x market) samples, differences in
// return paired by market, and a run folder with the table on an HTML page.

import { existsSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  compareTableRows,
  comparePolicies,
  formatCompareTable,
  parsePolicyList,
  runCompare,
  type CompareResult,
} from '../../src/evaluation/compare.js';
import { UsageError } from '../../src/errors.js';
import { resolvePolicy } from '../../src/policies.js';
import { loadConfig, type Config } from '../../src/utils/config.js';
import { listRuns, openRun, type Run } from '../../src/utils/runs.js';
import { hasSharedData, SHARED_DATA_DIR, SKIP_REASON } from '../helpers/shared-data.js';

function quickConfig(): Config {
  const runs = mkdtempSync(join(tmpdir(), 'ctm-compare-'));
  return loadConfig({
    set: [
      `paths.runs=${runs}`,
      'scenarios.synthetic.mix.days=40',
      'scenarios.synthetic.mix.seeds.test={ from: 4300, count: 3 }',
    ],
  });
}

describe('parsePolicyList', () => {
  it('reads references and LABEL=RUN+RUN seeds, refusing empty items and repeated labels', () => {
    expect(parsePolicyList('flat, dqn=runs/a+runs/b ,random')).toEqual([
      { label: 'flat', refs: ['flat'] },
      { label: 'dqn', refs: ['runs/a', 'runs/b'] },
      { label: 'random', refs: ['random'] },
    ]);
    expect(() => parsePolicyList(' , ')).toThrow(UsageError);
    expect(() => parsePolicyList('x=')).toThrow(/empty label or reference/);
    expect(() => parsePolicyList('flat,flat')).toThrow(/names flat twice/);
  });
});

describe('comparePolicies', () => {
  const config = quickConfig();
  let result: CompareResult;
  beforeAll(async () => {
    result = await comparePolicies({
      config,
      scenario: 'mix',
      policies: parsePolicyList('flat,pattern-oracle,pair=flat+buy-hold'),
      seeds: 4,
      resolvePolicy,
    });
  });

  it('runs every seed of every policy on every market, and adds the references', () => {
    expect(result.markets).toEqual(['mix/test/4300', 'mix/test/4301', 'mix/test/4302']);
    expect(result.policies.map((p) => p.label)).toEqual([
      'flat',
      'pattern-oracle',
      'pair',
      'spot-buy-hold',
      'random',
    ]);
    const by = Object.fromEntries(result.policies.map((p) => [p.label, p]));
    expect(by.random.seeds).toBe(4);
    expect(by.random.refs).toEqual(['random#0', 'random#1', 'random#2', 'random#3']);
    expect(by.random.samples).toHaveLength(12);
    expect(by.pair.refs).toEqual(['flat', 'buy-hold']);
    expect(by.pair.samples).toHaveLength(6);
    expect(by.flat.stats.totalReturn).toEqual({ mean: 0, sd: 0, n: 3 });
    expect(by.flat.stats.sharpe.n).toBe(0);
    // Random's 4 seeds differ on a market.
    const m0 = by.random.samples.filter((s) => s.market === 'mix/test/4300');
    expect(new Set(m0.map((s) => s.values.totalReturn)).size).toBe(4);
  });

  it('pairs the differences by market: flat minus random is minus random’s mean on each market', () => {
    const by = Object.fromEntries(result.policies.map((p) => [p.label, p]));
    const perMarket = result.markets.map((m) => {
      const xs = by.random.samples.filter((s) => s.market === m).map((s) => s.values.totalReturn!);
      return -xs.reduce((a, b) => a + b, 0) / xs.length;
    });
    const mean = perMarket.reduce((a, b) => a + b, 0) / 3;
    const sd = Math.sqrt(perMarket.reduce((a, b) => a + (b - mean) ** 2, 0) / 2);
    expect(by.flat.vsRandom.mean).toBeCloseTo(mean, 12);
    expect(by.flat.vsRandom.se).toBeCloseTo(sd / Math.sqrt(3), 12);
    expect(by.flat.vsRandom.beats).toBe(mean > (2 * sd) / Math.sqrt(3));
    expect(by['spot-buy-hold'].vsSpotBuyHold).toMatchObject({ mean: 0, se: 0 });
    // The pattern oracle knows how each pattern resolves: it is ahead of random on every market.
    for (const s of by['pattern-oracle'].samples)
      expect(s.values.totalReturn!).toBeGreaterThan(
        by.random.samples
          .filter((r) => r.market === s.market)
          .reduce((a, r) => a + r.values.totalReturn! / 4, 0),
      );
  });

  it('prints one row per policy, the references marked by a dash in their own column', () => {
    const { header, rows } = compareTableRows(result);
    expect(header.join(' | ')).toBe(
      'policy | samples | return | Sharpe | max DD | turnover | fee drag | vs spot B&H | vs random',
    );
    expect(rows.map((r) => r[1])).toEqual(['1x3', '1x3', '2x3', '1x3', '4x3']);
    expect(rows[3][7]).toBe('—');
    expect(rows[4][8]).toBe('—');
    expect(rows[0][2]).toBe('+0.0% ± 0.0%');
    const text = formatCompareTable(result);
    expect(text.split('\n')).toHaveLength(2 + 5);
  });
});

describe('runCompare', () => {
  it('writes a completed run folder: metrics, the comparison page and its figure', async () => {
    const config = quickConfig();
    const out = await runCompare({
      config,
      scenario: 'mix',
      policies: parsePolicyList('flat,buy-hold'),
      seeds: 2,
      markets: [0, 2],
      resolvePolicy,
    });
    const info = openRun(out.run.dir, config.paths.runs).info;
    expect(info).toMatchObject({ kind: 'compare', status: 'completed' });
    expect(info.data?.symbols).toEqual(['scenario:mix']);
    const metrics = JSON.parse(readFileSync(out.run.path('metrics.json'), 'utf8')) as CompareResult;
    expect(metrics.markets).toEqual(['mix/test/4300', 'mix/test/4302']);
    const html = readFileSync(out.run.path('report.html'), 'utf8');
    expect(html).toContain('id="comparison-table"');
    for (const label of ['flat', 'buy-hold', 'spot-buy-hold', 'random'])
      expect(html).toContain(`data-policy="${label}"`);
    expect(existsSync(out.run.path('comparison-equity.png'))).toBe(true);
  });

  it('leaves a failed run folder when a policy cannot be resolved', async () => {
    const config = quickConfig();
    await expect(
      runCompare({
        config,
        scenario: 'mix',
        policies: parsePolicyList('nosuch'),
        markets: [0],
        resolvePolicy,
      }),
    ).rejects.toThrow(/unknown policy nosuch/);
    const [run] = listRuns(config.paths.runs);
    expect(run.info).toMatchObject({ kind: 'compare', status: 'failed' });
    expect(run.info?.error).toMatch(/unknown policy nosuch/);
    await expect(
      comparePolicies({ config, scenario: 'mix', policies: [], seeds: 0, resolvePolicy }),
    ).rejects.toThrow(/--seeds/);
  });
});

describe.skipIf(!hasSharedData)(`comparePolicies on real walk-forward folds${SKIP_REASON}`, () => {
  it('refuses to score an agent of fold k on an earlier fold (its own training data), naming --markets; accepts fold k', async () => {
    const config = loadConfig({
      set: [
        `paths.runs=${mkdtempSync(join(tmpdir(), 'ctm-compare-real-'))}`,
        'data.repair=true',
        `scenarios.real.dataDir=${SHARED_DATA_DIR}`,
      ],
    });
    // A run trained on fold 2 (test year 2023): everything before 2023 was its training data.
    const run = {
      dir: '/nowhere',
      info: { id: 'train-dqn-fold2', kind: 'train-dqn', extra: { scenarios: ['real'], fold: 2 } },
    } as unknown as Run;
    const resolve: typeof resolvePolicy = async (ref, context) =>
      ref === 'agent'
        ? { ...(await resolvePolicy('flat', context)), kind: 'run', name: run.info.id, run }
        : resolvePolicy(ref, context);
    const options = {
      config,
      scenario: 'real',
      policies: [{ label: 'agent', refs: ['agent'] }],
      resolvePolicy: resolve,
      seeds: 2,
    };
    const refused = await comparePolicies({ ...options, markets: [1] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UsageError);
    expect((refused as UsageError).message).toMatch(
      /train-dqn-fold2 trained on real fold 2, whose training range holds real\/test\/2022/,
    );
    expect((refused as UsageError).hint).toContain('--markets 2');
    const result = await comparePolicies({ ...options, markets: [2] });
    expect(result.markets).toEqual(['real/test/2023']);
    expect(result.policies.find((p) => p.label === 'agent')?.samples).toHaveLength(1);
  });
});
