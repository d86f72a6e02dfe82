// `ctm sweep FILE` on the local pool and `ctm sweep status`, as a user runs them (the built CLI in
// child processes): every job validated before anything runs, each job run once into its own run
// folder, a failing job recorded alone, the summary ranked by the deflated Sharpe ratio over
// every job, and a second run of the same sweep reusing what is done.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SweepSummary } from '../../src/scale/summary.js';
import { assertBuilt, ctm } from '../helpers/ctm.js';
import {
  backtestSweep,
  finishedRunsOf,
  jobDirs,
  resultOf,
  runFoldersOf,
  writeSweepWorld,
} from '../scale/fixtures.js';

let dir: string;
let runs: string;
beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'ctm-cli-sweep-'));
  runs = join(dir, 'runs');
  writeSweepWorld(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sweep(args: string[]): ReturnType<typeof ctm> {
  return ctm([...args, '--set', `paths.runs=${runs}`, '--log-level', 'warn'], { cwd: dir });
}

describe('ctm sweep (local pool)', () => {
  it('refuses a sweep with an invalid job before running anything, naming the job and key', async () => {
    const file = join(dir, 'invalid.yaml');
    writeFileSync(
      file,
      `command: backtest --policy sma-cross --data-dir data\nconfig: config.yaml\ngrid:\n  broker.takerFeeRate: [0.001, 5]\n`,
    );
    const r = await sweep(['sweep', file]);
    expect(r.code).toBe(2);
    const error = r.stderr.split('\n').find((l) => l.startsWith('error: '))!;
    expect(error).toContain(file);
    expect(error).toContain('job 1 (broker.takerFeeRate=5)');
    expect(error).toContain('broker.takerFeeRate');
    expect(existsSync(runs)).toBe(false);
  });

  it('runs every job once on the pool, records a failing job alone, and reuses finished jobs', async () => {
    const file = backtestSweep(dir, 'local', [0.001], true);
    const r = await sweep(['sweep', file, '--workers', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('done 2, failed 1');
    const jobs = jobDirs(runs);
    expect(jobs).toHaveLength(3);
    for (const j of jobs) {
      const result = resultOf(j);
      expect(result.attempt).toBe(1);
      if (result.status === 'done') {
        expect(finishedRunsOf(j)).toHaveLength(1);
        expect(result.runs).toEqual(finishedRunsOf(j));
        expect(result.stats?.bars).toBeGreaterThan(0);
      } else {
        // The command's own one-line error, no retry, no run folder.
        expect(result.exitCode).toBe(1);
        expect(result.error).toContain('not_a_feature');
        expect(runFoldersOf(j)).toHaveLength(0);
      }
    }
    const id = /^sweep (sweep-local-[0-9a-f]{8}):/m.exec(r.stdout)![1];
    const summary = JSON.parse(
      readFileSync(join(runs, id, 'summary.json'), 'utf8'),
    ) as SweepSummary;
    expect(summary.trials).toBe(3);
    expect(summary.complete).toBe(true);
    const done = summary.rows.filter((row) => row.status === 'done');
    expect(done).toHaveLength(2);
    for (const row of done) {
      // Deflating for three trials never raises the probability above the undeflated PSR.
      expect(row.dsr).not.toBeNull();
      expect(row.dsr!).toBeLessThanOrEqual(row.stats!.psr! + 1e-12);
    }
    expect(done.map((row) => row.dsr)).toEqual(
      [...done.map((row) => row.dsr)].sort((a, b) => b! - a!),
    );
    const html = readFileSync(join(runs, id, 'report.html'), 'utf8');
    for (const row of summary.rows) expect(html).toContain(row.id);
    expect(html).toContain('id="sweep-failures"');

    const before = jobs.map((j) => runFoldersOf(j).length);
    const again = await sweep(['sweep', file, '--workers', '2']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.match(/done \(found\)/g)).toHaveLength(2);
    expect(jobs.map((j) => runFoldersOf(j).length)).toEqual(before);
  });

  it('status shows the latest sweep: progress, failures and the table', async () => {
    const r = await sweep(['sweep', 'status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^sweep sweep-local-[0-9a-f]{8}: 3 jobs/m);
    expect(r.stdout).toContain('done 2, failed 1');
    expect(r.stdout).toContain('deflated Sharpe over 3 trials');
    expect(r.stdout).toMatch(/failures:\n {2}backtest-/);
  });
});
