import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PIPELINE_POLICIES, runDefaultPipeline } from '../src/pipeline.js';
import { loadConfig, type Config } from '../src/utils/config.js';
import { CandleStore } from '../src/data-processing/store.js';
import { readCandleFile } from '../src/data-processing/file-formats.js';

function smallConfig(dir: string): Config {
  return loadConfig({
    set: [
      `paths.store=${join(dir, 'ctm.duckdb')}`,
      `paths.runs=${join(dir, 'runs')}`,
      'splits.train={from: 2022-09-01, to: 2022-12-01}',
      'splits.validation={from: 2022-12-01, to: 2023-01-01}',
      'splits.test={from: 2023-01-01, to: 2023-02-01}',
      'features.lookahead.cuts=3',
    ],
  });
}

describe('default pipeline (npm start)', () => {
  it('without data in the store, generates a synthetic market, finds no look-ahead and backtests the baselines with reports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctm-pipeline-'));
    const lines: string[] = [];
    const result = await runDefaultPipeline({
      config: smallConfig(dir),
      policies: ['buy-hold', 'flat'],
      lookAheadDays: 20,
      onLine: (l) => lines.push(l),
    });
    expect(result.source).toBe('synthetic');
    expect(result.leaks).toBe(0);
    expect(result.backtests.map((b) => b.policy)).toEqual(['buy-hold', 'flat']);
    const flat = result.backtests[1].metrics;
    expect(flat.returns.totalReturn).toBe(0);
    expect(result.backtests[0].metrics.trades.count).toBe(1);
    for (const b of result.backtests) expect(existsSync(join(b.runDir, 'report.html'))).toBe(true);
    expect(existsSync(join(result.runDir, 'metrics.json'))).toBe(true);
    expect(lines.some((l) => l.includes('generated a synthetic BTC/USDT market'))).toBe(true);
  });

  it('reports random as the mean and spread over its seeds, and spot buy-and-hold first by default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctm-pipeline-'));
    const lines: string[] = [];
    const result = await runDefaultPipeline({
      config: smallConfig(dir),
      policies: ['random'],
      lookAheadDays: 20,
      onLine: (l) => lines.push(l),
    });
    const random = result.backtests[0];
    expect(random.overSeeds?.seeds).toBe(10);
    expect(random.overSeeds?.perSeed).toHaveLength(10);
    expect(new Set(random.overSeeds?.perSeed.map((s) => s.totalReturn)).size).toBe(10);
    expect(random.overSeeds?.totalReturn.sd).toBeGreaterThan(0);
    expect(lines.find((l) => l.startsWith('random'))).toMatch(/± .*over 10 seeds/);
    expect(DEFAULT_PIPELINE_POLICIES[0]).toBe('spot-buy-hold');
    expect(DEFAULT_PIPELINE_POLICIES).toContain('random');
  });

  it('uses the store when it holds the configured symbol', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctm-pipeline-'));
    const config = smallConfig(dir);
    const first = await runDefaultPipeline({
      config,
      policies: ['flat'],
      lookAheadDays: 20,
      onLine: () => {},
    });
    // Put the synthetic 15m candles into the store as if they had been imported.
    const file = join(first.runDir, 'data', 'synthetic-BTCUSDT-15m.csv.gz');
    const candles = (await readCandleFile(file, { symbol: 'BTC/USDT', timeframe: '15m' })).candles;
    const store = await CandleStore.open(config.paths.store);
    await store.upsert({ exchange: 'binance', symbol: 'BTC/USDT', timeframe: '15m' }, candles);
    store.close();
    const second = await runDefaultPipeline({
      config,
      policies: ['buy-hold'],
      lookAheadDays: 20,
      onLine: () => {},
    });
    expect(second.source).toBe('store');
    expect(second.leaks).toBe(0);
    expect(second.backtests[0].metrics.trades.count).toBe(1);
  });
});
