// Planning a sweep: every job is validated against the config schema before anything runs, and
// a job's id changes exactly when what it computes can change (config, seed, fold, data, build),
// not when only where things go changes (paths).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { planSweep } from '../../src/scale/jobs.js';
import { readSweepFile } from '../../src/scale/sweep-file.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-sweep-jobs-'));
  mkdirSync(join(dir, 'data'));
  writeFileSync(
    join(dir, 'data', 'binance-SYNUSDT-15m.csv'),
    'open_time,open,high,low,close,volume\n0,1,1,1,1,1\n',
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const COMMAND = (d: string): string =>
  `command: backtest --policy sma-cross --data-dir ${join(d, 'data')}\n`;

async function plan(name: string, text: string) {
  const path = join(dir, name);
  writeFileSync(path, text);
  return planSweep(readSweepFile(path), { cwd: dir });
}

async function planError(text: string): Promise<ConfigError> {
  try {
    await plan('bad.yaml', text);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('planSweep', () => {
  it('expands parameters × symbols × seeds into jobs with their overrides and seed', async () => {
    const m = await plan(
      'grid.yaml',
      `${COMMAND(dir)}grid:\n  broker.takerFeeRate: [0.0005, 0.001]\nsymbols: [BTC/USDT, ETH/USDT]\nseeds: [7, 8]\n`,
    );
    expect(m.jobs).toHaveLength(8);
    expect(m.id).toMatch(/^sweep-grid-[0-9a-f]{8}$/);
    expect(new Set(m.jobs.map((j) => j.id)).size).toBe(8);
    const j = m.jobs.find(
      (x) => x.params['broker.takerFeeRate'] === 0.001 && x.symbol === 'ETH/USDT' && x.seed === 8,
    )!;
    expect(j.id).toMatch(/^backtest-[0-9a-f]{20}$/);
    expect(j.argv.slice(0, 5)).toEqual([
      'backtest',
      '--policy',
      'sma-cross',
      '--data-dir',
      join(dir, 'data'),
    ]);
    expect(j.argv).toContain('broker.takerFeeRate=0.001');
    expect(j.argv).toContain('data.symbols=["ETH/USDT"]');
    expect(j.argv.slice(-2)).toEqual(['--seed', '8']);
    expect(j.resumable).toBe(false);
  });

  it('gives the same ids to the same jobs, other ids when config, seed or data change, the same when only paths change', async () => {
    const base = `${COMMAND(dir)}grid:\n  broker.takerFeeRate: [0.0005, 0.001]\nseeds: [1]\n`;
    const a = await plan('a.yaml', base);
    const again = await plan('a.yaml', base);
    expect(again.jobs.map((j) => j.id)).toEqual(a.jobs.map((j) => j.id));
    expect(again.id).toBe(a.id);

    const value = await plan(
      'a.yaml',
      `${COMMAND(dir)}grid:\n  broker.takerFeeRate: [0.0005, 0.002]\nseeds: [1]\n`,
    );
    expect(value.jobs[0].id).toBe(a.jobs[0].id);
    expect(value.jobs[1].id).not.toBe(a.jobs[1].id);

    const seed = await plan(
      'a.yaml',
      `${COMMAND(dir)}grid:\n  broker.takerFeeRate: [0.0005, 0.001]\nseeds: [2]\n`,
    );
    expect(seed.jobs[0].id).not.toBe(a.jobs[0].id);

    writeFileSync(join(dir, 'paths.yaml'), `paths: { runs: elsewhere, store: other.duckdb }\n`);
    const paths = await plan('a.yaml', `${base}config: paths.yaml\n`);
    expect(paths.jobs.map((j) => j.id)).toEqual(a.jobs.map((j) => j.id));

    writeFileSync(
      join(dir, 'data', 'binance-SYNUSDT-15m.csv'),
      'open_time,open,high,low,close,volume\n0,2,2,2,2,1\n',
    );
    const data = await plan('a.yaml', base);
    expect(data.jobs[0].data).not.toBe(a.jobs[0].data);
    expect(data.jobs[0].id).not.toBe(a.jobs[0].id);
  });

  it('validates every job against the config schema and names the job and key', async () => {
    const value = await planError(`${COMMAND(dir)}grid:\n  broker.takerFeeRate: [0.001, 5]\n`);
    expect(value.keyPath).toBe('broker.takerFeeRate');
    expect(value.file).toBe(join(dir, 'bad.yaml'));
    expect(value.message).toContain('job 1 (broker.takerFeeRate=5)');
    const unknown = await planError(`${COMMAND(dir)}set:\n  broker.takerFee: 0.001\n`);
    expect(unknown.keyPath).toBe('broker.takerFee');
    expect(unknown.message).toContain('unknown key');
    const type = await planError(`${COMMAND(dir)}grid:\n  model.hiddenDims: [64, sixty-four]\n`);
    expect(type.keyPath).toBe('model.hiddenDims');
  });

  it('refuses two jobs that are the same job', async () => {
    const e = await planError(`${COMMAND(dir)}grid:\n  broker.takerFeeRate: [0.001, 0.001]\n`);
    expect(e.message).toContain('are the same job');
  });

  it('cuts walk-forward folds into splits per job, training before each test window', async () => {
    const m = await plan(
      'folds.yaml',
      `${COMMAND(dir).replace('backtest --policy sma-cross', 'train model')}folds: { from: 2019-01-01, to: 2021-01-01 }\nset:\n  backtest.walkForward.trainDays: 365\n  backtest.walkForward.testDays: 90\n  sweep.foldValidationDays: 60\n`,
    );
    // (730 − 365) / 90 = 4 whole test windows.
    expect(m.jobs).toHaveLength(4);
    expect(m.jobs.every((j) => j.resumable)).toBe(true);
    for (const j of m.jobs) {
      const f = j.fold!;
      expect(Date.parse(f.train[1])).toBe(Date.parse(f.validation[0]));
      expect(Date.parse(f.validation[1]) - Date.parse(f.validation[0])).toBe(60 * 86_400_000);
      expect(Date.parse(f.validation[1])).toBeLessThan(Date.parse(f.test[0]));
      expect(Date.parse(f.test[1]) - Date.parse(f.test[0])).toBe(90 * 86_400_000);
      expect(j.argv).toContain(`splits.test=${JSON.stringify({ from: f.test[0], to: f.test[1] })}`);
    }
    // Test windows follow 365 days of training and the purge (purgeBars 16 × 15m = 4 h), then
    // one after the other.
    expect(m.jobs.map((j) => j.fold!.test[0])).toEqual([
      '2020-01-01T04:00:00.000Z',
      '2020-03-31T04:00:00.000Z',
      '2020-06-29T04:00:00.000Z',
      '2020-09-27T04:00:00.000Z',
    ]);
    const kfold = await planError(
      `${COMMAND(dir)}folds: { from: 2019-01-01, to: 2021-01-01 }\nset:\n  backtest.walkForward.mode: purged-kfold\n`,
    );
    expect(kfold.message).toContain('rolling or expanding');
  });
});
