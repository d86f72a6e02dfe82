// `ctm run`: the whole system end to end, what `npm start` does (see src/pipeline.ts).

import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { PIPELINE_STAGES, runPipeline, type PipelineStage } from '../pipeline.js';
import { action, resolveConfig, withCommonOptions, type CommonOptions } from './common.js';

interface RunOptions extends CommonOptions {
  quick?: boolean;
  resume?: string;
  reuse?: string;
  stage?: string;
}

/** Registers `ctm run`. */
export function registerRunCommand(program: Command): void {
  withCommonOptions(
    program
      .command('run')
      .description(
        "the whole system end to end (what `npm start` does): synthetic dataset, sequence model, DQN, PPO with the model's encoders and from a random encoder, compared with the baselines on held-out markets, one report",
      )
      .option('--quick', 'small sizes (pipeline.sizes.quick): a first look in under 2 minutes')
      .option(
        '--resume <run>',
        'continue a pipeline run after a crash, at its first unfinished stage',
      )
      .option(
        '--reuse <run>',
        "start a new run at --stage, taking the earlier stages' outputs from this run",
      )
      .option(
        '--stage <name>',
        `with --reuse: the first stage to run (${PIPELINE_STAGES.join(', ')})`,
      ),
  ).action(
    action(async (opts: RunOptions) => {
      if (opts.stage !== undefined && !(PIPELINE_STAGES as readonly string[]).includes(opts.stage))
        throw new UsageError(
          `--stage must be one of ${PIPELINE_STAGES.join(', ')}, got "${opts.stage}"`,
        );
      if (opts.stage !== undefined && opts.reuse === undefined)
        throw new UsageError('--stage needs --reuse RUN (the run whose earlier stages are reused)');
      if (opts.resume !== undefined && opts.reuse !== undefined)
        throw new UsageError('--resume and --reuse exclude each other');
      const config = resolveConfig(opts);
      const result = await runPipeline({
        config,
        ...(opts.quick === true ? { quick: true } : {}),
        ...(opts.resume === undefined ? {} : { resume: opts.resume }),
        ...(opts.reuse === undefined ? {} : { reuse: opts.reuse }),
        ...(opts.stage === undefined ? {} : { stage: opts.stage as PipelineStage }),
        onLine: (line) => process.stdout.write(line + '\n'),
        commandLine: process.argv.slice(3),
      });
      process.stdout.write(
        `pipeline run ${result.runDir}\nopen its report.html in a browser; README.md lists the command behind each stage\n`,
      );
    }),
  );
}
