import { describe, expect, it } from 'vitest';
import { measureWarmup } from '../../src/live/warmup.js';
import { defaultConfig } from '../../src/utils/config.js';
import { realSpan } from '../helpers/real-candles.js';
import { hasSharedData, SKIP_REASON } from '../helpers/shared-data.js';

describe.skipIf(!hasSharedData)(`warm-up check on real BTC candles${SKIP_REASON}`, () => {
  it('features from the default warm-up (live.warmupDays) equal those from two years of history bit for bit; 120 days do not', async () => {
    const c = defaultConfig();
    const data = await realSpan(
      'BTCUSDT',
      ['15m', '4h', '1d'],
      Date.UTC(2021, 0, 1),
      Date.UTC(2023, 2, 1),
    );
    const [short, long] = measureWarmup(data, {
      spec: c.features,
      windows: c.windows,
      fromMs: Date.UTC(2023, 1, 1),
      warmupDays: [120, c.live.warmupDays],
    });
    // Tolerance at the default warm-up: none (measured: 0 values differ from 330 days on).
    expect(long).toMatchObject({ warmupDays: 365, maxAbsDiff: 0, differing: 0 });
    expect(long.values).toBeGreaterThan(300_000);
    // Too short: support/resistance still remembers swings the short history never saw.
    expect(short.maxAbsDiff).toBeGreaterThan(1);
    expect(short.worstFeature).toMatch(/sr_|res_|sup_/);
  });
});
