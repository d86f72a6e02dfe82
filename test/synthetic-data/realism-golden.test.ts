// Fixed-seed fingerprints of what the realism measurement computes for its users: the stylized
// facts and their table, the window statistics, the boosted-tree discriminator and its score with
// intervals, the reference processes, the report (markdown and HTML) and the market reader, all
// on a small synthetic input. A hash moves only when a result moves: a refactor must leave every
// one of them unchanged; a deliberate change of the measurement updates them in its own commit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fitGradientBoostedTrees,
  predictGradientBoostedTrees,
} from '../../src/synthetic-data/realism-gbt.js';
import { stylizedFacts } from '../../src/synthetic-data/realism-facts.js';
import {
  type RealismReport,
  realismReportHtml,
  realismReportMarkdown,
} from '../../src/synthetic-data/realism-report.js';
import {
  type LabelledMarket,
  marketStateAt,
  marketWindows,
  readMarkets,
  runRealism,
} from '../../src/synthetic-data/realism.js';
import { generateBaseMarket, writeSyntheticMarket } from '../../src/synthetic-data/base-process.js';
import { loadCalibration } from '../../src/synthetic-data/calibration.js';

const params = loadCalibration('btc');
let dir: string;
let real: LabelledMarket;
let synthetic: LabelledMarket;
let report: RealismReport;

/** sha256 of a value's JSON, with typed arrays as plain arrays and maps as entry lists (exact). */
function hash(value: unknown): string {
  const json = JSON.stringify(value, (_k, v: unknown) =>
    ArrayBuffer.isView(v)
      ? Array.from(v as unknown as ArrayLike<number>)
      : v instanceof Map
        ? [...(v as Map<unknown, unknown>).entries()]
        : v,
  );
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-realism-golden-'));
  const days = (seed: number, n: number, start: string): LabelledMarket => ({
    label: `seed ${seed}`,
    market: generateBaseMarket(params, { seed, days: n, startTimeMs: Date.parse(start) }),
  });
  // "Real": two calendar years (2021, 2022); "synthetic": 400 days written and read back.
  real = days(1, 730, '2021-01-01');
  const syn = generateBaseMarket(params, {
    seed: 2,
    days: 400,
    startTimeMs: Date.parse('2030-01-01'),
  });
  writeSyntheticMarket(dir, syn, params, 2);
  synthetic = { label: 'synthetic', market: syn };
  report = runRealism([real], [synthetic], real, {
    realYears: [2021, 2022],
    scoreYear: 2022,
    controlYear: 2021,
    windows: { strideBars: 128 },
    discriminative: { folds: 3, bootstrap: 50, gbt: { rounds: 40 } },
    strengthChecks: true,
    yearControls: true,
    calibrationYears: [2021, 2021],
    microstructure: params.microstructure,
    seed: 7,
  });
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('realism results on a fixed-seed input (fingerprints)', () => {
  it('stylized facts of 15m and 1d candles', () => {
    expect(hash(stylizedFacts(real.market.m15))).toBe('c8af1963bd3858da');
    expect(hash(stylizedFacts(real.market.d1))).toBe('69c5e0962b836eb4');
  });

  it('window statistics, with and without volatility levels', () => {
    expect(hash(marketWindows(synthetic.market, { strideBars: 96 }))).toBe('b67cf843de9accdc');
    expect(hash(marketWindows(synthetic.market, { strideBars: 96, levels: true }))).toBe(
      '4d0653e148166bbf',
    );
  });

  it('boosted trees fitted on window statistics and their predictions', () => {
    const a = marketWindows(real.market, { strideBars: 96 });
    const b = marketWindows(synthetic.market, { strideBars: 96 });
    const cols = a.names.length;
    const x = new Float64Array((a.rows + b.rows) * cols);
    x.set(a.x, 0);
    x.set(b.x, a.rows * cols);
    const y = Uint8Array.from({ length: a.rows + b.rows }, (_, i) => (i < a.rows ? 1 : 0));
    const model = fitGradientBoostedTrees(x, a.rows + b.rows, cols, y, { rounds: 30, seed: 3 });
    expect(hash(model)).toBe('fb508e7acc471ab9');
    expect(hash(predictGradientBoostedTrees(model, x, a.rows + b.rows))).toBe('85de8437379f2a9a');
  });

  it('the whole measurement: table, every score with its interval, reference processes included', () => {
    expect(report.scores.map((s) => s.name)).toHaveLength(8);
    expect(hash(report.table)).toBe('e4646825f830bd6d');
    expect(hash(report.scores)).toBe('c08473b76df84c31');
    expect(hash([report.real, report.synthetic])).toBe('0a2cc3db0c420b71');
  });

  it('the report as markdown and HTML', () => {
    expect(hash(realismReportMarkdown(report))).toBe('d332d70990f139e2');
    expect(hash(realismReportHtml(report))).toBe('311abb11bdaaa3c8');
  });

  it('markets read back from files, and the market state at a time', async () => {
    const [back] = await readMarkets(dir, 'synthetic-');
    expect(hash(back.market)).toBe('c0a737e9d4dc1f97');
    expect(hash(marketStateAt(real.market.m15, Date.parse('2022-03-01')))).toBe('ba89e1d3dda36999');
  });
});
