// `ctm runs`: a thin layer over `summarizeRuns`: lists the run folders (kind, status, data, config
// differences from the defaults, key figures, and the number of trials a result was chosen from).

import type { Command } from 'commander';
import { defaultConfig } from '../utils/config.js';
import { summarizeRuns, type RunSummary } from '../utils/runs.js';
import { action, resolveConfig, withCommonOptions, type CommonOptions } from './common.js';

interface RunsCliOptions extends CommonOptions {
  kind?: string;
  json?: boolean;
}

function figure(name: string, v: number): string {
  return ['totalReturn', 'maxDrawdown', 'accuracy'].includes(name)
    ? `${name} ${(100 * v).toFixed(2)}%`
    : `${name} ${Number.isInteger(v) ? v : v.toFixed(3)}`;
}

function line(r: RunSummary): string {
  const changes =
    r.configChanges.length <= 3
      ? r.configChanges.join(' ')
      : `${r.configChanges.slice(0, 3).join(' ')} (+${r.configChanges.length - 3} more)`;
  const metrics = Object.entries(r.metrics)
    .map(([k, v]) => figure(k, v))
    .join(', ');
  return [
    `${r.id}  ${r.kind}  ${r.status}${r.error === undefined ? '' : ` (${r.error})`}`,
    `    data: ${r.data || '(none recorded)'}   trials: ${r.trials}`,
    ...(changes === '' ? [] : [`    config: ${changes}`]),
    ...(metrics === '' ? [] : [`    ${metrics}`]),
  ].join('\n');
}

/** Registers `ctm runs`. */
export function registerRunsCommand(program: Command): void {
  withCommonOptions(
    program
      .command('runs')
      .description(
        'list the runs under paths.runs: kind, status, data, config changes from the defaults, key figures, and the trials (runs of the same kind on the same data, failures included) each result was chosen from',
      )
      .option('--kind <kind>', 'only runs of this kind (backtest, compare, train-model, ...)')
      .option('--json', 'print JSON instead of text'),
  ).action(
    action((opts: RunsCliOptions) => {
      const config = resolveConfig(opts);
      const runs = summarizeRuns(config.paths.runs, defaultConfig(), { kind: opts.kind });
      if (opts.json === true) process.stdout.write(JSON.stringify(runs, null, 2) + '\n');
      else if (runs.length === 0) process.stdout.write(`no runs under ${config.paths.runs}\n`);
      else process.stdout.write(runs.map(line).join('\n') + '\n');
    }),
  );
}
