// `ctm sweep FILE` (plan a sweep, then run it on a local pool or enqueue it with --queue),
// `ctm sweep status [SWEEP]` (progress, failures, retries and the summary table) and
// `ctm worker --queue URL` (a queue worker). A thin layer over src/scale/. The queue client
// (BullMQ) is loaded only by the commands that use it, so that no other command starts slower.

import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import {
  describeParams,
  latestSweepId,
  planSweep,
  readManifest,
  writeManifest,
  type SweepJob,
  type SweepManifest,
} from '../scale/jobs.js';
import { runSweepLocally, type JobResult } from '../scale/runner.js';
import { formatSummary, mergeSweep } from '../scale/summary.js';
import { readSweepFile } from '../scale/sweep-file.js';
import type { Config } from '../utils/config.js';
import {
  action,
  positiveIntOption,
  resolveConfig,
  withCommonOptions,
  type CommonOptions,
} from './common.js';

/** The queue module, loaded on first use. */
function queueModule(): Promise<typeof import('../scale/queue.js')> {
  return import('../scale/queue.js');
}

interface SweepFlags extends CommonOptions {
  queue?: string;
  workers?: string;
  wait?: boolean;
}

interface WorkerFlags extends CommonOptions {
  queue: string;
  concurrency?: string;
}

function runnerConfig(flags: CommonOptions): Config {
  if (flags.seed !== undefined)
    throw new UsageError('ctm sweep takes no --seed', {
      hint: 'list the seeds of the jobs under seeds: in the sweep file',
    });
  return resolveConfig(flags);
}

function resultLine(
  job: SweepJob,
  result: JobResult,
  reused: boolean,
  total: number,
  k: number,
): string {
  const what = describeParams({ ...job, fold: job.fold?.index ?? null });
  const head = `[${k}/${total}] ${reused ? 'done (found)' : result.status} ${job.id}${what === '' ? '' : ` ${what}`}`;
  if (result.status === 'failed') return `${head}: ${result.error ?? ''}\n`;
  return `${head} (${(result.durationMs / 1000).toFixed(1)} s)\n`;
}

async function finish(manifest: SweepManifest, config: Config, queue?: string): Promise<void> {
  const queued =
    queue === undefined
      ? undefined
      : await (await queueModule()).queuedJobStates(manifest, { url: queue, config });
  const merged = await mergeSweep(manifest, config.paths.runs, queued);
  process.stdout.write(formatSummary(merged.summary));
  process.stdout.write(`summary: ${merged.json}\nreport: ${merged.html}\n`);
}

function registerSweep(program: Command): Command {
  const sweep = withCommonOptions(
    program
      .command('sweep')
      .description(
        'run the jobs of a sweep file (grid/random search over config keys, seeds, symbols, folds): on a local pool, or enqueued with --queue for `ctm worker`s',
      )
      .argument('<file>', 'the sweep file (YAML)')
      .option(
        '--queue <url>',
        'enqueue on this Redis (redis://host:6379) instead of running locally',
      )
      .option('--workers <n>', 'local jobs at once (default sweep.workers, else the cores)')
      .option('--wait', 'with --queue: wait until every job is done or failed, then summarise'),
  ).action(
    action(async (file: string, flags: SweepFlags) => {
      const config = runnerConfig(flags);
      const runsDir = config.paths.runs;
      const manifest = await writeManifest(runsDir, await planSweep(readSweepFile(file)));
      process.stdout.write(`sweep ${manifest.id}: ${manifest.jobs.length} jobs, validated\n`);
      if (flags.queue !== undefined) {
        const { checkQueueUrl, submitSweep, waitForSweep } = await queueModule();
        if (flags.workers !== undefined)
          throw new UsageError('--workers is for a local sweep; start `ctm worker`s for a queue');
        const out = await submitSweep(manifest, { url: flags.queue, config, runsDir });
        process.stdout.write(
          `queue ${config.sweep.queue} on ${checkQueueUrl(flags.queue)}: enqueued ${out.added}, already done ${out.done}, failed ones retried ${out.retried}, already queued ${out.queued}\n`,
        );
        if (flags.wait !== true) {
          process.stdout.write(
            `follow it with: ctm sweep status ${manifest.id} --queue ${flags.queue}\n`,
          );
          return;
        }
        await waitForSweep(manifest, {
          url: flags.queue,
          config,
          onMessage: (line) => process.stdout.write(line + '\n'),
        });
        await finish(manifest, config, flags.queue);
        return;
      }
      if (flags.wait === true)
        throw new UsageError('--wait goes with --queue (a local sweep always waits)');
      const workers =
        positiveIntOption(flags.workers, 'workers') ??
        config.sweep.workers ??
        availableParallelism();
      let k = 0;
      await runSweepLocally(manifest, {
        workers,
        attempts: config.sweep.attempts,
        runsDir,
        storePath: config.paths.store,
        errorLines: config.sweep.errorLines,
        onResult: (job, result, reused) =>
          process.stdout.write(resultLine(job, result, reused, manifest.jobs.length, ++k)),
      });
      await finish(manifest, config);
    }),
  );
  withCommonOptions(
    sweep
      .command('status')
      .description('progress, failures and retries of a sweep, and its summary table and report')
      .argument('[sweep]', 'sweep id or directory (default: the latest under paths.runs)')
      .option('--queue <url>', 'also ask this Redis for waiting, running and failed jobs'),
  ).action(
    action(async (ref: string | undefined, _flags: SweepFlags, command: Command) => {
      // `sweep` and `status` share the common options; commander gives them to the parent.
      const flags = command.optsWithGlobals<SweepFlags>();
      const config = runnerConfig(flags);
      const id = ref ?? latestSweepId(config.paths.runs);
      if (id === null)
        throw new UsageError(`no sweep under ${config.paths.runs}`, {
          hint: 'start one with: ctm sweep FILE',
        });
      await finish(readManifest(config.paths.runs, id), config, flags.queue);
    }),
  );
  return sweep;
}

function registerWorker(program: Command): void {
  withCommonOptions(
    program
      .command('worker')
      .description(
        'take sweep jobs from a Redis queue and run them (stop with SIGTERM: finishes the running jobs)',
      )
      .requiredOption('--queue <url>', 'the Redis of the sweeps, e.g. redis://localhost:6379')
      .option('--concurrency <n>', 'jobs at once (default sweep.concurrency)'),
  ).action(
    action(async (flags: WorkerFlags) => {
      const config = runnerConfig(flags);
      const { checkQueueUrl, startWorker } = await queueModule();
      const worker = startWorker({
        url: flags.queue,
        config,
        concurrency: positiveIntOption(flags.concurrency, 'concurrency'),
        onResult: (job, result, reused) =>
          process.stdout.write(
            `${reused ? 'done (found)' : result.status} ${job.id}${result.status === 'failed' ? `: ${result.error ?? ''}` : ''}\n`,
          ),
      });
      let stopping = 0;
      const stopped = new Promise<void>((resolve) => {
        const stop = (): void => {
          stopping++;
          if (stopping === 1)
            process.stdout.write(
              'stopping: finishing the running jobs (signal again to stop now)\n',
            );
          void worker.close(stopping > 1).then(resolve);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      await worker.ready;
      process.stdout.write(
        `worker ${process.pid} on ${checkQueueUrl(flags.queue)} queue ${config.sweep.queue}: runs in ${resolve(config.paths.runs)}\n`,
      );
      await stopped;
    }),
  );
}

/** Registers `ctm sweep`, `ctm sweep status` and `ctm worker`. */
export function registerSweepCommands(program: Command): void {
  registerSweep(program);
  registerWorker(program);
}
