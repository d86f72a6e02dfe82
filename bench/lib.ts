// Helpers shared by the benchmarks: each benchmark prints one JSON line per figure through
// `report`, and times work with `timeBest` (best of N after a warm-up). Benchmarks never run in tests.

import { cpus } from 'node:os';

/** One benchmark figure (the format of bench/results.json entries). */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  higherIsBetter: boolean;
  params: Record<string, unknown>;
  node: string;
  cpu: string;
  at: string;
}

/** Prints one figure as a JSON line on stdout. */
export function report(
  name: string,
  value: number,
  unit: string,
  higherIsBetter: boolean,
  params: Record<string, unknown> = {},
): void {
  const result: BenchResult = {
    name,
    value: Number(value.toPrecision(6)),
    unit,
    higherIsBetter,
    params,
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    at: new Date().toISOString(),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

/** Runs `fn` `warmup` times, then `reps` times, and returns the fastest time in ms. */
export async function timeBest(fn: () => unknown, reps = 5, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}
