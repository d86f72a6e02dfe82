// Shared plumbing of the `ctm` commands: the options every command takes (--config, --seed,
// --set), turning them into a validated Config, and the one error handler that prints a one-line
// message with a hint and exits with the error's code.

import type { Command } from 'commander';
import { CtmError, ExitCode } from '../errors.js';
import { loadConfig, type Config } from '../utils/config.js';
import { logger, setLogLevel } from '../utils/logger.js';

/** The options added by `withCommonOptions`. */
export interface CommonOptions {
  config?: string;
  seed?: string;
  set?: string[];
  logLevel?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Adds --config, --seed, --set and --log-level to a command. */
export function withCommonOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'YAML config merged over config/default.yaml')
    .option('--seed <n>', 'seed of every random thing in this run')
    .option(
      '--set <key=value>',
      'override one config key, e.g. --set broker.takerFeeRate=0.0005 (repeatable)',
      collect,
    )
    .option('--log-level <level>', 'trace | debug | info | warn | error | silent');
}

/**
 * Resolves the config of a command: defaults, --config, --set, then `--seed` and any structured
 * overrides the command derives from its own flags.
 */
export function resolveConfig(
  opts: CommonOptions,
  overrides: Record<string, unknown>[] = [],
): Config {
  if (opts.logLevel !== undefined) setLogLevel(opts.logLevel);
  const seedOverride: Record<string, unknown>[] = [];
  if (opts.seed !== undefined) {
    const seed = Number(opts.seed);
    seedOverride.push({ seed });
  }
  return loadConfig({
    file: opts.config,
    set: opts.set,
    overrides: [...overrides, ...seedOverride],
  });
}

/** Wraps a command action: library errors become one line on stderr and the right exit code. */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void> | void,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      reportAndExit(err);
    }
  };
}

/** Prints an error as one line (plus a hint line) and exits with its code. */
export function reportAndExit(err: unknown): never {
  if (err instanceof CtmError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (err.hint !== undefined) process.stderr.write(`hint: ${err.hint}\n`);
    process.exit(err.exitCode);
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`error: ${message.split('\n')[0]}\n`);
  logger.debug({ err }, 'unexpected error');
  process.exit(ExitCode.Failure);
}
