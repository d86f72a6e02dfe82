// The sweep file as a user writes it: a grid, a seeded random search, seeds, symbols and folds
// expand into the expected points; mistakes are errors that name the file, the sweep key and its
// line, before anything runs.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { parameterPoints, readSweepFile } from '../../src/scale/sweep-file.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-sweep-file-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sweepFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function errorOf(text: string): ConfigError {
  try {
    readSweepFile(sweepFile('bad.yaml', text));
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('readSweepFile', () => {
  it('reads a grid, a random search, seeds, symbols and folds', () => {
    const spec = readSweepFile(
      sweepFile(
        'grid.yaml',
        `command: backtest --policy sma-cross --data-dir data
set:
  backtest.warmupDays: 30
grid:
  broker.takerFeeRate: [0.0005, 0.001]
  backtest.smaCross.fastFeature: [close_sma_5, close_sma_10, close_sma_20]
random:
  samples: 4
  seed: 3
  params:
    broker.slippage.fixedBps: { uniform: [0, 5] }
    broker.leverage: { choice: [1, 2] }
    model.hiddenDims: { int: [10, 20] }
seeds: 2
symbols: [BTC/USDT, ETH/USDT]
folds: { from: 2019-01-01, to: 2022-01-01 }
columns: [strategy.returns.sortino]
`,
      ),
    );
    expect(spec.name).toBe('grid');
    expect(spec.command).toEqual(['backtest', '--policy', 'sma-cross', '--data-dir', 'data']);
    expect(spec.seeds).toEqual([1, 2]);
    expect(spec.symbols).toEqual(['BTC/USDT', 'ETH/USDT']);
    expect(spec.folds).toEqual({ from: '2019-01-01', to: '2022-01-01' });
    expect(spec.columns).toEqual(['strategy.returns.sortino']);
    const points = parameterPoints(spec);
    // 2 × 3 grid points, each with the same 4 random samples.
    expect(points).toHaveLength(24);
    expect(
      new Set(
        points.map((p) =>
          JSON.stringify([p['broker.takerFeeRate'], p['backtest.smaCross.fastFeature']]),
        ),
      ).size,
    ).toBe(6);
    const samples = new Set(
      points.map((p) =>
        JSON.stringify([
          p['broker.slippage.fixedBps'],
          p['broker.leverage'],
          p['model.hiddenDims'],
        ]),
      ),
    );
    expect(samples.size).toBe(4);
    for (const p of points) {
      expect(p['broker.slippage.fixedBps']).toBeGreaterThanOrEqual(0);
      expect(p['broker.slippage.fixedBps']).toBeLessThanOrEqual(5);
      expect([1, 2]).toContain(p['broker.leverage']);
      expect(Number.isInteger(p['model.hiddenDims'])).toBe(true);
      expect(p['model.hiddenDims']).toBeGreaterThanOrEqual(10);
      expect(p['model.hiddenDims']).toBeLessThanOrEqual(20);
    }
  });

  it('draws the same random points from the same seed and other points from another seed', () => {
    const random = (seed: number) => ({
      samples: 5,
      seed,
      params: { 'model.train.learningRate': { logUniform: [1e-4, 1e-2] as [number, number] } },
    });
    const a = parameterPoints({ grid: {}, random: random(1) });
    expect(parameterPoints({ grid: {}, random: random(1) })).toEqual(a);
    expect(parameterPoints({ grid: {}, random: random(2) })).not.toEqual(a);
    for (const p of a) {
      expect(p['model.train.learningRate']).toBeGreaterThanOrEqual(1e-4);
      expect(p['model.train.learningRate']).toBeLessThanOrEqual(1e-2);
    }
  });

  it('is one empty point without grid and random search', () => {
    expect(parameterPoints({ grid: {}, random: null })).toEqual([{}]);
  });

  it('names the unknown sweep key and its line', () => {
    const e = errorOf('command: backtest\n\ngrids:\n  broker.takerFeeRate: [0.001]\n');
    expect(e.keyPath).toBe('grids');
    expect(e.message).toContain('unknown key');
    expect(e.message).toContain('line 3');
    expect(e.file).toBe(join(dir, 'bad.yaml'));
  });

  it('names a bad distribution with its path and line', () => {
    const e = errorOf(
      'command: backtest\nrandom:\n  samples: 2\n  params:\n    broker.leverage: { normal: [1, 2] }\n',
    );
    expect(e.keyPath).toBe('random.params.broker.leverage');
    expect(e.message).toContain('line 5');
    expect(e.message).toContain('choice');
  });

  it('refuses a command that sets what the sweep sets', () => {
    expect(errorOf('command: backtest --seed 3\n').message).toContain('--seed');
    expect(errorOf('command: [backtest, --set, broker.leverage=2]\n').message).toContain('--set');
    expect(errorOf('command: backtest --symbol BTC/USDT\nsymbols: [ETH/USDT]\n').message).toContain(
      '--symbol',
    );
    expect(
      errorOf('command: backtest --from 2020-01-01\nfolds: { from: 2019-01-01, to: 2021-01-01 }\n')
        .message,
    ).toContain('--from');
    expect(errorOf('command: sweep other.yaml\n').message).toContain('not a ctm command');
  });

  it('refuses a key under both grid and random, an empty range and a repeated seed', () => {
    expect(
      errorOf(
        'command: backtest\ngrid:\n  broker.leverage: [1]\nrandom:\n  samples: 1\n  params:\n    broker.leverage: { choice: [2] }\n',
      ).keyPath,
    ).toBe('random.params.broker.leverage');
    expect(
      errorOf(
        'command: backtest\nrandom:\n  samples: 1\n  params:\n    broker.leverage: { uniform: [3, 1] }\n',
      ).message,
    ).toContain('empty');
    expect(errorOf('command: backtest\nseeds: [1, 2, 1]\n').keyPath).toBe('seeds');
  });

  it('reports YAML syntax errors with their line and a missing file', () => {
    expect(errorOf('command: backtest\ngrid: [\n').message).toMatch(/YAML syntax error at line \d/);
    expect(() => readSweepFile(join(dir, 'missing.yaml'))).toThrow(/sweep file not found/);
  });
});
