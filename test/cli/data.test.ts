// The `ctm data` commands as a user runs them: the built CLI (`node dist/main.js`, built by
// `npm run build`, which `npm test` runs first) in a child process, on a temporary store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CandleStore, type SeriesKey } from '../../src/data-processing/store.js';
import { FakeBinance } from '../helpers/fake-binance.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';
import { candleRows } from '../helpers/candles.js';
import { assertBuilt, ctm } from '../helpers/ctm.js';

const GOOD = fileURLToPath(new URL('../fixtures/good', import.meta.url));
const BAD = fileURLToPath(new URL('../fixtures/bad', import.meta.url));

/** stderr without the JSON log lines: what the user reads as the error. */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
}

let dir: string;
beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'ctm-cli-data-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function checksum(storePath: string, filter: Partial<SeriesKey> = {}): Promise<string> {
  const s = await CandleStore.open(storePath, { readOnly: true });
  try {
    return await s.checksum(filter);
  } finally {
    s.close();
  }
}

async function readRows(storePath: string, key: SeriesKey): Promise<number[][]> {
  const s = await CandleStore.open(storePath, { readOnly: true });
  try {
    return candleRows(await s.read(key));
  } finally {
    s.close();
  }
}

describe('ctm data import on bad input', () => {
  let store: string;
  let set: string[];
  let before: string;
  beforeAll(async () => {
    store = join(dir, 'bad.duckdb');
    set = ['--set', `paths.store=${store}`];
    const r = await ctm([
      'data',
      'import',
      join(GOOD, 'header-ms.csv'),
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '15m',
      ...set,
    ]);
    expect(r.code).toBe(0);
    before = await checksum(store);
  });

  // [file, line, field]: the one-line message names both; exit 3 is "bad data".
  const cases: [string, number, string | null][] = [
    ['malformed-number.csv', 4, 'high'],
    ['nan.csv', 3, 'close'],
    ['infinity.csv', 5, 'volume'],
    ['high-below-max.csv', 6, 'high'],
    ['low-above-min.csv', 7, 'low'],
    ['negative-volume.csv', 8, 'volume'],
    ['unsorted.csv', 6, 'open_time'],
    ['duplicate.csv', 6, 'open_time'],
    ['conflicting-duplicate.csv', 6, 'open_time'],
    ['off-grid.csv', 4, 'open_time'],
    ['too-few-fields.csv', 7, 'volume'],
    ['missing-column.csv', 1, 'volume'],
    ['truncated.csv.gz', 211, null],
    ['garbled.csv.gz', 1, null],
    ['not-gzip.csv.gz', 1, null],
    ['missing-comma.json', 3, null],
    ['word-for-number.json', 4, 'low'],
    ['truncated.json', 6, null],
  ];
  it('has a case for every bad fixture', () => {
    expect(readdirSync(BAD).sort()).toEqual(cases.map((c) => c[0]).sort());
  });
  it.each(cases)(
    '%s: exit 3, one line naming line %i and field %s; store unchanged',
    async (file, line, field) => {
      const r = await ctm([
        'data',
        'import',
        join(BAD, file),
        '--symbol',
        'BTC/USDT',
        '--timeframe',
        '15m',
        ...set,
      ]);
      expect(r.code).toBe(3);
      const lines = errorLines(r.stderr);
      expect(lines[0]).toMatch(
        new RegExp(`^error: ${join(BAD, file).replaceAll('.', '\\.')}, line ${line}[,:]`),
      );
      if (field !== null) expect(lines[0]).toContain(`field ${field}`);
      expect(lines.slice(1).every((l) => l.startsWith('hint: '))).toBe(true);
      expect(r.stdout).toBe('');
      expect(await checksum(store)).toBe(before);
    },
  );

  it('refuses an unknown timeframe (exit 3) and usage mistakes (exit 2), each in one line, store unchanged', async () => {
    const file = join(GOOD, 'header-ms.csv');
    const tf = await ctm([
      'data',
      'import',
      file,
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '7m',
      ...set,
    ]);
    expect(tf.code).toBe(3);
    expect(errorLines(tf.stderr)[0]).toMatch(/field timeframe: unknown timeframe "7m"/);
    for (const args of [
      [file, '--timeframe', '15m'], // no --symbol
      [file, '--symbol', 'btc-usdt', '--timeframe', '15m'],
      [file, '--symbol', 'BTC/USDT', '--timeframe', '15m', '--format', 'xlsx'],
      [join(dir, 'absent.csv'), '--symbol', 'BTC/USDT', '--timeframe', '15m'],
      [file, '--symbol', 'BTC/USDT', '--timeframe', '15m', '--set', 'data.nosuchkey=1'],
    ]) {
      const r = await ctm(['data', 'import', ...args, ...set]);
      expect(r.code).toBe(2);
      expect(errorLines(r.stderr)[0]).toMatch(/^error: /);
    }
    expect(await checksum(store)).toBe(before);
  });

  it('imports the duplicate and off-grid files with --repair, logging each dropped row', async () => {
    const r = await ctm([
      'data',
      'import',
      join(BAD, 'off-grid.csv'),
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '15m',
      '--exchange',
      'repaired',
      '--repair',
      ...set,
    ]);
    expect(r.code).toBe(0);
    const logs = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.filter((l) => l.msg === 'repair: dropped row')).toEqual([
      expect.objectContaining({
        line: 4,
        openTime: '2023-01-01T00:30:58.789Z',
        action: 'dropped-off-grid',
      }),
    ]);
    expect(r.stdout).toMatch(/7 candles .* 7 added/);
    expect(r.stdout).toMatch(/repaired: 1 row dropped/);
  });
});

describe('ctm data info and export', () => {
  it('shows coverage and gaps, and exports CSV, CSV.gz and Parquet that re-import to the same candles', async () => {
    const store = join(dir, 'info.duckdb');
    const set = ['--set', `paths.store=${store}`];
    const empty = await ctm(['data', 'info', ...set]);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toMatch(/nothing stored yet/);
    expect(existsSync(store)).toBe(false);
    // off-grid.csv repaired: 7 candles with one missing between 00:15 and 00:45.
    await ctm([
      'data',
      'import',
      join(BAD, 'off-grid.csv'),
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '15m',
      '--repair',
      ...set,
    ]);
    await ctm([
      'data',
      'import',
      join(GOOD, 'freqtrade.json'),
      '--symbol',
      'ETH/USDT',
      '--timeframe',
      '15m',
      ...set,
    ]);
    const info = await ctm(['data', 'info', '--gaps', ...set]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(
      /binance\s+BTC\/USDT\s+15m\s+7\s+2023-01-01 00:00\s+2023-01-01 01:45\s+1\s+1\s+15m \(1 bar\) after 2023-01-01 00:15\s+import/,
    );
    expect(info.stdout).toMatch(/binance\s+ETH\/USDT\s+15m\s+8\s+/);
    expect(info.stdout).toContain('2023-01-01 00:15 -> 2023-01-01 00:45  1 missing');
    const json = JSON.parse(
      (await ctm(['data', 'info', '--json', '--symbol', 'BTC/USDT', ...set])).stdout,
    ) as {
      series: { rows: number; gaps: { count: number } }[];
    };
    expect(json.series).toHaveLength(1);
    expect(json.series[0]).toMatchObject({ rows: 7, gaps: { count: 1 } });

    const copy = join(dir, 'copy.duckdb');
    for (const ext of ['csv', 'csv.gz', 'parquet']) {
      const out = join(dir, `btc.${ext}`);
      const e = await ctm([
        'data',
        'export',
        '--symbol',
        'BTC/USDT',
        '--timeframe',
        '15m',
        '--out',
        out,
        ...set,
      ]);
      expect(e.code).toBe(0);
      expect(e.stdout).toContain(`exported 7 candles of binance BTC/USDT 15m to ${out}`);
      const i = await ctm([
        'data',
        'import',
        out,
        '--symbol',
        'BTC/USDT',
        '--timeframe',
        '15m',
        '--set',
        `paths.store=${copy}`,
      ]);
      expect(i.code).toBe(0);
    }
    const key = { symbol: 'BTC/USDT' };
    expect(await checksum(copy, key)).toBe(await checksum(store, key));
    const bad = await ctm([
      'data',
      'export',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '15m',
      '--out',
      join(dir, 'x.txt'),
      ...set,
    ]);
    expect(bad.code).toBe(2);
    expect(errorLines(bad.stderr)[0]).toMatch(/cannot tell the export format/);
  });
});

describe.skipIf(!hasSharedData)(`ctm data import on the real BTC 15m file${SKIP_REASON}`, () => {
  it('fails strictly at line 16749 (2018-02-09T09:58:14.789Z) leaving the store empty; --repair logs the 81 dropped rows', async () => {
    const store = join(dir, 'real.duckdb');
    const args = [
      'data',
      'import',
      sharedFile('binance-BTCUSDT-15m.csv.gz'),
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '15m',
      '--set',
      `paths.store=${store}`,
    ];
    const strict = await ctm(args);
    expect(strict.code).toBe(3);
    const [message, hint] = errorLines(strict.stderr);
    expect(message).toContain(
      'line 16749, field open_time, open_time 2018-02-09T09:58:14.789Z: off the 15m grid',
    );
    expect(hint).toMatch(/^hint: --repair/);
    expect(await checksum(store)).toBe('0:0');
    const repaired = await ctm([...args, '--repair']);
    expect(repaired.code).toBe(0);
    const dropped = repaired.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; line: number; openTime: string })
      .filter((l) => l.msg === 'repair: dropped row');
    expect(dropped).toHaveLength(81);
    expect(dropped.map((d) => d.line)).toEqual(Array.from({ length: 81 }, (_, i) => 16749 + i));
    expect(dropped[0].openTime).toBe('2018-02-09T09:58:14.789Z');
    expect(repaired.stdout).toContain('222,829 candles');
    expect(repaired.stdout).toContain(
      'repaired: 81 rows dropped (81 off the 15m grid, 0 exact duplicates)',
    );
  });
});

describe('ctm data download against a loopback Binance', () => {
  const LISTED = Date.UTC(2024, 0, 1);
  let fake: FakeBinance;
  beforeAll(async () => {
    fake = await FakeBinance.start({
      markets: { 'BTC/USDT': 'BTCUSDT', 'ETH/USDT': 'ETHUSDT' },
      nowMs: Date.UTC(2024, 0, 4, 10, 7, 30),
      listedMs: LISTED,
      gaps: [[Date.UTC(2024, 0, 2, 2), Date.UTC(2024, 0, 2, 5)]],
    });
  });
  afterAll(() => fake.close());

  const downloadArgs = (store: string, more: string[] = []) => [
    'data',
    'download',
    '--exchange',
    'binance',
    '--symbols',
    'BTC/USDT,ETH/USDT',
    '--timeframes',
    '15m,4h',
    '--since',
    '2024-01-01',
    '--set',
    `paths.store=${store}`,
    '--set',
    `data.download.baseUrl=${fake.url}`,
    '--set',
    'data.download.pageLimit=50',
    '--set',
    'data.download.backoffMs=5',
    ...more,
  ];

  it('killed mid-download (SIGKILL) and rerun, ends complete: no duplicates, no holes, no forming candle', async () => {
    const store = join(dir, 'download.duckdb');
    fake.faults.push('429', '500', 'drop');
    let killedAt = 0;
    const first = await ctm(downloadArgs(store), {
      onSpawn: (child) => {
        fake.onPage = (n) => {
          if (n === 4 && killedAt === 0) {
            killedAt = n;
            child.kill('SIGKILL');
          }
        };
      },
    });
    fake.onPage = null;
    expect(first.signal).toBe('SIGKILL');
    expect(fake.requests.slice(0, 4).map((r) => r.served)).toEqual(['429', '500', 'drop', 'ok']);
    const btc15: SeriesKey = { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '15m' };
    const truth = (symbol: string, tf: string) => fake.closedCandles(symbol, tf, LISTED);
    const partial = await readRows(store, btc15);
    expect(partial.length).toBeLessThan(truth('BTC/USDT', '15m').length);
    expect(partial).toEqual(truth('BTC/USDT', '15m').slice(0, partial.length)); // a prefix: no hole

    const before = fake.requests.length;
    const second = await ctm(downloadArgs(store));
    expect(second.code).toBe(0);
    // The rerun starts where the store (or its journal) says, not at --since.
    const resumedAt = fake.requests[before].startTime;
    expect(resumedAt).toBe(partial[partial.length - 1][0] + 900_000);
    for (const symbol of ['BTC/USDT', 'ETH/USDT']) {
      for (const tf of ['15m', '4h'] as const) {
        expect(await readRows(store, { exchange: 'binance', symbol, timeframe: tf })).toEqual(
          truth(symbol, tf),
        );
      }
    }
    expect(second.stdout).toMatch(
      /binance BTC\/USDT 15m: .* stored 2024-01-01 00:00 \.\. 2024-01-04 09:45 UTC, 1 gap \(12 missing candles\)/,
    );
    const info = JSON.parse(
      (await ctm(['data', 'info', '--json', '--set', `paths.store=${store}`])).stdout,
    ) as {
      series: { duplicates: number; pending: unknown }[];
    };
    expect(info.series).toHaveLength(4);
    for (const s of info.series) expect(s).toMatchObject({ duplicates: 0, pending: null });
    // A third run finds nothing new and changes nothing.
    const sum = await checksum(store);
    const third = await ctm(downloadArgs(store));
    expect(third.code).toBe(0);
    expect(third.stdout).toMatch(/BTC\/USDT 15m: 0 added, 0 changed/);
    expect(await checksum(store)).toBe(sum);
  });

  it('exits 4 with one line when the exchange keeps failing', async () => {
    const store = join(dir, 'fail.duckdb');
    fake.faults.push('500', '500');
    const r = await ctm(downloadArgs(store, ['--set', 'data.download.maxRetries=1']));
    fake.faults.length = 0;
    expect(r.code).toBe(4);
    const lines = errorLines(r.stderr);
    expect(lines[0]).toMatch(
      /^error: binance fetchOHLCV BTC\/USDT 15m since 2024-01-01T00:00:00\.000Z failed after 2 attempts: .*500/,
    );
    expect(lines.slice(1).every((l) => l.startsWith('hint: '))).toBe(true);
  });
});
