import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildFeatures,
  defaultFeatureSpec,
  type FeatureMatrix,
  type MultiTimeframeFeatures,
} from '../../src/data-processing/feature-engineering.js';
import { randomCandles } from '../../src/data-processing/lookahead.js';
import { fitNormalizer, FittedNormalizer } from '../../src/data-processing/normalizer.js';
import { CheckpointError, DataValidationError } from '../../src/errors.js';

const DAY = 86_400_000;
const data = randomCandles({ seed: 21, rows: 12_000, gapProbability: 0.001 });
const WINDOWS = { '15m': 32, '4h': 8, '1d': 4 };
const features = buildFeatures(data, { windows: WINDOWS });
const t0 = features.perTimeframe.get('15m')!.time[0];
// Fit on days 70..100 of the ~125 (every timeframe is warm by then).
const fit = { fromMs: t0 + 70 * DAY, toMs: t0 + 100 * DAY };

function columnStats(m: FeatureMatrix, j: number, fromMs: number, toMs: number) {
  const xs: number[] = [];
  for (let r = 0; r < m.rows; r++) {
    if (m.time[r] < fromMs || m.time[r] >= toMs) continue;
    const v = m.values[r * m.cols + j];
    if (!Number.isNaN(v)) xs.push(v);
  }
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
  return { mean, sd, n: xs.length, xs };
}

/** The same features with every value outside the fit range replaced by garbage. */
function garbleOutside(f: MultiTimeframeFeatures, fromMs: number, toMs: number) {
  const perTimeframe = new Map(
    [...f.perTimeframe].map(([tf, m]) => {
      const values = m.values.slice();
      for (let r = 0; r < m.rows; r++)
        if (m.time[r] < fromMs || m.time[r] >= toMs)
          for (let j = 0; j < m.cols; j++) values[r * m.cols + j] = 1e6 * (j + 1);
      return [tf, { ...m, values }] as const;
    }),
  );
  return { ...f, perTimeframe };
}

describe('fitNormalizer', () => {
  const norm = fitNormalizer(features, { ...fit, clip: null });

  it('standardises the training range of every timeframe to mean 0 and deviation 1', () => {
    const applied = norm.apply(features);
    for (const tf of features.timeframes) {
      const m = applied.perTimeframe.get(tf)!;
      let checked = 0;
      for (let j = 0; j < m.cols; j++) {
        const raw = columnStats(features.perTimeframe.get(tf)!, j, fit.fromMs, fit.toMs);
        if (raw.sd === 0) continue;
        const z = columnStats(m, j, fit.fromMs, fit.toMs);
        expect(Math.abs(z.mean), `${tf}.${m.names[j]} mean`).toBeLessThan(1e-4);
        expect(Math.abs(z.sd - 1), `${tf}.${m.names[j]} sd`).toBeLessThan(1e-3);
        checked++;
      }
      expect(checked).toBeGreaterThan(30);
    }
  });

  it('reads only the rows of the fit range', () => {
    const again = fitNormalizer(garbleOutside(features, fit.fromMs, fit.toMs), {
      ...fit,
      clip: null,
    });
    expect(again.json).toEqual(norm.json);
    const h4 = features.perTimeframe.get('4h')!;
    const inRange = Array.from(h4.time).filter((t) => t >= fit.fromMs && t < fit.toMs).length;
    expect(inRange).toBeGreaterThan(170);
    expect(norm.json.timeframes['4h'].rows).toBe(inRange);
    expect(norm.json.fit).toMatchObject({ fromMs: fit.fromMs, toMs: fit.toMs });
  });

  it('normalises the decision rows with the statistics of the column they come from', () => {
    const applied = norm.apply(features);
    const d = applied.decisionRows;
    const h4 = applied.perTimeframe.get('4h')!;
    const base = applied.perTimeframe.get('15m')!;
    const lc = features.aligned.higher[0].lastClosed;
    const j4 = d.names.indexOf('4h.rsi_14');
    const jx = d.names.indexOf('x.trend_agree');
    for (let i = features.firstValidRow; i < d.rows; i += 313) {
      expect(d.values[i * d.cols + j4]).toBe(
        h4.values[lc[i] * h4.cols + h4.names.indexOf('rsi_14')],
      );
      expect(d.values[i * d.cols + jx]).toBe(
        base.values[i * base.cols + base.names.indexOf('x.trend_agree')],
      );
    }
  });

  it('robust mode centres on the median; clip bounds every value', () => {
    const robust = fitNormalizer(features, { ...fit, method: 'robust', clip: 3 });
    const applied = robust.apply(features);
    const m = applied.perTimeframe.get('15m')!;
    const j = m.names.indexOf('ret_1');
    const z = columnStats(m, j, fit.fromMs, fit.toMs).xs.sort((a, b) => a - b);
    expect(Math.abs(z[Math.floor(z.length / 2)])).toBeLessThan(0.01);
    let largest = 0;
    for (const v of m.values) if (!Number.isNaN(v)) largest = Math.max(largest, Math.abs(v));
    expect(largest).toBe(3);
  });

  it('refuses a fit range with no rows, naming the timeframe', () => {
    expect(() => fitNormalizer(features, { fromMs: 0, toMs: 1 })).toThrow(DataValidationError);
    expect(() => fitNormalizer(features, { fromMs: 0, toMs: 1 })).toThrow(/no 15m row/);
  });
});

describe('FittedNormalizer: saved, loaded and refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctm-normalizer-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const norm = fitNormalizer(features, { ...fit, clip: 10 });

  it('saves JSON atomically and applies the loaded copy bit for bit like the original', async () => {
    const path = join(dir, 'normalizer.json');
    await norm.save(path);
    expect(readdirSync(dir)).toEqual(['normalizer.json']);
    const json = JSON.parse(readFileSync(path, 'utf8')) as { format: string; method: string };
    expect(json).toMatchObject({ format: 'ctm-normalizer', method: 'zscore' });
    const loaded = await FittedNormalizer.load(path);
    const a = norm.apply(features).decisionRows.values;
    const b = loaded.apply(features).decisionRows.values;
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
  });

  it('refuses features built with another spec, naming the key that differs', () => {
    const other = buildFeatures(data, {
      windows: WINDOWS,
      spec: { ...defaultFeatureSpec(), rsi: [21] },
    });
    expect(() => norm.apply(other)).toThrow(CheckpointError);
    expect(() => norm.apply(other)).toThrow(/features\.rsi\.0: 14 vs 21/);
  });

  it('refuses other columns or timeframes, naming them', () => {
    const m = features.perTimeframe.get('4h')!;
    const renamed = { ...m, names: m.names.map((n) => (n === 'rsi_14' ? 'rsi_15' : n)) };
    expect(() => norm.applyMatrix(renamed)).toThrow(
      /not fitted: rsi_15; fitted but absent: rsi_14/,
    );
    const swapped = { ...m, names: [m.names[1], m.names[0], ...m.names.slice(2)] };
    expect(() => norm.applyMatrix(swapped)).toThrow(/column 0 is ret_4, fitted as ret_1/);
    const two = buildFeatures(new Map([...data].filter(([tf]) => tf !== '1d')), {
      windows: WINDOWS,
    });
    expect(() => norm.check(two)).toThrow(
      /fitted on timeframe 1d, which the features lack|columns differ/,
    );
  });

  it('refuses a file that is not a normaliser, naming the path', async () => {
    const path = join(dir, 'bad.json');
    await import('node:fs/promises').then((fs) => fs.writeFile(path, '{"format":"other"}'));
    await expect(FittedNormalizer.load(path)).rejects.toThrow(/bad\.json: not a ctm normaliser/);
    await expect(FittedNormalizer.load(join(dir, 'missing.json'))).rejects.toThrow(
      /missing\.json: cannot read/,
    );
  });
});
