// The base process as its users rely on it: valid candles, exact 4h/1d aggregation, same seed
// same bytes, waypoint conditioning, the stylized facts on a moderate sample, the files in the
// real-data layout, and `ctm synth generate` end to end (the built CLI, as a user runs it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  aggregateFineCandles,
  buildCandlesFromPath,
  conditionOnWaypoints,
  fastNormal,
  generateBaseMarket,
  simulateBasePath,
  writeSyntheticMarket,
  REGIME_NAMES,
  type BasePathOptions,
  type BaseProcessParams,
  type SyntheticLabels,
} from '../../src/synthetic-data/base-process.js';
import { loadCalibration } from '../../src/synthetic-data/calibration.js';
import {
  autocorrelation,
  correlation,
  hillTailIndex,
  moments,
  toGrid,
} from '../../src/synthetic-data/realism-stats.js';
import { stylizedFacts } from '../../src/synthetic-data/realism-facts.js';
import { validateCandles, type Candles } from '../../src/data-processing/candles.js';
import { resample } from '../../src/data-processing/resample.js';
import { readCandlesCsv } from '../../src/data-processing/file-formats.js';
import { DataValidationError } from '../../src/errors.js';
import { Rng } from '../../src/utils/random.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-synth-base-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const btc: BaseProcessParams = loadCalibration('btc');

function digest(c: Candles): string {
  const h = createHash('sha256');
  for (const col of [c.openTime, c.open, c.high, c.low, c.close, c.volume])
    h.update(new Uint8Array(col.buffer, col.byteOffset, col.byteLength));
  return h.digest('hex');
}

function expectSameCandles(a: Candles, b: Candles): void {
  expect(a.openTime.length).toBe(b.openTime.length);
  expect(digest(a)).toBe(digest(b));
}

describe('generateBaseMarket', () => {
  it('produces valid candles on every timeframe, with 4h and 1d exactly aggregating 15m', () => {
    const mkt = generateBaseMarket(btc, { seed: 11, days: 60 });
    expect(mkt.m15.openTime.length).toBe(60 * 96);
    expect(mkt.h4.openTime.length).toBe(60 * 6);
    expect(mkt.d1.openTime.length).toBe(60);
    for (const c of [mkt.fine, mkt.m15, mkt.h4, mkt.d1]) {
      const gaps = validateCandles(c);
      expect(gaps.count).toBe(0);
    }
    expectSameCandles(mkt.h4, resample(mkt.m15, '4h').candles);
    expectSameCandles(mkt.d1, resample(mkt.m15, '1d').candles);
    expectSameCandles(mkt.m15, resample(mkt.fine, '15m').candles);
  });

  it('is deterministic: same seed, same bytes; another seed, other bytes', () => {
    const a = generateBaseMarket(btc, { seed: 5, days: 20 });
    const b = generateBaseMarket(btc, { seed: 5, days: 20 });
    const c = generateBaseMarket(btc, { seed: 6, days: 20 });
    expect(digest(a.m15)).toBe(digest(b.m15));
    expect(a.path.regimes).toEqual(b.path.regimes);
    expect(a.path.jumps).toEqual(b.path.jumps);
    expect(digest(a.m15)).not.toBe(digest(c.m15));
  });

  it('stays valid and exactly aggregated for any seed, length, price level and volatility scale', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e9 }),
        fc.integer({ min: 1, max: 6 }),
        fc.double({ min: 0.5, max: 1e5, noNaN: true }),
        fc.double({ min: 0.2, max: 4, noNaN: true }),
        (seed, days, initialPrice, volatilityScale) => {
          const mkt = generateBaseMarket(btc, { seed, days, initialPrice, volatilityScale });
          validateCandles(mkt.fine);
          expect(mkt.d1.openTime.length).toBe(days);
          expectSameCandles(mkt.h4, resample(mkt.m15, '4h').candles);
          expect(mkt.fine.open[0]).toBeCloseTo(initialPrice, 2);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('rejects a start off UTC midnight and a non-positive length, naming the field', () => {
    expect(() => generateBaseMarket(btc, { seed: 1, days: 1, startTimeMs: 900_000 })).toThrow(
      /startTimeMs/,
    );
    expect(() => generateBaseMarket(btc, { seed: 1, steps: 0 })).toThrow(DataValidationError);
  });
});

describe('conditionOnWaypoints and buildCandlesFromPath', () => {
  it('passes exactly through the waypoints and keeps the shocks between them', () => {
    const path = simulateBasePath(btc, { seed: 3, days: 10 });
    const target = [
      { step: 500, logPrice: path.initialLogPrice + 0.08 },
      { step: 1500, logPrice: path.initialLogPrice - 0.05 },
    ];
    const r = conditionOnWaypoints(path, target);
    let x = path.initialLogPrice;
    for (let i = 0; i < r.length; i++) {
      x += r[i];
      if (i === 500) expect(x).toBeCloseTo(target[0].logPrice, 10);
      if (i === 1500) expect(x).toBeCloseTo(target[1].logPrice, 10);
    }
    // The correction is a smooth drift: step-to-step differences of the returns are unchanged up
    // to a share proportional to the step variance.
    let maxShift = 0;
    for (let i = 0; i < 500; i++) maxShift = Math.max(maxShift, Math.abs(r[i] - path.logReturn[i]));
    let moved = 0;
    for (let i = 0; i <= 500; i++) moved += r[i] - path.logReturn[i];
    expect(maxShift).toBeLessThan(Math.abs(moved));
    for (let i = 1501; i < r.length; i++) expect(r[i]).toBe(path.logReturn[i]);
    const fine = buildCandlesFromPath({ ...path, logReturn: r }, btc, new Rng(9));
    validateCandles(fine);
    expect(Math.log(fine.close[1500])).toBeCloseTo(target[1].logPrice, 3);
    const { d1 } = aggregateFineCandles(fine);
    expect(d1.openTime.length).toBe(10);
  });

  it('rejects waypoints out of order, naming the field', () => {
    const path = simulateBasePath(btc, { seed: 3, days: 1 });
    expect(() =>
      conditionOnWaypoints(path, [
        { step: 10, logPrice: 1 },
        { step: 5, logPrice: 1 },
      ]),
    ).toThrow(/waypoints/);
  });

  it('names the step of a non-finite return', () => {
    const path = simulateBasePath(btc, { seed: 3, days: 1 });
    const r = Float64Array.from(path.logReturn);
    r[17] = NaN;
    expect(() => buildCandlesFromPath({ ...path, logReturn: r }, btc, new Rng(1))).toThrow(
      /row 17/,
    );
  });
});

describe('stylized facts of the base process (BTC calibration, 120 days)', () => {
  const mkt = generateBaseMarket(btc, { seed: 2024, days: 120 });
  const g = toGrid(mkt.m15);
  const r = g.logReturn;
  const abs = r.map(Math.abs);

  it('has heavy tails: excess kurtosis > 3 and a Hill tail index below 5 at 15m', () => {
    expect(moments(r).exKurt).toBeGreaterThan(3);
    expect(hillTailIndex(r, 0.01)).toBeLessThan(5);
    expect(hillTailIndex(r, 0.01)).toBeGreaterThan(1.5);
  });

  it('clusters volatility with long memory but leaves raw returns nearly uncorrelated', () => {
    expect(autocorrelation(abs, 1)).toBeGreaterThan(0.1);
    expect(autocorrelation(abs, 96)).toBeGreaterThan(0.03);
    expect(autocorrelation(abs, 480)).toBeGreaterThan(0);
    for (const k of [2, 3, 5, 10]) expect(Math.abs(autocorrelation(r, k))).toBeLessThan(0.05);
  });

  it('couples volume to volatility and keeps volume persistent', () => {
    const lv = Array.from(g.volume, Math.log);
    expect(correlation(abs, lv)).toBeGreaterThan(0.3);
    expect(autocorrelation(lv, 1)).toBeGreaterThan(0.4);
    expect(autocorrelation(lv, 96)).toBeGreaterThan(0.05);
  });

  it('follows the calibrated intraday and weekday seasonality of volatility and volume', () => {
    const facts = stylizedFacts(mkt.m15);
    const hourly = (xs: number[]): number[] =>
      Array.from({ length: 24 }, (_, h) => xs.slice(4 * h, 4 * h + 4).reduce((a, b) => a + b) / 4);
    expect(
      correlation(facts.profiles.hourVol, hourly(btc.seasonality.volIntraday)),
    ).toBeGreaterThan(0.5);
    expect(
      correlation(facts.profiles.hourVolume, hourly(btc.seasonality.volumeIntraday)),
    ).toBeGreaterThan(0.5);
    expect(correlation(facts.profiles.weekdayVol, btc.seasonality.volWeekday)).toBeGreaterThan(0.5);
  });

  it('labels regimes that tile the path and jumps that sit in it', () => {
    const p = mkt.path;
    expect(p.regimes[0].startStep).toBe(0);
    expect(p.regimes.at(-1)?.endStep).toBe(p.logReturn.length);
    for (let k = 1; k < p.regimes.length; k++) {
      expect(p.regimes[k].startStep).toBe(p.regimes[k - 1].endStep);
      expect(p.regimes[k].regime).not.toBe(p.regimes[k - 1].regime);
    }
    expect(new Set(p.regimes.map((x) => x.regime)).size).toBeGreaterThan(1);
    for (const x of p.regimes) expect(REGIME_NAMES).toContain(x.regime);
    for (const j of p.jumps) {
      expect(p.regime[j.step]).toBeGreaterThanOrEqual(0);
      expect(Math.abs(j.logSize)).toBeGreaterThan(0);
    }
  });

  it('draws standard normals from its fast sampler (mean 0, variance 1, normal tails)', () => {
    const rng = new Rng(8);
    const x = Float64Array.from({ length: 200_000 }, () => fastNormal(rng));
    const m = moments(x);
    expect(Math.abs(m.mean)).toBeLessThan(0.01);
    expect(Math.abs(m.std - 1)).toBeLessThan(0.01);
    expect(Math.abs(m.exKurt)).toBeLessThan(0.05);
    const beyond3 = x.filter((v) => Math.abs(v) > 3).length / x.length;
    expect(beyond3).toBeGreaterThan(0.0022);
    expect(beyond3).toBeLessThan(0.0032);
  });
});

describe('start state and the mechanisms the calibration fits', () => {
  /** RMS of 15m log returns over days [from, to) of a market, averaged over seeds. */
  function rmsOver(
    seeds: number[],
    options: Partial<BasePathOptions>,
    from: number,
    to: number,
  ): number {
    let sum = 0;
    for (const seed of seeds) {
      const c = generateBaseMarket(btc, { seed, days: to, ...options }).m15.close;
      let ss = 0;
      for (let i = from * 96 + 1; i < to * 96; i++) ss += Math.log(c[i] / c[i - 1]) ** 2;
      sum += Math.sqrt(ss / ((to - from) * 96 - 1));
    }
    return sum / seeds.length;
  }

  it('starts at the requested volatility and reverts towards the calibrated level', () => {
    const seeds = [1, 2, 3, 4, 5, 6];
    const s = btc.returns.sigma15m;
    const calm = rmsOver(seeds, { initialVolatility15m: 0.3 * s }, 0, 2);
    const wild = rmsOver(seeds, { initialVolatility15m: 3 * s }, 0, 2);
    const free = rmsOver(seeds, {}, 0, 2);
    expect(calm).toBeLessThan(0.6 * s);
    expect(calm).toBeGreaterThan(0.2 * s);
    expect(wild).toBeGreaterThan(2 * s);
    expect(wild).toBeLessThan(4.5 * s);
    expect(calm).toBeLessThan(free);
    expect(free).toBeLessThan(wild);
    // Months later the calm start is no longer calm: the slow components have reverted.
    expect(rmsOver(seeds, { initialVolatility15m: 0.3 * s }, 150, 180)).toBeGreaterThan(2 * calm);
    expect(() => generateBaseMarket(btc, { seed: 1, days: 2, initialVolatility15m: 0 })).toThrow(
      /initialVolatility15m/,
    );
  });

  it('keeps trading busy after a large move when volume remembers past shocks', () => {
    const lagged = (p: BaseProcessParams): number => {
      const g = toGrid(generateBaseMarket(p, { seed: 9, days: 90 }).m15);
      const abs = Array.from(g.logReturn, Math.abs);
      const lv = Array.from(g.volume, Math.log);
      return correlation(abs.slice(0, -1), lv.slice(1));
    };
    const none = structuredClone(btc);
    none.volume.shockMemoryBeta = 0;
    const strong = structuredClone(btc);
    strong.volume.shockMemoryBeta = 4;
    strong.volume.shockMemoryHalfLifeHours = 1;
    expect(lagged(strong)).toBeGreaterThan(lagged(none) + 0.03);
  });

  it('lets prices wander and come back within hours under liquidity noise', () => {
    // Variance of 4h returns relative to 16 x the variance of 15m returns.
    const ratio16 = (p: BaseProcessParams): number => {
      const r = toGrid(generateBaseMarket(p, { seed: 4, days: 120 }).m15).logReturn;
      let s1 = 0;
      let s16 = 0;
      let n16 = 0;
      for (let i = 1; i + 16 <= r.length; i += 16) {
        let sum = 0;
        for (let k = i; k < i + 16; k++) {
          sum += r[k];
          s1 += r[k] * r[k];
        }
        s16 += sum * sum;
        n16++;
      }
      return s16 / n16 / ((16 * s1) / (16 * n16));
    };
    const none = structuredClone(btc);
    none.returns.reversionStd = 0;
    const noisy = structuredClone(btc);
    noisy.returns.reversionStd = 0.8;
    noisy.returns.reversionHalfLifeHours = 0.5;
    expect(ratio16(noisy)).toBeLessThan(ratio16(none) - 0.1);
  });

  it('puts stop-run spikes on the steps that break the recent high or low, and they trade', () => {
    // Upper wick (in step sigmas) and log volume of the fine candles, on the steps whose close
    // breaks the high of the 24 closes before (2h of 5m steps) and on those breaking neither it
    // nor the low.
    const K = 24;
    const measure = (p: BaseProcessParams): { wick: number[]; volume: number[] } => {
      const path = simulateBasePath(p, { seed: 11, days: 30 });
      const c = buildCandlesFromPath(path, p, new Rng(5));
      const sums = [0, 0, 0, 0];
      const counts = [0, 0];
      for (let i = K; i < c.close.length; i++) {
        let max = -Infinity;
        let min = Infinity;
        for (let k = i - K; k < i; k++) {
          max = Math.max(max, c.close[k]);
          min = Math.min(min, c.close[k]);
        }
        if (c.close[i] < min) continue; // a new low: its spikes go down
        const b = c.close[i] > max ? 0 : 1;
        const wick = Math.log(c.high[i] / Math.max(c.open[i], c.close[i])) / path.sigma[i];
        sums[b] += wick;
        sums[2 + b] += Math.log(c.volume[i] / path.volume[i]);
        counts[b]++;
      }
      return {
        wick: [sums[0] / counts[0], sums[1] / counts[1]],
        volume: [sums[2] / counts[0], sums[3] / counts[1]],
      };
    };
    const none = structuredClone(btc);
    none.microstructure.spikeProb = 0;
    none.microstructure.extremeSpikeProb = 0;
    const stops = structuredClone(btc);
    stops.microstructure.spikeProb = 0;
    stops.microstructure.extremeSpikeProb = 0.5;
    stops.microstructure.extremeLookbackHours = 2;
    stops.microstructure.spikeSigmas = 3;
    stops.microstructure.spikeVolumeBeta = 0.3;
    const a = measure(none);
    const b = measure(stops);
    // Without spikes a breaking step's wick is like any other; with stop runs it is much longer
    // (about 0.5 x 3 sigmas more), and only there: elsewhere wicks and volume are unchanged.
    expect(Math.abs(a.wick[0] - a.wick[1])).toBeLessThan(0.3);
    expect(b.wick[0] - a.wick[0]).toBeGreaterThan(1);
    expect(Math.abs(b.wick[1] - a.wick[1])).toBeLessThan(0.1);
    expect(a.volume).toEqual([0, 0]);
    expect(b.volume[0]).toBeGreaterThan(0.3);
    expect(b.volume[1]).toBe(0);
    stops.microstructure.extremeSpikeProb = 0.99;
    expect(() => simulateBasePath(stops, { seed: 1, days: 2 })).toThrow(/extremeSpikeProb/);
  });

  it('moves between microstructure regimes: their gaps and wickless sides, for shares of time set by their stays', () => {
    // Two regimes: "tight" (almost every bar opens at the close or one tick away, many wickless
    // sides) and "loose" (most bars open a multi-tick gap away, few wickless sides); stays of 20
    // and 60 days, so tight holds about a quarter of the time.
    const p = structuredClone(btc);
    p.microstructure.regimes = [
      { meanDays: 20, zeroGapProb: 0.5, oneTickGapProb: 0.48, gapScale: 0.5, noWickScale: 3 },
      { meanDays: 60, zeroGapProb: 0.45, oneTickGapProb: 0.03, gapScale: 2, noWickScale: 0.3 },
    ];
    const path = simulateBasePath(p, { seed: 3, days: 1200 });
    const c = buildCandlesFromPath(path, p, new Rng(9));
    // Per day: the share of multi-tick gaps and of wickless sides.
    const perDay = 288;
    const days = Math.floor(c.close.length / perDay);
    const multi: number[] = [];
    const wickless: number[] = [];
    for (let d = 0; d < days; d++) {
      let m = 0;
      let w = 0;
      for (let i = Math.max(1, d * perDay); i < (d + 1) * perDay; i++) {
        if (Math.abs(c.open[i] - c.close[i - 1]) > 0.015) m++;
        if (c.high[i] === Math.max(c.open[i], c.close[i])) w++;
        if (c.low[i] === Math.min(c.open[i], c.close[i])) w++;
      }
      multi.push(m / perDay);
      wickless.push(w / (2 * perDay));
    }
    // Days are clearly in one regime or the other (multi-tick gaps about 2% vs 52%) ...
    const tight = multi.map((v) => v < 0.2);
    expect(multi.filter((v) => v > 0.1 && v < 0.4).length).toBeLessThan(0.05 * days);
    // ... the tight days have more wickless sides ...
    const mean = (v: number[]): number => v.reduce((a, x) => a + x, 0) / v.length;
    const wTight = mean(wickless.filter((_, d) => tight[d]));
    const wLoose = mean(wickless.filter((_, d) => !tight[d]));
    expect(wTight).toBeGreaterThan(3 * wLoose);
    // ... and the chain spends about 20 / (20 + 60) of the time in the tight regime, in stays.
    const share = tight.filter(Boolean).length / days;
    expect(share).toBeGreaterThan(0.1);
    expect(share).toBeLessThan(0.45);
    let switches = 0;
    for (let d = 1; d < days; d++) if (tight[d] !== tight[d - 1]) switches++;
    expect(switches).toBeGreaterThan(10);
    expect(switches).toBeLessThan(90);
    // Bad regimes are rejected, naming the field.
    p.microstructure.regimes = [p.microstructure.regimes[0]];
    expect(() => simulateBasePath(p, { seed: 1, days: 2 })).toThrow(/two regimes/);
    p.microstructure.regimes = [
      { meanDays: 0, zeroGapProb: 0.5, oneTickGapProb: 0.4, gapScale: 1, noWickScale: 1 },
      { meanDays: 5, zeroGapProb: 0.7, oneTickGapProb: 0.4, gapScale: 1, noWickScale: 1 },
    ];
    expect(() => simulateBasePath(p, { seed: 1, days: 2 })).toThrow(/regimes\[0\]\.meanDays/);
    p.microstructure.regimes[0].meanDays = 5;
    expect(() => simulateBasePath(p, { seed: 1, days: 2 })).toThrow(/regimes\[1\]\.zeroGapProb/);
  });
});

describe('files in the real-data layout', () => {
  it('writes 15m/4h/1d .csv.gz that readCandlesCsv reads back exactly, 4h/1d still exact aggregates', async () => {
    const mkt = generateBaseMarket(btc, { seed: 9, days: 15 });
    const out = join(dir, 'files');
    const files = writeSyntheticMarket(out, mkt, btc, 9);
    expect(files.map((f) => f.slice(out.length + 1))).toEqual([
      'synthetic-BTCUSDT-15m.csv.gz',
      'synthetic-BTCUSDT-4h.csv.gz',
      'synthetic-BTCUSDT-1d.csv.gz',
      'synthetic-BTCUSDT-labels.json',
    ]);
    const read = async (tf: '15m' | '4h' | '1d'): Promise<Candles> =>
      (
        await readCandlesCsv(join(out, `synthetic-BTCUSDT-${tf}.csv.gz`), {
          symbol: 'BTC/USDT',
          timeframe: tf,
        })
      ).candles;
    const m15 = await read('15m');
    const h4 = await read('4h');
    expectSameCandles(m15, mkt.m15);
    expectSameCandles(h4, resample(m15, '4h').candles);
    expectSameCandles(await read('1d'), resample(m15, '1d').candles);
    const header = readFileSync(files[3], 'utf8');
    const labels = JSON.parse(header) as SyntheticLabels;
    expect(labels.regimes.length).toBe(mkt.path.regimes.length);
    expect(labels.jumps.length).toBe(mkt.path.jumps.length);
    expect(labels.params.symbol).toBe('BTC/USDT');
    // Same seed, same bytes on disk.
    const again = join(dir, 'files-again');
    writeSyntheticMarket(again, generateBaseMarket(btc, { seed: 9, days: 15 }), btc, 9);
    for (const f of files)
      expect(readFileSync(join(again, f.slice(out.length + 1)))).toEqual(readFileSync(f));
  });

  it('`ctm synth generate` writes the files, the same bytes for the same seed', () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
    const run = (out: string): ReturnType<typeof spawnSync> =>
      spawnSync(
        process.execPath,
        [
          MAIN,
          'synth',
          'generate',
          '--out',
          out,
          '--seed',
          '3',
          '--years',
          '0.05',
          '--calibration',
          'eth',
          '--set',
          `paths.runs=${join(dir, 'runs')}`,
        ],
        { encoding: 'utf8' },
      );
    const a = run(join(dir, 'cli-a'));
    expect(a.status).toBe(0);
    expect(String(a.stdout)).toMatch(/generated ETH\/USDT .* 1728 15m, 108 4h, 18 1d candles/);
    const b = run(join(dir, 'cli-b'));
    expect(b.status).toBe(0);
    for (const f of ['synthetic-ETHUSDT-15m.csv.gz', 'synthetic-ETHUSDT-labels.json'])
      expect(readFileSync(join(dir, 'cli-b', f))).toEqual(readFileSync(join(dir, 'cli-a', f)));
    const bad = spawnSync(
      process.execPath,
      [MAIN, 'synth', 'generate', '--out', join(dir, 'x'), '--years', '-1'],
      {
        encoding: 'utf8',
      },
    );
    expect(bad.status).toBe(2);
    expect(String(bad.stderr)).toMatch(/--years/);
  });
});
