// ccxt downloads against a loopback imitation of Binance: faults and retries, rate limit,
// incremental resumption, the forming candle, repair of off-grid candles.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadCandles, type DownloadSettings } from '../../src/data-processing/exchange.js';
import { CandleStore, type SeriesKey } from '../../src/data-processing/store.js';
import { DataValidationError, ExchangeError, UsageError } from '../../src/errors.js';
import { FakeBinance } from '../helpers/fake-binance.js';
import { candleRows } from '../helpers/candles.js';

const M15 = 900_000;
const H4 = 14_400_000;
// The fake exchange lists both pairs from 2024-01-01 and its clock stands at 2024-01-04 10:07:30,
// so the 15m candle opened at 10:00 is still forming and must never be stored.
const LISTED = Date.UTC(2024, 0, 1);
const NOW = Date.UTC(2024, 0, 4, 10, 7, 30);
// A maintenance window without candles: 2024-01-02 02:00 to 05:00.
const GAP: [number, number] = [Date.UTC(2024, 0, 2, 2), Date.UTC(2024, 0, 2, 5)];

const settings = (over: Partial<DownloadSettings> = {}): DownloadSettings => ({
  pageLimit: 50,
  maxRetries: 4,
  backoffMs: 5,
  maxBackoffMs: 50,
  timeoutMs: 2_000,
  baseUrl: null,
  ...over,
});

let dir: string;
let fake: FakeBinance;
let store: CandleStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-exchange-'));
  fake = await FakeBinance.start({
    markets: { 'BTC/USDT': 'BTCUSDT', 'ETH/USDT': 'ETHUSDT' },
    nowMs: NOW,
    listedMs: LISTED,
    gaps: [GAP],
  });
  store = await CandleStore.open(join(dir, 'store.duckdb'));
});

afterEach(async () => {
  store.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Stored rows of a series as [t, o, h, l, c, v] arrays, for comparison with the server's truth. */
async function storedRows(key: SeriesKey): Promise<number[][]> {
  return candleRows(await store.read(key));
}

const btc15: SeriesKey = { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '15m' };

describe('downloadCandles against a loopback Binance', () => {
  it('pages through 429, 500, a dropped connection and a timeout, and stores exactly the closed candles', async () => {
    fake.faults.push('429', '500', 'drop', 'hang');
    const reports = await downloadCandles(store, {
      exchange: 'binance',
      symbols: ['BTC/USDT'],
      timeframes: ['15m', '4h'],
      sinceMs: LISTED,
      untilMs: null,
      settings: settings({ baseUrl: fake.url, timeoutMs: 300 }),
      now: () => Date.UTC(2026, 0, 1), // a local clock far ahead: the exchange's Date header wins
    });
    const truth15 = fake.closedCandles('BTC/USDT', '15m', LISTED);
    expect(await storedRows(btc15)).toEqual(truth15);
    expect(await storedRows({ ...btc15, timeframe: '4h' })).toEqual(
      fake.closedCandles('BTC/USDT', '4h', LISTED),
    );
    // 3 days and 10 hours of 15m candles minus the 12 of the maintenance window.
    expect(truth15.length).toBe(3 * 96 + 40 - 12);
    const [r15, r4h] = reports;
    expect(r15).toMatchObject({
      added: truth15.length,
      changed: 0,
      retries: 4,
      skippedForming: true,
    });
    expect(r15.gaps.count).toBe(1);
    expect(r15.gaps.gaps[0]).toMatchObject({ afterOpenTime: GAP[0] - M15, nextOpenTime: GAP[1] });
    expect(r4h.retries).toBe(0);
    expect(r15.lastOpenTime).toBe(Date.UTC(2024, 0, 4, 9, 45));
    expect(r4h.lastOpenTime).toBe(Date.UTC(2024, 0, 4, 4));
    // Every failed request was retried from the same place, and pages follow each other.
    const kl = fake.requests.filter((r) => r.interval === '15m');
    expect(kl.slice(0, 5).map((r) => r.served)).toEqual(['429', '500', 'drop', 'hang', 'ok']);
    expect(new Set(kl.slice(0, 5).map((r) => r.startTime))).toEqual(new Set([LISTED]));
    // The 429's Retry-After (1 s) was honoured before the next request.
    expect(kl[1].at - kl[0].at).toBeGreaterThanOrEqual(990);
    // ccxt's rate limiter (a token bucket: Binance allows one light request per 50 ms, bursts of
    // two) holds every stretch of requests to that pace; back to back they would be ms apart. The
    // bound allows one request more than the burst (the times are taken where the loopback server
    // receives each request, so the client's spacing reaches it with a few ms of jitter).
    const all = fake.requests;
    expect(all.length).toBe(4 + 7 + 1);
    for (let i = 0; i < all.length; i++)
      for (let j = i + 4; j < all.length; j++)
        expect(all[j].at - all[i].at).toBeGreaterThanOrEqual((j - i - 3) * 50 * 0.9);
    expect(await store.pendingDownload(btc15)).toBeNull();
  });

  it('is incremental: a later run asks only for candles after the last stored one and adds no duplicates', async () => {
    const opts = {
      exchange: 'binance',
      symbols: ['BTC/USDT'],
      timeframes: ['15m'],
      sinceMs: LISTED,
      untilMs: null,
      settings: settings({ baseUrl: fake.url }),
    };
    await downloadCandles(store, opts);
    const before = fake.requests.length;
    fake.nowMs = NOW + 3 * 3_600_000; // three hours later: 12 more closed candles
    const [r] = await downloadCandles(store, opts);
    const later = fake.requests.slice(before);
    expect(later[0].startTime).toBe(Date.UTC(2024, 0, 4, 10));
    expect(r).toMatchObject({ added: 12, changed: 0, unchanged: 0, pages: 1 });
    expect(await storedRows(btc15)).toEqual(fake.closedCandles('BTC/USDT', '15m', LISTED));
    // Nothing new: one request, nothing written.
    const [again] = await downloadCandles(store, { ...opts, sinceMs: null });
    expect(again).toMatchObject({ added: 0, pages: 1 });
  });

  it('fetches the missing start when --since is earlier than the first stored candle, and stops at --until', async () => {
    const base = {
      exchange: 'binance',
      symbols: ['ETH/USDT'],
      timeframes: ['4h'],
      settings: settings({ baseUrl: fake.url }),
    };
    const eth4h: SeriesKey = { exchange: 'binance', symbol: 'ETH/USDT', timeframe: '4h' };
    await downloadCandles(store, {
      ...base,
      sinceMs: LISTED + 2 * 86_400_000,
      untilMs: LISTED + 3 * 86_400_000,
    });
    expect((await store.span(eth4h))?.rows).toBe(6);
    await downloadCandles(store, { ...base, sinceMs: LISTED, untilMs: null });
    expect(await storedRows(eth4h)).toEqual(fake.closedCandles('ETH/USDT', '4h', LISTED));
    expect((await store.span(eth4h))?.firstOpenTime).toBe(LISTED);
  });

  it('gives up after maxRetries with an ExchangeError naming the URL, and the rerun resumes from the journal', async () => {
    const opts = {
      exchange: 'binance',
      symbols: ['BTC/USDT'],
      timeframes: ['15m'],
      sinceMs: LISTED,
      untilMs: null,
      settings: settings({ baseUrl: fake.url, maxRetries: 2 }),
    };
    // Three pages succeed, then the exchange fails three times in a row.
    fake.onPage = (n) => {
      if (n === 3) fake.faults.push('500', '500', '500');
    };
    const err = await downloadCandles(store, opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExchangeError);
    expect((err as ExchangeError).exitCode).toBe(4);
    expect((err as ExchangeError).url).toContain(fake.url);
    expect((err as ExchangeError).message).toMatch(/failed after 3 attempts/);
    const pending = await store.pendingDownload(btc15);
    expect(pending?.nextMs).toBe(LISTED + 162 * M15); // 150 candles and the 12 of the gap
    expect((await store.span(btc15))?.rows).toBe(150);
    fake.onPage = null;
    const before = fake.requests.length;
    await downloadCandles(store, { ...opts, sinceMs: null });
    expect(fake.requests[before].startTime).toBe(LISTED + 162 * M15);
    expect(await storedRows(btc15)).toEqual(fake.closedCandles('BTC/USDT', '15m', LISTED));
    expect(await store.pendingDownload(btc15)).toBeNull();
  });

  it('refuses off-grid candles from the exchange unless repair is on, then drops them', async () => {
    await fake.close();
    const offGrid = LISTED + 10 * H4;
    fake = await FakeBinance.start({
      markets: { 'BTC/USDT': 'BTCUSDT' },
      nowMs: NOW,
      listedMs: LISTED,
      offGrid: [offGrid],
      offGridShiftMs: 58_789,
    });
    const opts = {
      exchange: 'binance',
      symbols: ['BTC/USDT'],
      timeframes: ['4h'],
      sinceMs: LISTED,
      untilMs: null,
      settings: settings({ baseUrl: fake.url }),
    };
    const err = await downloadCandles(store, opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataValidationError);
    expect((err as DataValidationError).field).toBe('open_time');
    expect((err as DataValidationError).openTime).toBe(offGrid + 58_789);
    expect((err as DataValidationError).row).toBe(10);
    expect(await store.span({ ...btc15, timeframe: '4h' })).toBeNull();
    const [r] = await downloadCandles(store, { ...opts, repair: true });
    expect(r.repaired).toBe(1);
    const rows = await storedRows({ ...btc15, timeframe: '4h' });
    expect(rows.map((x) => x[0])).not.toContain(offGrid + 58_789);
    expect(rows.length).toBe(fake.closedCandles('BTC/USDT', '4h', LISTED).length - 1);
  });

  it('refuses unknown exchanges, symbols and first downloads without a start date', async () => {
    const base = {
      timeframes: ['15m'],
      untilMs: null,
      settings: settings({ baseUrl: fake.url }),
    };
    await expect(
      downloadCandles(store, {
        ...base,
        exchange: 'nosuchexchange',
        symbols: ['BTC/USDT'],
        sinceMs: LISTED,
      }),
    ).rejects.toThrow(UsageError);
    await expect(
      downloadCandles(store, {
        ...base,
        exchange: 'binance',
        symbols: ['DOGE/EUR'],
        sinceMs: LISTED,
      }),
    ).rejects.toThrow(/binance has no market DOGE\/EUR/);
    await expect(
      downloadCandles(store, {
        ...base,
        exchange: 'binance',
        symbols: ['BTC/USDT'],
        sinceMs: null,
      }),
    ).rejects.toThrow(/nothing stored for binance\/BTC\/USDT\/15m yet/);
    expect(fake.requests).toEqual([]);
  });
});
