// Sweeps on a job queue: BullMQ on Redis. Submitting a sweep enqueues every job that has no done
// result (the job id is the BullMQ job id, so a job is in the queue at most once); a worker takes
// jobs and runs each through the same `runJob` as a local sweep, in a child process, so its event
// loop stays free to renew the job's lock; a dead worker's job goes back to the queue when its lock
// lapses and continues from its checkpoint. Also the per-job queue state that `ctm sweep status`
// shows. Never decides what a job is and never runs a job's command itself.

import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { QueueError, UsageError } from '../errors.js';
import type { Config } from '../utils/config.js';
import { logger } from '../utils/logger.js';
import { buildId } from './identity.js';
import { sweepDir, type SweepJob, type SweepManifest } from './jobs.js';
import { summarizeSweep, type QueuedJobState, type SweepSummary } from './summary.js';
import { failInterrupted, readResult, runJob, type JobContext, type JobResult } from './runner.js';

const log = logger.child({ module: 'queue' });

/** What a queued job carries: everything a worker on another machine needs to run it. */
export interface QueueJobData {
  /** The sweep the job was enqueued by. */
  readonly sweepId: string;
  /** Build of the code that planned it; a worker of another build refuses it. */
  readonly build: string;
  /** Text of the sweep's base config file, or null. */
  readonly baseConfig: string | null;
  /** The job. */
  readonly job: SweepJob;
}

/**
 * Checks a queue URL (`redis://[user:password@]host[:port][/db]` or `rediss://`) and returns it
 * with any password masked, for messages.
 * @throws {UsageError} for another scheme or a malformed URL.
 */
export function checkQueueUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--queue "${url}" is not a URL`, {
      hint: 'e.g. --queue redis://localhost:6379',
    });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new UsageError(`--queue "${url}" is not a redis:// or rediss:// URL`, {
      hint: 'e.g. --queue redis://localhost:6379',
    });
  if (u.password !== '') u.password = '***';
  return u.toString();
}

/** Opens the sweep queue and waits until Redis answers (at most `sweep.connectTimeoutSeconds`). */
async function openQueue(url: string, config: Config): Promise<Queue<QueueJobData>> {
  const shown = checkQueueUrl(url);
  const timeoutMs = config.sweep.connectTimeoutSeconds * 1000;
  const queue = new Queue<QueueJobData>(config.sweep.queue, {
    connection: {
      url,
      connectTimeout: timeoutMs,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => (times > 3 ? null : 500),
    },
  });
  queue.on('error', (err) => log.debug({ err: err.message }, 'queue connection error'));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      queue.waitUntilReady(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${config.sweep.connectTimeoutSeconds} s`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    await queue.close().catch(() => undefined);
    throw new QueueError(
      shown,
      `cannot reach Redis: ${err instanceof Error ? err.message : String(err)}`,
      {
        hint: 'start redis-server (see docs/scale.md) or check the URL',
        cause: err,
      },
    );
  } finally {
    clearTimeout(timer);
  }
  return queue;
}

/** What `submitSweep` did. */
export interface SubmitOutcome {
  /** Jobs added to the queue. */
  readonly added: number;
  /** Jobs whose done result exists already (not enqueued). */
  readonly done: number;
  /** Failed jobs moved back to the queue for another try. */
  readonly retried: number;
  /** Jobs already waiting or running in the queue (left alone). */
  readonly queued: number;
}

/**
 * Enqueues every job of a sweep that has no done result under `runsDir`; failed jobs go back to
 * the queue, jobs waiting or running stay as they are. Running it again (after a Redis restart
 * without persistence, say) enqueues exactly what is missing.
 * @throws {QueueError} when Redis does not answer.
 */
export async function submitSweep(
  manifest: SweepManifest,
  options: { url: string; config: Config; runsDir: string },
): Promise<SubmitOutcome> {
  const { config } = options;
  const queue = await openQueue(options.url, config);
  try {
    let done = 0;
    let retried = 0;
    let queued = 0;
    const add: SweepJob[] = [];
    for (const job of manifest.jobs) {
      if (readResult(options.runsDir, job.id)?.status === 'done') {
        done++;
        continue;
      }
      const existing = await queue.getJob(job.id);
      const state = existing === undefined ? 'unknown' : await existing.getState();
      if (existing !== undefined && state === 'failed') {
        await existing.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        retried++;
      } else if (existing !== undefined && state === 'completed') {
        await existing.remove();
        add.push(job);
      } else if (existing !== undefined && state !== 'unknown') queued++;
      else add.push(job);
    }
    await queue.addBulk(
      add.map((job) => ({
        name: manifest.id,
        data: { sweepId: manifest.id, build: manifest.build, baseConfig: manifest.baseConfig, job },
        opts: {
          jobId: job.id,
          attempts: config.sweep.attempts,
          backoff: { type: 'fixed', delay: config.sweep.backoffMs },
          removeOnComplete: true,
          removeOnFail: false,
        },
      })),
    );
    return { added: add.length, done, retried, queued };
  } finally {
    await queue.close();
  }
}

/**
 * The queue state of every job of a sweep, by job id.
 * @throws {QueueError} when Redis does not answer.
 */
export async function queuedJobStates(
  manifest: SweepManifest,
  options: { url: string; config: Config },
): Promise<Map<string, QueuedJobState>> {
  const queue = await openQueue(options.url, options.config);
  try {
    const out = new Map<string, QueuedJobState>();
    for (const job of manifest.jobs) {
      const j = await queue.getJob(job.id);
      out.set(
        job.id,
        j === undefined
          ? { state: 'absent', starts: 0, stalled: 0, failedReason: null }
          : {
              state: await j.getState(),
              starts: j.attemptsStarted,
              stalled: j.stalledCounter,
              failedReason: j.failedReason ?? null,
            },
      );
    }
    return out;
  } finally {
    await queue.close();
  }
}

/** Options of `startWorker`. */
export interface WorkerOptions {
  /** The queue URL. */
  readonly url: string;
  /** The worker's resolved config (`sweep` section, `paths`). */
  readonly config: Config;
  /** Jobs run at once (default `sweep.concurrency`). */
  readonly concurrency?: number;
  /** Called when a job ends (done, failed or reused). */
  readonly onResult?: (job: SweepJob, result: JobResult, reused: boolean) => void;
}

/** A running worker. */
export interface SweepWorker {
  /** Resolves once the worker is connected and takes jobs. */
  readonly ready: Promise<void>;
  /**
   * Stops taking jobs; waits for running jobs to finish unless `force` (then their child processes
   * are ended and the jobs go back to the queue when their locks lapse).
   */
  close(force?: boolean): Promise<void>;
}

/**
 * Starts a BullMQ worker on the sweep queue. Each job runs through `runJob` (a child `ctm`
 * process); an exit with an error code fails the job at once (no retry), a kill by a signal is
 * retried up to `sweep.attempts` starts, a worker that dies leaves its job to another worker when
 * its lock lapses (`sweep.lockDurationMs`), and a job of another build is refused.
 */
export function startWorker(options: WorkerOptions): SweepWorker {
  const { config } = options;
  checkQueueUrl(options.url);
  const children = new Set<ChildProcess>();
  const build = buildId();
  const processor = async (bull: Job<QueueJobData>): Promise<{ status: string }> => {
    const data = bull.data;
    if (data.build !== build)
      throw new UnrecoverableError(
        `job ${data.job.id} was planned by build ${data.build}; this worker runs build ${build}: run the sweep's workers from the same build`,
      );
    // Results must land where the submitter and status read them: the shared run store.
    if (!existsSync(join(sweepDir(config.paths.runs, data.sweepId), 'manifest.json')))
      throw new UnrecoverableError(
        `this worker's paths.runs (${resolve(config.paths.runs)}) does not hold sweep ${data.sweepId}: mount the shared run store at the same path on every machine`,
      );
    const ctx: JobContext = {
      sweepId: data.sweepId,
      baseConfig: data.baseConfig,
      runsDir: config.paths.runs,
      storePath: config.paths.store,
      errorLines: config.sweep.errorLines,
      onChild: (child) => {
        children.add(child);
        child.once('close', () => children.delete(child));
      },
    };
    const startedAt = new Date();
    const outcome = await runJob(data.job, ctx);
    if (outcome.kind === 'finished') {
      options.onResult?.(data.job, outcome.result, outcome.reused);
      if (outcome.result.status === 'failed')
        throw new UnrecoverableError(outcome.result.error ?? 'failed');
      return { status: outcome.result.status };
    }
    const allowed = bull.opts.attempts ?? 1;
    if (bull.attemptsMade + 1 >= allowed) {
      const result = await failInterrupted(
        data.job,
        ctx,
        outcome,
        bull.attemptsMade + 1,
        startedAt,
      );
      options.onResult?.(data.job, result, false);
      throw new UnrecoverableError(result.error ?? 'killed');
    }
    throw new Error(`killed by ${outcome.signal}; will be retried`);
  };
  const worker = new Worker<QueueJobData>(config.sweep.queue, processor, {
    connection: { url: options.url },
    concurrency: options.concurrency ?? config.sweep.concurrency,
    lockDuration: config.sweep.lockDurationMs,
    stalledInterval: config.sweep.stalledIntervalMs,
    maxStalledCount: config.sweep.maxStalledCount,
    removeOnComplete: { count: 0 },
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'worker connection error'));
  worker.on('failed', (job, err) =>
    log.info({ job: job?.id, reason: err.message, starts: job?.attemptsStarted }, 'job failed'),
  );
  return {
    ready: worker.waitUntilReady().then(() => undefined),
    async close(force = false) {
      if (force) for (const c of children) c.kill('SIGTERM');
      await worker.close(force);
    },
  };
}

/** Times `waitForSweep` enqueues one lost job again before it gives up on that job. */
const MAX_REQUEUES = 3;

/**
 * Waits until every job of a sweep is done or failed, looking every `sweep.pollMs`. A job that is
 * neither finished nor in the queue (Redis lost it) is enqueued again, up to three times (then it
 * stays lost in the summary, so that the wait ends); while Redis does not answer (restarting), it
 * keeps waiting. `onMessage` hears about both.
 * @returns the final summary (with the queue's view of each job)
 */
export async function waitForSweep(
  manifest: SweepManifest,
  options: { url: string; config: Config; onMessage?: (line: string) => void },
): Promise<SweepSummary> {
  const { url, config } = options;
  const requeued = new Map<string, number>();
  let unreachable = false;
  for (;;) {
    await new Promise((r) => setTimeout(r, config.sweep.pollMs));
    try {
      const queued = await queuedJobStates(manifest, { url, config });
      const summary = summarizeSweep(manifest, config.paths.runs, queued);
      const lost = summary.rows.filter((r) => r.status === 'lost');
      const retry = lost.filter((r) => (requeued.get(r.id) ?? 0) < MAX_REQUEUES);
      if (
        summary.complete ||
        (lost.length > 0 &&
          retry.length === 0 &&
          summary.counts.done + summary.counts.failed + lost.length === summary.rows.length)
      ) {
        for (const r of lost)
          options.onMessage?.(`gave up on ${r.id}: lost by the queue ${MAX_REQUEUES} times`);
        return summary;
      }
      if (retry.length > 0) {
        const ids = new Set(retry.map((r) => r.id));
        for (const id of ids) requeued.set(id, (requeued.get(id) ?? 0) + 1);
        const again = await submitSweep(
          { ...manifest, jobs: manifest.jobs.filter((j) => ids.has(j.id)) },
          { url, config, runsDir: config.paths.runs },
        );
        if (again.added > 0)
          options.onMessage?.(`enqueued again ${again.added} job(s) the queue had lost`);
      }
      unreachable = false;
    } catch (err) {
      if (!(err instanceof QueueError)) throw err;
      if (!unreachable) options.onMessage?.(`queue unreachable (${err.message}); still waiting`);
      unreachable = true;
    }
  }
}
