import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import { Journal, type JournalBar, type PaperState } from '../../src/live/journal.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function bar(k: number): JournalBar {
  return {
    bar: k,
    base: k === 0 ? null : [k * 900_000, 1, 2, 0.5, 1.5, 10],
    higher: {},
    decisionTimeMs: (k + 1) * 900_000,
    decided: 0.5,
    sent: 0.5,
    haltReason: null,
    equity: 10_000 + k,
    cash: 10_000,
    position: 0.5,
    quantity: 0.1,
    fills: k,
    account: { position: 0.5, unrealizedPnl: 0, barsInPosition: k, drawdown: 0 },
    observationSha256: 'ab'.repeat(32),
  };
}

function state(bars: number): PaperState {
  return {
    version: 1,
    exchange: 'binance',
    symbol: 'BTC/USDT',
    policy: 'sma-cross',
    live: false,
    warmupFromMs: 0,
    startOpenTimeMs: 0,
    warmupFingerprint: 'f',
    bars,
    lastOpenTimeMs: (bars - 1) * 900_000,
    lastHigherOpenTimeMs: {},
    pendingTarget: 0.5,
    initialCapital: 10_000,
    shadow: { status: 'ok', checkedBars: 0, pendingBars: 0, differences: 0, firstDifference: null },
    feed: {},
    updatedAt: '2023-01-01T00:00:00.000Z',
  };
}

describe('the paper journal', () => {
  it('counts only the bars state.json says: a bar appended before a crash, and a torn line, are dropped on the owner’s read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctm-journal-'));
    dirs.push(dir);
    const j = new Journal(dir);
    for (let k = 0; k < 3; k++) j.append(bar(k));
    j.writeState(state(3));
    // Killed after appending bar 3 but before the state said so, mid-way through bar 4's line.
    j.append(bar(3));
    appendFileSync(j.linesPath, JSON.stringify(bar(4)).slice(0, 40));
    // A reader (ctm paper status) sees 3 bars and leaves the file alone.
    expect(j.read().bars.map((b) => b.bar)).toEqual([0, 1, 2]);
    expect(readFileSync(j.linesPath, 'utf8').split('\n').length).toBe(5);
    // The owner (a restarted paper run) rewrites it to exactly those bars.
    expect(j.read(true).bars.map((b) => b.bar)).toEqual([0, 1, 2]);
    expect(readFileSync(j.linesPath, 'utf8')).toBe(
      [0, 1, 2].map((k) => `${JSON.stringify(bar(k))}\n`).join(''),
    );
  });

  it('refuses a journal with fewer bars than its state, naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctm-journal-'));
    dirs.push(dir);
    const j = new Journal(dir);
    j.append(bar(0));
    j.writeState(state(2));
    expect(() => j.read()).toThrow(CheckpointError);
    expect(() => j.read()).toThrow(/journal\.jsonl: holds 1 bars, state\.json says 2/);
  });
});
