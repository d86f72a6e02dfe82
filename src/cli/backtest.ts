// `ctm backtest`: a thin layer over `runBacktest`. It parses options, resolves the config, calls
// the library and prints a short summary; nothing else.

import type { Command } from 'commander';
import { parseTimeframe } from '../data-processing/candles.js';
import { UsageError } from '../errors.js';
import { BASELINES } from '../evaluation/baselines.js';
import { runBacktest } from '../evaluation/evaluate.js';
import type { PerformanceMetrics } from '../evaluation/metrics.js';
import { policySource } from '../policies.js';
import {
  action,
  dateOption,
  resolveConfig,
  withCommonOptions,
  type CommonOptions,
} from './common.js';

interface BacktestCliOptions extends CommonOptions {
  policy: string;
  symbol?: string;
  from?: string;
  to?: string;
  data?: string;
  dataDir?: string;
  timeframe?: string;
  initialCapital?: string;
  fee?: string;
  trials?: string;
  openHoldout?: boolean;
  walkForward?: boolean;
}

function num(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (!Number.isFinite(x)) throw new UsageError(`--${name} "${value}" is not a number`);
  return x;
}

function pct(x: number | null): string {
  return x === null ? '—' : `${(x * 100).toFixed(2)}%`;
}

function fixed(x: number | null, digits = 2): string {
  return x === null ? '—' : x.toFixed(digits);
}

function summary(label: string, m: PerformanceMetrics): string {
  return (
    `${label.padEnd(12)} total ${pct(m.returns.totalReturn).padStart(9)}  CAGR ${pct(m.returns.cagr).padStart(9)}  ` +
    `Sharpe ${fixed(m.returns.sharpe).padStart(6)}  max DD ${pct(m.drawdown.maxDrawdown).padStart(8)}  ` +
    `trades ${String(m.trades.count).padStart(5)}  win ${pct(m.trades.winRate).padStart(8)}  ` +
    `PSR ${fixed(m.trust.psr, 3)}  DSR ${fixed(m.trust.dsr, 3)}\n`
  );
}

/** Registers `ctm backtest`. */
export function registerBacktestCommand(program: Command): void {
  withCommonOptions(
    program
      .command('backtest')
      .description(
        'backtest a policy through the broker and write runs/<id>/ (metrics.json, trades, report)',
      )
      .requiredOption(
        '--policy <ref>',
        `${BASELINES.join(' | ')} | a run directory | ./my-policy.js`,
      )
      .option('--symbol <symbol>', 'ccxt unified symbol (default: the first of data.symbols)')
      .option('--from <date>', 'first bar traded (UTC); default: backtest.defaultRange')
      .option('--to <date>', 'end of the range, exclusive (UTC)')
      .option('--data <file>', 'read candles from this file (base timeframe) instead of the store')
      .option(
        '--data-dir <dir>',
        'read <exchange>-<BASEQUOTE>-<tf>.csv.gz files from this directory',
      )
      .option('--timeframe <tf>', 'base timeframe of --data (default: from the file name)')
      .option('--initial-capital <n>', 'starting equity (default: broker.initialCapital)')
      .option('--fee <fraction>', 'fee per leg, e.g. 0.001 (default: broker.takerFeeRate)')
      .option('--trials <n>', 'strategies or seeds tried, for the deflated Sharpe ratio')
      .option('--walk-forward', 'evaluate on walk-forward folds (backtest.walkForward)')
      .option('--open-holdout', 'allow reading the holdout split (final evaluation only)'),
  ).action(
    action(async (opts: BacktestCliOptions) => {
      const overrides: Record<string, unknown>[] = [];
      const capital = num(opts.initialCapital, 'initial-capital');
      const fee = num(opts.fee, 'fee');
      const trials = num(opts.trials, 'trials');
      if (capital !== undefined) overrides.push({ broker: { initialCapital: capital } });
      if (fee !== undefined) overrides.push({ broker: { takerFeeRate: fee, makerFeeRate: fee } });
      if (trials !== undefined) overrides.push({ backtest: { trials } });
      const config = resolveConfig(opts, overrides);
      const outcome = await runBacktest({
        config,
        policy: policySource(opts.policy, config),
        symbol: opts.symbol ?? config.data.symbols[0],
        from: dateOption(opts.from, 'from'),
        to: dateOption(opts.to, 'to'),
        dataFile: opts.data,
        dataDir: opts.dataDir,
        timeframe:
          opts.timeframe === undefined ? undefined : parseTimeframe(opts.timeframe, '--timeframe'),
        openHoldout: opts.openHoldout === true,
        walkForward: opts.walkForward === true,
      });
      const wf = outcome.walkForward;
      if (wf !== null)
        for (const f of wf.folds)
          process.stdout.write(
            f.result === null
              ? `fold ${f.fold.index}: skipped (${f.skipped})\n`
              : summary(`fold ${f.fold.index}`, f.result.metrics),
          );
      process.stdout.write(summary(wf === null ? outcome.policyName : 'pooled', outcome.metrics));
      const seeds = outcome.overSeeds;
      if (seeds !== null)
        process.stdout.write(
          `over ${seeds.seeds} seeds (mean ± sd): total ${pct(seeds.totalReturn.mean)} ± ${pct(seeds.totalReturn.sd)}  Sharpe ${fixed(seeds.sharpe.mean)} ± ${fixed(seeds.sharpe.sd)}  max DD ${pct(seeds.maxDrawdown.mean)} ± ${pct(seeds.maxDrawdown.sd)} (the line above and the report: seed 0)\n`,
        );
      if (outcome.benchmarkMetrics !== null)
        process.stdout.write(summary('spot B&H', outcome.benchmarkMetrics));
      process.stdout.write(`run: ${outcome.run.dir}\nreport: ${outcome.run.path('report.html')}\n`);
    }),
  );
}
