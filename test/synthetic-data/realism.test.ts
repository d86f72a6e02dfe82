// The realism instrument as its users rely on it: statistics that are right on hand-made series,
// a boosted-tree discriminator that learns what is there (and finds nothing where nothing is),
// a discriminative score strong enough to tell real BTC from a Gaussian walk, a GARCH-t walk and
// shuffled BTC, the range check that lists what lies outside and by how much, and
// `ctm synth realism` end to end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autocorrelation, hillTailIndex, moments } from '../../src/synthetic-data/realism-stats.js';
import {
  fitGradientBoostedTrees,
  predictGradientBoostedTrees,
  rocAuc,
} from '../../src/synthetic-data/realism-gbt.js';
import { extractWindowFeatures } from '../../src/synthetic-data/realism-windows.js';
import { discriminativeScore } from '../../src/synthetic-data/realism-discriminator.js';
import {
  garchMarket,
  gaussianWalkMarket,
  type ReferenceProcessOptions,
  shuffledMarket,
} from '../../src/synthetic-data/realism-reference.js';
import {
  realismTable,
  realismTableMarkdown,
  stylizedFacts,
  type StylizedFacts,
  type YearlyFacts,
} from '../../src/synthetic-data/realism-facts.js';
import {
  marketStateAt,
  marketWindows,
  poolWindows,
  readMarket,
} from '../../src/synthetic-data/realism.js';
import { generateBaseMarket, writeSyntheticMarket } from '../../src/synthetic-data/base-process.js';
import { loadCalibration } from '../../src/synthetic-data/calibration.js';
import { makeCandles, sliceByTime } from '../../src/data-processing/candles.js';
import { Rng } from '../../src/utils/random.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-synth-realism-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('statistics on hand-made series', () => {
  it('moments, ACF and AUC match hand-computed values', () => {
    // 1, -1, 1, -1: mean 0, std 1, lag-1 ACF -1 (gap-aware estimator: 3 pairs / 4 values).
    const alt = [1, -1, 1, -1];
    expect(moments(alt)).toMatchObject({ mean: 0, std: 1, skew: 0, exKurt: -2 });
    expect(autocorrelation(alt, 1)).toBeCloseTo(-1, 12);
    expect(autocorrelation([1, NaN, 1, -1, NaN, -1], 1)).toBeCloseTo(-1, 12);
    // Scores 0.1, 0.4 (label 0), 0.35, 0.8 (label 1): 3 of 4 pairs ordered -> 0.75.
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBe(0.75);
    expect(rocAuc([0.5, 0.5], [0, 1])).toBe(0.5);
  });

  it('the Hill estimator recovers the tail index of a Pareto sample', () => {
    const rng = new Rng(4);
    const alpha = 3;
    const x = Float64Array.from({ length: 200_000 }, () => Math.pow(1 - rng.next(), -1 / alpha));
    expect(hillTailIndex(x, 0.01)).toBeGreaterThan(2.7);
    expect(hillTailIndex(x, 0.01)).toBeLessThan(3.3);
  });

  it('stylized facts of candles: gaps, wicks and range/body on a hand-made series', () => {
    const n = 8;
    const t0 = Date.UTC(2024, 0, 1);
    const openTime = Float64Array.from({ length: n }, (_, i) => t0 + i * 900_000);
    const close = Float64Array.from([100, 101, 100, 101, 100, 101, 100, 101]);
    const open = Float64Array.from([100, 100, 101, 100, 101, 100, 101, 100.5]);
    const high = Float64Array.from(close, (c, i) => Math.max(c, open[i]) + 1);
    const low = Float64Array.from(close, (c, i) => Math.min(c, open[i]) - 1);
    const volume = new Float64Array(n).fill(10);
    const c = makeCandles('X/USDT', '15m', { openTime, open, high, low, close, volume });
    const f = stylizedFacts(c);
    // 6 of 7 bars open at the previous close (the last opens 0.5 away).
    expect(f.values['gap.zero']).toBeCloseTo(6 / 7, 12);
    // Body 1, range 3 on the first seven bars; body 0.5, range 2.5 on the last: ratios 3 (x7), 5.
    expect(f.values['rangeBody.q50']).toBe(3);
    expect(f.values['wick.upper.q50']).toBeCloseTo(1 / 3, 12);
    expect(f.values['acf.r.1']).toBeLessThan(-0.8);
  });
});

describe('marketStateAt', () => {
  it('reads only the candles before the time: last close and trailing RMS return', () => {
    // 5 days of 15m closes alternating x1.01 and /1.01, then a wild day that must not count.
    const t0 = Date.UTC(2024, 0, 1);
    const n = 6 * 96;
    const close = Float64Array.from({ length: n }, (_, i) =>
      i < 5 * 96 ? (i % 2 === 0 ? 100 : 101) : i % 2 === 0 ? 50 : 200,
    );
    const c = makeCandles('X/USDT', '15m', {
      openTime: Float64Array.from({ length: n }, (_, i) => t0 + i * 900_000),
      open: close.slice(),
      high: close.map((v) => v * 1.001),
      low: close.map((v) => v * 0.999),
      close,
      volume: new Float64Array(n).fill(1),
    });
    const at = t0 + 5 * 86_400_000;
    const s = marketStateAt(c, at, 4);
    expect(s.price).toBe(101);
    expect(s.volatility15m).toBeCloseTo(Math.log(1.01), 12);
    expect(() => marketStateAt(c, t0 + 3_600_000, 4)).toThrow(/only 3 15m returns/);
  });
});

describe('gradient-boosted trees', () => {
  it('learn a non-linear rule on held-out rows and are deterministic for a seed', () => {
    const rng = new Rng(1);
    const make = (n: number): { x: Float64Array; y: Uint8Array } => {
      const x = new Float64Array(n * 4);
      const y = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        for (let f = 0; f < 4; f++) x[i * 4 + f] = rng.normal();
        if (i % 13 === 0) x[i * 4 + 3] = NaN;
        // Class 1 inside a ring on features 0 and 1; feature 2 and 3 are noise.
        const r2 = x[i * 4] ** 2 + x[i * 4 + 1] ** 2;
        y[i] = r2 > 0.6 && r2 < 2.2 ? 1 : 0;
      }
      return { x, y };
    };
    const train = make(1500);
    const test = make(600);
    const model = fitGradientBoostedTrees(train.x, 1500, 4, train.y, { rounds: 150, depth: 3 });
    const p = predictGradientBoostedTrees(model, test.x, 600);
    expect(rocAuc(p, test.y)).toBeGreaterThan(0.9);
    const again = fitGradientBoostedTrees(train.x, 1500, 4, train.y, { rounds: 150, depth: 3 });
    expect(predictGradientBoostedTrees(again, test.x, 600)).toEqual(p);
  });

  it('find nothing to tell apart in two samples of the same process (score near chance)', () => {
    // Each class pools ten independent 70-day paths, so both sample the same distribution (one
    // long path per class would differ by its slow volatility and regimes, like two real years).
    // Windows of one path share their 32-day daily context, so one pair's score scatters more
    // than its 7-day-cluster interval says (measured over five pairs: 0.29 to 0.61); the mean
    // over five pairs is near chance, where a leak would push every pair up.
    const params = loadCalibration('btc');
    const sample = (seed0: number) =>
      poolWindows(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((k) =>
          marketWindows(generateBaseMarket(params, { seed: seed0 + k, days: 70 }), {
            strideBars: 96,
          }),
        ),
      );
    let sum = 0;
    for (const seed0 of [10, 30, 50, 70, 90]) {
      const res = discriminativeScore(sample(seed0), sample(seed0 + 10), {
        bootstrap: 50,
        gbt: { rounds: 100 },
      });
      expect(res.windowsPerClass).toBeGreaterThan(300);
      expect(res.accuracy.lo).toBeLessThan(res.accuracy.value);
      expect(res.accuracy.hi).toBeGreaterThan(res.accuracy.value);
      sum += res.accuracy.value;
    }
    expect(sum / 5).toBeGreaterThan(0.4);
    expect(sum / 5).toBeLessThan(0.6);
  });
});

describe('the range check', () => {
  const facts = (label: string, values: Record<string, number>): YearlyFacts => ({
    label,
    facts: { values } as unknown as StylizedFacts,
  });

  it('flags facts outside the real yearly range, with the distance, and counts the fraction inside', () => {
    const real = new Map([
      [
        '15m',
        [
          facts('A 2020', { std: 1, skew: -1, hill: 3 }),
          facts('A 2021', { std: 2, skew: 1, hill: 4 }),
        ],
      ],
    ]);
    const synthetic = new Map([
      [
        '15m',
        [
          facts('s1', { std: 1.5, skew: 2, hill: 2 }),
          facts('s2', { std: 1.7, skew: 4, hill: 2.4 }),
          facts('s3', { std: 1.2, skew: 3, hill: 2.2 }),
        ],
      ],
    ]);
    const t = realismTable(real, synthetic);
    expect(t.rows.map((r) => [r.fact, r.synthetic, r.inRange])).toEqual([
      ['std', 1.5, true],
      ['skew', 3, false],
      ['hill', 2.2, false],
    ]);
    expect(t.fractionInRange).toBeCloseTo(1 / 3, 12);
    // skew: 3 vs [-1, 1] is 2 outside = 100% of the width; hill: 2.2 vs [3, 4] is 0.8 = 80%.
    expect(t.outside.map((r) => [r.fact, r.outsideBy, r.outsideRelative])).toEqual([
      ['skew', 2, 1],
      ['hill', expect.closeTo(0.8, 12), expect.closeTo(0.8, 12)],
    ]);
    const md = realismTableMarkdown(t);
    expect(md).toContain('1 of 3 stylized facts (33.3%)');
    expect(md).toMatch(
      /- 15m skew: synthetic 3\.00 vs real \[-1\.00, 1\.00\], outside by 2\.00 \(100% of the range width\)/,
    );
  });
});

describe.skipIf(!hasSharedData)(
  `discriminator strength on real BTC 2023${SKIP_REASON}`,
  async () => {
    const btc = hasSharedData ? await readMarket(sharedFile('binance-BTCUSDT-15m.csv.gz')) : null;
    const Y = (y: number): number => Date.UTC(y, 0, 1);
    const windows = { strideBars: 96 };
    const opts = { bootstrap: 200, gbt: { rounds: 120 } };

    function reference(): ReferenceProcessOptions {
      const m = btc!.market;
      const year = sliceByTime(m.m15, Y(2023), Y(2024));
      const lr: number[] = [];
      for (let i = 1; i < year.close.length; i++)
        lr.push(Math.log(year.close[i] / year.close[i - 1]));
      const lv = moments(Array.from(year.volume, Math.log));
      return {
        seed: 3,
        days: 300,
        startTimeMs: Y(2024),
        sigma15m: moments(lr).std,
        logVolumeMean: lv.mean,
        logVolumeStd: lv.std,
        initialPrice: year.close[0],
        microstructure: loadCalibration('btc').microstructure,
        symbol: 'BTC/USDT',
      };
    }

    it('tells real BTC 2023 windows from a Gaussian walk (> 0.95), a GARCH(1,1)-t walk (> 0.80) and shuffled BTC (above chance)', () => {
      const real = extractWindowFeatures(btc!.market, Y(2023), Y(2024), windows);
      const ref = reference();
      const gauss = discriminativeScore(
        real,
        marketWindows(gaussianWalkMarket(ref), windows),
        opts,
      );
      const garch = discriminativeScore(real, marketWindows(garchMarket(ref), windows), opts);
      const shuffled = shuffledMarket(
        sliceByTime(btc!.market.m15, Y(2022) + 300 * 86_400_000, Y(2024)),
        7,
      );
      const shuf = discriminativeScore(real, marketWindows(shuffled, windows), opts);
      expect(gauss.accuracy.value).toBeGreaterThan(0.95);
      expect(garch.accuracy.value).toBeGreaterThan(0.8);
      expect(shuf.accuracy.lo).toBeGreaterThan(0.6);
    });
  },
);

describe.skipIf(!hasSharedData)(`ctm synth realism${SKIP_REASON}`, () => {
  it('writes the table, the scores with the control first, the other years and the calibration data itself, and an HTML report with plots', () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
    const params = loadCalibration('btc');
    const syn = join(dir, 'syn');
    writeSyntheticMarket(syn, generateBaseMarket(params, { seed: 4, days: 400 }), params, 4);
    const runs = join(dir, 'runs');
    const r = spawnSync(
      process.execPath,
      [
        MAIN,
        'synth',
        'realism',
        '--real',
        sharedFile('binance-BTCUSDT-15m.csv.gz'),
        '--synthetic',
        syn,
        '--no-strength',
        '--years',
        '--set',
        `paths.runs=${runs}`,
        '--set',
        'synthetic.realism.bootstrap=50',
        '--set',
        'synthetic.realism.strideBars=128',
        '--set',
        'synthetic.realism.gbt.rounds=60',
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/stylized facts inside the real range: \d+\/\d+/);
    const lines = r.stdout.split('\n').filter((l) => l.includes('accuracy'));
    expect(lines[0]).toMatch(/control: BTC 2022 vs 2023/);
    expect(lines[1]).toMatch(/synthetic \(BTC\) vs BTC 2023/);
    // --years: every other real year, then the calibration's own years (btc: 2018-2021) pooled.
    expect(lines.slice(2, 6).map((l) => /BTC (\d{4}) vs 2023/.exec(l)?.[1])).toEqual([
      '2018',
      '2019',
      '2020',
      '2021',
    ]);
    expect(lines[6]).toMatch(/calibration data itself: BTC 2018-2021 pooled vs 2023/);
    const reportPath = /report: (.*)/.exec(r.stdout)?.[1] ?? '';
    const html = readFileSync(reportPath, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('ACF of |returns|');
    const json = JSON.parse(readFileSync(reportPath.replace('.html', '.json'), 'utf8')) as {
      table: { rows: unknown[] };
      scores: { name: string }[];
    };
    expect(json.table.rows.length).toBeGreaterThan(100);
    expect(json.scores).toHaveLength(7);
  });
});

describe('ctm synth realism on inputs too short for it', () => {
  it('fails in one line (exit 3, no stack trace) saying what it needs and what it got', () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
    const params = loadCalibration('btc');
    const write = (name: string, start: string, days: number): string => {
      const d = join(dir, name);
      const m = generateBaseMarket(params, { seed: 5, days, startTimeMs: Date.parse(start) });
      writeSyntheticMarket(d, m, params, 5);
      return d;
    };
    const realism = (real: string, syn: string): { status: number | null; stderr: string } =>
      spawnSync(process.execPath, [MAIN, 'synth', 'realism', '--real', real, '--synthetic', syn], {
        encoding: 'utf8',
      });
    const syn = write('syn-year', '2030-01-01', 365);
    const cases: [string, RegExp][] = [
      [
        write('half-2023', '2023-07-01', 184),
        /^error: realism: needs real 15m\/4h\/1d candles of >= 300 days in one calendar year of 2018-2023; 10 windows of BTC 15m candles in 2022 \(the control year; each with 32 days of candles before it\), got 0; got real BTC 2023-07-01\.\.2023-12-31 \(184 days\) and synthetic BTC 2030-01-01\.\.2030-12-31 \(365 days\)$/,
      ],
      [
        write('only-2023', '2023-01-01', 365),
        /^error: realism: needs 10 windows of BTC 15m candles in 2022 \(the control year; .*\), got 0; got real BTC 2023-01-01\.\.2023-12-31 \(365 days\)/,
      ],
    ];
    for (const [real, message] of cases) {
      const r = realism(real, syn);
      expect(r.status).toBe(3);
      const lines = r.stderr.trim().split('\n');
      expect(lines[0]).toMatch(message);
      expect(lines.slice(1)).toEqual([expect.stringMatching(/^hint: /)]);
    }
    const shortSyn = realism(
      write('three-years', '2021-01-01', 1095),
      write('syn-200', '2030-01-01', 200),
    );
    expect(shortSyn.status).toBe(3);
    expect(shortSyn.stderr).toMatch(
      /^error: realism: needs synthetic markets of at least 365 days; got /,
    );
  });
});
