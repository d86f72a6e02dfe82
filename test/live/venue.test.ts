import { describe, expect, it } from 'vitest';
import { LiveTradingError } from '../../src/errors.js';
import type { Exchange } from 'ccxt';
import { CcxtVenue, liveConfirmation, liveCredentials } from '../../src/live/venue.js';
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

/**
 * A spot account stub: market orders fill at once, a buy's 0.1% fee is taken in the base currency
 * (as Binance does without BNB); amounts have 5 decimals, the minimum is 0.0001 BTC.
 */
function spotAccount(): { exchange: Exchange; orders: Array<{ side: string; amount: number }> } {
  const account = { BTC: 0 };
  const orders: Array<{ side: string; amount: number }> = [];
  const stub = {
    market: () => ({ base: 'BTC', limits: { amount: { min: 0.0001 } } }),
    amountToPrecision: (_s: string, x: number) => x.toFixed(5),
    fetchBalance: () => Promise.resolve({ total: { BTC: account.BTC } }),
    createOrder: (_s: string, _t: string, side: string, amount: number) => {
      orders.push({ side, amount });
      account.BTC += side === 'buy' ? amount * (1 - 0.001) : -amount;
      return Promise.resolve({ id: String(orders.length) });
    },
  };
  return { exchange: stub as unknown as Exchange, orders };
}

describe('the live venue', () => {
  it('orders the difference to the position the exchange reports, so a restart repeats no order', async () => {
    const { exchange, orders } = spotAccount();
    const t0 = Date.UTC(2024, 0, 1);
    const venue = new CcxtVenue(exchange, 'BTC/USDT', 12, 0.02);
    expect(await venue.rebalance(0.5, t0)).toBeNull();
    expect(orders).toEqual([{ side: 'buy', amount: 0.5 }]);
    // The process dies before journaling the bar; the restarted one decides the same target.
    const restarted = new CcxtVenue(exchange, 'BTC/USDT', 12, 0.02);
    expect(await restarted.rebalance(0.5, t0)).toBeNull();
    // The fee left 0.4995 BTC: inside the tolerance, no second order.
    expect(orders).toHaveLength(1);
    expect(await restarted.rebalance(0, t0 + 900_000)).toBeNull();
    expect(orders[1]).toEqual({ side: 'sell', amount: 0.4995 });
    expect(await restarted.position()).toBeCloseTo(0, 12);
  });

  it('keeps to live.maxOrdersPerHour and the exchange minimum', async () => {
    const { exchange, orders } = spotAccount();
    const t0 = Date.UTC(2024, 0, 1);
    const venue = new CcxtVenue(exchange, 'BTC/USDT', 2, 0);
    expect(await venue.rebalance(0.00005, t0)).toMatch(/minimum/);
    expect(await venue.rebalance(0.1, t0)).toBeNull();
    expect(await venue.rebalance(0.3, t0 + 60_000)).toBeNull();
    expect(await venue.rebalance(0.6, t0 + 120_000)).toBe('live.maxOrdersPerHour reached');
    expect(orders).toHaveLength(2);
    // An hour after the first order, one more may go.
    expect(await venue.rebalance(0.6, t0 + 3_600_000)).toBeNull();
    expect(orders).toHaveLength(3);
  });
});
