// `ctm run`: the default pipeline behind `npm start`.

import type { Command } from 'commander';
import { action, resolveConfig, withCommonOptions, type CommonOptions } from './common.js';

/** Registers `ctm run`. */
export function registerRunCommand(program: Command): void {
  withCommonOptions(
    program.command('run').description('run the default pipeline (what `npm start` does)'),
  ).action(
    action((opts: CommonOptions) => {
      resolveConfig(opts);
      process.stdout.write(
        'nothing to run yet: the pipeline lands with its issue; see `ctm --help` for the commands available now\n',
      );
    }),
  );
}
