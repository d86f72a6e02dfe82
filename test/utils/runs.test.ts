// Run folders say how they ended, and the one trial counter counts from them: runs of the same
// kind on the same data (hash and ranges), failed and unfinished ones included; `ctm runs`'s
// summaries name the config changes and key figures.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig, type Config } from '../../src/utils/config.js';
import {
  configChanges,
  countTrials,
  createRun,
  finishOpenRuns,
  listRuns,
  openRun,
  summarizeRuns,
  withRun,
  type DataFingerprint,
} from '../../src/utils/runs.js';

function tempConfig(): Config {
  const config = defaultConfig();
  config.paths.runs = mkdtempSync(join(tmpdir(), 'ctm-runs-'));
  return config;
}

const DATA: DataFingerprint = {
  symbols: ['BTC/USDT'],
  timeframes: ['15m'],
  ranges: { 'BTC/USDT 15m': [1, 2, 3] },
  hash: 'abc',
};

describe('run status', () => {
  it('is running from creation, then completed or failed with the error', async () => {
    const config = tempConfig();
    const ok = createRun({ kind: 'backtest', config, commandLine: [] });
    expect(openRun(ok.dir, config.paths.runs).info.status).toBe('running');
    await withRun(ok, () => 1);
    const bad = createRun({ kind: 'backtest', config, commandLine: [] });
    await expect(
      withRun(bad, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(openRun(ok.dir, config.paths.runs).info.status).toBe('completed');
    const failed = openRun(bad.dir, config.paths.runs).info;
    expect(failed.status).toBe('failed');
    expect(failed.error).toBe('boom');
    expect(failed.finished).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    // Finishing again changes nothing.
    bad.finish('completed');
    expect(openRun(bad.dir, config.paths.runs).info.status).toBe('failed');
  });

  it('finishOpenRuns ends every run this process left open (what the CLI does when a command ends)', () => {
    const config = tempConfig();
    const a = createRun({ kind: 'x', config, commandLine: [] });
    const b = createRun({ kind: 'x', config, commandLine: [] });
    b.finish('completed');
    finishOpenRuns('failed', new Error('interrupted by SIGINT'));
    expect(openRun(a.dir, config.paths.runs).info).toMatchObject({
      status: 'failed',
      error: 'interrupted by SIGINT',
    });
    expect(openRun(b.dir, config.paths.runs).info.status).toBe('completed');
  });
});

describe('the trial counter', () => {
  it('counts runs of the same kind on the same data, failed and unfinished ones included', async () => {
    const config = tempConfig();
    const dir = config.paths.runs;
    await withRun(createRun({ kind: 'train-dqn', config, commandLine: [], data: DATA }), () => 0);
    await withRun(createRun({ kind: 'train-dqn', config, commandLine: [], data: DATA }), () => {
      throw new Error('diverged');
    }).catch(() => undefined);
    createRun({ kind: 'train-dqn', config, commandLine: [], data: { ...DATA, hash: 'other' } });
    const shifted = { ...DATA, ranges: { 'BTC/USDT 15m': [1, 9, 3] as [number, number, number] } };
    createRun({ kind: 'train-dqn', config, commandLine: [], data: shifted });
    createRun({ kind: 'train-ppo', config, commandLine: [], data: DATA });
    createRun({ kind: 'train-dqn', config, commandLine: [] }); // no data recorded
    const junk = createRun({ kind: 'junk', config, commandLine: [] });
    finishOpenRuns('completed');
    // Killed: never finished. A broken run.json is not a run of anything.
    createRun({ kind: 'train-dqn', config, commandLine: [], data: DATA });
    writeFileSync(join(junk.dir, 'run.json'), '{');
    const count = countTrials(dir, 'train-dqn', DATA);
    expect(count).toMatchObject({ trials: 3, failed: 1, running: 1 });
    expect(countTrials(dir, 'train-ppo', DATA).trials).toBe(1);
    expect(countTrials(dir, 'train-dqn', undefined).trials).toBe(0);
    expect(listRuns(dir).filter((e) => e.info === null)).toHaveLength(1);
  });
});

describe('run summaries (ctm runs)', () => {
  it('name the status, data, config changes, key figures and trials of each run', () => {
    const config = tempConfig();
    config.broker.takerFeeRate = 0.0005;
    const run = createRun({ kind: 'backtest', config, commandLine: [], data: DATA });
    run.writeMetrics({
      strategy: { returns: { totalReturn: 0.12, sharpe: 1.5 }, drawdown: { maxDrawdown: 0.2 } },
      benchmark: { returns: { totalReturn: 0.5 } },
    });
    run.finish('completed');
    const [s] = summarizeRuns(config.paths.runs, defaultConfig());
    expect(s).toMatchObject({ kind: 'backtest', status: 'completed', trials: 1 });
    expect(s.data).toContain('BTC/USDT 15m');
    expect(s.configChanges).toContain('broker.takerFeeRate=0.0005');
    expect(s.configChanges.some((c) => c.startsWith('paths.runs='))).toBe(true);
    expect(s.metrics).toEqual({ totalReturn: 0.12, sharpe: 1.5, maxDrawdown: 0.2 });
    expect(summarizeRuns(config.paths.runs, defaultConfig(), { kind: 'compare' })).toEqual([]);
  });

  it('configChanges lists differing leaves, arrays compared whole', () => {
    expect(
      configChanges({ a: { b: 1, c: [1, 2] }, d: 'x' }, { a: { b: 1, c: [1, 3] }, d: 'x' }),
    ).toEqual(['a.c=[1,2]']);
  });
});
