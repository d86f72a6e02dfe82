// Data-layer benchmarks:
// - data.import_csv (rows/s): a 1M-row gzipped candle CSV imported into a fresh store end to end
//   (stream + gunzip + parse, validation, staging, the upsert transaction, closing the store).
//   Target >= 300,000 rows/s.
// - data.resample_1m (ms): 1M 15m candles aggregated to 4h and to 1d (both together).
//   Target <= 27 ms (2x faster than pandas resample().agg(): 31 ms + 24 ms on this machine).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { allocateCandles } from '../src/data-processing/candles.js';
import { importCandleFile } from '../src/data-processing/data-loader.js';
import { resample } from '../src/data-processing/resample.js';
import { CandleStore } from '../src/data-processing/store.js';
import { setLogLevel } from '../src/utils/logger.js';
import { Rng } from '../src/utils/random.js';
import { report, timeBest } from './lib.js';

setLogLevel('warn');

const N = 1_000_000;
const M15 = 900_000;
const T0 = Date.UTC(2000, 0, 1);

/** A random-walk 15m series with exchange-like decimals (prices to 2, volume to 6). */
function synthetic(n: number) {
  const rng = new Rng(7);
  const c = allocateCandles('BTC/USDT', '15m', n);
  let price = 20_000;
  for (let i = 0; i < n; i++) {
    const open = Math.round(price * 100) / 100;
    price = Math.max(100, price * (1 + 0.002 * rng.normal()));
    const close = Math.round(price * 100) / 100;
    c.openTime[i] = T0 + i * M15;
    c.open[i] = open;
    c.close[i] = close;
    c.high[i] = Math.round((Math.max(open, close) + 20 * rng.next()) * 100) / 100;
    c.low[i] = Math.round((Math.min(open, close) - 20 * rng.next()) * 100) / 100;
    c.volume[i] = Math.round(rng.uniform(0, 500) * 1e6) / 1e6;
  }
  return c;
}

const dir = mkdtempSync(join(tmpdir(), 'ctm-bench-data-'));
try {
  const candles = synthetic(N);

  // data.import_csv
  const lines: string[] = ['open_time,open,high,low,close,volume'];
  for (let i = 0; i < N; i++) {
    lines.push(
      `${candles.openTime[i]},${candles.open[i]},${candles.high[i]},${candles.low[i]},${candles.close[i]},${candles.volume[i]}`,
    );
  }
  const file = join(dir, 'candles-1m.csv.gz');
  const bytes = gzipSync(lines.join('\n') + '\n');
  writeFileSync(file, bytes);
  lines.length = 0;
  let run = 0;
  const importMs = await timeBest(
    async () => {
      const store = await CandleStore.open(join(dir, `store-${run++}.duckdb`));
      try {
        const r = await importCandleFile(store, file, { symbol: 'BTC/USDT', timeframe: '15m' });
        if (r.written.added !== N) throw new Error(`imported ${r.written.added} of ${N} rows`);
      } finally {
        store.close();
      }
    },
    3,
    0,
  );
  report('data.import_csv', N / (importMs / 1000), 'rows/s', true, {
    rows: N,
    gzipBytes: bytes.length,
    ms: Math.round(importMs),
    note: 'fresh store, validation and one upsert transaction included; best of 3',
  });

  // data.resample_1m
  const resampleMs = await timeBest(
    () => {
      const a = resample(candles, '4h');
      const b = resample(candles, '1d');
      if (a.candles.openTime.length === 0 || b.candles.openTime.length === 0)
        throw new Error('empty');
    },
    20,
    3,
  );
  report('data.resample_1m', resampleMs, 'ms', false, {
    rows: N,
    targets: ['4h', '1d'],
    note: 'both targets together; best of 20',
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
