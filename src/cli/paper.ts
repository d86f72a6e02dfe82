// `ctm paper` and `ctm paper status`: thin layers over `paperTrade` and `paperStatus`. They parse
// options, resolve the config, call the library and print; nothing else.

import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { BASELINES } from '../evaluation/baselines.js';
import { paperRunDir, paperStatus, paperTrade } from '../live/trade.js';
import {
  action,
  positiveIntOption,
  resolveConfig,
  symbolOption,
  withCommonOptions,
  type CommonOptions,
} from './common.js';

interface PaperCliOptions extends CommonOptions {
  policy?: string;
  exchange?: string;
  symbol?: string;
  run?: string;
  live?: boolean;
  maxBars?: string;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** Registers `ctm paper` and `ctm paper status`. */
export function registerPaperCommands(program: Command): void {
  const paper = withCommonOptions(
    program
      .command('paper')
      .description(
        'paper-trade a policy on the live market through the backtest broker (real orders only with --live)',
      )
      .option('--policy <ref>', `${BASELINES.join(' | ')} | a run directory | ./my-policy.js`)
      .option('--exchange <id>', 'ccxt exchange id (default: data.exchange)')
      .option(
        '--symbol <symbol>',
        'BTC/USDT (spot) or BTC/USDT:USDT (perpetual); default: the first of data.symbols',
      )
      .option(
        '--run <dir>',
        'run folder holding the journal (default: runs/paper-<exchange>-<symbol>); resumed when present',
      )
      .option('--live', 'send real orders (also needs live.confirm and the API key variables)')
      .option('--max-bars <n>', 'stop after this many new bars (default: run until interrupted)'),
  ).action(
    action(async (opts: PaperCliOptions) => {
      if (opts.policy === undefined)
        throw new UsageError('ctm paper needs --policy', {
          hint: 'e.g. ctm paper --policy sma-cross --symbol BTC/USDT',
        });
      const config = resolveConfig(opts);
      const exchange = opts.exchange ?? config.data.exchange;
      const symbol = opts.symbol === undefined ? config.data.symbols[0] : symbolOption(opts.symbol);
      const result = await paperTrade({
        config,
        policy: opts.policy,
        exchange,
        symbol,
        runDir: opts.run,
        live: opts.live === true,
        maxBars: positiveIntOption(opts.maxBars, '--max-bars'),
      });
      const s = result.state;
      process.stdout.write(
        `${s.live ? 'live' : 'paper'} ${s.symbol} on ${s.exchange}: ${result.bars.length} bars through ${iso(s.lastOpenTimeMs)} ` +
          `(${result.replayed} replayed from the journal), shadow check ${s.shadow.status} (${s.shadow.differences} differences)\n`,
      );
      if (result.report !== null)
        process.stdout.write(
          `report: ${result.report.html} (paper equity ${result.report.paperEquity.toFixed(2)}, backtest of the same candles ${result.report.backtestEquity.toFixed(2)})\n`,
        );
    }),
  );
  withCommonOptions(
    paper
      .command('status')
      .description('position, pnl, the last decisions and the shadow check of a paper run')
      .option('--exchange <id>', 'ccxt exchange id (default: data.exchange)')
      .option('--symbol <symbol>', 'symbol of the run (default: the first of data.symbols)')
      .option('--run <dir>', 'run folder (default: runs/paper-<exchange>-<symbol>)'),
  ).action(
    action((opts: PaperCliOptions) => {
      const config = resolveConfig(opts);
      const exchange = opts.exchange ?? config.data.exchange;
      const symbol = opts.symbol === undefined ? config.data.symbols[0] : symbolOption(opts.symbol);
      const st = paperStatus(
        opts.run ?? paperRunDir(config, exchange, symbol),
        config.live.statusDecisions,
      );
      const s = st.state;
      const sh = s.shadow;
      const out = [
        `${s.live ? 'live' : 'paper'} ${s.symbol} on ${s.exchange}, policy ${s.policy}, ${s.bars} bars, last candle ${iso(s.lastOpenTimeMs)}`,
        `position ${st.position.toFixed(4)}  equity ${st.equity.toFixed(2)}  pnl ${st.pnl.toFixed(2)} (${((st.pnl / s.initialCapital) * 100).toFixed(2)}%)  pending target ${s.pendingTarget}`,
        `shadow check ${sh.status}: ${sh.checkedBars} bars compared, ${sh.differences} differences, ${sh.pendingBars} waiting for stored candles` +
          (sh.firstDifference === null
            ? ''
            : `; first at ${iso(sh.firstDifference.decisionTimeMs)} in ${sh.firstDifference.column} (live ${sh.firstDifference.live}, backtest ${sh.firstDifference.backtest})`),
        'last decisions:',
        ...st.lastBars.map(
          (b) =>
            `  ${iso(b.decisionTimeMs)}  decided ${b.decided.toFixed(3)}  sent ${b.sent.toFixed(3)}  equity ${b.equity.toFixed(2)}` +
            (b.haltReason === null ? '' : `  (held: ${b.haltReason})`),
        ),
      ];
      process.stdout.write(`${out.join('\n')}\n`);
    }),
  );
}
