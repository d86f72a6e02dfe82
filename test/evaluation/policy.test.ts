// ObservationBuilder: the one observation layout. Its windows equal copyWindow's cut of every
// timeframe (closed and forming modes) for any sequence of rows, including the sliding shadow
// buffer used for large observations; account fields come in the order the spec asks.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { resample } from '../../src/data-processing/resample.js';
import {
  copyWindow,
  type FeatureMatrix,
  type MultiTimeframeFeatures,
} from '../../src/data-processing/feature-engineering.js';
import type { Candles, Timeframe } from '../../src/data-processing/candles.js';
import {
  decideEvery,
  ObservationBuilder,
  fullObservationSpec,
  observationColumnNames,
  observationSize,
  type ObservationSpec,
  type Policy,
} from '../../src/evaluation/policy.js';
import { simpleFeatures, walkCandles } from '../models/reinforcement/helpers.js';

const base = walkCandles(96 * 20, 2);
const candles = new Map<Timeframe, Candles>([
  ['15m', base],
  ['4h', resample(base, '4h').candles],
  ['1d', resample(base, '1d').candles],
]);
const big = { '15m': 64, '4h': 32, '1d': 4 };
const features = simpleFeatures(candles, big);

/** The same features with forming rows for 4h and 1d (arbitrary values on the base rows). */
function withForming(f: MultiTimeframeFeatures): MultiTimeframeFeatures {
  const formingRows = new Map<Timeframe, FeatureMatrix>();
  const n = f.aligned.base.openTime.length;
  for (const tf of ['4h', '1d'] as const) {
    const m = f.perTimeframe.get(tf)!;
    const values = Float32Array.from(
      { length: n * m.cols },
      (_, k) => Math.sin(k) + (tf === '4h' ? 10 : 20),
    );
    formingRows.set(tf, { ...m, values, rows: n, time: f.decisionRows.time });
  }
  return { ...f, formingRows } as MultiTimeframeFeatures;
}

function expected(f: MultiTimeframeFeatures, spec: ObservationSpec, row: number): Float32Array {
  const out = new Float32Array(observationSize(spec));
  let o = 0;
  for (const tf of spec.timeframes) {
    const w = spec.windows[tf] ?? 0;
    copyWindow(f, tf, row, w, out, o);
    o += w * f.perTimeframe.get(tf)!.cols;
  }
  return out;
}

describe('ObservationBuilder', () => {
  for (const [label, f] of [
    ['last-closed', features],
    ['forming', withForming(features)],
  ] as const) {
    it(`equals copyWindow for any sequence of rows (${label}, sliding shadow buffer)`, () => {
      const spec = fullObservationSpec(f, big, false);
      const builder = new ObservationBuilder(f, spec);
      expect(builder.size).toBeGreaterThanOrEqual(256); // exercises the shadow path
      const n = f.aligned.base.openTime.length;
      const out = new Float32Array(builder.size + 3);
      fc.assert(
        fc.property(
          fc.array(
            fc.oneof(
              fc.constant(1),
              fc.constant(1),
              fc.constant(0),
              fc.integer({ min: -50, max: 50 }),
            ),
            { minLength: 1, maxLength: 80 },
          ),
          fc.integer({ min: 0, max: n - 1 }),
          (moves, start) => {
            let row = start;
            for (const m of moves) {
              row = Math.min(n - 1, Math.max(0, row + m));
              builder.build(row, null, out, 3);
              const want = expected(f, spec, row);
              expect(Array.from(out.subarray(3))).toEqual(Array.from(want));
            }
          },
        ),
        { numRuns: 60, seed: 1 },
      );
    });
  }

  it('selects named features in the spec order and appends the account fields asked for', () => {
    const spec: ObservationSpec = {
      timeframes: ['15m', '4h'],
      windows: { '15m': 2, '4h': 1 },
      features: { '15m': ['trend', 'ret'], '4h': ['range'] },
      account: ['drawdown', 'position', 'timeInPosition'],
    };
    expect(observationColumnNames(spec)).toEqual([
      '15m[t-1].trend',
      '15m[t-1].ret',
      '15m[t].trend',
      '15m[t].ret',
      '4h[t].range',
      'account.drawdown',
      'account.position',
      'account.timeInPosition',
    ]);
    const builder = new ObservationBuilder(features, spec);
    const out = new Float32Array(builder.size);
    const row = 500;
    builder.build(
      row,
      { position: -0.5, unrealizedPnl: 0.1, barsInPosition: 3, drawdown: 0.2 },
      out,
      0,
    );
    const m15 = features.perTimeframe.get('15m')!;
    const m4 = features.perTimeframe.get('4h')!;
    const r4 = features.rowIndex.get('4h')![row];
    expect(out[0]).toBe(m15.values[(row - 1) * 3 + 2]);
    expect(out[1]).toBe(m15.values[(row - 1) * 3]);
    expect(out[3]).toBe(m15.values[row * 3]);
    expect(out[4]).toBe(m4.values[r4 * 3 + 1]);
    expect(Array.from(out.subarray(5))).toEqual([
      Math.fround(0.2),
      -0.5,
      Math.fround(Math.log1p(3)),
    ]);
    expect(
      () => new ObservationBuilder(features, { ...spec, features: { '15m': ['nope'] } }),
    ).toThrow(RangeError);
    expect(() => builder.build(-1, null, out, 0)).toThrow(RangeError);
  });
});

describe('decideEvery', () => {
  it('asks the policy every k bars and holds its targets in between, from each reset', () => {
    let calls = 0;
    const inner: Policy = {
      observation: { timeframes: [], windows: {}, features: {}, account: false },
      act(_obs, n, out) {
        calls++;
        for (let i = 0; i < n; i++) out[i] = calls * (i + 1) * 0.1;
      },
    };
    const p = decideEvery(inner, 3);
    const out = new Float32Array(2);
    const seen: number[][] = [];
    p.reset?.(2);
    for (let bar = 0; bar < 7; bar++) {
      p.act(new Float32Array(0), 2, out);
      seen.push(Array.from(out, (x) => Math.round(x * 10)));
    }
    expect(seen).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
      [2, 4],
      [2, 4],
      [2, 4],
      [3, 6],
    ]);
    p.reset?.(2);
    p.act(new Float32Array(0), 2, out);
    expect(calls).toBe(4);
    expect(decideEvery(inner, 1)).toBe(inner);
    expect(() => decideEvery(inner, 0)).toThrow(RangeError);
  });
});
