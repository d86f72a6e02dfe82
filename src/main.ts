#!/usr/bin/env node
// The `ctm` command line. A thin layer: each command parses its options, resolves the config,
// calls one library function and prints. Command groups live in src/cli/.

import { Command } from 'commander';
import { ExitCode } from './errors.js';
import { registerRunCommand } from './cli/run.js';
import { registerDataCommands } from './cli/data.js';
import { registerBacktestCommand } from './cli/backtest.js';
import { registerReportCommand } from './cli/report.js';
import { registerFeaturesCommand, registerLookAheadCommand } from './cli/features.js';
import { registerTrainCommands } from './cli/train.js';
import { registerSynthCommands } from './cli/synth.js';
import { registerDatasetCommands } from './cli/dataset.js';
import { registerCompareCommand } from './cli/compare.js';
import { registerRunsCommand } from './cli/runs.js';
import { registerSweepCommands } from './cli/sweep.js';
import { registerPaperCommands } from './cli/paper.js';

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

await program.parseAsync(process.argv);
