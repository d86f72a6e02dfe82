// Progress bars for anything that runs longer than a few seconds. Drawn with cli-progress on
// stderr, and only when stderr is a TTY; elsewhere (CI, pipes, tests) they log a line at start and
// at the end instead, so logs stay readable.

import cliProgress from 'cli-progress';
import { logger } from './logger.js';

/** A progress bar handle. All methods are cheap; call `tick` as often as you like. */
export interface Progress {
  /** Advances by `n` units (default 1). */
  tick(n?: number): void;
  /** Sets the current value. */
  update(value: number): void;
  /** Changes the total (e.g. once it becomes known). */
  setTotal(total: number): void;
  /** Shows a short status after the counts (e.g. `ep.return +0.021 loss 0.003 ε 0.05`). */
  status(text: string): void;
  /** Finishes the bar (idempotent). */
  stop(): void;
}

/** Options of `createProgress`. */
export interface ProgressOptions {
  /** Unit name shown after the counts (e.g. `rows`, `steps`). */
  unit?: string;
  /** Force drawing on or off; default: on exactly when stderr is a TTY. */
  enabled?: boolean;
}

/**
 * Creates a progress bar with a label, a total (units) and an ETA.
 * @example const bar = createProgress('import', n, { unit: 'rows' }); ... bar.tick(1000); bar.stop();
 */
export function createProgress(
  label: string,
  total: number,
  options: ProgressOptions = {},
): Progress {
  const enabled =
    options.enabled ?? (process.stderr.isTTY === true && process.env.VITEST === undefined);
  const unit = options.unit ?? '';
  const started = Date.now();
  let value = 0;
  let stopped = false;
  if (!enabled) {
    return {
      tick(n = 1) {
        value += n;
      },
      update(v) {
        value = v;
      },
      setTotal(t) {
        total = t;
      },
      status() {},
      stop() {
        if (stopped) return;
        stopped = true;
        const seconds = (Date.now() - started) / 1000;
        if (seconds >= 2)
          logger.debug({ task: label, done: value, total, unit, seconds }, 'finished');
      },
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {duration_formatted} elapsed | ETA {eta_formatted}{status}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { status: '' });
  return {
    tick(n = 1) {
      value += n;
      bar.update(value);
    },
    update(v) {
      value = v;
      bar.update(v);
    },
    setTotal(t) {
      total = t;
      bar.setTotal(t);
    },
    status(text) {
      bar.update(value, { status: text === '' ? '' : ` | ${text}` });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
