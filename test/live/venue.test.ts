import { describe, expect, it } from 'vitest';
import { LiveTradingError } from '../../src/errors.js';
import { liveConfirmation, liveCredentials } from '../../src/live/venue.js';
import { loadConfig } from '../../src/utils/config.js';

const confirmed = loadConfig({
  overrides: [{ live: { confirm: liveConfirmation('binance', 'BTC/USDT') } }],
});
const env = { CTM_API_KEY: 'k-123', CTM_API_SECRET: 's-456' };

describe('the live switch', () => {
  it('needs --live, then live.confirm with the exact phrase, then both API key variables', () => {
    const err = (f: () => unknown): LiveTradingError => {
      try {
        f();
      } catch (e) {
        return e as LiveTradingError;
      }
      throw new Error('did not throw');
    };
    expect(err(() => liveCredentials(confirmed, 'binance', 'BTC/USDT', false, env)).keyPath).toBe(
      '--live',
    );
    const unconfirmed = loadConfig();
    const e = err(() => liveCredentials(unconfirmed, 'binance', 'BTC/USDT', true, env));
    expect(e).toBeInstanceOf(LiveTradingError);
    expect(e.keyPath).toBe('live.confirm');
    expect(e.hint).toContain('real orders on binance BTC/USDT');
    // Confirmed for another symbol is not confirmed.
    expect(err(() => liveCredentials(confirmed, 'binance', 'ETH/USDT', true, env)).keyPath).toBe(
      'live.confirm',
    );
    expect(
      err(() => liveCredentials(confirmed, 'binance', 'BTC/USDT', true, { CTM_API_SECRET: 's' }))
        .keyPath,
    ).toBe('CTM_API_KEY');
    expect(
      err(() => liveCredentials(confirmed, 'binance', 'BTC/USDT', true, { CTM_API_KEY: 'k' }))
        .keyPath,
    ).toBe('CTM_API_SECRET');
    expect(liveCredentials(confirmed, 'binance', 'BTC/USDT', true, env)).toEqual({
      apiKey: 'k-123',
      secret: 's-456',
    });
  });

  it('never puts the keys in an error message', () => {
    expect.assertions(1);
    try {
      liveCredentials(confirmed, 'binance', 'BTC/USDT', true, { CTM_API_KEY: 'k-123' });
    } catch (e) {
      expect(String((e as Error).message)).not.toContain('k-123');
    }
  });
});
