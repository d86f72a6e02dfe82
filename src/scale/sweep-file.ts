// The sweep file: a YAML description of many `ctm` runs of one command (a grid and/or a seeded
// random search over config keys, seeds, symbols and walk-forward folds). Owns the file's schema,
// its parsing with line numbers in errors, and the expansion of grid and random search into
// parameter points. Never validates config values (jobs.ts does, against the config schema), never
// runs anything and never reads candles.

import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, parseDateMs } from '../utils/config.js';
import { Rng } from '../utils/random.js';

/** A distribution of one random-search parameter. */
export type ParamDistribution =
  | { readonly choice: readonly unknown[] }
  | { readonly uniform: readonly [number, number] }
  | { readonly logUniform: readonly [number, number] }
  | { readonly int: readonly [number, number] };

/** A parsed and checked sweep file. */
export interface SweepSpec {
  /** Absolute path of the sweep file. */
  readonly file: string;
  /** Sweep name (`name:`, default the file name without extension). */
  readonly name: string;
  /** The `ctm` command every job runs, as argv (`['backtest', '--policy', 'sma-cross']`). */
  readonly command: readonly string[];
  /** Absolute path of the jobs' base config file (`config:`, relative to the sweep file), or null. */
  readonly configFile: string | null;
  /** Overrides every job gets (`set:`), by dotted key path. */
  readonly set: Readonly<Record<string, unknown>>;
  /** Grid search: every combination of these values (`grid:`), by dotted key path. */
  readonly grid: Readonly<Record<string, readonly unknown[]>>;
  /** Random search (`random:`): `samples` points drawn with `seed`, or null. */
  readonly random: {
    readonly samples: number;
    readonly seed: number;
    readonly params: Readonly<Record<string, ParamDistribution>>;
  } | null;
  /** Seeds (`seeds:`: a list, or a count n for seeds 1..n), or null for the config's seed. */
  readonly seeds: readonly number[] | null;
  /** Symbols (`symbols:`, each job gets `data.symbols: [symbol]`), or null. */
  readonly symbols: readonly string[] | null;
  /** Walk-forward folds cut from this span with `backtest.walkForward` (`folds:`), or null. */
  readonly folds: { readonly from: string; readonly to: string } | null;
  /** Extra columns of the summary: dotted paths into each run's metrics.json (`columns:`). */
  readonly columns: readonly string[];
}

const KEY_RE = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;
const keyPath = z
  .string()
  .regex(KEY_RE, 'expected a dotted config key path like broker.takerFeeRate');
// Dates and symbols are checked by the config schema's own rules.
const dateString = configSchema.shape.data.shape.startDate.unwrap();
const symbols = configSchema.shape.data.shape.symbols;
const pair = z.tuple([z.number(), z.number()]);
const DISTRIBUTION_HINT =
  'a random parameter is { choice: [a, b, ...] }, { uniform: [lo, hi] }, { logUniform: [lo, hi] } or { int: [lo, hi] }';
const distribution = z.union(
  [
    z.strictObject({ choice: z.array(z.unknown()).min(1) }),
    z.strictObject({ uniform: pair }),
    z.strictObject({ logUniform: pair }),
    z.strictObject({ int: z.tuple([z.number().int(), z.number().int()]) }),
  ],
  { error: DISTRIBUTION_HINT },
);

const fileSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only')
    .optional(),
  command: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  config: z.string().min(1).optional(),
  set: z.record(keyPath, z.unknown()).optional(),
  grid: z.record(keyPath, z.array(z.unknown()).min(1)).optional(),
  random: z
    .strictObject({
      samples: z.number().int().positive(),
      seed: z.number().int().nonnegative().default(0),
      params: z.record(keyPath, distribution),
    })
    .optional(),
  seeds: z
    .union([z.array(z.number().int().nonnegative()).min(1), z.number().int().positive()])
    .optional(),
  symbols: symbols.optional(),
  folds: z.strictObject({ from: dateString, to: dateString }).optional(),
  columns: z.array(keyPath).optional(),
});

/** Flags the sweep sets itself; a command that carries them is refused. */
const OWNED_FLAGS: Readonly<Record<string, string>> = {
  '--config': "the jobs read the sweep's `config:` file",
  '--set': 'put overrides under `set:`, `grid:` or `random:`',
  '--seed': 'put seeds under `seeds:`',
  '--resume': 'a job resumes its own run after an interruption',
};

/** The line of the deepest node of `path` found in the document (a key's own line for maps). */
function lineOf(
  doc: Document,
  lines: LineCounter,
  path: readonly (string | number)[],
): number | null {
  let node: unknown = doc.contents;
  let line: number | null = null;
  for (const step of path) {
    let next: unknown = undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(step));
      if (pair !== undefined && isScalar(pair.key) && pair.key.range)
        line = lines.linePos(pair.key.range[0]).line;
      next = pair?.value;
    } else if (isSeq(node) && typeof step === 'number') {
      next = node.items[step];
      const range = (next as { range?: [number, number, number] } | undefined)?.range;
      if (range) line = lines.linePos(range[0]).line;
    }
    if (next === undefined || next === null) break;
    node = next;
  }
  return line;
}

function fail(
  file: string,
  key: string,
  message: string,
  line: number | null,
  hint?: string,
): ConfigError {
  return new ConfigError(key, line === null ? message : `${message} (line ${line})`, {
    file,
    hint,
  });
}

/** The command's argv: a YAML list as is, a string split on whitespace. */
function commandArgv(command: string | string[]): string[] {
  return Array.isArray(command) ? command : command.trim().split(/\s+/);
}

/**
 * Reads and checks a sweep file (see README "Sweeps"). Config keys and values are not checked here
 * (`planSweep` validates every job against the config schema).
 * @throws {ConfigError} naming the file, the sweep key and its line: a missing file, YAML syntax,
 *   unknown sweep keys, wrong types, a command carrying a flag the sweep sets (`--seed`, `--set`,
 *   `--config`, `--resume`), `symbols:` with `--symbol`, `folds:` with `--from/--to/--walk-forward`,
 *   or one key in two of `set:`, `grid:` and `random:`.
 */
export function readSweepFile(path: string): SweepSpec {
  const file = resolve(path);
  if (!existsSync(file)) throw new ConfigError('', 'sweep file not found', { file });
  const lines = new LineCounter();
  const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new ConfigError(
      '',
      `YAML syntax error at line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`,
      {
        file,
      },
    );
  }
  const parsed = fileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    let path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      path = [...path, issue.keys[0]];
      message = 'unknown key';
    }
    throw fail(
      file,
      path.join('.'),
      message,
      lineOf(doc, lines, path),
      issue.code === 'unrecognized_keys' && issue.path.length === 0
        ? 'sweep keys: name, command, config, set, grid, random, seeds, symbols, folds, columns'
        : undefined,
    );
  }
  const f = parsed.data;
  const line = (...p: (string | number)[]): number | null => lineOf(doc, lines, p);
  const command = commandArgv(f.command);
  if (command[0].startsWith('-') || command[0] === 'sweep' || command[0] === 'worker')
    throw fail(
      file,
      'command',
      `"${command[0]}" is not a ctm command a job can run`,
      line('command'),
      'e.g. command: backtest --policy sma-cross',
    );
  for (const token of command) {
    const flag = token.split('=')[0];
    if (OWNED_FLAGS[flag] !== undefined)
      throw fail(
        file,
        'command',
        `the command may not carry ${flag}`,
        line('command'),
        OWNED_FLAGS[flag],
      );
    if (f.symbols !== undefined && flag === '--symbol')
      throw fail(
        file,
        'command',
        'the command carries --symbol and the sweep has symbols:',
        line('command'),
        'drop one of them',
      );
    if (
      f.folds !== undefined &&
      (flag === '--from' || flag === '--to' || flag === '--walk-forward')
    )
      throw fail(
        file,
        'command',
        `the command carries ${flag} and the sweep has folds:`,
        line('command'),
        'each fold sets splits.train, splits.validation and splits.test',
      );
  }
  const seen = new Map<string, string>();
  for (const [section, keys] of [
    ['set', Object.keys(f.set ?? {})],
    ['grid', Object.keys(f.grid ?? {})],
    ['random.params', Object.keys(f.random?.params ?? {})],
  ] as const)
    for (const key of keys) {
      const other = seen.get(key);
      if (other !== undefined)
        throw fail(
          file,
          `${section}.${key}`,
          `also under ${other}:`,
          line(...section.split('.'), key),
          'give each key one source of values',
        );
      seen.set(key, section);
    }
  for (const [key, dist] of Object.entries(f.random?.params ?? {})) {
    const range =
      'uniform' in dist
        ? dist.uniform
        : 'logUniform' in dist
          ? dist.logUniform
          : 'int' in dist
            ? dist.int
            : null;
    if (range !== null && !(range[0] <= range[1]))
      throw fail(
        file,
        `random.params.${key}`,
        `the range [${range[0]}, ${range[1]}] is empty`,
        line('random', 'params', key),
      );
    if ('logUniform' in dist && !(dist.logUniform[0] > 0))
      throw fail(
        file,
        `random.params.${key}`,
        'logUniform needs a positive range',
        line('random', 'params', key),
      );
  }
  if (f.folds !== undefined && !(parseDateMs(f.folds.to) > parseDateMs(f.folds.from)))
    throw fail(file, 'folds', 'folds.to must be after folds.from', line('folds'));
  const seeds =
    f.seeds === undefined
      ? null
      : typeof f.seeds === 'number'
        ? Array.from({ length: f.seeds }, (_, k) => k + 1)
        : f.seeds;
  if (seeds !== null && new Set(seeds).size !== seeds.length)
    throw fail(file, 'seeds', 'a seed is listed twice', line('seeds'));
  if (f.symbols !== undefined && new Set(f.symbols).size !== f.symbols.length)
    throw fail(file, 'symbols', 'a symbol is listed twice', line('symbols'));
  const configFile = f.config === undefined ? null : resolve(dirname(file), f.config);
  if (configFile !== null && !existsSync(configFile))
    throw fail(file, 'config', `config file ${configFile} not found`, line('config'));
  return {
    file,
    name: f.name ?? basename(file, extname(file)).replace(/[^A-Za-z0-9._-]+/g, '-'),
    command,
    configFile,
    set: f.set ?? {},
    grid: f.grid ?? {},
    random:
      f.random === undefined
        ? null
        : { samples: f.random.samples, seed: f.random.seed, params: f.random.params },
    seeds,
    symbols: f.symbols ?? null,
    folds: f.folds ?? null,
    columns: f.columns ?? [],
  };
}

function draw(rng: Rng, d: ParamDistribution): unknown {
  if ('choice' in d) return d.choice[rng.int(d.choice.length)];
  if ('uniform' in d) return rng.uniform(d.uniform[0], d.uniform[1]);
  if ('logUniform' in d)
    return Math.exp(rng.uniform(Math.log(d.logUniform[0]), Math.log(d.logUniform[1])));
  return d.int[0] + rng.int(d.int[1] - d.int[0] + 1);
}

/**
 * The parameter points of a sweep: every combination of the grid, each combined with every
 * random-search sample (drawn in key order from `random.seed`, so the same file gives the same
 * points). One empty point when the sweep has neither.
 */
export function parameterPoints(
  spec: Pick<SweepSpec, 'grid' | 'random'>,
): Record<string, unknown>[] {
  let points: Record<string, unknown>[] = [{}];
  for (const [key, values] of Object.entries(spec.grid))
    points = points.flatMap((p) => values.map((v) => ({ ...p, [key]: v })));
  if (spec.random !== null) {
    const rng = new Rng(spec.random.seed);
    const keys = Object.keys(spec.random.params).sort();
    const samples = Array.from({ length: spec.random.samples }, () =>
      Object.fromEntries(keys.map((k) => [k, draw(rng, spec.random!.params[k])])),
    );
    points = points.flatMap((p) => samples.map((s) => ({ ...p, ...s })));
  }
  return points;
}
