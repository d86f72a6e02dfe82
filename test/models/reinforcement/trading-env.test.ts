// The trading env's Gymnasium contract and accounting: spaces, observation layout, next-open
// execution, terminated vs truncated, ranges, masks, seeding, and the reconciliation of rewards
// with the broker's ledger.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { copyWindow } from '../../../src/data-processing/feature-engineering.js';
import { CryptoTradingEnv } from '../../../src/models/reinforcement/trading-env.js';
import { Box, Discrete } from '../../../src/models/reinforcement/spaces.js';
import { Rng } from '../../../src/utils/random.js';
import { CtmError } from '../../../src/errors.js';
import { simpleFeatures, singleFeatures, walkCandles } from './helpers.js';
import { resample } from '../../../src/data-processing/resample.js';
import type { Candles, Timeframe } from '../../../src/data-processing/candles.js';

const NO_COSTS = {
  takerFeeRate: 0,
  makerFeeRate: 0,
  funding: { enabled: false },
  slippage: { model: 'fixed' as const, fixedBps: 0 },
};

function threeTf(n: number, seed: number): Map<Timeframe, Candles> {
  const base = walkCandles(n, seed);
  return new Map<Timeframe, Candles>([
    ['15m', base],
    ['4h', resample(base, '4h').candles],
    ['1d', resample(base, '1d').candles],
  ]);
}

describe('CryptoTradingEnv: Gymnasium contract', () => {
  const windows = { '15m': 8, '4h': 4, '1d': 2 };
  const features = simpleFeatures(threeTf(96 * 12, 1), windows);

  it('has a flat float32 Box observation (windows x features + account) and a Discrete(3) action space', () => {
    const env = new CryptoTradingEnv(features, { windows });
    expect(env.observationSpace).toBeInstanceOf(Box);
    expect(env.observationSpace.shape).toEqual([(8 + 4 + 2) * 3 + 4]);
    expect(env.actionSpace).toBeInstanceOf(Discrete);
    expect((env.actionSpace as Discrete).n).toBe(3);
    expect(env.columnNames[0]).toBe('15m[t-7].ret');
    expect(env.columnNames.at(-1)).toBe('account.drawdown');
    const [obs, info] = env.reset({ seed: 3 });
    expect(obs).toBeInstanceOf(Float32Array);
    expect(env.observationSpace.contains(obs)).toBe(true);
    expect(info.row).toBeGreaterThanOrEqual(features.firstValidRow);
    const res = env.step(2);
    expect(res).toHaveLength(5);
    expect(typeof res[1]).toBe('number');
    expect(res[2]).toBe(false);
    expect(res[3]).toBe(false);
    expect(res[0]).toBe(obs); // the observation buffer is reused
    expect(res[4].finalObservation).toBeNull();
  });

  it('holds each action for env.decisionInterval bars: one step equals that many steps of the same action', () => {
    const k = 3;
    const held = new CryptoTradingEnv(features, { windows, env: { decisionInterval: k } });
    const single = new CryptoTradingEnv(features, { windows });
    const start = features.firstValidRow + 10;
    held.reset({ options: { startRow: start } });
    single.reset({ options: { startRow: start } });
    for (const a of [2, 2, 0, 1, 0]) {
      const [obs, reward, , , info] = held.step(a);
      let sum = 0;
      let last: Float32Array = new Float32Array(0);
      for (let j = 0; j < k; j++) {
        const r = single.step(a);
        sum += r[1];
        last = Float32Array.from(r[0]);
      }
      expect(info.row).toBe(single.currentRow);
      expect(Array.from(obs)).toEqual(Array.from(last));
      expect(reward).toBeCloseTo(sum, 12);
      expect(info.equity).toBe(single.broker.equity);
    }
    expect(held.currentRow).toBe(start + 5 * k);
  });

  it('observation t holds each timeframe window known at row t (as copyWindow cuts it) and the account', () => {
    const env = new CryptoTradingEnv(features, { windows, broker: NO_COSTS });
    const start = features.firstValidRow + 40;
    const [obs] = env.reset({ options: { startRow: start } });
    const expected = new Float32Array(obs.length);
    let o = 0;
    for (const tf of ['15m', '4h', '1d'] as const) {
      copyWindow(features, tf, start, windows[tf], expected, o);
      o += windows[tf] * 3;
    }
    expect(Array.from(obs.subarray(0, o))).toEqual(Array.from(expected.subarray(0, o)));
    expect(Array.from(obs.subarray(o))).toEqual([0, 0, 0, 0]);
    const [obs2, , , , info] = env.step(2); // long
    copyWindow(features, '15m', start + 1, 8, expected, 0);
    expect(Array.from(obs2.subarray(0, 24))).toEqual(Array.from(expected.subarray(0, 24)));
    const c = features.aligned.base;
    const q = 10_000 / c.open[start + 1];
    expect(info.quantity).toBeCloseTo(q, 9);
    expect(obs2[o]).toBeCloseTo((q * c.close[start + 1]) / info.equity, 6); // position
    expect(obs2[o + 2]).toBeCloseTo(Math.log1p(1), 6); // timeInPosition
  });

  it('fills an action taken on row t at row t+1 open, and marks equity at row t+1 close', () => {
    const env = new CryptoTradingEnv(features, { windows, transactionCost: 0.001 });
    const start = features.firstValidRow + 10;
    env.reset({ options: { startRow: start } });
    const [, reward, , , info] = env.step(0); // short
    const c = features.aligned.base;
    // Sized at the open, filled below it by the default fixed slippage; fee 0.1% of the fill.
    const fill = c.open[start + 1] * (1 - env.broker.config.slippage.fixedBps / 10_000);
    expect(env.broker.fills.price[0]).toBeCloseTo(fill, 9);
    const q = -10_000 / c.open[start + 1];
    const equity = 10_000 + 0.001 * q * fill + q * (c.close[start + 1] - fill);
    expect(info.equity).toBeCloseTo(equity, 9);
    expect(reward).toBeCloseTo(Math.log(equity / 10_000), 12);
    expect(info.row).toBe(start + 1);
  });

  it('truncates (never terminates) at the end of the data, and at maxEpisodeSteps', () => {
    const env = new CryptoTradingEnv(features, { windows, env: { randomStart: false } });
    const [, first] = env.reset();
    expect(first.row).toBe(env.rangeStart);
    let info: typeof first | undefined;
    let steps = 0;
    for (;;) {
      const [, , term, trunc, i] = env.step(1);
      steps++;
      expect(term).toBe(false);
      if (trunc) {
        info = i;
        break;
      }
    }
    expect(info?.truncationReason).toBe('data-end');
    expect(info?.finalObservation).toBeInstanceOf(Float32Array);
    expect(info?.row).toBe(features.aligned.base.openTime.length - 1);
    expect(steps).toBe(features.aligned.base.openTime.length - 1 - env.rangeStart);
    expect(() => env.step(1)).toThrow(CtmError);

    const short = new CryptoTradingEnv(features, { windows, env: { maxEpisodeSteps: 5 } });
    short.reset({ seed: 1 });
    const flags: boolean[] = [];
    for (let k = 0; k < 5; k++) flags.push(short.step(1)[3]);
    expect(flags).toEqual([false, false, false, false, true]);
    expect(short.step.bind(short, 1)).toThrow(CtmError);
  });

  it('terminates on liquidation, with the reason in info', () => {
    const base = walkCandles(200, 5, { sigma: 0.001 });
    // A crash bar: low 40% below the open.
    const k = 150;
    (base.low as Float64Array)[k] = base.open[k] * 0.6;
    const f = singleFeatures(base, 4);
    const env = new CryptoTradingEnv(f, { broker: { ...NO_COSTS, leverage: 5 } });
    env.reset({ options: { startRow: 140 } });
    let out = env.step(2);
    while (!out[2] && !out[3]) out = env.step(2);
    expect(out[2]).toBe(true);
    expect(out[3]).toBe(false);
    expect(out[4].terminationReason).toBe('liquidation');
    expect(out[4].row).toBe(k);
  });

  it('terminates on ruin when equity falls to the configured fraction', () => {
    const base = walkCandles(120, 9, { sigma: 0.001, drift: 0.02 }); // +2% a bar
    const f = singleFeatures(base, 4);
    const env = new CryptoTradingEnv(f, {
      broker: { ...NO_COSTS, leverage: 3, margin: { maintenanceMarginRate: 0 } },
      env: { ruinEquityFraction: 0.5 },
    });
    env.reset({ options: { startRow: 20 } });
    let out = env.step(0); // 3x short into a rally
    while (!out[2] && !out[3]) out = env.step(0);
    expect(out[2]).toBe(true);
    expect(['ruin', 'liquidation']).toContain(out[4].terminationReason);
    expect(out[4].equity).toBeLessThanOrEqual(5000);
  });

  it('never starts or fills outside the given time range (a train split never yields a later row)', () => {
    const c = features.aligned.base;
    const fromMs = c.openTime[700];
    const toMs = c.openTime[800];
    const env = new CryptoTradingEnv(features, { windows, timeRange: { fromMs, toMs } });
    const rng = new Rng(4);
    let maxFill = -Infinity;
    let minRow = Infinity;
    for (let ep = 0; ep < 30; ep++) {
      let [, info] = env.reset({ seed: ep });
      minRow = Math.min(minRow, info.row);
      for (;;) {
        const out = env.step(rng.int(3));
        info = out[4];
        if (out[2] || out[3]) break;
      }
      for (let i = 0; i < env.broker.fills.length; i++)
        maxFill = Math.max(maxFill, env.broker.fills.timeMs[i]);
      expect(info.row).toBeLessThan(800);
    }
    expect(minRow).toBeGreaterThanOrEqual(700);
    expect(maxFill).toBeLessThan(toMs);
    expect(() => env.reset({ options: { startRow: 799 } })).toThrow(RangeError);
    expect(() => env.reset({ options: { startRow: 650 } })).toThrow(RangeError);
  });

  it('is deterministic under a seed: same starts, same trajectory', () => {
    const run = (seed: number): number[] => {
      const env = new CryptoTradingEnv(features, { windows, transactionCost: 0.001 });
      const rng = new Rng(seed);
      const out: number[] = [];
      for (let ep = 0; ep < 3; ep++) {
        const [, info] = env.reset(ep === 0 ? { seed } : {});
        out.push(info.row);
        for (let k = 0; k < 20; k++) {
          const r = env.step(rng.int(3));
          out.push(r[1], r[0][0]);
          if (r[2] || r[3]) break;
        }
      }
      return out;
    };
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
  });

  it('takes continuous Box[-1, 1] actions (clamped) and rejects actions outside the space', () => {
    const env = new CryptoTradingEnv(features, {
      windows,
      env: { actionType: 'continuous' },
      broker: NO_COSTS,
    });
    expect(env.actionSpace).toBeInstanceOf(Box);
    env.reset({ seed: 1 });
    const [, , , , info] = env.step(Float32Array.of(0.5));
    expect(info.position).toBeCloseTo(0.5, 2);
    env.step(3);
    expect(env.broker.currentTarget).toBe(1);
    expect(() => env.step(NaN)).toThrow(RangeError);
    const d = new CryptoTradingEnv(features, { windows });
    d.reset({ seed: 1 });
    expect(() => d.step(3)).toThrow(RangeError);
    expect(() => d.step(0.5)).toThrow(RangeError);
  });

  it('configurable levels; masks short levels when shorts are off and all but flat after the daily-loss halt', () => {
    const env = new CryptoTradingEnv(features, {
      windows,
      env: { positionLevels: [-1, -0.5, 0, 0.5, 1] },
      broker: { allowShort: false },
    });
    expect((env.actionSpace as Discrete).n).toBe(5);
    const [, info] = env.reset({ seed: 2 });
    expect(Array.from(env.actionMasks()!)).toEqual([0, 0, 1, 1, 1]);
    expect(info.actionMask).toBe(env.actionMasks());
    expect(env.neutralAction).toBe(2);

    const base = walkCandles(300, 5, { sigma: 0.001, tf: '1h' });
    (base.low as Float64Array)[200] = base.open[200] * 0.9;
    (base.close as Float64Array)[200] = base.open[200] * 0.9;
    const f = singleFeatures(base, 4);
    const halted = new CryptoTradingEnv(f, {
      broker: { ...NO_COSTS, risk: { maxDailyLossFraction: 0.05 } },
    });
    halted.reset({ options: { startRow: 195 } });
    let last = halted.step(2);
    for (let k = 0; k < 4; k++) last = halted.step(2);
    expect(last[4].row).toBe(200);
    expect(Array.from(halted.actionMasks()!)).toEqual([0, 1, 0]);
  });

  it('renders the state as one line of text', () => {
    const env = new CryptoTradingEnv(features, { windows });
    expect(env.render()).toContain('not started');
    env.reset({ seed: 1 });
    env.step(2);
    const text = env.render();
    expect(text).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(text).toContain('equity=');
    expect(text).toContain('position=+');
  });

  it('never yields a NaN observation from any start row (starts after the windows are complete)', () => {
    const env = new CryptoTradingEnv(features, { windows });
    for (let s = 0; s < 50; s++) {
      const [obs] = env.reset({ seed: s });
      expect(obs.every(Number.isFinite)).toBe(true);
    }
  });
});

describe('CryptoTradingEnv: reconciliation with the ledger (property)', () => {
  const base = walkCandles(96 * 4, 21, { sigma: 0.006 });
  const features = singleFeatures(base, 4);

  it('equity rebuilt from fills and charges equals the env equity every step, and the pnl rewards sum to log(final / initial)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.double({ min: 0, max: 0.003, noNaN: true }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.double({ min: -0.001, max: 0.001, noNaN: true }),
        fc.constantFrom('fixed', 'range', 'atr', 'volume'),
        fc.boolean(),
        (seed, fee, bps, rate, model, continuous) => {
          const env = new CryptoTradingEnv(features, {
            transactionCost: fee,
            env: { actionType: continuous ? 'continuous' : 'discrete', maxEpisodeSteps: 150 },
            broker: {
              slippage: { model: model as 'fixed', fixedBps: bps, volumeImpact: 0.01 },
              funding: { enabled: true, constantRate: rate },
            },
          });
          const rng = new Rng(seed);
          const [, info0] = env.reset({ seed });
          const E0 = info0.equity;
          const b = env.broker;
          let cash = E0;
          let qty = 0;
          let fi = 0;
          let ci = 0;
          let sum = 0;
          let rebuilt: number;
          for (;;) {
            const action = continuous ? Float32Array.of(rng.uniform(-1, 1)) : rng.int(3);
            const [, reward, term, trunc, info] = env.step(action);
            sum += reward;
            for (; fi < b.fills.length; fi++) {
              cash -= b.fills.quantity[fi] * b.fills.price[fi] + b.fills.fee[fi];
              qty += b.fills.quantity[fi];
            }
            for (; ci < b.charges.length; ci++) cash -= b.charges.amount[ci];
            rebuilt = cash + qty * info.price;
            expect(Math.abs(rebuilt - info.equity)).toBeLessThanOrEqual(1e-9 * E0);
            if (term || trunc) break;
          }
          expect(Math.abs(sum - Math.log(rebuilt / E0))).toBeLessThanOrEqual(1e-9);
        },
      ),
      { numRuns: 60, seed: 5 },
    );
  });
});
