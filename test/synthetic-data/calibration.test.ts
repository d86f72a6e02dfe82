// Calibration as its users rely on it: the shipped parameters load (and were fitted on data up to
// 2021-12-31 only), bad files are rejected naming file and field, a fit recovers the parameters
// of a known process, and a fit never reads candles outside its range.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  calibrateBaseProcess,
  gapStats,
  loadCalibration,
  measureWindowTargets,
  microstructureRegimes,
  SHAPE_PARAMETERS,
  SHIPPED_CALIBRATIONS,
  windowLoss,
} from '../../src/synthetic-data/calibration.js';
import { generateBaseMarket, writeSyntheticMarket } from '../../src/synthetic-data/base-process.js';
import { correlation, type GridSeries, toGrid } from '../../src/synthetic-data/realism-stats.js';
import {
  garchMarket,
  gaussianWalkMarket,
  type ReferenceProcessOptions,
} from '../../src/synthetic-data/realism-reference.js';
import { resample } from '../../src/data-processing/resample.js';
import { makeCandles, repairCandles, sliceByTime } from '../../src/data-processing/candles.js';
import { readCandlesCsv } from '../../src/data-processing/file-formats.js';
import { DataValidationError } from '../../src/errors.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-synth-cal-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadCalibration', () => {
  it('loads the shipped BTC and ETH calibrations, fitted on data up to 2021-12-31 only', () => {
    for (const name of SHIPPED_CALIBRATIONS) {
      const p = loadCalibration(name);
      expect(p.symbol).toBe(`${name.toUpperCase()}/USDT`);
      expect(p.fittedOn.to <= '2021-12-31').toBe(true);
      expect(p.fittedOn.from >= '2018-01-01').toBe(true);
      expect(p.fittedOn.bars).toBeGreaterThan(100_000);
      expect(p.seasonality.volIntraday).toHaveLength(96);
    }
  });

  it('rejects a missing file, bad JSON and a bad field, naming the file and the field', () => {
    expect(() => loadCalibration(join(dir, 'nope.json'))).toThrow(/nope\.json.*not found/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ not json');
    expect(() => loadCalibration(bad)).toThrow(DataValidationError);
    const p = loadCalibration('btc');
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ ...p, returns: { ...p.returns, tDof: 1.5 } }));
    expect(() => loadCalibration(wrong)).toThrow(/wrong\.json.*returns\.tDof/);
    const short = join(dir, 'short.json');
    writeFileSync(
      short,
      JSON.stringify({ ...p, seasonality: { ...p.seasonality, volWeekday: [1, 1] } }),
    );
    expect(() => loadCalibration(short)).toThrow(/seasonality\.volWeekday/);
  });
});

describe('calibrateBaseProcess', () => {
  it('recovers the level, tails, seasonality and volume level of a known process', async () => {
    const truth = loadCalibration('eth');
    const mkt = generateBaseMarket(truth, { seed: 77, days: 540 });
    const fit = await calibrateBaseProcess(mkt.m15, {
      iterations: 6,
      simulationDays: 540,
      seed: 5,
      seasonalityMonths: 17,
      windowRounds: 0,
    });
    const p = fit.params;
    expect(p.symbol).toBe('ETH/USDT');
    // Simulated targets match the measured ones (the fit converged).
    expect(fit.simulated.medianAbs / fit.real.medianAbs).toBeGreaterThan(0.9);
    expect(fit.simulated.medianAbs / fit.real.medianAbs).toBeLessThan(1.1);
    expect(Math.abs(fit.simulated.logVolumeMean - fit.real.logVolumeMean)).toBeLessThan(0.15);
    expect(Math.abs(fit.simulated.rangeBody / fit.real.rangeBody - 1)).toBeLessThan(0.1);
    // Seasonal profiles are estimated directly and must come back.
    expect(correlation(p.seasonality.volIntraday, truth.seasonality.volIntraday)).toBeGreaterThan(
      0.8,
    );
    expect(
      correlation(p.seasonality.volumeIntraday, truth.seasonality.volumeIntraday),
    ).toBeGreaterThan(0.9);
    expect(correlation(p.seasonality.volWeekday, truth.seasonality.volWeekday)).toBeGreaterThan(
      0.8,
    );
    // The gap probabilities are measured directly.
    expect(Math.abs(p.microstructure.zeroGapProb - truth.microstructure.zeroGapProb)).toBeLessThan(
      0.03,
    );
  });

  it('measures window statistics whose distance is small between seeds of one process and large to a random walk or GARCH', () => {
    const eth = loadCalibration('eth');
    const days = 365;
    const a = measureWindowTargets(generateBaseMarket(eth, { seed: 1, days }), 128);
    const b = measureWindowTargets(generateBaseMarket(eth, { seed: 2, days }), 128);
    const reference: ReferenceProcessOptions = {
      seed: 3,
      days,
      startTimeMs: Date.UTC(2024, 0, 1),
      sigma15m: eth.returns.sigma15m,
      logVolumeMean: eth.volume.logLevel15m,
      logVolumeStd: 0.6,
      initialPrice: eth.referencePrice,
      microstructure: eth.microstructure,
      symbol: eth.symbol,
    };
    const walk = measureWindowTargets(gaussianWalkMarket(reference), 128);
    const garch = measureWindowTargets(garchMarket(reference), 128);
    expect(a.windows).toBeGreaterThan(200);
    expect(a.names).toEqual(walk.names);
    const same = windowLoss(a, b);
    expect(same).toBeLessThan(8);
    expect(windowLoss(a, walk)).toBeGreaterThan(10 * same);
    expect(windowLoss(a, garch)).toBeGreaterThan(10 * same);
  });

  it('finds two microstructure regimes where the gaps change for months, and none in one stationary market', () => {
    // 150 days of tight microstructure (bars open at the close or one tick away, many wickless
    // sides) followed by 210 loose days (most bars open a multi-tick gap away), glued on one grid.
    const btc = loadCalibration('btc');
    const part = (
      z: number,
      one: number,
      gap: number,
      noWick: number,
      days: number,
    ): GridSeries => {
      const p = structuredClone(btc);
      Object.assign(p.microstructure, {
        zeroGapProb: z,
        oneTickGapProb: one,
        gapSigmas: gap,
        noWickProb: noWick,
      });
      return toGrid(generateBaseMarket(p, { seed: days, days }).m15);
    };
    const a = part(0.5, 0.48, 0.02, 0.15, 150);
    const b = part(0.45, 0.03, 0.06, 0.01, 210);
    const glue = (x: Float64Array, y: Float64Array): Float64Array => {
      const out = new Float64Array(x.length + y.length);
      out.set(x);
      out.set(y, x.length);
      return out;
    };
    const join2 = (x: GridSeries, y: GridSeries): GridSeries => ({
      ...x,
      open: glue(x.open, y.open),
      high: glue(x.high, y.high),
      low: glue(x.low, y.low),
      close: glue(x.close, y.close),
      volume: glue(x.volume, y.volume),
      logReturn: glue(x.logReturn, y.logReturn),
    });
    const g = join2(a, b);
    const overall = gapStats(g, 0, 0.01);
    const regimes = microstructureRegimes(g, 0, 0.01, overall);
    expect(regimes).toHaveLength(2);
    const [tight, loose] = regimes ?? [];
    expect(tight.meanDays).toBe(150);
    expect(loose.meanDays).toBe(210);
    expect(tight.oneTickGapProb).toBeCloseTo(0.48, 1);
    expect(loose.oneTickGapProb).toBeLessThan(0.1);
    expect(tight.gapScale).toBeLessThan(loose.gapScale);
    expect(tight.noWickScale).toBeGreaterThan(2 * loose.noWickScale);
    // One stationary microstructure: no regimes.
    const one = toGrid(generateBaseMarket(btc, { seed: 4, days: 360 }).m15);
    expect(microstructureRegimes(one, 0, 0.01, gapStats(one, 0, 0.01))).toBeUndefined();
    // Wick regimes: the same gaps throughout, but 150 days with many wickless bar sides.
    const w = join2(part(0.45, 0.03, 0.06, 0.15, 150), part(0.45, 0.03, 0.06, 0.01, 210));
    const wick = microstructureRegimes(w, 0, 0.01, gapStats(w, 0, 0.01)) ?? [];
    expect(wick.map((r) => r.meanDays)).toEqual([210, 150]);
    const [few, many] = wick;
    expect(many.noWickScale).toBeGreaterThan(2 * few.noWickScale);
    expect(many.gapScale / few.gapScale).toBeGreaterThan(0.8);
    expect(many.gapScale / few.gapScale).toBeLessThan(1.25);
  });

  it('gives the same result byte for byte with a helper thread as in one thread', async () => {
    const mkt = generateBaseMarket(loadCalibration('btc'), { seed: 3, days: 100 });
    const opts = {
      iterations: 1,
      simulationDays: 200,
      windowRounds: 1,
      windowSimulationDays: 100,
      windowStrideBars: 256,
    } as const;
    const one = await calibrateBaseProcess(mkt.m15, { ...opts, workers: 1 });
    const two = await calibrateBaseProcess(mkt.m15, { ...opts, workers: 2 });
    expect(JSON.stringify(two)).toBe(JSON.stringify(one));
    // The window stage ran (it moves shape parameters away from the first stage's values).
    const first = await calibrateBaseProcess(mkt.m15, { ...opts, windowRounds: 0 });
    expect(JSON.stringify(one.params)).not.toBe(JSON.stringify(first.params));
  });

  it('rejects too short a range, one whose longest lag has no pairs, and a timeframe other than 15m, in one line', async () => {
    const btc = loadCalibration('btc');
    const short = generateBaseMarket(btc, { seed: 1, days: 61 });
    await expect(calibrateBaseProcess(short.m15)).rejects.toThrow(
      /needs at least 90 days of 15m candles in the range \(its longest autocovariance lag is 84 days\), got 61\.0 days \(5856 bars\)$/,
    );
    await expect(calibrateBaseProcess(short.h4)).rejects.toThrow(/15m/);
    // 90 days of candles, but days 45-130 missing: no pair of bars 48 (first such lag) to 84 days apart.
    const m15 = generateBaseMarket(btc, { seed: 1, days: 175 }).m15;
    const t0 = m15.openTime[0];
    const day = 86_400_000;
    const keep = (k: number): boolean =>
      m15.openTime[k] < t0 + 45 * day || m15.openTime[k] >= t0 + 130 * day;
    const idx = Array.from(m15.openTime.keys()).filter(keep);
    const pick = (a: Float64Array): Float64Array => Float64Array.from(idx, (k) => a[k]);
    const holed = makeCandles('BTC/USDT', '15m', {
      openTime: pick(m15.openTime),
      open: pick(m15.open),
      high: pick(m15.high),
      low: pick(m15.low),
      close: pick(m15.close),
      volume: pick(m15.volume),
    });
    await expect(calibrateBaseProcess(holed, { iterations: 1, windowRounds: 0 })).rejects.toThrow(
      /cannot measure the real log\|r\| autocovariance at lag 4608 bars/,
    );
  });
});

describe.skipIf(!hasSharedData)(`calibration on real BTC${SKIP_REASON}`, () => {
  it('never reads candles at or after toMs, and its window stage brings the window statistics closer to the real ones', async () => {
    const { candles } = await readCandlesCsv(sharedFile('binance-BTCUSDT-15m.csv.gz'), {
      symbol: 'BTC/USDT',
      timeframe: '15m',
    });
    const all = sliceByTime(repairCandles(candles).candles, Date.UTC(2021, 6, 1), Infinity);
    const toMs = Date.UTC(2022, 0, 1);
    const opts = {
      toMs,
      iterations: 3,
      simulationDays: 200,
      seed: 2,
      windowRounds: 1,
      windowSimulationDays: 150,
      windowStrideBars: 192,
    } as const;
    const full = await calibrateBaseProcess(all, opts);
    const cut = await calibrateBaseProcess(sliceByTime(all, -Infinity, toMs), opts);
    expect(JSON.stringify(full.params)).toBe(JSON.stringify(cut.params));
    expect(full.params.fittedOn.to).toBe('2021-12-31');
    expect(full.params.referencePrice).toBeCloseTo(
      all.close[sliceByTime(all, -Infinity, toMs).close.length - 1],
      6,
    );
    // Shape parameters stay inside their bounds.
    for (const sp of SHAPE_PARAMETERS) {
      const v = sp.path
        .split('.')
        .reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], full.params);
      if (typeof v === 'number') {
        expect(v).toBeGreaterThanOrEqual(sp.lo);
        expect(v).toBeLessThanOrEqual(sp.hi);
      }
    }
    // Out of sample (another seed, a longer path): the window stage's fit is closer to the real
    // window statistics than the fit without it.
    const levelsOnly = await calibrateBaseProcess(all, { ...opts, windowRounds: 0 });
    const c = sliceByTime(all, -Infinity, toMs);
    const real = measureWindowTargets(
      { m15: c, h4: resample(c, '4h').candles, d1: resample(c, '1d').candles },
      192,
    );
    const distance = (p: typeof full.params): number =>
      windowLoss(real, measureWindowTargets(generateBaseMarket(p, { seed: 99, days: 400 }), 192));
    expect(distance(full.params)).toBeLessThan(distance(levelsOnly.params));
  });
});

describe('ctm synth calibrate', () => {
  it('prints a line per step without a terminal, and writes a calibration that loads', () => {
    const main = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
    const btc = loadCalibration('btc');
    const real = join(dir, 'cli-real');
    writeSyntheticMarket(
      real,
      generateBaseMarket(btc, { seed: 8, days: 100, startTimeMs: Date.UTC(2021, 0, 1) }),
      btc,
      8,
    );
    const out = join(dir, 'cli-fit.json');
    const set = (kv: string): string[] => ['--set', `synthetic.calibrate.${kv}`];
    const r = spawnSync(
      process.execPath,
      [
        main,
        ...['synth', 'calibrate', '--real', real, '--from', '2021-01-01', '--until', '2021-04-10'],
        ...['--workers', '2', '--out', out],
        ...set('iterations=1'),
        ...set('windowRounds=1'),
        ...set('windowSimulationDays=120'),
        ...set('windowStrideBars=256'),
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.length > 0 && !l.startsWith('{'));
    expect(lines[0]).toMatch(
      /^calibrating BTC\/USDT: 1 indirect-inference iteration, then 1 window-statistics round \(2 threads\)$/,
    );
    expect(lines.slice(1).map((l) => /step (\d\/\d) \((.*)\)/.exec(l)?.slice(1))).toEqual([
      ['1/2', 'indirect inference'],
      ['2/2', 'window statistics'],
    ]);
    expect(r.stdout).toMatch(/^calibrated BTC\/USDT on 2021-01-01\.\.2021-04-10/);
    expect(loadCalibration(out).fittedOn.to).toBe('2021-04-10');
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(loadCalibration(out));
  });
});
