// `ctm run`: the default pipeline behind `npm start` (see src/pipeline.ts).

import type { Command } from 'commander';
import { DEFAULT_PIPELINE_POLICIES, runDefaultPipeline } from '../pipeline.js';
import {
  action,
  listOption,
  resolveConfig,
  withCommonOptions,
  type CommonOptions,
} from './common.js';

interface RunOptions extends CommonOptions {
  policies?: string;
}

/** Registers `ctm run`. */
export function registerRunCommand(program: Command): void {
  withCommonOptions(
    program
      .command('run')
      .description(
        'the default pipeline (what `npm start` does): data from the store, or a seeded synthetic market when the store lacks the symbol; look-ahead check; baseline backtests with reports',
      )
      .option(
        '--policies <list>',
        'comma-separated policies to backtest',
        DEFAULT_PIPELINE_POLICIES.join(','),
      ),
  ).action(
    action(async (opts: RunOptions) => {
      const config = resolveConfig(opts);
      const result = await runDefaultPipeline({
        config,
        policies: listOption(opts.policies ?? ''),
        onLine: (line) => process.stdout.write(line + '\n'),
      });
      process.stdout.write(
        `pipeline run ${result.runDir}\nopen a report.html above in a browser; see README.md for the commands behind each step\n`,
      );
    }),
  );
}
