// Sweeps on a real Redis (Debian's redis-server on a free loopback port, its own directory) with
// real `ctm worker` processes and the built CLI: three workers finish a sweep with every result
// exactly once and a failing job failed alone; a worker killed with SIGKILL mid-job loses nothing
// (another worker resumes the job from its checkpoint, and the killed worker's child is gone); a
// Redis killed and restarted mid-sweep is survived. Generous timeouts, no timing assertions.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ctm, startCtm, type CtmProcess } from '../helpers/ctm.js';
import { RedisServer } from '../helpers/redis.js';
import {
  backtestSweep,
  finishedRunsOf,
  jobDirs,
  resultOf,
  runFoldersOf,
  trainingSweep,
  writeSweepWorld,
} from './fixtures.js';

let redis: RedisServer;
let dir: string;
const workers: CtmProcess[] = [];

beforeAll(async () => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'ctm-queue-'));
  writeSweepWorld(dir);
  redis = await RedisServer.start();
});

afterEach(async () => {
  for (const w of workers.splice(0)) {
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
    await w.done;
  }
});

afterAll(async () => {
  await redis?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(
  what: string,
  probe: () => T | undefined | null | false,
  timeoutMs = 120_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Settings of one test's sweep: its own queue and run store. */
function settings(name: string, extra: string[] = []): string[] {
  return [
    '--set',
    `sweep.queue=${name}`,
    '--set',
    `paths.runs=${join(dir, name)}`,
    '--set',
    'sweep.pollMs=200',
    '--log-level',
    'warn',
    ...extra,
  ];
}

async function startWorkers(n: number, name: string, extra: string[] = []): Promise<CtmProcess[]> {
  const started = Array.from({ length: n }, () =>
    startCtm(['worker', '--queue', redis.url, ...settings(name, extra)], { cwd: dir }),
  );
  workers.push(...started);
  for (const w of started)
    await until('a worker to start', () => w.stdout().includes(' on redis://'));
  return started;
}

describe('sweeps on a Redis queue', () => {
  it('three workers finish a sweep with every result exactly once; a failing job fails alone', async () => {
    await startWorkers(3, 'three');
    const file = backtestSweep(dir, 'three', [0.0005, 0.001], true);
    const r = await ctm(['sweep', file, '--queue', redis.url, '--wait', ...settings('three')], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('enqueued 6');
    expect(r.stdout).toContain('done 4, failed 2');
    expect(r.stdout).toContain('retries 0');
    const jobs = jobDirs(join(dir, 'three'));
    expect(jobs).toHaveLength(6);
    for (const j of jobs) {
      const result = resultOf(j);
      // One start, one log, one result per job; one finished run per done job.
      expect(result.attempt).toBe(1);
      expect(existsSync(join(j, 'attempt-2.log'))).toBe(false);
      if (result.status === 'done') expect(finishedRunsOf(j)).toEqual(result.runs);
      else {
        expect(result.error).toContain('not_a_feature');
        expect(runFoldersOf(j)).toHaveLength(0);
      }
    }
    const status = await ctm(['sweep', 'status', '--queue', redis.url, ...settings('three')], {
      cwd: dir,
    });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('done 4, failed 2, running 0, waiting 0; retries 0');
    expect(status.stdout).toContain('deflated Sharpe over 6 trials');
  });

  it('a worker killed with SIGKILL mid-job loses nothing: the job resumes from its checkpoint', async () => {
    const lock = ['--set', 'sweep.lockDurationMs=4000', '--set', 'sweep.stalledIntervalMs=1000'];
    // Three workers: while the job runs (longer than the 4 s lock) two others stand by, and would
    // take it over if a busy worker's lock lapsed.
    const started = await startWorkers(3, 'kill', lock);
    const file = trainingSweep(dir, 'kill');
    const submit = await ctm(['sweep', file, '--queue', redis.url, ...settings('kill')], {
      cwd: dir,
    });
    expect(submit.code, submit.stderr).toBe(0);
    const runs = join(dir, 'kill');
    const job = await until('the job to start', () => jobDirs(runs)[0]);
    const run = await until('its run folder', () => runFoldersOf(job)[0]);
    await until('a checkpoint past step 10', () => {
      try {
        const ptr = JSON.parse(
          readFileSync(join(job, run, 'checkpoint', 'checkpoint.json'), 'utf8'),
        ) as { state: { globalStep: number } };
        return ptr.state.globalStep >= 10;
      } catch {
        return false; // not written yet, or renamed into place while read
      }
    });
    const first = JSON.parse(readFileSync(join(job, 'attempt-1.json'), 'utf8')) as {
      workerPid: number;
      childPid: number;
    };
    const victim = started.find((w) => w.child.pid === first.workerPid)!;
    victim.child.kill('SIGKILL');
    expect((await victim.done).signal).toBe('SIGKILL');
    // The killed worker's child ends itself (no orphan keeps writing into the run).
    await until('the orphaned child to end', () => {
      const stat = `/proc/${first.childPid}/stat`;
      return !existsSync(stat) || /^\d+ \(.*\) [ZX]/.test(readFileSync(stat, 'utf8'));
    });

    const wait = await ctm(['sweep', file, '--queue', redis.url, '--wait', ...settings('kill')], {
      cwd: dir,
    });
    expect(wait.code, wait.stderr).toBe(0);
    expect(wait.stdout).toContain('done 1, failed 0');
    const result = resultOf(job);
    expect(result.status).toBe('done');
    expect(result.attempt).toBe(2);
    expect(result.resumed).toBe(run);
    expect(runFoldersOf(job)).toEqual([run]);
    expect(existsSync(join(job, run, 'model'))).toBe(true);
    const lines = readFileSync(join(job, run, 'history.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { step: number; valLoss?: number });
    // Every logged step once, in order (3 epochs of 100 steps, a line every 5 steps, one more per
    // epoch): the resumed run continued where the checkpoint was, it neither restarted nor repeated.
    expect(lines.filter((l) => l.valLoss === undefined).map((l) => l.step)).toEqual(
      Array.from({ length: 60 }, (_, i) => 5 * (i + 1)),
    );
    expect(lines.filter((l) => l.valLoss !== undefined).map((l) => l.step)).toEqual([
      100, 200, 300,
    ]);
    expect(readFileSync(join(job, 'attempt-2.log'), 'utf8')).toContain('resumed at step');
  });

  it('survives Redis killed and restarted mid-sweep: every job done exactly once', async () => {
    await startWorkers(2, 'restart');
    const file = backtestSweep(dir, 'restart', [0.0005, 0.001], false);
    const submitter = startCtm(
      ['sweep', file, '--queue', redis.url, '--wait', ...settings('restart')],
      { cwd: dir },
    );
    const runs = join(dir, 'restart');
    await until('a first result', () =>
      jobDirs(runs).some((j) => existsSync(join(j, 'result.json'))),
    );
    await redis.restart('SIGKILL');
    const r = await submitter.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('done 4, failed 0');
    const jobs = jobDirs(runs);
    expect(jobs).toHaveLength(4);
    for (const j of jobs) {
      const result = resultOf(j);
      expect(result.status).toBe('done');
      expect(finishedRunsOf(j)).toEqual(result.runs);
      expect(result.runs).toHaveLength(1);
    }
  });

  it('re-enqueues from the manifest what Redis lost, without running a finished job twice', async () => {
    await startWorkers(1, 'lost');
    const file = backtestSweep(dir, 'lost', [0.001], false);
    const submitter = startCtm(
      ['sweep', file, '--queue', redis.url, '--wait', ...settings('lost')],
      {
        cwd: dir,
      },
    );
    const runs = join(dir, 'lost');
    // The first job is running: its queue entry and the waiting one vanish.
    await until('the first job to start', () => jobDirs(runs).length > 0);
    await redis.flushAll();
    const r = await submitter.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/enqueued again [12] job\(s\) the queue had lost/);
    expect(r.stdout).toContain('done 2, failed 0');
    const jobs = jobDirs(runs);
    expect(jobs).toHaveLength(2);
    for (const j of jobs) {
      expect(resultOf(j).status).toBe('done');
      expect(finishedRunsOf(j)).toHaveLength(1);
      expect(existsSync(join(j, 'attempt-2.log'))).toBe(false);
    }
  });

  it('refuses in one line: no Redis, a URL that is not Redis, a worker without the run store', async () => {
    const file = backtestSweep(dir, 'down', [0.001], false);
    const down = ['--set', 'sweep.connectTimeoutSeconds=5'];
    const r = await ctm(
      ['sweep', file, '--queue', 'redis://127.0.0.1:1', ...settings('down', down)],
      {
        cwd: dir,
      },
    );
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error: redis:\/\/127\.0\.0\.1:1: cannot reach Redis/m);
    const bad = await ctm(['worker', '--queue', 'http://127.0.0.1:1', ...settings('down')], {
      cwd: dir,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('is not a redis:// or rediss:// URL');
    // A worker whose paths.runs is not the submitter's would write results nobody reads.
    await startWorkers(1, 'elsewhere');
    const elsewhere = await ctm(
      [
        'sweep',
        file,
        '--queue',
        redis.url,
        '--wait',
        ...settings('down', ['--set', 'sweep.queue=elsewhere']),
      ],
      { cwd: dir },
    );
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    expect(elsewhere.stdout).toContain('done 0, failed 2');
    expect(elsewhere.stdout).toContain('does not hold sweep sweep-down-');
    expect(jobDirs(join(dir, 'elsewhere'))).toHaveLength(0);
  });
});
