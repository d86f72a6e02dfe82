import { describe, expect, it } from 'vitest';
import type { Candles, Timeframe } from '../../src/data-processing/candles.js';
import {
  buildFeatures,
  StreamingFeatures,
  type MultiTimeframeFeatures,
} from '../../src/data-processing/feature-engineering.js';
import { ConfigError, DataValidationError } from '../../src/errors.js';
import { fullObservationSpec, ObservationBuilder } from '../../src/evaluation/policy.js';
import { defaultConfig } from '../../src/utils/config.js';
import { realSpan } from '../helpers/real-candles.js';
import { hasSharedData, SKIP_REASON } from '../helpers/shared-data.js';

const TFS: Timeframe[] = ['15m', '4h', '1d'];
const MS: Record<string, number> = { '15m': 900_000, '4h': 14_400_000, '1d': 86_400_000 };

/** Streams candles in the live order: each higher candle right before the base row it closes by. */
function stream(data: Map<Timeframe, Candles>, initialCapacity = 16): StreamingFeatures {
  const sf = new StreamingFeatures('BTC/USDT', '15m', ['4h', '1d'], { initialCapacity });
  const base = data.get('15m')!;
  const next: Record<string, number> = { '4h': 0, '1d': 0 };
  for (let i = 0; i < base.openTime.length; i++) {
    const close = base.openTime[i] + MS['15m'];
    for (const tf of ['4h', '1d'] as Timeframe[]) {
      const h = data.get(tf)!;
      while (next[tf] < h.openTime.length && h.openTime[next[tf]] + MS[tf] <= close) {
        const k = next[tf]++;
        sf.pushHigher(tf, {
          openTime: h.openTime[k],
          open: h.open[k],
          high: h.high[k],
          low: h.low[k],
          close: h.close[k],
          volume: h.volume[k],
        });
      }
    }
    sf.pushBase({
      openTime: base.openTime[i],
      open: base.open[i],
      high: base.high[i],
      low: base.low[i],
      close: base.close[i],
      volume: base.volume[i],
    });
  }
  return sf;
}

/** Float32 bits (NaN-safe, -0-safe) for exact comparison. */
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function expectSameFeatures(s: MultiTimeframeFeatures, b: MultiTimeframeFeatures): void {
  expect(s.firstValidRow).toBe(b.firstValidRow);
  for (const tf of TFS) {
    const sm = s.perTimeframe.get(tf)!;
    const bm = b.perTimeframe.get(tf)!;
    expect(sm.names).toEqual(bm.names);
    expect(sm.rows).toBe(bm.rows);
    expect(bits(sm.values)).toEqual(bits(bm.values));
    expect([...s.rowIndex.get(tf)!]).toEqual([...b.rowIndex.get(tf)!]);
  }
  const sd = s.decisionRows;
  const bd = b.decisionRows;
  expect(sd.names).toEqual(bd.names);
  expect([...bits(sd.values)]).toEqual([...bits(bd.values)]);
}

describe.skipIf(!hasSharedData)(`streaming features on real BTC candles${SKIP_REASON}`, () => {
  it('equal the batch features and observations bit for bit, one closed candle at a time (Oct 2022-Apr 2023, the 2023-03-24 halt included)', async () => {
    const data = await realSpan('BTCUSDT', TFS, Date.UTC(2022, 9, 1), Date.UTC(2023, 3, 1));
    const batch = buildFeatures(data);
    const sf = stream(data);
    const live = sf.view();
    expect(live.aligned.base.openTime.length).toBe(data.get('15m')!.openTime.length);
    expectSameFeatures(live, batch);
    // The policy's view: every observation from the first valid row on, account fields included.
    const spec = fullObservationSpec(batch, defaultConfig().windows, true);
    const ob = new ObservationBuilder(batch, spec);
    const os = new ObservationBuilder(live, spec);
    const a = new Float32Array(ob.size);
    const b = new Float32Array(os.size);
    const ab = bits(a);
    const bb = bits(b);
    const account = { position: 0.5, unrealizedPnl: 0.01, barsInPosition: 3, drawdown: 0.02 };
    let differing = 0;
    for (let r = batch.firstValidRow; r < batch.aligned.base.openTime.length; r++) {
      ob.build(r, account, a, 0);
      os.build(r, account, b, 0);
      for (let k = 0; k < ab.length; k++)
        if (ab[k] !== bb[k]) {
          differing++;
          break;
        }
    }
    expect(batch.firstValidRow).toBeLessThan(batch.aligned.base.openTime.length - 5000);
    expect(differing).toBe(0);
  });

  it('gives the same rows whether its buffers grow many times or never (Nov 2022)', async () => {
    const data = await realSpan('BTCUSDT', TFS, Date.UTC(2022, 10, 1), Date.UTC(2022, 11, 1));
    const full = stream(data, 4096).view();
    const batch = buildFeatures(data);
    expectSameFeatures(full, batch);
  });

  it('refuses a higher candle that arrives after the base rows it closes by, and forming alignment', async () => {
    const sf = new StreamingFeatures('BTC/USDT', '15m', ['4h']);
    const c = { openTime: 0, open: 1, high: 1, low: 1, close: 1, volume: 1 };
    for (let i = 0; i < 17; i++) sf.pushBase({ ...c, openTime: i * MS['15m'] });
    expect(() => sf.pushHigher('4h', c)).toThrow(DataValidationError);
    expect(() => sf.pushBase({ ...c, openTime: 0 })).toThrow(DataValidationError);
    const forming = { ...defaultConfig().features, alignment: 'forming' as const };
    expect(() => new StreamingFeatures('BTC/USDT', '15m', ['4h'], { spec: forming })).toThrow(
      ConfigError,
    );
  });
});
