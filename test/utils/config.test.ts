import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { defaultConfig, loadConfig, parseDateMs, rangeMs } from '../../src/utils/config.js';

function yamlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ctm-config-'));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, text);
  return file;
}

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('loads the shipped defaults and validates them', () => {
    const c = defaultConfig();
    expect(c.data.timeframes).toEqual(['15m', '4h', '1d']);
    expect(c.windows).toEqual({ '15m': 64, '4h': 32, '1d': 16 });
    expect(c.paths.store).toBe('./data/ctm.duckdb');
  });

  it('merges a user file over the defaults, key by key', () => {
    const c = loadConfig({ file: yamlFile('seed: 7\ndata:\n  symbols: [ETH/USDT]\n') });
    expect(c.seed).toBe(7);
    expect(c.data.symbols).toEqual(['ETH/USDT']);
    expect(c.data.exchange).toBe('binance');
  });

  it('rejects an unknown key, naming its full key path and the file', () => {
    const file = yamlFile('data:\n  downlaod:\n    pageLimit: 5\n');
    const err = configErrorOf(() => loadConfig({ file }));
    expect(err.keyPath).toBe('data.downlaod');
    expect(err.message).toContain(file);
    expect(err.hint).toContain('download');
  });

  it('rejects a wrong type, naming the key path', () => {
    const err = configErrorOf(() => loadConfig({ set: ['data.download.pageLimit=many'] }));
    expect(err.keyPath).toBe('data.download.pageLimit');
  });

  it('rejects an unknown timeframe in windows, naming the key path', () => {
    const err = configErrorOf(() => loadConfig({ set: ['windows.3m=10'] }));
    expect(err.keyPath).toBe('windows.3m');
  });

  it('applies --set and structured overrides in order, the last winning', () => {
    const c = loadConfig({ set: ['seed=5', 'data.timeframes=[1h, 4h]'], overrides: [{ seed: 9 }] });
    expect(c.seed).toBe(9);
    expect(c.data.timeframes).toEqual(['1h', '4h']);
  });

  it('reports a YAML syntax error with the file', () => {
    const file = yamlFile('data: [unclosed\n');
    const err = configErrorOf(() => loadConfig({ file }));
    expect(err.message).toContain('YAML syntax error');
  });

  it('parses dates as UTC and ranges as [from, to)', () => {
    expect(parseDateMs('2021-01-01')).toBe(Date.UTC(2021, 0, 1));
    expect(parseDateMs('2021-01-01T04:00')).toBe(Date.UTC(2021, 0, 1, 4));
    expect(parseDateMs('2021-01-01T04:00:00+02:00')).toBe(Date.UTC(2021, 0, 1, 2));
    expect(Number.isNaN(parseDateMs('01/02/2021'))).toBe(true);
    expect(rangeMs({ from: null, to: '2022-01-01' })).toEqual({
      fromMs: -Infinity,
      toMs: Date.UTC(2022, 0, 1),
    });
  });
});

describe('config error sources', () => {
  it('names the --set assignment that brought a bad value, not the defaults file', () => {
    const err = configErrorOf(() => loadConfig({ set: ['seed=-3'] }));
    expect(err.keyPath).toBe('seed');
    expect(err.message).toContain('--set seed=-3');
    expect(err.message).not.toContain('default.yaml');
  });
});
