// Throughput of a local sweep (the built CLI, `ctm sweep FILE --workers N`) on N cores against
// the same jobs run one after the other, and the overhead per job against the bare command:
// - sweep.local_speedup (x): 2N jobs with 1 worker / the same 2N jobs with N workers
// - sweep.local_speedup_vs_bare (x): the 2N bare commands one after the other / the N-worker sweep
// - sweep.overhead_per_job_ms (ms): (sweep with 1 worker − bare commands) / 2N, wall time
// - sweep.overhead_cpu_per_job_ms (ms): the same in CPU time of all processes (robust to load)
// - sweep.job_seconds (s): mean wall time of one bare job
// Each job is a tiny `ctm train model` (32 days of seeded random 15m/4h candles, the tiny training
// config of the tests, SWEEP_BENCH_EPOCHS epochs, default 40: about 18 s each on an idle core;
// the issue asks for jobs of 10 s or more).
// Environment: SWEEP_BENCH_WORKERS (default: the machine's cores).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomCandles } from '../src/data-processing/lookahead.js';
import { tinyTrainingConfig, writeCandleDir } from '../test/models/time-series/fixtures.js';
import { report } from './lib.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const workers = Number(process.env.SWEEP_BENCH_WORKERS ?? availableParallelism());
const epochs = Number(process.env.SWEEP_BENCH_EPOCHS ?? 40);
const jobs = 2 * workers;

/**
 * CPU time (user + system, ms) of every child process this one has waited for, and of theirs:
 * /proc/self/stat cutime + cstime (clock ticks of 10 ms). Unlike wall time, other load on the
 * machine leaves it nearly unchanged.
 */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

function run(args: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args, '--log-level', 'warn'], {
      cwd,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(performance.now() - t0)
        : reject(new Error(`ctm ${args.join(' ')} exited ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build`);
  const loadBefore = loadavg()[0];
  const dir = mkdtempSync(join(tmpdir(), 'ctm-bench-sweep-'));
  try {
    writeCandleDir(
      join(dir, 'data'),
      'SYN/USDT',
      randomCandles({ seed: 5, rows: 96 * 32, higher: ['4h'] }),
    );
    writeFileSync(join(dir, 'config.yaml'), tinyTrainingConfig(join(dir, 'bare-runs')));
    const command = ['train', 'model', '--data-dir', join(dir, 'data'), '--symbol', 'SYN/USDT'];
    const seeds = Array.from({ length: jobs }, (_, k) => k + 1);
    writeFileSync(
      join(dir, 'sweep.yaml'),
      `name: bench\ncommand: ${JSON.stringify(command)}\nconfig: config.yaml\nset:\n  model.train.epochs: ${epochs}\nseeds: ${JSON.stringify(seeds)}\n`,
    );
    // Bare: the same commands, one after the other.
    const cpu0 = childrenCpuMs();
    let bareMs = 0;
    for (const seed of seeds)
      bareMs += await run(
        [
          ...command,
          '--config',
          'config.yaml',
          '--set',
          `model.train.epochs=${epochs}`,
          '--seed',
          String(seed),
        ],
        dir,
      );
    const cpu1 = childrenCpuMs();
    // The sweep with one worker, then with N (each into its own run store: nothing is reused).
    const serialMs = await run(
      ['sweep', 'sweep.yaml', '--workers', '1', '--set', `paths.runs=${join(dir, 'serial')}`],
      dir,
    );
    const cpu2 = childrenCpuMs();
    const poolMs = await run(
      [
        'sweep',
        'sweep.yaml',
        '--workers',
        String(workers),
        '--set',
        `paths.runs=${join(dir, 'pool')}`,
      ],
      dir,
    );
    // The 1-minute load average before and after: other processes on the cores skew every figure.
    const params = {
      workers,
      jobs,
      epochs,
      bareMs: Math.round(bareMs),
      serialMs: Math.round(serialMs),
      poolMs: Math.round(poolMs),
      load: [loadBefore, loadavg()[0]].map((x) => Number(x.toFixed(2))),
      bareCpuMs: cpu1 - cpu0,
      serialCpuMs: cpu2 - cpu1,
    };
    report('sweep.local_speedup', serialMs / poolMs, 'x', true, params);
    report('sweep.local_speedup_vs_bare', bareMs / poolMs, 'x', true, params);
    report('sweep.overhead_per_job_ms', (serialMs - bareMs) / jobs, 'ms', false, params);
    report(
      'sweep.overhead_cpu_per_job_ms',
      (cpu2 - cpu1 - (cpu1 - cpu0)) / jobs,
      'ms',
      false,
      params,
    );
    report('sweep.job_seconds', bareMs / jobs / 1000, 's', false, params);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
