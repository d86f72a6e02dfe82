// `ctm train ...`: the training command group. `train model` trains the multi-timeframe sequence
// model (new, `--init-from RUN` for fine-tuning, `--resume RUN` after an interruption); the RL
// agents register `train dqn` and `train ppo` here too. Each subcommand parses its flags, resolves
// the config and calls one library function.

import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { runModelTraining, type TrainingSource } from '../models/time-series/training-run.js';
import { parseCurriculum } from '../evaluation/scenarios.js';
import { runAgentTraining, type AgentAlgorithm } from '../models/reinforcement/agent-runs.js';
import {
  action,
  positiveIntOption,
  resolveConfig,
  withCommonOptions,
  type CommonOptions,
} from './common.js';

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
      put('epochs', positiveIntOption(flags.epochs, 'epochs'));
      put('batchSize', positiveIntOption(flags.batchSize, 'batch-size'));
      put('learningRate', positiveNumber(flags.lr, 'lr'));
      put('maxStepsPerEpoch', positiveIntOption(flags.maxStepsPerEpoch, 'max-steps-per-epoch'));
      put('checkpointEverySteps', positiveIntOption(flags.checkpointEvery, 'checkpoint-every'));
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

interface TrainAgentFlags extends CommonOptions {
  scenario?: string;
  curriculum?: string;
  source?: string;
  symbol?: string;
  fold?: string;
  dataDir?: string;
  timesteps?: string;
  resume?: string;
  initFrom?: string;
  randomEncoder?: boolean;
}

function registerTrainAgent(train: Command, algorithm: AgentAlgorithm): void {
  const cmd = train
    .command(algorithm)
    .description(
      algorithm === 'dqn'
        ? 'train the DQN agent on a scenario or curriculum (resumable: --resume RUN)'
        : 'train the PPO agent on a scenario or curriculum, optionally from the sequence model (--init-from RUN)',
    )
    .option(
      '--scenario <name>',
      'one scenario (config scenarios: trend, pullback, patterns, mix, real)',
    )
    .option(
      '--curriculum <list>',
      'scenarios in training order, weights carried over (e.g. trend,pullback,mix)',
    )
    .option(
      '--source <source>',
      'real: the real scenario (store or --data-dir), as --scenario real',
    )
    .option('--symbol <symbol>', 'real data: the symbol (scenarios.real.symbol)')
    .option('--fold <k>', 'real data: the walk-forward fold to train on (0 = first test year)')
    .option(
      '--data-dir <dir>',
      'real data: candle files in the ../shared/data layout instead of the store',
    )
    .option('--timesteps <n>', `env steps per scenario (${algorithm}.totalTimesteps)`)
    .option(
      '--resume <run>',
      "continue this run from its last checkpoint (uses the run's own config)",
    );
  if (algorithm === 'ppo')
    cmd
      .option('--init-from <run>', 'a train-model run: its encoders become the feature extractor')
      .option(
        '--random-encoder',
        'with --init-from: the same encoder architecture, freshly initialised (transfer control)',
      );
  withCommonOptions(cmd).action(
    action(async (flags: TrainAgentFlags) => {
      if (flags.scenario !== undefined && flags.curriculum !== undefined)
        throw new UsageError('--scenario and --curriculum exclude each other');
      if (flags.source !== undefined && flags.source !== 'real' && flags.source !== 'synthetic')
        throw new UsageError(`--source must be real or synthetic, got "${flags.source}"`);
      if (flags.resume !== undefined && flags.initFrom !== undefined)
        throw new UsageError('--resume and --init-from exclude each other');
      if (flags.randomEncoder === true && flags.initFrom === undefined)
        throw new UsageError('--random-encoder needs --init-from RUN (the architecture to copy)');
      const timesteps = positiveIntOption(flags.timesteps, 'timesteps');
      const foldFlag = flags.fold === undefined ? undefined : Number(flags.fold);
      if (foldFlag !== undefined && !(Number.isInteger(foldFlag) && foldFlag >= 0))
        throw new UsageError(`--fold must be a whole number >= 0, got "${flags.fold}"`);
      const overrides: Record<string, unknown>[] = [];
      if (flags.symbol !== undefined)
        overrides.push({ scenarios: { real: { symbol: flags.symbol } } });
      const config = resolveConfig(flags, overrides);
      const scenarios =
        flags.source === 'real'
          ? ['real']
          : flags.curriculum !== undefined
            ? parseCurriculum(config, flags.curriculum)
            : [flags.scenario ?? 'mix'];
      const r = await runAgentTraining({
        config,
        algorithm,
        scenarios,
        ...(foldFlag === undefined ? {} : { fold: foldFlag }),
        ...(flags.dataDir === undefined ? {} : { dataDir: flags.dataDir }),
        ...(timesteps === undefined ? {} : { timesteps }),
        ...(flags.resume === undefined ? {} : { resume: flags.resume }),
        ...(flags.initFrom === undefined ? {} : { initFrom: flags.initFrom }),
        ...(flags.randomEncoder === true ? { encoderInit: 'random' as const } : {}),
        commandLine: process.argv.slice(2),
      });
      const lines = [
        `run ${r.run.id}${r.resumedFromStep === null ? '' : ` (resumed at step ${r.resumedFromStep})`}: ${r.steps} env steps, mean episode return ${Number.isNaN(r.meanEpisodeReturn) ? '-' : r.meanEpisodeReturn.toFixed(4)}`,
        ...r.validation.map(
          (v) =>
            `validation ${v.market}: total ${v.totalReturn === null ? '-' : pct(v.totalReturn)}, Sharpe ${v.sharpe === null ? '-' : v.sharpe.toFixed(2)}, trades ${v.trades}`,
        ),
        `agent: ${r.agentDir}  (ctm backtest --policy ${r.run.dir} / ctm compare --policies ${r.run.dir},spot-buy-hold,random)`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    }),
  );
}

/** Registers `ctm train` and its subcommands. */
export function registerTrainCommands(program: Command): void {
  const train = program.command('train').description('training runs (checkpointed, resumable)');
  registerTrainModel(train);
  registerTrainAgent(train, 'dqn');
  registerTrainAgent(train, 'ppo');
}
