// A small world for sweep tests: 32 days of seeded random 15m/4h candles of SYN/USDT in the
// ../shared/data file layout, the tiny training config (splits over January 2021), and sweep files
// of quick backtests or tiny training runs. Every job runs the real `ctm` command in seconds.

import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomCandles } from '../../src/data-processing/lookahead.js';
import type { JobResult } from '../../src/scale/runner.js';
import { tinyTrainingConfig, writeCandleDir } from '../models/time-series/fixtures.js';

/** Writes data/ and config.yaml into `dir`. */
export function writeSweepWorld(dir: string): void {
  writeCandleDir(
    join(dir, 'data'),
    'SYN/USDT',
    randomCandles({ seed: 5, rows: 96 * 32, higher: ['4h'] }),
  );
  writeFileSync(join(dir, 'config.yaml'), tinyTrainingConfig(join(dir, 'unused-runs')));
}

/**
 * A sweep of sma-cross backtests over fast feature × fee: `failing` adds a fast feature the data
 * lack, whose jobs fail at run time (the command exits 1 naming the feature).
 */
export function backtestSweep(dir: string, name: string, fees: number[], failing: boolean): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    `name: ${name}
command: backtest --policy sma-cross --data-dir ${join(dir, 'data')} --symbol SYN/USDT
config: config.yaml
set:
  backtest.warmupDays: 5
  features.sma: [5, 10, 20]
  backtest.smaCross.slowFeature: close_sma_20
grid:
  backtest.smaCross.fastFeature: [close_sma_5, close_sma_10${failing ? ', not_a_feature' : ''}]
  broker.takerFeeRate: ${JSON.stringify(fees)}
`,
  );
  return path;
}

/** A sweep of one tiny training run (checkpoints every 5 steps, 300 steps in all). */
export function trainingSweep(dir: string, name: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    `name: ${name}
command: train model --data-dir ${join(dir, 'data')} --symbol SYN/USDT
config: config.yaml
seeds: [11]
`,
  );
  return path;
}

/** Job directories under `runsDir/jobs`. */
export function jobDirs(runsDir: string): string[] {
  const root = join(runsDir, 'jobs');
  return existsSync(root) ? readdirSync(root).map((d) => join(root, d)) : [];
}

/** The job's result file. */
export function resultOf(jobDir: string): JobResult {
  return JSON.parse(readFileSync(join(jobDir, 'result.json'), 'utf8')) as JobResult;
}

/** Run folders of a job (directories holding run.json). */
export function runFoldersOf(jobDir: string): string[] {
  return readdirSync(jobDir).filter((d) => existsSync(join(jobDir, d, 'run.json')));
}

/** Run folders of a job that finished (metrics.json written). */
export function finishedRunsOf(jobDir: string): string[] {
  return runFoldersOf(jobDir).filter((d) => existsSync(join(jobDir, d, 'metrics.json')));
}
