// `ctm compare`: a thin layer over `runCompare`. It parses options, resolves the config, calls the
// library and prints the table and where the report went; nothing else.

import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { parsePolicyList, runCompare } from '../evaluation/compare.js';
import { resolvePolicy } from '../policies.js';
import { SCENARIO_SPLITS, type ScenarioSplit } from '../evaluation/scenarios.js';
import {
  action,
  listOption,
  resolveConfig,
  withCommonOptions,
  type CommonOptions,
} from './common.js';

interface CompareCliOptions extends CommonOptions {
  policies: string;
  scenario: string;
  seeds?: string;
  split: string;
  dataDir?: string;
  markets?: string;
}

function wholeNumber(value: string, name: string): number {
  const x = Number(value);
  if (!(Number.isInteger(x) && x >= 0))
    throw new UsageError(`--${name} "${value}" is not a whole number`);
  return x;
}

/** Registers `ctm compare`. */
export function registerCompareCommand(program: Command): void {
  withCommonOptions(
    program
      .command('compare')
      .description(
        "run policies on a scenario's markets and compare them (mean ± spread of return, Sharpe, max drawdown, turnover, fee drag; differences to spot buy-and-hold and random) into runs/<id>/ with a report",
      )
      .requiredOption(
        '--policies <list>',
        'comma-separated: baselines (flat, buy-hold, spot-buy-hold, random, sma-cross, pattern-oracle, oracle), run directories or ids, ./policy.js; LABEL=RUN1+RUN2 for the seeds of one policy',
      )
      .requiredOption(
        '--scenario <name>',
        'a scenario of config section scenarios (e.g. trend, mix, real)',
      )
      .option('--seeds <n>', 'seeds of random (default: backtest.random.seeds)')
      .option('--split <split>', 'markets of this split: train | validation | test', 'test')
      .option('--markets <list>', 'only these markets of the split (comma-separated indices)')
      .option(
        '--data-dir <dir>',
        'real scenario: read <exchange>-<BASEQUOTE>-<tf>.csv.gz files from this directory',
      ),
  ).action(
    action(async (opts: CompareCliOptions) => {
      const config = resolveConfig(opts);
      if (!(SCENARIO_SPLITS as readonly string[]).includes(opts.split))
        throw new UsageError(`--split ${opts.split} is not one of ${SCENARIO_SPLITS.join(', ')}`);
      const outcome = await runCompare({
        config,
        scenario: opts.scenario,
        policies: parsePolicyList(opts.policies),
        seeds: opts.seeds === undefined ? undefined : wholeNumber(opts.seeds, 'seeds'),
        split: opts.split as ScenarioSplit,
        markets:
          opts.markets === undefined
            ? undefined
            : listOption(opts.markets).map((m) => wholeNumber(m, 'markets')),
        dataDir: opts.dataDir,
        commandLine: process.argv.slice(2),
        resolvePolicy,
      });
      process.stdout.write(
        `${outcome.table}\n${outcome.result.markets.length} ${outcome.result.split} markets of ${outcome.result.scenario}; mean ± sd over policy seeds x markets; vs columns: paired difference in return, mean ± standard error ("beats" = ahead by more than 2 standard errors)\n` +
          `run: ${outcome.run.dir}\nreport: ${outcome.run.path('report.html')}\n`,
      );
    }),
  );
}
