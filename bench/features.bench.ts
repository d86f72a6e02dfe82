// Alignment and feature throughput on 1M 15m rows (a seeded random walk, ~28.5 years, with its
// exact 4h and 1d aggregates): `align.1m` (ms to align 1M 15m rows to 4h and 1d, last-closed mode)
// and `features.1m` (ms for the full multi-timeframe feature build of the default registry:
// per-timeframe matrices for 15m, 4h and 1d, the cross-timeframe features and firstValidRow). The
// lazily built decision-row view and forming mode are timed too and reported in the params, and
// so is the best process CPU time of each figure (`cpuMs`), which a busy machine disturbs less
// than wall time.

import { alignTimeframes } from '../src/data-processing/data-alignment.js';
import {
  createMultiTimeframeFeatures,
  defaultFeatureSpec,
} from '../src/data-processing/feature-engineering.js';
import { randomCandles } from '../src/data-processing/lookahead.js';
import { report, timeBest } from './lib.js';

const ROWS = 1_000_000;

/** Best process CPU time (user + system, ms) of `reps` runs of `fn`. */
function bestCpuMs(fn: () => unknown, reps: number): number {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  return Math.round(best * 10) / 10;
}

const data = randomCandles({ seed: 1, rows: ROWS });
const spec = defaultFeatureSpec();
const params = {
  rows: ROWS,
  base: '15m',
  higher: ['4h', '1d'],
  rows4h: data.get('4h')!.openTime.length,
  rows1d: data.get('1d')!.openTime.length,
};

const align = () => alignTimeframes(data, { mode: 'last-closed' });
const alignMs = await timeBest(align, 7, 2);
const formingAlignMs = await timeBest(() => alignTimeframes(data, { mode: 'forming' }), 3, 1);
report('align.1m', alignMs, 'ms', false, {
  ...params,
  mode: 'last-closed',
  cpuMs: bestCpuMs(align, 7),
  formingMs: Math.round(formingAlignMs),
});

const aligned = align();
const build = () => createMultiTimeframeFeatures(aligned, { spec });
const featuresMs = await timeBest(build, 3, 1);
const featuresCpuMs = bestCpuMs(build, 3);
const f = build();
const t0 = performance.now();
const decision = f.decisionRows;
const decisionMs = performance.now() - t0;
const formingAligned = alignTimeframes(data, { mode: 'forming' });
const formingMs = await timeBest(
  () => createMultiTimeframeFeatures(formingAligned, { spec }),
  1,
  0,
);
report('features.1m', featuresMs, 'ms', false, {
  ...params,
  mode: 'last-closed',
  cpuMs: featuresCpuMs,
  columns: [...f.perTimeframe.values()].reduce((s, m) => s + m.cols, 0),
  decisionColumns: decision.cols,
  decisionRowsMs: Math.round(decisionMs),
  formingModeMs: Math.round(formingMs),
});
