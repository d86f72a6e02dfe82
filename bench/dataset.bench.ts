// Dataset benchmark: `dataset.build_100k`, seconds to build the default dataset at 100k samples
// (markets generated, features computed, windows cut and written, with the default workers).
// Set CTM_BENCH_DATASET_SAMPLES to measure another size (the figure's name stays, its params say).

import { mkdtempSync, rmSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { report } from './lib.js';
import { buildSyntheticDataset } from '../src/synthetic-data/dataset-builder.js';
import { defaultConfig } from '../src/utils/config.js';
import { setLogLevel } from '../src/utils/logger.js';

setLogLevel('warn');
const samples = Number(process.env.CTM_BENCH_DATASET_SAMPLES ?? 100_000);
const root = mkdtempSync(join(tmpdir(), 'ctm-bench-dataset-'));
try {
  const config = defaultConfig();
  const t0 = performance.now();
  const m = await buildSyntheticDataset(samples, {}, { outDir: join(root, 'ds'), config });
  const seconds = (performance.now() - t0) / 1000;
  const bytes = readdirSync(join(root, 'ds')).reduce(
    (s, f) => s + statSync(join(root, 'ds', f)).size,
    0,
  );
  report('dataset.build_100k', seconds, 's', false, {
    samples,
    markets: m.generator.series,
    workers: config.dataset.workers ?? 'auto',
    gigabytes: Number((bytes / 1e9).toFixed(2)),
  });
} finally {
  rmSync(root, { recursive: true, force: true });
}
