// `ctm compare` and `ctm runs` as a user runs them on a fresh clone: the built CLI (`node
// dist/main.js`, built by `npm run build`, which `npm test` runs first) in a child process, in an
// empty directory, with the default config and no data. On the mix scenario's test markets the
// pattern oracle is far above random and buy-and-hold; a compare that fails leaves a run folder
// that says so, and `ctm runs` counts it as a trial.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CompareResult } from '../../src/evaluation/compare.js';
import type { RunSummary } from '../../src/utils/runs.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

function ctm(cwd: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ctm compare on a fresh clone', () => {
  it('compares buy-hold, spot-buy-hold, random, pattern-oracle and flat on mix: the pattern oracle far above random and buy-and-hold', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ctm-compare-cli-'));
    const out = ctm(cwd, [
      'compare',
      '--policies',
      'buy-hold,spot-buy-hold,random,pattern-oracle,flat',
      '--scenario',
      'mix',
    ]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const lines = out.stdout.split('\n');
    expect(lines[0]).toMatch(/^policy\s+samples\s+return\s+Sharpe\s+max DD\s+turnover\s+fee drag/);
    for (const label of ['buy-hold', 'spot-buy-hold', 'random', 'pattern-oracle', 'flat'])
      expect(lines.some((l) => l.startsWith(`${label} `))).toBe(true);
    const oracleLine = lines.find((l) => l.startsWith('pattern-oracle '))!;
    expect(oracleLine.match(/beats/g)).toHaveLength(2);
    const runDir = /^run: (.+)$/m.exec(out.stdout)![1];
    expect(existsSync(join(runDir, 'report.html'))).toBe(true);
    const result = JSON.parse(readFileSync(join(runDir, 'metrics.json'), 'utf8')) as CompareResult;
    const by = Object.fromEntries(result.policies.map((p) => [p.label, p]));
    expect(result.markets).toHaveLength(8);
    expect(by.random.seeds).toBe(10);
    const mean = (label: string): number => by[label].stats.totalReturn.mean!;
    // "Far above": ahead by more than 20 percentage points of return and by more than two
    // standard errors of the paired difference.
    expect(mean('pattern-oracle')).toBeGreaterThan(mean('random') + 0.2);
    expect(mean('pattern-oracle')).toBeGreaterThan(mean('buy-hold') + 0.2);
    expect(mean('pattern-oracle')).toBeGreaterThan(mean('spot-buy-hold') + 0.2);
    expect(by['pattern-oracle'].vsRandom.beats).toBe(true);
    expect(by['pattern-oracle'].vsSpotBuyHold.beats).toBe(true);
    // Perpetual buy-and-hold pays funding that spot buy-and-hold does not.
    expect(mean('buy-hold')).toBeLessThan(mean('spot-buy-hold'));
  });

  it('a failed compare leaves a run folder that says so, and ctm runs counts it as a trial', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ctm-compare-cli-'));
    const ok = ctm(cwd, ['compare', '--policies', 'flat', '--scenario', 'trend', '--markets', '0']);
    expect(ok.code).toBe(0);
    const bad = ctm(cwd, [
      'compare',
      '--policies',
      'nosuch',
      '--scenario',
      'trend',
      '--markets',
      '0',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: unknown policy nosuch/);
    const list = ctm(cwd, ['runs', '--kind', 'compare', '--json']);
    expect(list.code).toBe(0);
    const runs = JSON.parse(list.stdout) as RunSummary[];
    expect(runs.map((r) => r.status)).toEqual(['completed', 'failed']);
    expect(runs[1].error).toMatch(/unknown policy nosuch/);
    // Same kind on the same data (trend's test market 0): trials of each other, the failed one too.
    expect(runs.map((r) => r.trials)).toEqual([2, 2]);
    expect(runs[0].data).toBe('scenario:trend 15m,4h,1d trend test seeds 1300..1307');
    const text = ctm(cwd, ['runs']);
    expect(text.stdout).toMatch(/compare {2}failed \(unknown policy nosuch\)/);
    expect(text.stdout).toMatch(/trials: 2/);
  });

  it('names the scenarios there are when given an unknown one, exiting 2', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ctm-compare-cli-'));
    const out = ctm(cwd, ['compare', '--policies', 'flat', '--scenario', 'mxi']);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('error: unknown scenario mxi');
    expect(out.stderr).toContain('hint: scenarios: trend, pullback, patterns, mix, real');
  });
});
