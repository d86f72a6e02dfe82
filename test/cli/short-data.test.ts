// Real files too short for what a command needs (three days, one candle, half a year, one year) or
// holding one timeframe only, run through the built CLI as a new user would: every command fails
// fast with one typed error line (plus a hint) and its exit code, never a stack trace or a
// TypeError from deep inside. The files are slices of the real BTC/USDT candles, written here.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ctm as runCtm, type CtmRun } from '../helpers/ctm.js';
import { hasSharedData, sharedFile, SKIP_REASON } from '../helpers/shared-data.js';

let dir: string;

function ctm(args: string[]): Promise<CtmRun> {
  return runCtm([...args, '--set', `paths.runs=${join(dir, 'runs')}`], { cwd: dir });
}

/** Writes `<name>/binance-BTCUSDT-<tf>.csv.gz` with the real rows whose open time is in [from, to). */
function slice(name: string, timeframes: string[], from: string, to: string, rows?: number): void {
  const fromMs = Date.parse(`${from}T00:00:00Z`);
  const toMs = Date.parse(`${to}T00:00:00Z`);
  mkdirSync(join(dir, name), { recursive: true });
  for (const tf of timeframes) {
    const lines = gunzipSync(readFileSync(sharedFile(`binance-BTCUSDT-${tf}.csv.gz`)))
      .toString('utf8')
      .split('\n');
    let kept = lines.slice(1).filter((l) => {
      const t = Number(l.slice(0, l.indexOf(',')));
      return t >= fromMs && t < toMs;
    });
    if (rows !== undefined) kept = kept.slice(0, rows);
    writeFileSync(
      join(dir, name, `binance-BTCUSDT-${tf}.csv.gz`),
      gzipSync([lines[0], ...kept].join('\n') + '\n'),
    );
  }
}

const ALL = ['15m', '4h', '1d'];

beforeAll(() => {
  if (!hasSharedData) return;
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'ctm-short-data-'));
  slice('days', ALL, '2023-06-01', '2023-06-04'); // three days
  slice('one', ['15m'], '2023-06-01', '2023-06-02', 1); // one candle
  slice('half', ALL, '2023-07-01', '2024-01-01'); // 2023-07 to 2023-12
  slice('y2021', ALL, '2021-01-01', '2022-01-01'); // one year, inside the train split
  slice('single', ['15m'], '2023-01-01', '2024-01-01'); // one timeframe only
});
afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const CASES: Array<{ what: string; args: string[]; code: number; error: RegExp }> = [
  {
    what: 'backtest on three days: the feature windows never fill',
    args: ['backtest', '--policy', 'sma-cross', '--data-dir', 'days'],
    code: 3,
    error: /no bars to backtest: 288 base rows/,
  },
  {
    what: 'backtest on a one-candle file',
    args: ['backtest', '--policy', 'buy-hold', '--data', 'one/binance-BTCUSDT-15m.csv.gz'],
    code: 2,
    error: /only 1 15m candles of BTC\/USDT/,
  },
  {
    what: 'walk-forward backtest on half a year',
    args: ['backtest', '--policy', 'sma-cross', '--data-dir', 'half', '--walk-forward'],
    code: 3,
    error: /of 184 days is too short for one fold of train 365 \+ purge .* \+ test 90 days/,
  },
  {
    what: 'train model on half a year (no training split)',
    args: ['train', 'model', '--data-dir', 'half'],
    code: 3,
    error: /no sample in the train split/,
  },
  {
    what: 'train model on one year (no validation split)',
    args: ['train', 'model', '--data-dir', 'y2021'],
    code: 3,
    error: /no sample in the validation split/,
  },
  {
    what: 'train model on a single timeframe',
    args: ['train', 'model', '--data-dir', 'single'],
    code: 2,
    error: /no BTC\/USDT 4h candles in single/,
  },
  {
    what: 'features on a single timeframe',
    args: ['features', '--symbol', 'BTC/USDT', '--data-dir', 'single', '--out', 'f.csv'],
    code: 2,
    error: /no BTC\/USDT 4h candles in single/,
  },
  {
    what: 'look-ahead check of one candle',
    args: ['lookahead-check', '--symbol', 'BTC/USDT', '--data-dir', 'one', '--timeframes', '15m'],
    code: 3,
    error: /1 base rows leave nothing to cut/,
  },
  {
    what: 'look-ahead check of the env on three days',
    args: ['lookahead-check', '--symbol', 'BTC/USDT', '--data-dir', 'days', '--env'],
    code: 3,
    error: /CryptoTradingEnv: no episode fits/,
  },
  {
    what: 'dataset build mixing in three days of real candles',
    args: [
      'dataset',
      'build',
      '--out',
      'ds',
      '--samples',
      '40',
      '--workers',
      '1',
      '--real',
      'days/binance-BTCUSDT-15m.csv.gz',
      '--real-ratio',
      '0.2',
      '--set',
      'dataset.seriesDays=150',
    ],
    code: 3,
    error: /days\/binance-BTCUSDT-15m.csv.gz: no real sample fits: 288 15m candles/,
  },
];

describe.skipIf(!hasSharedData)(`short, one-year and single-timeframe files${SKIP_REASON}`, () => {
  it.each(CASES)('$what: one typed error line, no stack trace', async ({ args, code, error }) => {
    const r = await ctm(args);
    // Log records are JSON lines; what the user reads is the rest.
    const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toMatch(error);
    expect(lines.slice(1).every((l) => l.startsWith('hint: '))).toBe(true);
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(r.stderr + r.stdout).not.toMatch(/TypeError|ReferenceError|Cannot read|\n\s+at /);
    expect(r.code).toBe(code);
  });
});
