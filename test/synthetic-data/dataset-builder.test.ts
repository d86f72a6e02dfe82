import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  blendSyntheticWithReal,
  buildSyntheticDataset,
  createAdversarialExamples,
  datasetInputMatrices,
  PATTERN_CLASSES,
  resolveDatasetSettings,
  SERIES_START_MS,
  seriesMarket,
  TIMEFRAME_CODES,
} from '../../src/synthetic-data/dataset-builder.js';
import {
  datasetBatches,
  DiskDataset,
  LABEL_COLUMNS,
  type DatasetManifest,
} from '../../src/data-processing/dataset-format.js';
import type {
  MultiTimeframeData,
  PatternRequest,
} from '../../src/synthetic-data/multi-timeframe-sync.js';
import { defaultConfig, type Config } from '../../src/utils/config.js';
import { checkLookAhead, formatLookAheadReport } from '../../src/data-processing/lookahead.js';
import { resample } from '../../src/data-processing/resample.js';
import { readCandlesCsv } from '../../src/data-processing/file-formats.js';
import {
  sliceByTime,
  TIMEFRAME_MS,
  validateCandles,
  type Candles,
  type Timeframe,
} from '../../src/data-processing/candles.js';
import { timeframeFeatureNames } from '../../src/data-processing/feature-engineering.js';
import { UsageError } from '../../src/errors.js';
import { detect, type Detectable } from './pattern-detector.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';

const DAY = 86_400_000;
const M15 = 900_000;
const COL = Object.fromEntries(LABEL_COLUMNS.map((c, i) => [c, i])) as Record<
  (typeof LABEL_COLUMNS)[number],
  number
>;
const NCOL = LABEL_COLUMNS.length;

function testConfig(): Config {
  const c = defaultConfig();
  c.dataset.seriesDays = 200;
  c.dataset.shardSize = 256;
  // More look-alikes than the default 10%, so their checks rest on many patterns.
  c.dataset.adversarialFraction = 0.3;
  return c;
}

let root: string;
let dir: string;
let manifest: DatasetManifest;
const config = testConfig();
const markets = new Map<number, MultiTimeframeData>();
let settings: ReturnType<typeof resolveDatasetSettings>;

/** Every sample of every split: its split and its label row. */
function allLabels(): Array<{ split: string; row: Float64Array }> {
  const out: Array<{ split: string; row: Float64Array }> = [];
  for (const split of ['train', 'validation', 'test'] as const)
    for (const sh of manifest.shards[split]) {
      const buf = readFileSync(join(dir, `${sh.name}.labels.f64`));
      const lab = new Float64Array(buf.buffer, buf.byteOffset, sh.samples * NCOL);
      for (let i = 0; i < sh.samples; i++)
        out.push({ split, row: lab.slice(i * NCOL, (i + 1) * NCOL) });
    }
  return out;
}

function market(k: number): MultiTimeframeData {
  let m = markets.get(k);
  if (m === undefined) {
    m = seriesMarket(k, settings);
    markets.set(k, m);
  }
  return m;
}

/** The primary window (its configured size) closed by a sample's decision time. */
function primaryWindow(row: Float64Array): {
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
} {
  const tf = TIMEFRAME_CODES[row[COL.timeframe]] as Timeframe;
  const c = market(row[COL.series]).frames.get(tf) as Candles;
  const bars = config.windows[tf] as number;
  const barMs = TIMEFRAME_MS[tf];
  let end = 0;
  while (end < c.openTime.length && c.openTime[end] + barMs <= row[COL.decisionTimeMs]) end++;
  return {
    high: c.high.subarray(end - bars, end),
    low: c.low.subarray(end - bars, end),
    close: c.close.subarray(end - bars, end),
  };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'ctm-dataset-'));
  dir = join(root, 'ds');
  manifest = await buildSyntheticDataset(900, {}, { outDir: dir, config, seed: 7, workers: 1 });
  settings = resolveDatasetSettings({}, { config, seed: 7 });
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('buildSyntheticDataset', () => {
  it('writes a manifest whose counts, shards and feature spec agree with the files', () => {
    expect(manifest.samples).toBe(900);
    const c = manifest.splits.counts;
    expect(c.train + c.validation + c.test).toBe(900);
    expect(c.validation).toBeGreaterThan(0);
    expect(c.test).toBeGreaterThan(0);
    for (const split of ['train', 'validation', 'test'] as const) {
      const n = manifest.shards[split].reduce((s, sh) => s + sh.samples, 0);
      expect(n).toBe(c[split]);
      for (const sh of manifest.shards[split])
        for (const tf of manifest.spec.timeframes) {
          const bytes = readFileSync(join(dir, `${sh.name}.${tf}.f32`)).byteLength;
          expect(bytes).toBe(
            sh.samples *
              (manifest.spec.windows[tf] as number) *
              (manifest.spec.features[tf] as string[]).length *
              4,
          );
        }
    }
    expect(Object.values(manifest.counts.byPattern).reduce((s, v) => s + v, 0)).toBe(900);
    expect(manifest.spec.windows).toEqual({ '15m': 64, '4h': 32, '1d': 16 });
    // The windows carry the feature registry's columns (the base adds the cross-timeframe ones).
    for (const tf of ['4h', '1d'] as const)
      expect(manifest.spec.features[tf]).toEqual(timeframeFeatureNames(config.features, tf));
    expect(manifest.spec.features['15m']?.some((n) => n.startsWith('x.'))).toBe(true);
    expect(manifest.labels.columns).toEqual(LABEL_COLUMNS);
    expect(manifest.patternClasses).toEqual(PATTERN_CLASSES);
    expect(manifest.counts.adversarial).toBeGreaterThan(0);
    expect(manifest.counts.byPattern.none).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'normalizer.json'))).toBe(true);
    // Nothing half-written is left beside it.
    expect(readdirSync(root)).toEqual(['ds']);
  });

  it('cuts samples from markets whose candles are valid and whose 4h and 1d exactly aggregate 15m', () => {
    const series = new Set(allLabels().map((l) => l.row[COL.series]));
    expect(series.size).toBeGreaterThan(3);
    for (const k of [0, 1]) {
      const m = market(k);
      const m15 = m.frames.get('15m') as Candles;
      for (const c of m.frames.values()) expect(validateCandles(c).count).toBe(0);
      const same = (a: Candles, b: Candles): boolean =>
        a.openTime.length === b.openTime.length &&
        (['openTime', 'open', 'high', 'low', 'close', 'volume'] as const).every((f) =>
          a[f].every((v, i) => Object.is(v, b[f][i])),
        );
      expect(same(m.frames.get('4h') as Candles, resample(m15, '4h').candles)).toBe(true);
      expect(same(m.frames.get('1d') as Candles, resample(m15, '1d').candles)).toBe(true);
      expect(same(m15, resample(m.fine, '15m').candles)).toBe(true);
    }
  });

  it('holds windows without a NaN and labels consistent with their definitions', async () => {
    const ds = await DiskDataset.open(dir, 'train');
    let bad = 0;
    let values = 0;
    for await (const b of ds.batches({ batchSize: 128 }))
      for (const w of b.windows) {
        values += w.length;
        for (const v of w) if (!Number.isFinite(v)) bad++;
      }
    expect(values).toBeGreaterThan(0);
    expect(bad).toBe(0);
    const cost = manifest.labels.roundTripCost;
    for (const { row } of allLabels()) {
      const r = row[COL.forwardReturn];
      expect(row[COL.action]).toBe(r > cost ? 2 : r < -cost ? 0 : 1);
      if (row[COL.pattern] === 0) {
        expect(row[COL.timeframe]).toBe(0);
        expect(Number.isNaN(row[COL.completionTimeMs])).toBe(true);
      }
    }
  });

  it('never lets a pattern label use a bar after the decision time', () => {
    for (const { row } of allLabels()) {
      if (row[COL.pattern] <= 0) continue;
      expect(row[COL.onsetTimeMs]).toBeLessThan(row[COL.completionTimeMs]);
      expect(row[COL.completionTimeMs]).toBeLessThanOrEqual(row[COL.decisionTimeMs]);
      // The decision lies within the primary bar after completion: the primary window is the same.
      const barMs = TIMEFRAME_MS[TIMEFRAME_CODES[row[COL.timeframe]] as Timeframe];
      expect(row[COL.decisionTimeMs] - row[COL.completionTimeMs]).toBeLessThan(barMs);
    }
  });

  it('decides inside the resolution delay, before the resolution starts, and sees it complete within the horizon', () => {
    const delay = config.dataset.resolutionDelayBars;
    expect(delay).toBeGreaterThan(0);
    let n = 0;
    for (const { row } of allLabels()) {
      if (row[COL.pattern] <= 0) continue;
      const barMs = TIMEFRAME_MS[TIMEFRAME_CODES[row[COL.timeframe]] as Timeframe];
      const label = market(row[COL.series]).labels.find(
        (l) => l.completionTimeMs === row[COL.completionTimeMs],
      );
      expect(label).toBeDefined();
      const t = row[COL.decisionTimeMs];
      expect(t).toBeLessThan(row[COL.completionTimeMs] + delay * barMs);
      expect(label?.resolutionTimeMs).toBeGreaterThanOrEqual(
        row[COL.completionTimeMs] + (delay + 1) * barMs,
      );
      expect(label?.resolutionTimeMs).toBeLessThanOrEqual(t + row[COL.horizonBars] * M15);
      n++;
    }
    expect(n).toBeGreaterThan(500);
  });

  it('lets the higher timeframes decide outcomes: patterns against their trends fail far more often than patterns with them', () => {
    const seen = new Set<string>();
    const tally = new Map<number, { n: number; failed: number }>();
    for (const { row } of allLabels()) {
      if (row[COL.pattern] <= 0 || row[COL.expectedDirection] === 0) continue;
      const key = `${row[COL.series]}:${row[COL.completionTimeMs]}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const a = row[COL.htfAlignment];
      const tf = TIMEFRAME_CODES[row[COL.timeframe]];
      if (tf === '1d') expect(a).toBeNaN();
      else expect(tf === '15m' ? [-1, -0.5, 0, 0.5, 1] : [-1, 0, 1]).toContain(a);
      const t = tally.get(a) ?? { n: 0, failed: 0 };
      t.n++;
      t.failed += row[COL.adversarial];
      tally.set(a, t);
    }
    const rate = (keep: (a: number) => boolean): number => {
      let n = 0;
      let failed = 0;
      for (const [a, t] of tally) {
        if (!keep(a)) continue;
        n += t.n;
        failed += t.failed;
      }
      expect(n).toBeGreaterThan(15);
      return failed / n;
    };
    // adversarialFraction 0.3 and htfInfluence 0.5: 15% when all higher timeframes confirm, 65%
    // when all contradict; half a confluence (a 15m pattern whose 4h and 1d trends differ by one
    // step) 22.5% vs 47.5%.
    expect(rate((a) => a === -1) - rate((a) => a === 1)).toBeGreaterThan(0.3);
    expect(rate((a) => a === -0.5) - rate((a) => a === 0.5)).toBeGreaterThan(0.1);
  });

  it('passes the look-ahead check on its inputs and causal labels (truncated and poisoned futures)', () => {
    const m = market(0);
    const times = allLabels()
      .filter((l) => l.row[COL.series] === 0)
      .map((l) => l.row[COL.decisionTimeMs]);
    expect(times.length).toBeGreaterThan(10);
    const m15 = m.frames.get('15m') as Candles;
    const rowOf = (t: number): number => Math.round((t - M15 - m15.openTime[0]) / M15);
    const picked = [times[0], times[Math.floor(times.length / 2)], times[times.length - 1]];
    const cutRows = [...picked.map(rowOf), ...picked.map((t) => rowOf(t) - 7)];
    const report = checkLookAhead(
      m.frames,
      (c) => datasetInputMatrices(c, times, { spec: config.features, windows: config.windows }),
      {
        cutRows,
      },
    );
    expect(report.valuesCompared).toBeGreaterThan(0);
    expect(report.leaks, formatLookAheadReport(report)).toEqual([]);
  });

  it('computes forward labels only inside their split (purge) and drops an embargo after each split start', () => {
    const total =
      config.dataset.splits.train + config.dataset.splits.validation + config.dataset.splits.test;
    const from = SERIES_START_MS + manifest.generator.warmupDays * DAY;
    const end = SERIES_START_MS + config.dataset.seriesDays * DAY;
    const span = end - from;
    const bounds = [
      from,
      from + (span * config.dataset.splits.train) / total,
      from + (span * (config.dataset.splits.train + config.dataset.splits.validation)) / total,
      end,
    ];
    const names = ['train', 'validation', 'test'];
    for (const { split, row } of allLabels()) {
      const s = names.indexOf(split);
      const t = row[COL.decisionTimeMs];
      expect(t).toBeGreaterThanOrEqual(bounds[s] + (s > 0 ? manifest.splits.embargoMs : 0));
      expect(t + row[COL.horizonBars] * M15).toBeLessThanOrEqual(bounds[s + 1]);
    }
    expect(manifest.splits.purged).toBeGreaterThan(0);
  });

  it('plants patterns that an independent detector finds on their primary timeframe in at least 90% of samples', () => {
    let found = 0;
    let n = 0;
    const missed = new Map<string, number>();
    for (const { row } of allLabels()) {
      if (row[COL.pattern] <= 0) continue;
      n++;
      const type = PATTERN_CLASSES[row[COL.pattern]];
      if (detect(type as Detectable, primaryWindow(row))) found++;
      else missed.set(type, (missed.get(type) ?? 0) + 1);
    }
    expect(n).toBeGreaterThan(500);
    expect(
      found / n,
      `missed: ${JSON.stringify(Object.fromEntries(missed))}`,
    ).toBeGreaterThanOrEqual(0.9);
  });

  it('makes adversarial samples that look like the pattern yet resolve against its expected direction', () => {
    let n = 0;
    let found = 0;
    let against = 0;
    for (const { row } of allLabels()) {
      if (row[COL.adversarial] !== 1) continue;
      n++;
      if (detect(PATTERN_CLASSES[row[COL.pattern]] as Detectable, primaryWindow(row))) found++;
      if (Math.sign(row[COL.forwardReturn]) === -row[COL.expectedDirection]) against++;
    }
    expect(n).toBeGreaterThan(30);
    expect({ found: found / n, against: against / n }).toEqual({
      found: expect.toSatisfy((v: number) => v >= 0.9),
      against: expect.toSatisfy((v: number) => v >= 0.9),
    });
    // Ordinary patterns mostly resolve their textbook way.
    let ordinary = 0;
    let withIt = 0;
    for (const { row } of allLabels())
      if (row[COL.pattern] > 0 && row[COL.adversarial] === 0 && row[COL.expectedDirection] !== 0) {
        ordinary++;
        if (Math.sign(row[COL.forwardReturn]) === row[COL.expectedDirection]) withIt++;
      }
    expect(withIt / ordinary).toBeGreaterThan(0.7);
  });

  it('refuses to overwrite an existing directory unless asked, and leaves it untouched', async () => {
    const before = readFileSync(join(dir, 'manifest.json'), 'utf8');
    await expect(
      buildSyntheticDataset(10, {}, { outDir: dir, config, workers: 1 }),
    ).rejects.toThrow(UsageError);
    expect(readFileSync(join(dir, 'manifest.json'), 'utf8')).toBe(before);
    expect(readdirSync(root)).toEqual(['ds']);
  });

  it('refuses an unknown pattern class in the distribution', async () => {
    await expect(
      buildSyntheticDataset(10, { cup_and_handle: 1 } as never, {
        outDir: join(root, 'x'),
        config,
        workers: 1,
      }),
    ).rejects.toThrow(UsageError);
  });
});

describe('datasetBatches', () => {
  it('yields batches in the trainer shape, every sample once per pass, in a seeded order that resumes at any batch', async () => {
    const spec = manifest.spec;
    const seen = new Set<number>();
    const order: number[] = [];
    for await (const b of datasetBatches(dir, { split: 'train', batchSize: 100, shuffleSeed: 3 })) {
      expect(b.windows.length).toBe(3);
      spec.timeframes.forEach((tf, j) =>
        expect(b.windows[j].length).toBe(
          b.size * (spec.windows[tf] as number) * (spec.features[tf] as string[]).length,
        ),
      );
      expect(b.direction.length).toBe(b.size);
      for (const i of b.indices) {
        expect(seen.has(i)).toBe(false);
        seen.add(i);
        order.push(i);
      }
    }
    expect(seen.size).toBe(manifest.splits.counts.train);
    const again: number[] = [];
    for await (const b of datasetBatches(dir, { split: 'train', batchSize: 100, shuffleSeed: 3 }))
      again.push(...b.indices);
    expect(again).toEqual(order);
    const other: number[] = [];
    for await (const b of datasetBatches(dir, { split: 'train', batchSize: 100, shuffleSeed: 4 }))
      other.push(...b.indices);
    expect(other).not.toEqual(order);
    const resumed: number[] = [];
    for await (const b of datasetBatches(dir, {
      split: 'train',
      batchSize: 100,
      shuffleSeed: 3,
      startBatch: 2,
    }))
      resumed.push(...b.indices);
    expect(resumed).toEqual(order.slice(200));
  });

  it('reads the same window bytes whatever the order', async () => {
    const ds = await DiskDataset.open(dir, 'validation');
    const byIndex = new Map<number, string>();
    for await (const b of ds.batches({ batchSize: 64 }))
      for (let k = 0; k < b.size; k++) {
        const z = b.windows[1].length / b.size;
        byIndex.set(
          b.indices[k],
          createHash('md5')
            .update(b.windows[1].subarray(k * z, (k + 1) * z))
            .digest('hex'),
        );
      }
    for await (const b of ds.batches({ batchSize: 50, shuffleSeed: 9 }))
      for (let k = 0; k < b.size; k++) {
        const z = b.windows[1].length / b.size;
        expect(
          createHash('md5')
            .update(b.windows[1].subarray(k * z, (k + 1) * z))
            .digest('hex'),
        ).toBe(byIndex.get(b.indices[k]));
      }
    expect(ds.patternClasses).toEqual(PATTERN_CLASSES);
    expect(ds.normalizer).not.toBeNull();
  });

  it('names the problem when the directory is not a dataset', async () => {
    const empty = join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, 'x.txt'), 'x');
    await expect(DiskDataset.open(empty, 'train')).rejects.toThrow(/manifest/);
    rmSync(empty, { recursive: true });
  });
});

describe('dataset options', () => {
  it('gives the same bytes with worker threads as without', async () => {
    const hashOf = (d: string): string => {
      const h = createHash('sha256');
      for (const f of readdirSync(d).sort())
        if (/\.(f32|f64)$/.test(f)) h.update(readFileSync(join(d, f)));
      return h.digest('hex');
    };
    const a = join(root, 'w1');
    const b = join(root, 'w2');
    await buildSyntheticDataset(120, {}, { outDir: a, config, seed: 5, workers: 1 });
    await buildSyntheticDataset(120, {}, { outDir: b, config, seed: 5, workers: 2 });
    expect(hashOf(b)).toBe(hashOf(a));
    rmSync(a, { recursive: true });
    rmSync(b, { recursive: true });
  });

  it('keeps only price and volume features without indicators, and follows the pattern distribution', async () => {
    const out = join(root, 'plain');
    const m = await buildSyntheticDataset(
      80,
      { double_top: 1, none: 1 },
      { outDir: out, config, withIndicators: false, workers: 1 },
    );
    const names = m.spec.features['4h'] as string[];
    expect(names.some((n) => n.startsWith('rsi') || n.startsWith('macd'))).toBe(false);
    expect(names.some((n) => n.startsWith('ret_'))).toBe(true);
    const used = Object.entries(m.counts.byPattern)
      .filter(([, v]) => v > 0)
      .map(([k]) => k);
    expect(used.sort()).toEqual(['double_top', 'none']);
    rmSync(out, { recursive: true });
  });

  it('records indicator augmentations per sample when they are switched on', async () => {
    const out = join(root, 'aug');
    const c = testConfig();
    c.dataset.augment.lagFraction = 0.5;
    c.dataset.augment.noiseFraction = 0.5;
    await buildSyntheticDataset(100, {}, { outDir: out, config: c, workers: 1 });
    const ds = await DiskDataset.open(out, 'train');
    const lag = ds.column('lagBars');
    const noise = ds.column('indicatorNoise');
    expect(lag.some((v) => v === 1)).toBe(true);
    expect(noise.some((v) => v === 1)).toBe(true);
    expect(lag.some((v) => v === 0)).toBe(true);
    // Off by default.
    const d0 = await DiskDataset.open(dir, 'train');
    expect(d0.column('lagBars').every((v) => v === 0)).toBe(true);
    rmSync(out, { recursive: true });
  });
});

describe('createAdversarialExamples', () => {
  it('turns the asked number of directional patterns into look-alikes, keeping type and direction', () => {
    const base: PatternRequest[] = [
      { type: 'double_top', primaryTimeframe: '4h' },
      { type: 'sideways', primaryTimeframe: '4h' },
      { type: 'bull_flag', primaryTimeframe: '15m' },
      { type: 'support_bounce', primaryTimeframe: '1d' },
    ];
    const out = createAdversarialExamples(base, 2, { seed: 1 });
    expect(out.filter((r) => r.adversarial).length).toBe(2);
    expect(out.find((r) => r.type === 'sideways')?.adversarial).toBeFalsy();
    expect(out.map((r) => r.type)).toEqual(base.map((r) => r.type));
    expect(() => createAdversarialExamples(base, 4)).toThrow();
  });
});

describe.skipIf(!hasSharedData)(`with real BTC candles${SKIP_REASON}`, () => {
  let real: Candles;
  beforeAll(async () => {
    const { candles } = await readCandlesCsv(sharedFile('binance-BTCUSDT-15m.csv.gz'), {
      symbol: 'BTC/USDT',
      timeframe: '15m',
    });
    real = sliceByTime(candles, Date.UTC(2021, 0, 1), Date.UTC(2024, 0, 1));
  });

  it('blendSyntheticWithReal stitches pattern segments with matched level and volatility at the joins', () => {
    const requests: PatternRequest[] = [
      { type: 'double_top', primaryTimeframe: '15m' },
      { type: 'bull_flag', primaryTimeframe: '4h' },
    ];
    const slice = sliceByTime(real, Date.UTC(2023, 0, 1), Date.UTC(2023, 4, 1));
    const b = blendSyntheticWithReal(requests, slice, 0.3, { seed: 2 });
    const m15 = b.frames.get('15m') as Candles;
    expect(validateCandles(m15).count).toBeLessThanOrEqual(validateCandles(slice).count);
    expect(m15.openTime.length).toBe(slice.openTime.length);
    const synthetic = b.segments.filter((s) => s.source === 'synthetic');
    const share =
      synthetic.reduce((s, x) => s + x.toMs - x.fromMs, 0) /
      (slice.openTime[slice.openTime.length - 1] - slice.openTime[0]);
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.4);
    for (const j of b.joins) {
      expect(Math.abs(j.startJump)).toBeLessThan(3);
      expect(Math.abs(j.endJump)).toBeLessThan(3);
      expect(j.volatilityRatio).toBeGreaterThan(0.4);
      expect(j.volatilityRatio).toBeLessThan(2.5);
    }
    // Every planted pattern lies inside a synthetic segment.
    for (const l of b.labels)
      expect(synthetic.some((s) => l.onsetTimeMs >= s.fromMs && l.completionTimeMs <= s.toMs)).toBe(
        true,
      );
    const resampled = resample(m15, '4h').candles;
    expect(Array.from((b.frames.get('4h') as Candles).close)).toEqual(Array.from(resampled.close));
  });

  it('mixes real samples in at a ratio, labelled unknown and split by the configured dates', async () => {
    const out = join(root, 'mixed');
    const c = testConfig();
    c.dataset.real.sampleRatio = 0.25;
    const m = await buildSyntheticDataset(200, {}, { outDir: out, config: c, real, workers: 1 });
    expect(m.counts.real).toBe(50);
    const ds = await DiskDataset.open(out, 'test');
    const source = ds.column('source');
    const pattern = ds.column('pattern');
    const t = ds.column('decisionTimeMs');
    for (let i = 0; i < ds.size; i++)
      if (source[i] === 1) {
        expect(pattern[i]).toBe(-1);
        expect(t[i]).toBeGreaterThanOrEqual(Date.UTC(2023, 0, 1));
      }
    rmSync(out, { recursive: true });
  });
});
