// `ctm train ...`: the training command group. `train model` trains the multi-timeframe sequence
// model (new, `--init-from RUN` for fine-tuning, `--resume RUN` after an interruption); the RL
// agents register `train dqn` and `train ppo` here too. Each subcommand parses its flags, resolves
// the config and calls one library function.

import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { runModelTraining, type TrainingSource } from '../models/time-series/training-run.js';
import { action, resolveConfig, withCommonOptions, type CommonOptions } from './common.js';

interface TrainModelFlags extends CommonOptions {
  source?: string;
  symbol?: string;
  dataDir?: string;
  initFrom?: string;
  resume?: string;
  epochs?: string;
  batchSize?: string;
  lr?: string;
  maxStepsPerEpoch?: string;
  checkpointEvery?: string;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`--${flag} must be a positive integer, got "${value}"`);
  return n;
}

function positiveNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0)) throw new UsageError(`--${flag} must be a positive number, got "${value}"`);
  return n;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function registerTrainModel(train: Command): void {
  withCommonOptions(
    train
      .command('model')
      .description('train the multi-timeframe sequence model (resumable: --resume RUN)')
      .option(
        '--source <source>',
        'real (store or --data-dir) | synthetic (base process) | dataset (--data-dir from ctm dataset build)',
        'real',
      )
      .option('--symbol <symbol>', 'symbol of a real-data run (default: first of data.symbols)')
      .option(
        '--data-dir <dir>',
        'real: <exchange>-<BASEQUOTE>-<tf>.csv.gz candle files instead of the store; dataset: the dataset directory',
      )
      .option(
        '--init-from <run>',
        'start from the model of this run (fine-tuning; normaliser refitted)',
      )
      .option(
        '--resume <run>',
        "continue this run from its last checkpoint (uses the run's own config)",
      )
      .option('--epochs <n>', 'model.train.epochs')
      .option('--batch-size <n>', 'model.train.batchSize')
      .option('--lr <rate>', 'model.train.learningRate')
      .option('--max-steps-per-epoch <n>', 'model.train.maxStepsPerEpoch')
      .option('--checkpoint-every <n>', 'model.train.checkpointEverySteps'),
  ).action(
    action(async (flags: TrainModelFlags) => {
      const source = flags.source as TrainingSource;
      if (source !== 'real' && source !== 'synthetic' && source !== 'dataset')
        throw new UsageError(`--source must be real, synthetic or dataset, got "${flags.source}"`);
      if (flags.resume !== undefined && flags.initFrom !== undefined)
        throw new UsageError('--resume and --init-from exclude each other');
      const trainOverrides: Record<string, number> = {};
      const put = (key: string, v: number | undefined): void => {
        if (v !== undefined) trainOverrides[key] = v;
      };
      put('epochs', positiveInt(flags.epochs, 'epochs'));
      put('batchSize', positiveInt(flags.batchSize, 'batch-size'));
      put('learningRate', positiveNumber(flags.lr, 'lr'));
      put('maxStepsPerEpoch', positiveInt(flags.maxStepsPerEpoch, 'max-steps-per-epoch'));
      put('checkpointEverySteps', positiveInt(flags.checkpointEvery, 'checkpoint-every'));
      const config = resolveConfig(
        flags,
        Object.keys(trainOverrides).length > 0 ? [{ model: { train: trainOverrides } }] : [],
      );
      const r = await runModelTraining({
        config,
        source,
        ...(flags.symbol === undefined ? {} : { symbol: flags.symbol }),
        ...(flags.dataDir === undefined ? {} : { dataDir: flags.dataDir }),
        ...(flags.initFrom === undefined ? {} : { initFrom: flags.initFrom }),
        ...(flags.resume === undefined ? {} : { resume: flags.resume }),
        commandLine: process.argv.slice(2),
      });
      const lines = [
        `run ${r.run.id}${r.resumedFromStep === null ? '' : ` (resumed at step ${r.resumedFromStep})`}: ${r.epochs} epochs, ${r.steps} steps, best epoch ${r.bestEpoch + 1} (val loss ${r.bestValLoss.toFixed(4)})`,
        `validation: accuracy ${pct(r.validation.accuracy)}, macro-F1 ${r.validation.macroF1.toFixed(3)}, Brier ${r.validation.brier.toFixed(3)}`,
      ];
      if (r.test !== null)
        lines.push(
          `test: accuracy ${pct(r.test.accuracy)}, macro-F1 ${r.test.macroF1.toFixed(3)}, Brier ${r.test.brier.toFixed(3)}` +
            (r.test.pattern === null
              ? ''
              : `; pattern accuracy ${pct(r.test.pattern.accuracy)} (${r.test.pattern.count} samples)`),
        );
      lines.push(`model: ${r.modelDir}`);
      process.stdout.write(lines.join('\n') + '\n');
    }),
  );
}

/** Registers `ctm train` and its subcommands. */
export function registerTrainCommands(program: Command): void {
  const train = program.command('train').description('training runs (checkpointed, resumable)');
  registerTrainModel(train);
}
