// The env on real Binance candles (15m, 4h, 1d from ../shared/data, with their real gaps): the env
// checker passes, a buy-and-hold episode reproduces the hand-computed return, and a train-range
// env never touches the test split.

import { beforeAll, describe, expect, it } from 'vitest';
import { sliceByTime, type Candles, type Timeframe } from '../../../src/data-processing/candles.js';
import { readCandlesCsv } from '../../../src/data-processing/file-formats.js';
import {
  buildFeatures,
  type MultiTimeframeFeatures,
} from '../../../src/data-processing/feature-engineering.js';
import { checkEnv } from '../../../src/models/reinforcement/env-checker.js';
import { CryptoTradingEnv } from '../../../src/models/reinforcement/trading-env.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../../helpers/shared-data.js';

const FROM = Date.UTC(2022, 9, 1);
const SPLIT = Date.UTC(2023, 0, 1);
const TO = Date.UTC(2023, 3, 1);

describe.skipIf(!hasSharedData)(`CryptoTradingEnv on real BTC/USDT candles${SKIP_REASON}`, () => {
  let features: MultiTimeframeFeatures;

  beforeAll(async () => {
    const byTf = new Map<Timeframe, Candles>();
    for (const tf of ['15m', '4h', '1d'] as const) {
      const { candles } = await readCandlesCsv(sharedFile(`binance-BTCUSDT-${tf}.csv.gz`), {
        symbol: 'BTC/USDT',
        timeframe: tf,
      });
      byTf.set(tf, sliceByTime(candles, FROM, TO));
    }
    features = buildFeatures(byTf, { windows: { '15m': 64, '4h': 32, '1d': 16 } });
  });

  it('passes the env checker with the default windows and features', () => {
    const env = new CryptoTradingEnv(features, { env: { maxEpisodeSteps: 500 } });
    expect(env.observationSize).toBeGreaterThan(1000);
    const r = checkEnv(env, { seed: 1, steps: 300 });
    expect(r.problems).toEqual([]);
  });

  it('a long held from the first fill to the data end earns close_end / open_start - f', () => {
    const f = 0.001;
    const env = new CryptoTradingEnv(features, {
      transactionCost: f,
      broker: { funding: { enabled: false }, slippage: { model: 'fixed', fixedBps: 0 } },
      env: { randomStart: false },
    });
    const [, first] = env.reset();
    const c = features.aligned.base;
    let out = env.step(2);
    let sum = out[1];
    while (!out[2] && !out[3]) {
      out = env.step(2);
      sum += out[1];
    }
    const info = out[4];
    expect(info.truncationReason).toBe('data-end');
    expect(info.row).toBe(c.openTime.length - 1);
    const ratio = c.close[info.row] / c.open[first.row + 1] - f;
    expect(info.equity / 10_000).toBeCloseTo(ratio, 10);
    expect(sum).toBeCloseTo(Math.log(ratio), 10);
  });

  it('an env on the train range never starts, fills or observes at or after the split', () => {
    const env = new CryptoTradingEnv(features, {
      timeRange: { fromMs: FROM, toMs: SPLIT },
      env: { maxEpisodeSteps: 3000 },
    });
    const c = features.aligned.base;
    for (let ep = 0; ep < 20; ep++) {
      env.reset({ seed: ep });
      let out = env.step(ep % 3);
      while (!out[2] && !out[3]) out = env.step((out[4].steps * 7) % 3);
      expect(c.openTime[out[4].row]).toBeLessThan(SPLIT);
      const fills = env.broker.fills;
      for (let i = 0; i < fills.length; i++) expect(fills.timeMs[i]).toBeLessThan(SPLIT);
    }
  });
});
