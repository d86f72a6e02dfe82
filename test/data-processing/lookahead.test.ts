import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  sliceByTime,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from '../../src/data-processing/candles.js';
import { readCandlesCsv } from '../../src/data-processing/file-formats.js';
import {
  buildFeatures,
  checkFeatureLookAhead,
  featureMatrices,
} from '../../src/data-processing/feature-engineering.js';
import { loadCandleDirectory } from '../../src/data-processing/data-loader.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';
import {
  checkLookAhead,
  formatLookAheadReport,
  poisonAfter,
  randomCandles,
  truncateAt,
  type LookAheadCompute,
  type LookAheadMatrix,
} from '../../src/data-processing/lookahead.js';
import { alignTimeframes } from '../../src/data-processing/data-alignment.js';

const M15 = 900_000;
const H4 = 14_400_000;

function matrix(names: string[], time: Float64Array, cols: Float64Array[]): LookAheadMatrix {
  const rows = time.length;
  const values = new Float32Array(rows * names.length);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < names.length; j++) values[r * names.length + j] = cols[j][r];
  return { names, time, values, rows, cols: names.length };
}

function closeTimes(c: Candles): Float64Array {
  const ms = TIMEFRAME_MS[c.timeframe];
  return c.openTime.map((t) => t + ms);
}

/** An honest strategy: trailing SMA(4) of the 15m close and the last closed 4h close. */
const honest: LookAheadCompute = (data) => {
  const base = data.get('15m')!;
  const aligned = alignTimeframes(data);
  const h4 = aligned.higher[0];
  const n = base.close.length;
  const sma = new Float64Array(n).fill(NaN);
  for (let i = 3; i < n; i++)
    sma[i] = (base.close[i] + base.close[i - 1] + base.close[i - 2] + base.close[i - 3]) / 4;
  const h4close = Float64Array.from(h4.lastClosed, (k) => (k < 0 ? NaN : h4.candles.close[k]));
  return new Map([['15m', matrix(['sma_4', 'h4_close'], closeTimes(base), [sma, h4close])]]);
};

/** Planted leak 1: the 4h close of the bucket a 15m row sits in, before that 4h candle closes. */
const early4hClose: LookAheadCompute = (data) => {
  const base = data.get('15m')!;
  const h4 = data.get('4h')!;
  const n = base.close.length;
  const out = new Float64Array(n).fill(NaN);
  let j = 0;
  for (let i = 0; i < n; i++) {
    // The classic merge bug: join on open times, so the 08:00 4h close shows up at 08:00.
    while (j + 1 < h4.openTime.length && h4.openTime[j + 1] <= base.openTime[i]) j++;
    if (h4.openTime.length > 0 && h4.openTime[j] <= base.openTime[i]) out[i] = h4.close[j];
  }
  return new Map([['15m', matrix(['h4_close_early'], closeTimes(base), [out])]]);
};

/** Planted leak 2: a centred moving average of 9 rows (4 before, 4 after). */
const centredMa: LookAheadCompute = (data) => {
  const base = data.get('15m')!;
  const n = base.close.length;
  const out = new Float64Array(n).fill(NaN);
  for (let i = 4; i + 4 < n; i++) {
    let s = 0;
    for (let k = i - 4; k <= i + 4; k++) s += base.close[k];
    out[i] = s / 9;
  }
  return new Map([['15m', matrix(['centred_ma_9'], closeTimes(base), [out])]]);
};

/** Planted leak 3: z-score of the close with mean and deviation of the whole series. */
const wholeSeriesZ: LookAheadCompute = (data) => {
  const base = data.get('15m')!;
  const n = base.close.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += base.close[i] / n;
  let varSum = 0;
  for (let i = 0; i < n; i++) varSum += (base.close[i] - mean) ** 2;
  const sd = Math.sqrt(varSum / n);
  const out = Float64Array.from(base.close, (c) => (c - mean) / sd);
  return new Map([['15m', matrix(['close_z_all'], closeTimes(base), [out])]]);
};

const data = randomCandles({ seed: 11, rows: 2000 });

describe('checkLookAhead', () => {
  it('finds no leak in a strategy that reads only trailing 15m rows and closed 4h candles', () => {
    const report = checkLookAhead(data, honest, { cuts: 12, seed: 3 });
    expect(report.leaks).toEqual([]);
    expect(report.cutRows).toHaveLength(12);
    expect(report.valuesCompared).toBeGreaterThan(12 * 3 * 2);
    expect(formatLookAheadReport(report)).toMatch(/: 0 leaks$/);
  });

  it('reports a 4h close used before the 4h candle closes, from the first row of its bucket', () => {
    const cut = 992 + 5; // a row 5 bars into a 4h bucket (row 992 opens at a 4h boundary)
    expect(data.get('15m')!.openTime[992] % H4).toBe(0);
    const report = checkLookAhead(data, early4hClose, { cutRows: [cut] });
    expect(report.leaks.length).toBeGreaterThan(0);
    for (const leak of report.leaks) {
      expect(leak.matrix).toBe('15m');
      expect(leak.feature).toBe('h4_close_early');
      expect(leak.firstLeakRow).toBe(992);
      expect(leak.cutRow).toBe(cut);
    }
    expect(new Set(report.leaks.map((l) => l.check))).toEqual(
      new Set(['truncate', 'poison-nan', 'poison-1e9']),
    );
    expect(formatLookAheadReport(report)).toMatch(
      /LEAK 15m\.h4_close_early \[truncate\]: cut at row 997 .* first leaking row 992/,
    );
  });

  it('catches a 4h or 1d candle read one 15m row early at its default cuts, whatever the seed', () => {
    // The off-by-one merge bug: the higher candle shows on the row that closes one base bar before
    // it does. Only a cut on exactly that row sees it, so random cuts alone miss it most of the time.
    const oneRowEarly =
      (tf: '4h' | '1d'): LookAheadCompute =>
      (d) => {
        const base = d.get('15m')!;
        const h = d.get(tf)!;
        const ms = TIMEFRAME_MS[tf];
        const out = new Float64Array(base.close.length).fill(NaN);
        let j = 0;
        for (let i = 0; i < out.length; i++) {
          while (j < h.openTime.length && h.openTime[j] + ms <= base.openTime[i] + 2 * M15) j++;
          if (j > 0) out[i] = h.close[j - 1];
        }
        return new Map([['15m', matrix([`${tf}_close_early`], closeTimes(base), [out])]]);
      };
    for (const tf of ['4h', '1d'] as const) {
      for (let seed = 0; seed < 6; seed++) {
        const report = checkLookAhead(data, oneRowEarly(tf), { seed, checks: ['poison-nan'] });
        expect(report.cutRows).toHaveLength(8);
        expect(report.leaks.map((l) => l.feature)).toEqual([`${tf}_close_early`]);
        // The first leaking row is the cut itself: the row closing one bar before the candle.
        const leak = report.leaks[0];
        expect(leak.firstLeakRow).toBe(leak.cutRow);
        expect((leak.cutTime + M15) % TIMEFRAME_MS[tf]).toBe(0);
      }
    }
  });

  it('reports a centred moving average with its first leaking row 3 rows before the cut', () => {
    // Row k-4 averages rows k-8..k (all known at the cut k); row k-3 needs row k+1.
    const report = checkLookAhead(data, centredMa, { cuts: 5, seed: 9 });
    const truncate = report.leaks.find((l) => l.check === 'truncate')!;
    expect(truncate.feature).toBe('centred_ma_9');
    expect(truncate.firstLeakRow).toBe(truncate.cutRow - 3);
    expect(truncate.cutsLeaking).toBe(5);
    const nan = report.leaks.find((l) => l.check === 'poison-nan')!;
    expect(nan.firstLeakRow).toBe(nan.cutRow - 3);
    expect(Number.isNaN(nan.withoutFuture)).toBe(true);
  });

  it('reports a whole-series z-score as leaking from row 0', () => {
    const report = checkLookAhead(data, wholeSeriesZ, { cuts: 3, seed: 1 });
    expect(report.leaks).toHaveLength(3);
    for (const leak of report.leaks) {
      expect(leak.feature).toBe('close_z_all');
      expect(leak.firstLeakRow).toBe(0);
      expect(leak.firstLeakTime).toBe(data.get('15m')!.openTime[0] + M15);
    }
  });

  it('reports rows that exist only with the future as a (rows) leak', () => {
    const dropsTail: LookAheadCompute = (d) => {
      const base = d.get('15m')!;
      const rows = Math.max(0, base.close.length - 3);
      const time = closeTimes(base).subarray(0, rows);
      return new Map([['15m', matrix(['close'], time, [base.close.subarray(0, rows)])]]);
    };
    const report = checkLookAhead(data, dropsTail, { cutRows: [500], checks: ['truncate'] });
    expect(report.leaks).toHaveLength(1);
    expect(report.leaks[0]).toMatchObject({ feature: '(rows)', firstLeakRow: 498 });
  });

  it('truncates every timeframe to the candles closed by the cut and poisons exactly the rest', () => {
    const cutTime = data.get('15m')!.openTime[1005] + M15;
    const t = truncateAt(data, cutTime);
    const p = poisonAfter(data, cutTime, 1e9);
    for (const [tf, c] of data as Map<Timeframe, Candles>) {
      const ms = TIMEFRAME_MS[tf];
      const kept = t.get(tf)!;
      expect(kept.openTime.length).toBe(c.openTime.filter((o) => o + ms <= cutTime).length);
      const pc = p.get(tf)!;
      for (let r = 0; r < c.openTime.length; r++) {
        expect(pc.openTime[r]).toBe(c.openTime[r]);
        expect(pc.close[r]).toBe(c.openTime[r] + ms <= cutTime ? c.close[r] : 1e9);
      }
    }
  });

  it('holds for random cut points on random valid candles with gaps (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.integer({ min: 120, max: 800 }),
        fc.double({ min: 0, max: 0.2, noNaN: true }),
        (seed, rows, gapProbability) => {
          const d = randomCandles({ seed, rows, gapProbability, dropHigherProbability: 0.1 });
          const report = checkLookAhead(d, honest, { cuts: 3, seed });
          expect(report.leaks).toEqual([]);
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe.skipIf(!hasSharedData)(
  `ctm lookahead-check logic on the real BTC and ETH candles${SKIP_REASON}`,
  () => {
    async function load(pair: string, fromMs: number, toMs: number) {
      const out = new Map<Timeframe, Candles>();
      for (const tf of ['15m', '4h', '1d'] as Timeframe[]) {
        const { candles } = await readCandlesCsv(sharedFile(`binance-${pair}-${tf}.csv.gz`), {
          symbol: pair,
          timeframe: tf,
        });
        out.set(tf, sliceByTime(candles, fromMs, toMs));
      }
      return out;
    }

    for (const pair of ['BTCUSDT', 'ETHUSDT']) {
      it(`finds 0 leaks in the features of ${pair} 2022-2023 (last-closed) and mid-2023 (forming)`, async () => {
        const data = await load(pair, Date.UTC(2022, 0, 1), Date.UTC(2024, 0, 1));
        const report = checkFeatureLookAhead(data, { cuts: 3, seed: 7 });
        expect(report.leaks).toEqual([]);
        expect(Object.keys(report.matrices)).toEqual(['15m', '4h', '1d', 'decision']);
        expect(report.valuesCompared).toBeGreaterThan(1e7);
        const slice = await load(pair, Date.UTC(2023, 5, 1), Date.UTC(2023, 8, 1));
        const formingReport = checkFeatureLookAhead(slice, { cuts: 2, seed: 7, mode: 'forming' });
        expect(formingReport.leaks).toEqual([]);
        expect(Object.keys(formingReport.matrices)).toContain('forming.4h');
      });
    }

    it('reads --data-dir files by name, validates them and asks for --repair on off-grid rows', async () => {
      const dir = sharedFile('');
      const options = {
        exchange: 'binance',
        symbol: 'BTC/USDT',
        timeframes: ['15m'] as Timeframe[],
      };
      await expect(loadCandleDirectory(dir, { ...options, repair: false })).rejects.toMatchObject({
        field: 'open_time',
        hint: expect.stringMatching(/--repair/),
      });
      const repaired = await loadCandleDirectory(dir, { ...options, repair: true });
      const { candles } = await readCandlesCsv(sharedFile('binance-BTCUSDT-15m.csv.gz'), {
        symbol: 'BTC/USDT',
        timeframe: '15m',
      });
      expect(repaired.get('15m')!.openTime.length).toBe(candles.openTime.length - 81);
      const recent = await loadCandleDirectory(dir, {
        ...options,
        repair: false,
        fromMs: Date.UTC(2023, 0, 1),
        toMs: Date.UTC(2023, 1, 1),
      });
      expect(recent.get('15m')!.openTime.length).toBe(31 * 96);
      await expect(
        loadCandleDirectory(dir, { ...options, symbol: 'XRP/USDT', repair: false }),
      ).rejects.toThrow(/binance-XRPUSDT-15m\.csv\.gz/);
    });

    it('catches a planted leak inside the real feature pipeline, naming the feature and its first row', async () => {
      const data = await load('BTCUSDT', Date.UTC(2023, 0, 1), Date.UTC(2023, 3, 1));
      // The real matrices plus one column that peeks at the next 15m close.
      const leaky: LookAheadCompute = (c) => {
        const m = featureMatrices(buildFeatures(c));
        const base = c.get('15m')!;
        const n = base.close.length;
        const next = Float64Array.from({ length: n }, (_, i) =>
          i + 1 < n ? base.close[i + 1] : NaN,
        );
        m.set('peek', matrix(['next_close'], closeTimes(base), [next]));
        return m;
      };
      const report = checkLookAhead(data, leaky, { cutRows: [4000], checks: ['truncate'] });
      expect(report.leaks).toHaveLength(1);
      expect(report.leaks[0]).toMatchObject({
        matrix: 'peek',
        feature: 'next_close',
        firstLeakRow: 4000,
      });
    });
  },
);
