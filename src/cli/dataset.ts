// `ctm dataset build|info` and `ctm synth gallery`: thin commands over the dataset builder and the
// pattern gallery. They parse options, resolve the config, call one library function and print.

import type { Command } from 'commander';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { readCandlesCsv } from '../data-processing/file-formats.js';
import { isTimeframe } from '../data-processing/candles.js';
import { createRun } from '../utils/runs.js';
import { readDatasetManifest } from '../data-processing/dataset-format.js';
import {
  buildSyntheticDataset,
  type PatternDistribution,
} from '../synthetic-data/dataset-builder.js';
import { renderPatternGallery } from '../synthetic-data/gallery.js';
import { loadCalibration } from '../synthetic-data/calibration.js';
import { isPatternType, type PatternType } from '../synthetic-data/pattern-generator.js';
import { PATTERN_TIMEFRAMES } from '../synthetic-data/multi-timeframe-sync.js';
import { synthGroup } from './synth.js';
import { action, resolveConfig, withCommonOptions, type CommonOptions } from './common.js';

interface BuildOptions extends CommonOptions {
  out: string;
  samples?: string;
  distribution?: string;
  force?: boolean;
  workers?: string;
  indicators?: boolean;
  real?: string;
  realRatio?: string;
}

interface GalleryOptions extends CommonOptions {
  out: string;
  timeframe?: string;
  types?: string;
  calibration?: string;
}

function wholeNumber(value: string, flag: string): number {
  const v = Number(value);
  if (!(Number.isInteger(v) && v > 0))
    throw new UsageError(`${flag} "${value}" must be a whole number > 0`);
  return v;
}

/** Parses `double_top=2,none=1` into a pattern distribution. */
function parseDistribution(text: string): PatternDistribution {
  const out: PatternDistribution = {};
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const [name, weight] = part.split('=').map((s) => s.trim());
    if (name !== 'none' && !isPatternType(name))
      throw new UsageError(`--distribution: unknown pattern "${name}"`, {
        hint: 'use none or a pattern type, e.g. --distribution double_top=2,bull_flag=1,none=1',
      });
    const w = weight === undefined ? 1 : Number(weight);
    if (!(w >= 0 && Number.isFinite(w)))
      throw new UsageError(`--distribution: weight of ${name} must be >= 0`);
    out[name as PatternType | 'none'] = w;
  }
  return out;
}

/** Registers `ctm dataset build`, `ctm dataset info` and `ctm synth gallery`. */
export function registerDatasetCommands(program: Command): void {
  const dataset = program
    .command('dataset')
    .description('labelled training datasets of chart patterns');

  withCommonOptions(
    dataset
      .command('build')
      .description(
        'generate markets with planted chart patterns and write labelled multi-timeframe windows (manifest.json + shards)',
      )
      .requiredOption('--out <dir>', 'dataset directory (built beside it, then renamed into place)')
      .option('--samples <n>', 'number of samples (default: dataset.samples, 20000)')
      .option(
        '--distribution <list>',
        'pattern weights, e.g. double_top=2,bull_flag=1,none=1 (default: config)',
      )
      .option('--force', 'replace --out when it exists')
      .option('--workers <n>', 'worker threads (default: dataset.workers, one per core up to 4)')
      .option(
        '--no-indicators',
        'only price, volume and candle-shape features (the spec with_indicators=False)',
      )
      .option(
        '--real <file>',
        'real 15m candles mixed in at --real-ratio (default: dataset.real.file)',
      )
      .option(
        '--real-ratio <r>',
        'share of samples cut from the real candles (default: dataset.real.sampleRatio)',
      ),
  ).action(
    action(async (opts: BuildOptions) => {
      const config = resolveConfig(opts);
      const samples =
        opts.samples === undefined
          ? config.dataset.samples
          : wholeNumber(opts.samples, '--samples');
      if (opts.realRatio !== undefined) {
        const r = Number(opts.realRatio);
        if (!(r >= 0 && r <= 1))
          throw new UsageError(`--real-ratio "${opts.realRatio}" must be in [0, 1]`);
        config.dataset.real.sampleRatio = r;
      }
      if (opts.real !== undefined) config.dataset.real.file = opts.real;
      const real =
        config.dataset.real.file !== null && config.dataset.real.sampleRatio > 0
          ? (
              await readCandlesCsv(config.dataset.real.file, {
                symbol: config.dataset.real.symbol,
                timeframe: '15m',
              })
            ).candles
          : null;
      const run = createRun({ kind: 'dataset-build', config });
      const t0 = performance.now();
      const manifest = await buildSyntheticDataset(
        samples,
        opts.distribution === undefined ? {} : parseDistribution(opts.distribution),
        {
          outDir: opts.out,
          config,
          overwrite: opts.force === true,
          withIndicators: opts.indicators,
          workers: opts.workers === undefined ? undefined : wholeNumber(opts.workers, '--workers'),
          real,
        },
      );
      const seconds = (performance.now() - t0) / 1000;
      run.writeMetrics({
        samples: manifest.samples,
        seconds,
        series: manifest.generator.series,
        splits: manifest.splits.counts,
        purged: manifest.splits.purged,
        adversarial: manifest.counts.adversarial,
      });
      const c = manifest.splits.counts;
      const patterned = manifest.samples - manifest.counts.byPattern.none - manifest.counts.real;
      process.stdout.write(
        `wrote ${manifest.samples} samples to ${resolve(opts.out)} in ${seconds.toFixed(1)} s ` +
          `(${manifest.generator.series} markets of ${manifest.generator.seriesDays} days): ` +
          `train ${c.train}, validation ${c.validation}, test ${c.test}; ${patterned} with a pattern ` +
          `(${manifest.counts.adversarial} adversarial), ${manifest.counts.byPattern.none} none, ${manifest.counts.real} real; ` +
          `${manifest.splits.purged} purged\n` +
          `windows ${manifest.spec.timeframes.map((tf) => `${tf} ${manifest.spec.windows[tf]}x${manifest.spec.features[tf]?.length}`).join(', ')}; run ${run.id}\n`,
      );
    }),
  );

  withCommonOptions(
    dataset
      .command('info')
      .description('summarise a dataset directory (counts, splits, windows, label definitions)')
      .argument('<dir>', 'dataset directory'),
  ).action(
    action((dir: string) => {
      const m = readDatasetManifest(dir);
      const top = Object.entries(m.counts.byPattern)
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      process.stdout.write(
        `${resolve(dir)}: ${m.samples} samples, seed ${m.seed}, created ${m.createdAt}\n` +
          `splits: ${Object.entries(m.splits.counts)
            .map(([k, v]) => `${k} ${v}`)
            .join(
              ', ',
            )} (${m.splits.purged} purged, embargo ${m.splits.embargoMs / 3_600_000} h)\n` +
          `windows: ${m.spec.timeframes.map((tf) => `${tf} ${m.spec.windows[tf]} bars x ${m.spec.features[tf]?.length} features`).join(', ')}\n` +
          `by timeframe: ${Object.entries(m.counts.byTimeframe)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}; actions: ${Object.entries(m.counts.byAction)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}; adversarial ${m.counts.adversarial}\n` +
          `patterns: ${top}\n` +
          `labels: ${m.labels.columns.join(', ')} (round-trip cost ${m.labels.roundTripCost})\n`,
      );
    }),
  );

  withCommonOptions(
    synthGroup(program)
      .command('gallery')
      .description('one PNG chart per pattern type: 15m, 4h and 1d panels, the pattern span shaded')
      .requiredOption('--out <dir>', 'output directory')
      .option(
        '--timeframe <tf>',
        `primary timeframe of the patterns: ${PATTERN_TIMEFRAMES.join(' | ')} (default 4h)`,
      )
      .option('--types <list>', 'comma-separated pattern types (default: all)')
      .option(
        '--calibration <name|file>',
        'btc | eth | a JSON file (default: dataset.calibration)',
      ),
  ).action(
    action((opts: GalleryOptions) => {
      const config = resolveConfig(opts);
      const tf = opts.timeframe ?? '4h';
      if (!isTimeframe(tf) || !PATTERN_TIMEFRAMES.includes(tf))
        throw new UsageError(
          `--timeframe must be one of ${PATTERN_TIMEFRAMES.join(', ')}, got ${tf}`,
        );
      const types = opts.types?.split(',').map((t) => t.trim());
      for (const t of types ?? [])
        if (!isPatternType(t)) throw new UsageError(`--types: unknown pattern "${t}"`);
      const files = renderPatternGallery(opts.out, {
        seed: config.seed,
        timeframe: tf,
        types: types as PatternType[] | undefined,
        params: loadCalibration(opts.calibration ?? config.dataset.calibration),
      });
      process.stdout.write(
        `wrote ${files.length - 1} charts and index.html to ${resolve(opts.out)}\n`,
      );
    }),
  );
}
