// Shared plumbing of the `ctm` commands: the options every command takes (--config, --seed,
// --set), turning them into a validated Config, and the one error handler that prints a one-line
// message with a hint and exits with the error's code.

import type { Command } from 'commander';
import { CtmError, ExitCode, UsageError } from '../errors.js';
import { loadConfig, parseDateMs, type Config } from '../utils/config.js';
import { logger, setLogLevel } from '../utils/logger.js';
import { finishOpenRuns } from '../utils/runs.js';

/** The options added by `withCommonOptions`. */
export interface CommonOptions {
  /** `--config <file>`: YAML config merged over config/default.yaml. */
  config?: string;
  /** `--seed <n>` as typed (converted with `Number`; the config schema validates it). */
  seed?: string;
  /** `--set key=value` overrides, in command-line order (repeatable). */
  set?: string[];
  /** `--log-level`: trace, debug, info, warn, error or silent. */
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

/** The items of a comma-separated option (`BTC/USDT, ETH/USDT`), trimmed, empty items dropped. */
export function listOption(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A ccxt unified symbol: `BTC/USDT`, or `BTC/USDT:USDT` for a contract. */
const SYMBOL_RE = /^[A-Z0-9]+\/[A-Z0-9]+(:[A-Z0-9]+)?$/;

/**
 * `symbol` when it is a ccxt unified symbol.
 * @throws {UsageError} otherwise, with a hint of the form.
 */
export function symbolOption(symbol: string): string {
  if (!SYMBOL_RE.test(symbol))
    throw new UsageError(`"${symbol}" is not a ccxt unified symbol`, {
      hint: 'write symbols like BTC/USDT',
    });
  return symbol;
}

/**
 * The date option `--<name>` as UTC epoch ms (a bare date is 00:00 UTC), or undefined when absent.
 * @throws {UsageError} when the value is not a date.
 */
export function dateOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDateMs(value);
  if (Number.isNaN(ms))
    throw new UsageError(`--${name} "${value}" is not a date`, {
      hint: 'use YYYY-MM-DD (00:00 UTC) or an ISO-8601 timestamp',
    });
  return ms;
}

/**
 * Wraps a command action: library errors become one line on stderr and the right exit code, and
 * the runs the command created are marked `completed`, or `failed` (also when it is interrupted
 * by SIGINT or SIGTERM), so that every run folder says how it ended.
 */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void> | void,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const interrupted = (signal: NodeJS.Signals): void => {
      finishOpenRuns('failed', `interrupted by ${signal}`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
    try {
      await fn(...args);
      finishOpenRuns('completed');
    } catch (err) {
      finishOpenRuns('failed', err);
      reportAndExit(err);
    } finally {
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
    }
  };
}

/** Prints an error as one line (plus a hint line) and exits with its code. */
function reportAndExit(err: unknown): never {
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
