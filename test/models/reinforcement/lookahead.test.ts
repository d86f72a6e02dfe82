// No look-ahead in env observations, proved with the project's look-ahead analysis: observations
// of an episode (the real feature pipeline, the env, its broker, fixed actions) are recomputed on
// candles truncated after a cut and on candles poisoned after it (NaN, 1e9); every observation
// decided at or before the cut must be identical, bit for bit. A planted leak (observations cut
// one row ahead) must be caught. checkEnvLookAhead (`ctm lookahead-check --env`) runs the same
// analysis with seeded random actions, here and on a year of real BTC/USDT.

import { describe, expect, it } from 'vitest';
import { sliceByTime, type Candles, type Timeframe } from '../../../src/data-processing/candles.js';
import { readCandlesCsv } from '../../../src/data-processing/file-formats.js';
import {
  buildFeatures,
  type MultiTimeframeFeatures,
} from '../../../src/data-processing/feature-engineering.js';
import {
  checkLookAhead,
  randomCandles,
  type LookAheadMatrix,
} from '../../../src/data-processing/lookahead.js';
import {
  checkEnvLookAhead,
  CryptoTradingEnv,
  episodeObservations,
} from '../../../src/models/reinforcement/trading-env.js';
import { Rng } from '../../../src/utils/random.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../../helpers/shared-data.js';

const windows = { '15m': 8, '4h': 4, '1d': 2 };
const candles = randomCandles({ seed: 3, rows: 96 * 75 });
const full = buildFeatures(candles, { windows });
const START = full.firstValidRow + 3;
const actions = (() => {
  const rng = new Rng(9);
  return Int8Array.from({ length: 96 * 75 }, () => rng.int(3));
})();

/** Shifts the base timeframe's row index one row into the future: a planted leak. */
function leakOneRow(f: MultiTimeframeFeatures): MultiTimeframeFeatures {
  const idx = f.rowIndex.get(f.base)!;
  const shifted = Int32Array.from(idx, (r, i) => (i + 1 < idx.length ? idx[i + 1] : r));
  const rowIndex = new Map(f.rowIndex);
  rowIndex.set(f.base, shifted);
  return { ...f, rowIndex };
}

/** The observations of one episode from START with the fixed actions, one row per decision time. */
function episode(c: ReadonlyMap<Timeframe, Candles>, leak: boolean): Map<string, LookAheadMatrix> {
  const built = buildFeatures(c, { windows });
  const features = leak ? leakOneRow(built) : built;
  const matrix = episodeObservations(features, {
    startRow: START,
    actions,
    env: {
      windows,
      transactionCost: 0.001,
      broker: {
        slippage: { model: 'atr', fixedBps: 1 },
        funding: { enabled: true, constantRate: 0.0001 },
        stops: { stopLossFraction: 0.01, takeProfitFraction: 0.02 },
      },
    },
  });
  return new Map([['env', matrix]]);
}

describe('env observations: no look-ahead', () => {
  const cutRows = [START + 2, START + 150, START + 611];

  it('observation t is unchanged when every candle after t is removed or replaced with NaN or 1e9', () => {
    const report = checkLookAhead(candles, (c) => episode(c, false), { cutRows });
    expect(report.leaks).toEqual([]);
    // Every cut compared every observation up to it (3 checks x rows x floats).
    const size = report.matrices.env;
    const expected = cutRows.reduce((s, k) => s + 3 * (k - START + 1) * size, 0);
    expect(report.valuesCompared).toBe(expected);
  });

  it('catches a planted leak (observations cut one row ahead), naming the first leaking row', () => {
    const report = checkLookAhead(candles, (c) => episode(c, true), { cutRows });
    expect(report.leaks.length).toBeGreaterThan(0);
    expect(report.leaks.every((l) => l.matrix === 'env')).toBe(true);
    const poisoned = report.leaks.filter((l) => l.check !== 'truncate' && l.feature !== '(rows)');
    expect(poisoned.length).toBeGreaterThan(0);
    expect(poisoned.every((l) => l.feature.startsWith('15m[t]'))).toBe(true);
    expect(Math.min(...poisoned.map((l) => l.firstLeakRow))).toBe(cutRows[0] - START);
  });
});

describe('checkEnvLookAhead (ctm lookahead-check --env)', () => {
  it('runs one episode through every cut with moving positions and finds 0 leaks', () => {
    const env = { windows, broker: { funding: { enabled: true, constantRate: 0.0001 } } };
    const report = checkEnvLookAhead(candles, { windows, cuts: 4, seed: 5, env });
    expect(report.leaks).toEqual([]);
    expect(Object.keys(report.matrices)).toEqual(['env']);
    // The episode starts at the first startable row and reaches every cut (ruin is off).
    const probe = new CryptoTradingEnv(full, { ...env, env: { randomStart: false } });
    probe.reset();
    const start = probe.currentRow;
    expect(report.cutRows.every((k) => k >= start + 2)).toBe(true);
    const size = report.matrices.env;
    expect(report.valuesCompared).toBe(
      report.cutRows.reduce((s, k) => s + 3 * (k - start + 1) * size, 0),
    );
  });
});

describe.skipIf(!hasSharedData)(`checkEnvLookAhead on real BTC/USDT 2023${SKIP_REASON}`, () => {
  it('finds 0 leaks in the env observations along a year-long episode', async () => {
    const data = new Map<Timeframe, Candles>();
    for (const tf of ['15m', '4h', '1d'] as Timeframe[]) {
      const { candles: c } = await readCandlesCsv(sharedFile(`binance-BTCUSDT-${tf}.csv.gz`), {
        symbol: 'BTCUSDT',
        timeframe: tf,
      });
      data.set(tf, sliceByTime(c, Date.UTC(2022, 9, 1), Date.UTC(2024, 0, 1)));
    }
    const report = checkEnvLookAhead(data, { cuts: 2, seed: 11 });
    expect(report.leaks).toEqual([]);
    expect(report.valuesCompared).toBeGreaterThan(1e8);
    // About 40 s alone; several times that beside the other test files on a busy machine.
  }, 600_000);
});
