// The job code, the same for local sweeps and queue workers: a job runs its `ctm` command in a
// child process (the CPU work never runs on the caller's event loop), with the sweep's overrides
// and seed, writing its run folder(s) under runs/jobs/<job id>/, and ends with one result file
// written atomically. A job whose result says done is never run again; an interrupted training
// job continues its own run from the last checkpoint (`--resume`). Also the local pool that runs a
// sweep's jobs on N processes. Never decides what a job is (jobs.ts) and never touches the queue.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic, writeJsonAtomic } from '../utils/fs.js';
import { logger } from '../utils/logger.js';
import { jobDir, type SweepJob, type SweepManifest } from './jobs.js';
import { extractReturnStats, type ReturnStats } from './stats.js';

const log = logger.child({ module: 'sweep' });

/** The result file of a job: runs/jobs/<job id>/result.json. */
export interface JobResult {
  /** Job id. */
  readonly jobId: string;
  /** The sweep whose run produced this result. */
  readonly sweepId: string;
  /** done: the command exited 0; failed: it exited with an error code, or was killed too often. */
  readonly status: 'done' | 'failed';
  /** Run folders the command wrote, relative to the job directory (usually one). */
  readonly runs: readonly string[];
  /** Return statistics of the run's metrics.json (backtests and evaluations), or null. */
  readonly stats: ReturnStats | null;
  /** The command's exit code, or null when it was killed by a signal. */
  readonly exitCode: number | null;
  /** The signal that killed it, or null. */
  readonly signal: string | null;
  /** The error in one line (the command's `error:` line), or null when done. */
  readonly error: string | null;
  /** The last lines of its output (`sweep.errorLines`), kept for failures. */
  readonly tail: readonly string[];
  /** Which start of the job this was (1 = first). */
  readonly attempt: number;
  /** The run folder this attempt resumed from its checkpoint, or null. */
  readonly resumed: string | null;
  /** Start of the attempt, ISO 8601 UTC. */
  readonly startedAt: string;
  /** End of the attempt, ISO 8601 UTC. */
  readonly finishedAt: string;
  /** Wall time of the attempt, ms. */
  readonly durationMs: number;
  /** Machine that ran it. */
  readonly host: string;
  /** Process (the local sweep or the worker) that ran it. */
  readonly pid: number;
}

/** Where a job runs: the worker's own paths. */
export interface JobContext {
  /** The sweep id (recorded in the result). */
  readonly sweepId: string;
  /** Text of the sweep's base config file, or null. */
  readonly baseConfig: string | null;
  /** `paths.runs` of this worker: job directories go to `<runsDir>/jobs/`. */
  readonly runsDir: string;
  /** `paths.store` of this worker, given to the job. */
  readonly storePath: string;
  /** Lines of output kept in a result. */
  readonly errorLines: number;
  /** Working directory of the child (relative paths in the command resolve from here). */
  readonly cwd?: string;
  /** Called with each child process as it starts (a worker keeps them to stop them). */
  readonly onChild?: (child: ChildProcess) => void;
}

/** What `runJob` ended with. */
export type JobOutcome =
  | { readonly kind: 'finished'; readonly result: JobResult; readonly reused: boolean }
  | {
      readonly kind: 'interrupted';
      readonly signal: string;
      readonly attempt: number;
      readonly tail: readonly string[];
    };

const SELF = fileURLToPath(import.meta.url);
const IS_TS = SELF.endsWith('.ts');
const MAIN = fileURLToPath(new URL(IS_TS ? '../main.ts' : '../main.js', import.meta.url));
const GUARD = new URL(IS_TS ? './child-guard.ts' : './child-guard.js', import.meta.url).href;

/** Node arguments that start the `ctm` command line of this build in a child process. */
function ctmNodeArgs(): string[] {
  return [...(IS_TS ? ['--import', import.meta.resolve('tsx')] : []), '--import', GUARD, MAIN];
}

/** The job's result, or null when it has none (or an unreadable one, being rewritten). */
export function readResult(runsDir: string, id: string): JobResult | null {
  const path = join(jobDir(runsDir, id), 'result.json');
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as JobResult;
  } catch {
    return null;
  }
}

/** Run folders (holding run.json) in a job directory, oldest first by name. */
function runFolders(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'run.json')))
    .map((e) => e.name)
    .sort();
}

/** The run an interrupted training job continues: the newest with a checkpoint and no metrics. */
function resumableRun(dir: string): string | null {
  const candidates = runFolders(dir).filter(
    (r) => existsSync(join(dir, r, 'checkpoint')) && !existsSync(join(dir, r, 'metrics.json')),
  );
  return candidates.at(-1) ?? null;
}

/** The `error:` line (and hint) of a failed command's stderr, else its last line. */
function errorOf(stderrTail: readonly string[], code: number): string {
  const text = stderrTail.filter((l) => l.trim() !== '' && !l.startsWith('{'));
  const at = text.findLastIndex((l) => l.startsWith('error: '));
  if (at >= 0) return text.slice(at, at + 2).join(' ');
  return text.at(-1) ?? `exit code ${code}`;
}

/** When and where an attempt ran: its start, end and wall time, host and process. */
function stamp(
  started: Date,
): Pick<JobResult, 'startedAt' | 'finishedAt' | 'durationMs' | 'host' | 'pid'> {
  const finished = new Date();
  return {
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    host: hostname(),
    pid: process.pid,
  };
}

/** Keeps the last `limit` lines of a stream. */
class Tail {
  readonly lines: string[] = [];
  private partial = '';
  constructor(private readonly limit: number) {}
  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) this.add(p);
  }
  end(): string[] {
    if (this.partial !== '') this.add(this.partial);
    this.partial = '';
    return this.lines;
  }
  private add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.limit) this.lines.shift();
  }
}

/**
 * Runs one job, idempotently: a job whose result.json says done returns that result without
 * running (`reused`). Otherwise its command runs in a child process with the worker's paths
 * (`--set paths.runs=<job dir>`), output to attempt-<n>.log; an interrupted training run of the
 * job continues with `--resume`. Exit 0 → a done result; an error code → a failed result (the
 * command's error line and the last output lines); a signal → `interrupted` with no result, for
 * the caller to retry or fail.
 */
export async function runJob(job: SweepJob, ctx: JobContext): Promise<JobOutcome> {
  const dir = jobDir(ctx.runsDir, job.id);
  const previous = readResult(ctx.runsDir, job.id);
  if (previous?.status === 'done') return { kind: 'finished', result: previous, reused: true };
  mkdirSync(dir, { recursive: true });
  const argv = [...job.argv];
  if (ctx.baseConfig !== null) {
    await writeFileAtomic(join(dir, 'base-config.yaml'), ctx.baseConfig);
    argv.push('--config', join(dir, 'base-config.yaml'));
  }
  argv.push(
    '--set',
    `paths.runs=${JSON.stringify(dir)}`,
    '--set',
    `paths.store=${JSON.stringify(ctx.storePath)}`,
  );
  const resumed = job.resumable ? resumableRun(dir) : null;
  if (resumed !== null) argv.push('--resume', join(dir, resumed));
  const before = new Set(runFolders(dir));
  const attempt = readdirSync(dir).filter((f) => /^attempt-\d+\.log$/.test(f)).length + 1;
  const logFile = createWriteStream(join(dir, `attempt-${attempt}.log`));
  const started = new Date();
  const child = spawn(process.execPath, [...ctmNodeArgs(), ...argv], {
    cwd: ctx.cwd ?? process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  ctx.onChild?.(child);
  await writeJsonAtomic(join(dir, `attempt-${attempt}.json`), {
    attempt,
    host: hostname(),
    workerPid: process.pid,
    childPid: child.pid ?? null,
    startedAt: started.toISOString(),
    argv,
    resumed,
  });
  log.debug({ job: job.id, attempt, resumed }, 'job started');
  const all = new Tail(ctx.errorLines);
  const errTail = new Tail(ctx.errorLines);
  child.stdout?.on('data', (d: Buffer) => {
    logFile.write(d);
    all.push(d.toString());
  });
  child.stderr?.on('data', (d: Buffer) => {
    logFile.write(d);
    all.push(d.toString());
    errTail.push(d.toString());
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res, rej) => {
    child.once('error', rej);
    child.once('close', (c, s) => res([c, s]));
  });
  await new Promise<void>((res) => logFile.end(res));
  const tail = all.end();
  if (signal !== null || code === null) {
    log.warn({ job: job.id, attempt, signal }, 'job interrupted');
    return { kind: 'interrupted', signal: signal ?? 'unknown', attempt, tail };
  }
  const fresh = runFolders(dir).filter((r) => !before.has(r));
  const runs = resumed === null ? fresh : [resumed, ...fresh];
  let stats: ReturnStats | null = null;
  for (const r of runs) {
    const metricsFile = join(dir, r, 'metrics.json');
    if (stats === null && existsSync(metricsFile))
      stats = extractReturnStats(JSON.parse(readFileSync(metricsFile, 'utf8')) as unknown);
  }
  const result: JobResult = {
    jobId: job.id,
    sweepId: ctx.sweepId,
    status: code === 0 ? 'done' : 'failed',
    runs,
    stats,
    exitCode: code,
    signal: null,
    error: code === 0 ? null : errorOf(errTail.end(), code),
    tail: code === 0 ? [] : tail,
    attempt,
    resumed,
    ...stamp(started),
  };
  await writeJsonAtomic(join(dir, 'result.json'), result);
  log.debug({ job: job.id, status: result.status }, 'job finished');
  return { kind: 'finished', result, reused: false };
}

/**
 * Writes the failed result of a job that was interrupted (killed by a signal) on the last of the
 * `starts` it was allowed.
 */
export async function failInterrupted(
  job: SweepJob,
  ctx: JobContext,
  outcome: Extract<JobOutcome, { kind: 'interrupted' }>,
  starts: number,
  startedAt: Date,
): Promise<JobResult> {
  const dir = jobDir(ctx.runsDir, job.id);
  const result: JobResult = {
    jobId: job.id,
    sweepId: ctx.sweepId,
    status: 'failed',
    runs: runFolders(dir),
    stats: null,
    exitCode: null,
    signal: outcome.signal,
    error: `killed by ${outcome.signal} on each of its ${starts} starts`,
    tail: outcome.tail,
    attempt: outcome.attempt,
    resumed: null,
    ...stamp(startedAt),
  };
  await writeJsonAtomic(join(dir, 'result.json'), result);
  return result;
}

/** Options of `runSweepLocally`. */
export interface LocalSweepOptions {
  /** Jobs run at once (`sweep.workers`, default the machine's cores). */
  readonly workers: number;
  /** Starts of a job killed by a signal before it is failed (`sweep.attempts`). */
  readonly attempts: number;
  /** `paths.runs` and `paths.store` of this machine. */
  readonly runsDir: string;
  readonly storePath: string;
  /** Lines of output kept in a result (`sweep.errorLines`). */
  readonly errorLines: number;
  /** Called after each job with its result (and whether it was found done already). */
  readonly onResult?: (job: SweepJob, result: JobResult, reused: boolean) => void;
}

/**
 * Runs every job of a sweep on this machine, `workers` at a time, through `runJob` (the code the
 * queue workers run). Jobs already done are not run again. Resolves with every job's result.
 */
export async function runSweepLocally(
  manifest: SweepManifest,
  options: LocalSweepOptions,
): Promise<JobResult[]> {
  const ctx: JobContext = {
    sweepId: manifest.id,
    baseConfig: manifest.baseConfig,
    runsDir: options.runsDir,
    storePath: options.storePath,
    errorLines: options.errorLines,
  };
  const results: JobResult[] = new Array<JobResult>(manifest.jobs.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < manifest.jobs.length) {
      const job = manifest.jobs[next++];
      const startedAt = new Date();
      for (let starts = 1; ; starts++) {
        const outcome = await runJob(job, ctx);
        if (outcome.kind === 'finished') {
          results[job.index] = outcome.result;
          options.onResult?.(job, outcome.result, outcome.reused);
          break;
        }
        if (starts >= options.attempts) {
          const result = await failInterrupted(job, ctx, outcome, starts, startedAt);
          results[job.index] = result;
          options.onResult?.(job, result, false);
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.workers) }, lane));
  return results;
}
