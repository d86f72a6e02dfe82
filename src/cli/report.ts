// `ctm report RUN`: a thin layer over `reportRun`; draws the HTML and PNG report of a backtest or
// training run into its directory and prints where.

import type { Command } from 'commander';
import { openRun } from '../utils/runs.js';
import { reportRun } from '../evaluation/report.js';
import { action, resolveConfig, withCommonOptions, type CommonOptions } from './common.js';

/** Registers `ctm report`. */
export function registerReportCommand(program: Command): void {
  withCommonOptions(
    program
      .command('report')
      .description('(re)draw the HTML and PNG report of a run (backtest or training)')
      .argument('<run>', 'run directory or run id under paths.runs'),
  ).action(
    action((ref: string, opts: CommonOptions) => {
      const config = resolveConfig(opts);
      const run = openRun(ref, config.paths.runs);
      const written = reportRun(run, config.report);
      process.stdout.write(
        `report: ${run.path(written.html)}\npng: ${written.pngs.map((p) => run.path(p)).join(', ') || 'none'}\n`,
      );
    }),
  );
}
