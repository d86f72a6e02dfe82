// The report of a paper run folder: the backtest of the stored candles over the paper run's span
// (from its first decision row to its last journaled bar, the same warm-up start the shadow check
// uses), drawn with the paper equity beside it. When what traded is what was backtested, the two
// curves coincide; a gap between them is a finding, shown where it happens.

import { TIMEFRAME_MS } from '../data-processing/candles.js';
import {
  buildFeatures,
  type MultiTimeframeFeatures,
} from '../data-processing/feature-engineering.js';
import { backtestReportInput, backtestStrategy } from '../evaluation/backtest.js';
import type { Policy } from '../evaluation/policy.js';
import { buildBacktestPayload, writeReport } from '../evaluation/report.js';
import type { Config } from '../utils/config.js';
import type { JournalBar, PaperState } from './journal.js';
import { paperTimeframes, storedSpan, type StoredCandles } from './paper.js';

/** Options of `writePaperReport`. */
export interface PaperReportOptions {
  /** Resolved config of the paper run (features, windows, broker, report). */
  readonly config: Config;
  /** The paper run folder (report.html, report-data.json and PNGs go here). */
  readonly dir: string;
  /** The journal's state (warm-up start, first decision row, policy, shadow check). */
  readonly state: PaperState;
  /** Every journaled bar, in order. */
  readonly bars: readonly JournalBar[];
  /** The candle store's reader (the backtest's candles). */
  readonly stored: StoredCandles;
  /** The policy of the run, built fresh over the backtest's features. */
  readonly resolvePolicy: (features: MultiTimeframeFeatures) => Promise<Policy>;
}

/** What `writePaperReport` wrote. */
export interface PaperReport {
  /** Path of report.html. */
  readonly html: string;
  /** Final equity of the paper run and of the backtest of the same span (quote currency). */
  readonly paperEquity: number;
  readonly backtestEquity: number;
  /** Largest |paper - backtest| equity over the span's rows (quote currency). */
  readonly maxDifference: number;
}

/**
 * Writes the paper run's report: the backtest of the stored candles over the run's span with
 * the paper equity drawn beside it (rows without a journaled bar carry the last paper equity).
 * Returns null when the run has no live bar yet (nothing to compare).
 * @throws whatever the store, the feature pipeline or the policy resolver throws.
 */
export async function writePaperReport(options: PaperReportOptions): Promise<PaperReport | null> {
  const { config, state, bars } = options;
  if (bars.length < 2) return null;
  const tfs = paperTimeframes(config);
  const baseMs = TIMEFRAME_MS[tfs[0]];
  const lastClose = bars[bars.length - 1].decisionTimeMs;
  const data = await storedSpan(options.stored, tfs, state.warmupFromMs, lastClose);
  const features = buildFeatures(data, { spec: config.features, windows: config.windows });
  const result = backtestStrategy({
    policy: await options.resolvePolicy(features),
    data: features,
    broker: config.broker,
    range: { fromMs: state.startOpenTimeMs, toMs: lastClose },
    closeAtEnd: false,
  });
  const byClose = new Map<number, number>();
  for (const b of bars) byClose.set(b.decisionTimeMs, b.equity);
  const rows = result.candles.openTime.length;
  const paper = new Float64Array(rows);
  let last = state.initialCapital;
  let maxDifference = 0;
  for (let i = 0; i < rows; i++) {
    last = byClose.get(result.candles.openTime[i] + baseMs) ?? last;
    paper[i] = last;
    maxDifference = Math.max(maxDifference, Math.abs(last - result.equity[i]));
  }
  const sh = state.shadow;
  const facts = {
    policy: state.policy,
    venue: `${state.live ? 'live' : 'paper'} ${state.symbol} on ${state.exchange}`,
    'journaled bars': bars.length,
    'shadow check': `${sh.status}, ${sh.checkedBars} bars compared, ${sh.differences} differences`,
    'paper final equity': paper[rows - 1].toFixed(2),
    'backtest final equity': result.equity[rows - 1].toFixed(2),
    'max |paper - backtest|': maxDifference.toFixed(6),
  };
  const title = `Paper ${state.symbol} (${state.policy}) beside its backtest`;
  const payload = buildBacktestPayload(
    { ...backtestReportInput(result, title, facts), paperEquity: paper },
    config.report,
  );
  const written = writeReport(options.dir, payload, config.report);
  return {
    html: `${options.dir}/${written.html}`,
    paperEquity: paper[rows - 1],
    backtestEquity: result.equity[rows - 1],
    maxDifference,
  };
}
