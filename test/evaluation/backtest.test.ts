// The backtester: one accounting core with the RL env (identical equity curves and observations
// for the same actions), golden values on hand-sized fixtures, no look-ahead, baselines, and the
// `ctm backtest` pipeline on the real candles.
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeCandles, sliceByTime } from '../../src/data-processing/candles.js';
import { readCandleFile } from '../../src/data-processing/file-formats.js';
import { CandleStore } from '../../src/data-processing/store.js';
import { LookAheadError } from '../../src/errors.js';
import {
  backtestStrategy,
  metricsTrades,
  type RowAwarePolicy,
} from '../../src/evaluation/backtest.js';
import {
  buyAndHoldPolicy,
  flatPolicy,
  oraclePolicy,
  randomPolicy,
  smaCrossPolicy,
} from '../../src/evaluation/baselines.js';
import { brokerConfig } from '../../src/evaluation/broker.js';
import { evaluationRange, runBacktest } from '../../src/evaluation/evaluate.js';
import { calculatePerformanceMetrics } from '../../src/evaluation/metrics.js';
import type { ObservationSpec, Policy } from '../../src/evaluation/policy.js';
import { CryptoTradingEnv } from '../../src/models/reinforcement/trading-env.js';
import { policySource } from '../../src/policies.js';
import { defaultConfig, parseDateMs } from '../../src/utils/config.js';
import { hasSharedData, SHARED_DATA_DIR, SKIP_REASON } from '../helpers/shared-data.js';
import { closeOverSma, handFeatures, smaFeatures, walkCandles } from './fixtures.js';

const SMA = { fastFeature: 'close_sma_10', slowFeature: 'close_sma_20' };
/** No funding, no slippage: costs are the fee only (golden formulas). */
const feeOnly = brokerConfig({ funding: { enabled: false }, slippage: { fixedBps: 0 } });

/** Replays a list of targets, one per decision, from the row it is told. */
function replay(
  targets: ArrayLike<number>,
  spec: ObservationSpec,
  seen?: Float32Array[],
): RowAwarePolicy {
  let k = 0;
  return {
    observation: spec,
    reset() {
      k = 0;
    },
    startAt() {
      k = 0;
    },
    act(obs, numEnvs, out) {
      seen?.push(obs.slice());
      for (let i = 0; i < numEnvs; i++) out[i] = targets[k];
      k++;
    },
  };
}

describe('one accounting core: backtest == RL env episode', () => {
  it('gives identical equity curves and observations for the same actions (fees, slippage, funding on)', () => {
    const c = walkCandles(1500, { seed: 7 });
    const f = handFeatures(c, {
      close_sma_10: closeOverSma(c.close, 10),
      close_sma_20: closeOverSma(c.close, 20),
      r: Float32Array.from(c.close, (x, i) => (i === 0 ? NaN : Math.log(x / c.close[i - 1]))),
    });
    const config = defaultConfig();
    const broker = {
      slippage: { model: 'range' as const, fixedBps: 1 },
      funding: { enabled: true },
    };
    const env = new CryptoTradingEnv(f, {
      config,
      env: {
        actionType: 'continuous',
        randomStart: false,
        maxEpisodeSteps: null,
        ruinEquityFraction: 0,
      },
      broker,
      windows: { '15m': 8, '4h': 1, '1d': 1 },
      rowRange: [0, c.openTime.length],
    });
    const spec = env.builder.spec;
    // Deterministic pseudo-random targets including partial sizes and flips.
    const targets = Float32Array.from(
      { length: 2000 },
      (_, k) => [1, 1, -0.5, 0, -1, 0.25, 1, -1][(k * 7 + (k >> 3)) % 8],
    );
    const seen: Float32Array[] = [];
    const result = backtestStrategy({
      policy: replay(targets, spec, seen),
      data: f,
      broker: brokerConfig(broker),
      closeAtEnd: false,
      benchmark: false,
    });
    const [obs0] = env.reset({ options: { startRow: result.startRow } });
    expect(Array.from(obs0)).toEqual(Array.from(seen[0]));
    const envEquity = [env.broker.equity];
    for (let k = 0; k < result.rows - 1; k++) {
      const [obs, , term, trunc, info] = env.step(Float32Array.of(targets[k]));
      envEquity.push(info.equity);
      expect(Array.from(obs)).toEqual(Array.from(seen[k + 1]));
      if (term || trunc) break;
    }
    expect(envEquity).toHaveLength(result.rows);
    expect(envEquity).toEqual(Array.from(result.equity)); // bit for bit
    expect(env.broker.trades.length).toBe(result.trades.length);
    expect(env.broker.feesPaid).toBe(result.metrics.costs.fees);
  });
});

describe('golden values', () => {
  it('buy-and-hold from flat: equity = E0 × (close_t / P0 − f) with P0 the next open', () => {
    const c = walkCandles(300, { seed: 2 });
    const f = smaFeatures(c);
    const fee = 0.001;
    const r = backtestStrategy({
      policy: buyAndHoldPolicy(),
      data: f,
      broker: feeOnly,
      transactionCost: fee,
      initialCapital: 1000,
      closeAtEnd: false,
      benchmark: false,
    });
    // SMA(20) warm-up: the first valid row is 19; the decision there fills at open[20].
    expect(r.startRow).toBe(19);
    const p0 = c.open[20];
    for (let k = 1; k < r.rows; k++) {
      const expected = 1000 * (c.close[19 + k] / p0 - fee);
      expect(Math.abs(r.equity[k] - expected)).toBeLessThanOrEqual(1e-9 * expected);
    }
    expect(r.fills.length).toBe(1);
    expect(r.trades).toHaveLength(0);
    expect(r.openTrade?.entryTimeMs).toBe(c.openTime[20]);
  });

  it('reports the trade still open at the end, with or without the ledger of fills', () => {
    const c = walkCandles(300, { seed: 2 });
    for (const recordLedger of [true, false]) {
      const r = backtestStrategy({
        policy: buyAndHoldPolicy(),
        data: smaFeatures(c),
        broker: { ...feeOnly, recordLedger },
        closeAtEnd: false,
        benchmark: false,
      });
      expect(r.openTrade).toEqual({
        side: 1,
        entryTimeMs: c.openTime[20],
        entryPrice: c.open[20],
        barsHeld: r.rows - 1,
      });
    }
  });

  it('closing at the end realises one round trip whose pnl is the equity change', () => {
    const c = walkCandles(300, { seed: 2 });
    const r = backtestStrategy({
      policy: buyAndHoldPolicy(),
      data: smaFeatures(c),
      broker: feeOnly,
      transactionCost: 0.001,
      benchmark: false,
    });
    // Long E1 = E0 × ((1 − f) × P1/P0 − f) with P1 the last close.
    const p0 = c.open[20];
    const p1 = c.close[c.close.length - 1];
    const e1 = 10_000 * ((1 - 0.001) * (p1 / p0) - 0.001);
    expect(Math.abs(r.finalEquity - e1)).toBeLessThanOrEqual(1e-9 * e1);
    expect(r.trades).toHaveLength(1);
    expect(Math.abs(r.trades[0].pnl - (r.finalEquity - 10_000))).toBeLessThan(1e-7);
    expect(r.position[r.rows - 1]).toBe(0);
  });

  it('flat earns nothing and its Sharpe is null for zero variance', () => {
    const r = backtestStrategy({ policy: flatPolicy(), data: smaFeatures(walkCandles(200)) });
    expect(new Set(r.equity)).toEqual(new Set([10_000]));
    expect(r.metrics.returns.sharpe).toBeNull();
    expect(r.metrics.nulls['returns.sharpe']).toBe('zero variance of returns');
    expect(r.metrics.trades.count).toBe(0);
  });
});

describe('backtest of the sma-cross baseline', () => {
  const c = walkCandles(3000, { seed: 11 });
  const f = smaFeatures(c);
  const policy = smaCrossPolicy(f, SMA);
  const r = backtestStrategy({ policy, data: f, transactionCost: 0.001 });

  it('decides long exactly when SMA(10) > SMA(20) of the closes known at the decision', () => {
    const sma = (i: number, n: number): number => {
      let s = 0;
      for (let k = i - n + 1; k <= i; k++) s += c.close[k];
      return s / n;
    };
    for (let k = 0; k < r.rows; k++) {
      const i = r.startRow + k;
      const fast = Math.fround(c.close[i] / sma(i, 10) - 1);
      const slow = Math.fround(c.close[i] / sma(i, 20) - 1);
      expect(r.target[k]).toBe(fast < slow ? 1 : -1);
    }
  });

  it('reports every cost the broker charged, per bar, and metrics annualised for 15m bars', () => {
    const sum = (a: Float64Array): number => a.reduce((x, y) => x + y, 0);
    expect(sum(r.costs.fees)).toBeCloseTo(r.metrics.costs.fees as number, 9);
    expect(r.metrics.barsPerYear).toBe(35_040);
    const again = calculatePerformanceMetrics(r.returns, metricsTrades(r.trades), {
      barsPerYear: 35_040,
    });
    expect(r.metrics.returns.sharpe).toBe(again.returns.sharpe);
    // Net pnl of all round trips = equity change (everything is closed at the end).
    const pnl = r.trades.reduce((s, t) => s + t.pnl, 0);
    expect(Math.abs(pnl - (r.finalEquity - r.initialCapital))).toBeLessThan(1e-6);
    expect(r.benchmarkEquity).not.toBeNull();
    expect(r.benchmarkMetrics?.trades.count).toBe(1);
  });

  it('never reads the future: poisoning every candle after row k leaves decisions and equity up to k unchanged', () => {
    const k = 1800;
    const poison = (a: Float64Array, v: number): Float64Array =>
      a.map((x, i) => (i > k + 1 ? v : x));
    const bad = makeCandles(c.symbol, c.timeframe, {
      openTime: c.openTime,
      open: poison(c.open, 1e9),
      high: poison(c.high, 1e9),
      low: poison(c.low, 1e9),
      close: poison(c.close, 1e9),
      volume: poison(c.volume, 1e9),
    });
    const fb = smaFeatures(bad);
    const rb = backtestStrategy({
      policy: smaCrossPolicy(fb, SMA),
      data: fb,
      transactionCost: 0.001,
    });
    const upto = k - r.startRow; // decisions at rows <= k, equity marked at rows <= k + 1
    expect(Array.from(rb.target.subarray(0, upto + 1))).toEqual(
      Array.from(r.target.subarray(0, upto + 1)),
    );
    expect(Array.from(rb.equity.subarray(0, upto + 2))).toEqual(
      Array.from(r.equity.subarray(0, upto + 2)),
    );
  });
});

describe('baselines', () => {
  const c = walkCandles(2500, { seed: 5 });
  const f = smaFeatures(c);
  const run = (policy: Policy): number =>
    backtestStrategy({ policy, data: f, broker: feeOnly, transactionCost: 0.001, benchmark: false })
      .finalEquity;

  it('the oracle bounds every other baseline from above', () => {
    const oracle = run(oraclePolicy(f, { feeRate: 0.001, levels: [-1, 0, 1] }));
    for (const p of [
      buyAndHoldPolicy(),
      flatPolicy(),
      smaCrossPolicy(f, SMA),
      randomPolicy({ seed: 3, levels: [-1, 0, 1], switchProbability: 0.05 }),
    ])
      expect(oracle).toBeGreaterThan(run(p));
  });

  it('random is reproducible under a seed and differs across seeds', () => {
    const a = run(randomPolicy({ seed: 9, levels: [-1, 0, 1], switchProbability: 0.05 }));
    const b = run(randomPolicy({ seed: 9, levels: [-1, 0, 1], switchProbability: 0.05 }));
    const d = run(randomPolicy({ seed: 10, levels: [-1, 0, 1], switchProbability: 0.05 }));
    expect(a).toBe(b);
    expect(a).not.toBe(d);
  });

  it('sma-cross names the SMA columns it found when its features are missing', () => {
    expect(() =>
      smaCrossPolicy(f, { fastFeature: 'close_sma_5', slowFeature: 'close_sma_20' }),
    ).toThrow(/close_sma_5.*SMA-like columns: close_sma_10, close_sma_20/);
  });
});

describe('the holdout stays closed', () => {
  const config = defaultConfig(); // holdout from 2024-01-01
  it('refuses a range into the holdout without --open-holdout, and clips an open end before it', () => {
    expect(() =>
      evaluationRange(config, parseDateMs('2023-06-01'), parseDateMs('2024-02-01')),
    ).toThrow(LookAheadError);
    expect(evaluationRange(config, parseDateMs('2023-06-01'), undefined).toMs).toBe(
      parseDateMs('2024-01-01'),
    );
    expect(
      evaluationRange(config, parseDateMs('2023-06-01'), parseDateMs('2024-02-01'), true).toMs,
    ).toBe(parseDateMs('2024-02-01'));
    expect(evaluationRange(config, undefined, undefined)).toEqual({
      fromMs: parseDateMs('2023-01-01'),
      toMs: parseDateMs('2024-01-01'),
    });
  });

  it('backtestStrategy refuses bars inside a closed holdout', () => {
    const f = smaFeatures(walkCandles(500, { startMs: Date.UTC(2023, 11, 30) }));
    const holdout = { fromMs: Date.UTC(2024, 0, 1), toMs: Infinity };
    expect(() => backtestStrategy({ policy: flatPolicy(), data: f, holdout })).toThrow(
      LookAheadError,
    );
    expect(
      backtestStrategy({ policy: flatPolicy(), data: f, holdout, openHoldout: true }).rows,
    ).toBe(481);
  });
});

describe.skipIf(!hasSharedData)(`ctm backtest on the real BTC candles${SKIP_REASON}`, () => {
  it('writes a run with metrics, trades, equity and the report for sma-cross over one month (files == store)', async () => {
    const config = defaultConfig();
    config.paths.runs = mkdtempSync(join(tmpdir(), 'ctm-runs-'));
    const outcome = await runBacktest({
      config,
      policy: policySource('sma-cross', config),
      symbol: 'BTC/USDT',
      from: parseDateMs('2023-03-01'),
      to: parseDateMs('2023-04-01'),
      dataDir: SHARED_DATA_DIR,
    });
    const dir = outcome.run.dir;
    for (const f of [
      'run.json',
      'metrics.json',
      'trades.csv',
      'equity.csv.gz',
      'report.html',
      'equity.png',
    ])
      expect(existsSync(join(dir, f)), f).toBe(true);
    const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
    expect(metrics.strategy.trades.count).toBe(outcome.single?.trades.length);
    const single = outcome.single!;
    // March 2023 has 31 × 96 = 2976 bars minus the 2023-03-24 halt gap (5 bars missing).
    expect(single.rows).toBe(2976 - 5);
    expect(new Date(single.time[0]).toISOString()).toBe('2023-03-01T00:00:00.000Z');
    expect(single.metrics.monthly.map((m) => m.period)).toEqual(['2023-03']);
    const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    expect(run.extra.policy).toBe('sma-cross');
    expect(run.data.timeframes).toEqual(['15m', '4h', '1d']);

    // The same backtest from the store (the default source) gives the same equity, bit for bit.
    const storeConfig = structuredClone(config);
    storeConfig.paths.store = join(config.paths.runs, 'ctm.duckdb');
    const store = await CandleStore.open(storeConfig.paths.store);
    for (const tf of ['15m', '4h', '1d'] as const) {
      const { candles } = await readCandleFile(
        join(SHARED_DATA_DIR, `binance-BTCUSDT-${tf}.csv.gz`),
        {
          symbol: 'BTC/USDT',
          timeframe: tf,
        },
      );
      await store.upsert(
        { exchange: 'binance', symbol: 'BTC/USDT', timeframe: tf },
        sliceByTime(candles, parseDateMs('2022-06-01'), parseDateMs('2023-05-01')),
      );
    }
    store.close();
    const fromStore = await runBacktest({
      config: storeConfig,
      policy: policySource('sma-cross', storeConfig),
      symbol: 'BTC/USDT',
      from: parseDateMs('2023-03-01'),
      to: parseDateMs('2023-04-01'),
    });
    expect(Array.from(fromStore.single!.equity)).toEqual(Array.from(single.equity));
  });
});
