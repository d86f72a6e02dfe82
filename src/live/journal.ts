// The paper/live journal of one run folder: `journal.jsonl` holds one line per processed bar (the
// candles it consumed, the decision, the order sent, the account after it, the observation's
// hash), appended and synced before `state.json` is replaced atomically (temp file + rename). The
// state's bar count is the truth: lines beyond it (a crash between the two writes) are dropped on
// restart, so a bar is never counted twice nor lost. Never holds API keys.

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Timeframe } from '../data-processing/candles.js';
import { CheckpointError } from '../errors.js';
import { writeFileAtomicSync } from '../utils/fs.js';

/** A candle as journaled: `[openTimeMs, open, high, low, close, volume]`. */
export type CandleRow = [number, number, number, number, number, number];

/** One processed bar. */
export interface JournalBar {
  /** Bar number: 0 is the decision at the last warm-up row, then one per live candle. */
  bar: number;
  /** The base candle closed (null for bar 0, decided on the stored warm-up row). */
  base: CandleRow | null;
  /** Higher-timeframe candles pushed before the base candle. */
  higher: Partial<Record<Timeframe, CandleRow[]>>;
  /** Decision time: the base row's close, UTC ms. */
  decisionTimeMs: number;
  /** Target position the policy decided, in [-1, 1]. */
  decided: number;
  /** Target sent to the venue (the last executed one when orders are halted). */
  sent: number;
  /** Why no new order was sent, or null. */
  haltReason: string | null;
  /** Equity after the bar, quote currency. */
  equity: number;
  /** Cash after the bar, quote currency. */
  cash: number;
  /** Signed exposure after the bar. */
  position: number;
  /** Position quantity, base currency. */
  quantity: number;
  /** Fills recorded so far. */
  fills: number;
  /** The account the observation carried. */
  account: { position: number; unrealizedPnl: number; barsInPosition: number; drawdown: number };
  /** SHA-256 of the observation's float32 bytes (hex). */
  observationSha256: string;
}

/** State of the shadow check. */
export interface ShadowState {
  /** `ok` (no difference so far), `halted` (a difference: no new orders). */
  status: 'ok' | 'halted';
  /** Bars compared bit for bit with the backtest of the stored candles. */
  checkedBars: number;
  /** Bars whose candles are not in the store yet (compared later). */
  pendingBars: number;
  /** Observations that differed. */
  differences: number;
  /** The first difference: bar, decision time and the first column that differs. */
  firstDifference: {
    bar: number;
    decisionTimeMs: number;
    column: string;
    live: number;
    backtest: number;
  } | null;
}

/** `state.json`: everything a restart needs besides the journal lines and the store. */
export interface PaperState {
  /** Format version. */
  version: 1;
  /** ccxt exchange id. */
  exchange: string;
  /** ccxt unified symbol. */
  symbol: string;
  /** The `--policy` reference. */
  policy: string;
  /** True when orders go to the exchange (`--live`). */
  live: boolean;
  /** First open time of the warm-up candles read from the store (UTC ms, a day boundary). */
  warmupFromMs: number;
  /** Open time of the last warm-up base candle (the first decision row). */
  startOpenTimeMs: number;
  /** Fingerprint of the warm-up candles (count and hash per timeframe). */
  warmupFingerprint: string;
  /** Bars journaled (journal lines that count). */
  bars: number;
  /** Open time of the last base candle processed (UTC ms). */
  lastOpenTimeMs: number;
  /** Open time of the last candle processed per higher timeframe (NaN-free; -1 when none). */
  lastHigherOpenTimeMs: Partial<Record<Timeframe, number>>;
  /** The target waiting to be filled at the next bar's open. */
  pendingTarget: number;
  /** Starting equity, quote currency. */
  initialCapital: number;
  /** Shadow check. */
  shadow: ShadowState;
  /** Follower counters at the last write (informational). */
  feed: Record<string, number>;
  /** Wall time of the last write (ISO). */
  updatedAt: string;
}

/** The journal of one paper run folder. */
export class Journal {
  /** Path of `state.json`. */
  readonly statePath: string;
  /** Path of `journal.jsonl`. */
  readonly linesPath: string;

  constructor(readonly dir: string) {
    this.statePath = join(dir, 'state.json');
    this.linesPath = join(dir, 'journal.jsonl');
  }

  /** True when the folder holds a journal to resume. */
  exists(): boolean {
    return existsSync(this.statePath);
  }

  /**
   * The state and its journaled bars (lines beyond `state.bars` do not count; with `repair` the
   * file is rewritten without them, which only the process that owns the run may do).
   * @throws {CheckpointError} when the files are corrupt or hold fewer bars than the state says.
   */
  read(repair = false): { state: PaperState; bars: JournalBar[] } {
    let state: PaperState;
    try {
      state = JSON.parse(readFileSync(this.statePath, 'utf8')) as PaperState;
    } catch (err) {
      throw new CheckpointError(
        this.statePath,
        `unreadable paper state: ${(err as Error).message}`,
      );
    }
    const text = existsSync(this.linesPath) ? readFileSync(this.linesPath, 'utf8') : '';
    const lines = text.split('\n');
    const bars: JournalBar[] = [];
    for (let i = 0; i < state.bars; i++) {
      const line = lines[i];
      if (line === undefined || line === '')
        throw new CheckpointError(this.linesPath, `holds ${i} bars, state.json says ${state.bars}`);
      bars.push(JSON.parse(line) as JournalBar);
    }
    if (repair && (lines.length - 1 !== state.bars || (text !== '' && !text.endsWith('\n'))))
      writeFileAtomicSync(this.linesPath, bars.map((b) => `${JSON.stringify(b)}\n`).join(''));
    return { state, bars };
  }

  /** Appends one bar and syncs it to disk. */
  append(bar: JournalBar): void {
    const fd = openSync(this.linesPath, 'a');
    try {
      writeSync(fd, `${JSON.stringify(bar)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Replaces `state.json` atomically. */
  writeState(state: PaperState): void {
    writeFileAtomicSync(this.statePath, `${JSON.stringify(state, null, 2)}\n`);
  }

  /** The last `n` journaled bars (for status), without rewriting anything. */
  tail(n: number): JournalBar[] {
    if (!existsSync(this.linesPath)) return [];
    const lines = readFileSync(this.linesPath, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    return lines.slice(-n).map((l) => JSON.parse(l) as JournalBar);
  }
}
