// The `ctm` program: every command group of src/cli/ registered on one commander `Command`.
// Building it parses nothing and runs nothing, so the CLI reference (docs/cli.md, written by
// `npm run docs`) is generated from exactly the commands users run.

import { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { registerRunCommand } from './run.js';
import { registerDataCommands } from './data.js';
import { registerBacktestCommand } from './backtest.js';
import { registerReportCommand } from './report.js';
import { registerFeaturesCommand, registerLookAheadCommand } from './features.js';
import { registerTrainCommands } from './train.js';
import { registerSynthCommands } from './synth.js';
import { registerDatasetCommands } from './dataset.js';
import { registerCompareCommand } from './compare.js';
import { registerRunsCommand } from './runs.js';
import { registerSweepCommands } from './sweep.js';
import { registerPaperCommands } from './paper.js';

/** Builds the `ctm` program with every command; `parseAsync(process.argv)` runs it. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('ctm')
    .description(
      'crypto-trading-model: multi-timeframe crypto data, features, synthetic markets, models, agents and backtests',
    )
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride((err) => {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      )
        process.exit(0);
      process.exit(ExitCode.Usage);
    });

  registerRunCommand(program);
  registerDataCommands(program);
  registerBacktestCommand(program);
  registerReportCommand(program);
  registerFeaturesCommand(program);
  registerLookAheadCommand(program);
  registerTrainCommands(program);
  registerSynthCommands(program);
  registerDatasetCommands(program);
  registerCompareCommand(program);
  registerRunsCommand(program);
  registerSweepCommands(program);
  registerPaperCommands(program);
  return program;
}
