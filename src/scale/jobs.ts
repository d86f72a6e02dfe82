// Planning a sweep: its parameter points × symbols × walk-forward folds × seeds become jobs, each
// a `ctm` argv with `--set` overrides and `--seed`, each validated against the config schema
// before anything runs or is enqueued, each with its id (identity.ts). Owns the manifest (the
// sweep's list of jobs, written once into runs/<sweep id>/) and where sweeps and jobs live under
// `paths.runs`. Never runs a job.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { timeframeMs } from '../data-processing/candles.js';
import { ConfigError, CtmError, UsageError } from '../errors.js';
import { walkForwardSplits } from '../data-processing/splits.js';
import { loadConfig, parseDateMs, rangeMs, type Config } from '../utils/config.js';
import { writeJsonAtomic } from '../utils/fs.js';
import {
  buildId,
  commandKind,
  inputFingerprint,
  jobId,
  packageVersion,
  sha256,
} from './identity.js';
import { parameterPoints, type SweepSpec } from './sweep-file.js';

const DAY_MS = 86_400_000;

/** One walk-forward fold of a job: the splits it sets (ISO-8601 UTC, `to` exclusive). */
export interface FoldPlan {
  /** 0-based fold number in test-window order. */
  readonly index: number;
  /** `splits.train`. */
  readonly train: readonly [string, string];
  /** `splits.validation`: the end of the fold's training window (`sweep.foldValidationDays`). */
  readonly validation: readonly [string, string];
  /** `splits.test`: the fold's test window. */
  readonly test: readonly [string, string];
}

/** One job of a sweep. */
export interface SweepJob {
  /** Job id (identity.ts `jobId`): equal jobs have equal ids on any machine. */
  readonly id: string;
  /** 0-based position in the sweep. */
  readonly index: number;
  /** The full `ctm` argv: the command, `--set key=value` overrides, `--seed` (no paths, no config file). */
  readonly argv: readonly string[];
  /** The varied parameters of this job (grid and random keys) and their values. */
  readonly params: Readonly<Record<string, unknown>>;
  /** The job's seed (also in argv), or null when the sweep has no `seeds:` (the config's seed). */
  readonly seed: number | null;
  /** The job's symbol (`data.symbols: [symbol]`), or null. */
  readonly symbol: string | null;
  /** The job's walk-forward fold, or null. */
  readonly fold: FoldPlan | null;
  /** True when an interrupted run of this command continues with `--resume RUN` (training). */
  readonly resumable: boolean;
  /** Fingerprint of the data the job reads (identity.ts `inputFingerprint`). */
  readonly data: string;
}

/** The manifest of a sweep: runs/<sweep id>/manifest.json. */
export interface SweepManifest {
  /** Manifest format version. */
  readonly format: 1;
  /** Sweep id: `sweep-<name>-<8 hex digits of the job ids>`; the same file plans the same id. */
  readonly id: string;
  /** Sweep name. */
  readonly name: string;
  /** When the sweep was first planned, ISO 8601 UTC. */
  readonly created: string;
  /** Absolute path of the sweep file. */
  readonly file: string;
  /** The command every job runs. */
  readonly command: readonly string[];
  /** package.json version of the planning code. */
  readonly packageVersion: string;
  /** Build of the planning code; workers of another build refuse the jobs. */
  readonly build: string;
  /** Text of the jobs' base config file (the sweep's `config:`), or null. */
  readonly baseConfig: string | null;
  /** Extra summary columns (paths into metrics.json). */
  readonly columns: readonly string[];
  /** The jobs. */
  readonly jobs: readonly SweepJob[];
}

/** Directory of a sweep: `<runsDir>/<sweep id>`. */
export function sweepDir(runsDir: string, sweepId: string): string {
  return join(resolve(runsDir), sweepId);
}

/** Directory of a job (its result, logs and run folders): `<runsDir>/jobs/<job id>`. */
export function jobDir(runsDir: string, id: string): string {
  return join(resolve(runsDir), 'jobs', id);
}

/** `key=value` for `--set`, the value as JSON (valid YAML flow, so types survive). */
function assignment(key: string, value: unknown): string {
  return `${key}=${JSON.stringify(value)}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * A job's varied parameters, symbol, fold and seed in one line (`learningRate=0.001 BTC/USDT fold 2
 * seed 1`); config keys are shortened to their last element unless `fullKeys`.
 */
export function describeParams(
  job: {
    readonly params: Readonly<Record<string, unknown>>;
    readonly seed: number | null;
    readonly symbol: string | null;
    readonly fold: number | null;
  },
  fullKeys = false,
): string {
  const parts = Object.entries(job.params).map(
    ([k, v]) =>
      `${fullKeys ? k : k.split('.').pop()}=${typeof v === 'number' ? Number(v.toPrecision(4)) : JSON.stringify(v)}`,
  );
  if (job.symbol !== null) parts.push(job.symbol);
  if (job.fold !== null) parts.push(`fold ${job.fold}`);
  if (job.seed !== null) parts.push(`seed ${job.seed}`);
  return parts.join(' ');
}

/** Re-throws a config error of one job as an error of the sweep file that names the job. */
function inJob(spec: SweepSpec, what: string, fn: () => Config): Config {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigError) {
      // The message without the stage's own `file: key:` prefix, which this error restates.
      const prefix = [err.file, err.keyPath].filter((x) => x !== undefined && x !== '').join(': ');
      const bare =
        prefix !== '' && err.message.startsWith(`${prefix}: `)
          ? err.message.slice(prefix.length + 2)
          : err.message;
      throw new ConfigError(err.keyPath, `${what}: ${bare}`, {
        file: spec.file,
        hint: err.hint ?? 'every job is validated against the config schema before anything runs',
      });
    }
    throw err;
  }
}

/** The folds of one parameter point, from its config's `backtest.walkForward`. */
function foldPlans(
  spec: SweepSpec,
  config: Config,
  openHoldout: boolean,
  what: string,
): FoldPlan[] {
  if (spec.folds === null) return [];
  const wf = config.backtest.walkForward;
  if (wf.mode === 'purged-kfold')
    throw new ConfigError(
      'backtest.walkForward.mode',
      `${what}: sweep folds need rolling or expanding folds (one training range per job)`,
      { file: spec.file },
    );
  const barMs = Math.min(...config.data.timeframes.map(timeframeMs));
  let folds;
  try {
    folds = walkForwardSplits({
      range: { fromMs: parseDateMs(spec.folds.from), toMs: parseDateMs(spec.folds.to) },
      mode: wf.mode,
      trainMs: wf.trainDays * DAY_MS,
      testMs: wf.testDays * DAY_MS,
      stepMs: (wf.stepDays ?? wf.testDays) * DAY_MS,
      purgeMs: wf.purgeBars * barMs,
      embargoMs: wf.embargoBars * barMs,
      holdout: rangeMs(config.splits.holdout),
      openHoldout,
    });
  } catch (err) {
    if (err instanceof RangeError || err instanceof CtmError)
      throw new ConfigError('folds', `${what}: ${err.message}`, { file: spec.file });
    throw err;
  }
  const valMs = config.sweep.foldValidationDays * DAY_MS;
  return folds.map((f) => {
    const train = f.train[0];
    const valFrom = Math.max(train.fromMs, train.toMs - valMs);
    return {
      index: f.index,
      train: [iso(train.fromMs), iso(valFrom)],
      validation: [iso(valFrom), iso(train.toMs)],
      test: [iso(f.test.fromMs), iso(f.test.toMs)],
    };
  });
}

/**
 * Plans a sweep: expands it into jobs and validates each job's config (defaults, the sweep's
 * `config:` file, `set:`, its parameters, symbol, fold and seed) against the config schema.
 * Nothing is written or enqueued.
 * @param options.cwd directory the command's relative paths are read from (default the process's)
 * @throws {ConfigError} naming the sweep file and the job (its parameters) for an unknown key or a
 *   bad value, or folds that cannot be cut from the span.
 */
export async function planSweep(
  spec: SweepSpec,
  options: { cwd?: string } = {},
): Promise<SweepManifest> {
  const file = spec.configFile ?? undefined;
  const fixed = Object.entries(spec.set).map(([k, v]) => assignment(k, v));
  inJob(spec, 'set', () => loadConfig({ file, set: fixed }));
  const openHoldout = spec.command.includes('--open-holdout');
  const build = buildId();
  const version = packageVersion();
  const jobs: SweepJob[] = [];
  const points = parameterPoints(spec);
  for (const params of points) {
    const pointSet = [...fixed, ...Object.entries(params).map(([k, v]) => assignment(k, v))];
    for (const symbol of spec.symbols ?? [null]) {
      const symbolSet =
        symbol === null ? pointSet : [...pointSet, assignment('data.symbols', [symbol])];
      const pointConfig = inJob(
        spec,
        `job ${jobs.length} (${describeParams({ params, symbol, fold: null, seed: null }, true)})`,
        () => loadConfig({ file, set: symbolSet }),
      );
      const folds: (FoldPlan | null)[] =
        spec.folds === null
          ? [null]
          : foldPlans(
              spec,
              pointConfig,
              openHoldout,
              describeParams({ params, symbol, fold: null, seed: null }, true),
            );
      for (const fold of folds) {
        const foldSet =
          fold === null
            ? symbolSet
            : [
                ...symbolSet,
                assignment('splits.train', { from: fold.train[0], to: fold.train[1] }),
                assignment('splits.validation', {
                  from: fold.validation[0],
                  to: fold.validation[1],
                }),
                assignment('splits.test', { from: fold.test[0], to: fold.test[1] }),
              ];
        for (const seed of spec.seeds ?? [null]) {
          const what = `job ${jobs.length} (${describeParams({ params, symbol, fold: fold?.index ?? null, seed }, true)})`;
          const config = inJob(spec, what, () =>
            loadConfig({ file, set: foldSet, overrides: seed === null ? [] : [{ seed }] }),
          );
          const argv = [
            ...spec.command,
            ...foldSet.flatMap((s) => ['--set', s]),
            ...(seed === null ? [] : ['--seed', String(seed)]),
          ];
          const data = await inputFingerprint(spec.command, config, options.cwd);
          const id = jobId({
            command: spec.command,
            packageVersion: version,
            build,
            data,
            config,
            seed: config.seed,
            fold: fold?.index ?? null,
          });
          jobs.push({
            id,
            index: jobs.length,
            argv,
            params,
            seed,
            symbol,
            fold,
            resumable: commandKind(spec.command).startsWith('train'),
            data,
          });
        }
      }
    }
  }
  const ids = new Set<string>();
  for (const j of jobs) {
    if (ids.has(j.id))
      throw new ConfigError(
        '',
        `jobs ${jobs.findIndex((k) => k.id === j.id)} and ${j.index} are the same job (same config, seed, fold and data)`,
        {
          file: spec.file,
          hint: 'a grid or random key that the command ignores, or repeated values',
        },
      );
    ids.add(j.id);
  }
  return {
    format: 1,
    id: `sweep-${spec.name}-${sha256(jobs.map((j) => j.id).join('\n')).slice(0, 8)}`,
    name: spec.name,
    created: new Date().toISOString(),
    file: spec.file,
    command: spec.command,
    packageVersion: version,
    build,
    baseConfig: spec.configFile === null ? null : readFileSync(spec.configFile, 'utf8'),
    columns: spec.columns,
    jobs,
  };
}

/**
 * Writes runs/<sweep id>/manifest.json atomically unless it exists (the same id is the same jobs:
 * the first manifest, with its creation time, is kept). Returns the manifest on disk.
 */
export async function writeManifest(
  runsDir: string,
  manifest: SweepManifest,
): Promise<SweepManifest> {
  const path = join(sweepDir(runsDir, manifest.id), 'manifest.json');
  if (existsSync(path)) return readManifest(runsDir, manifest.id);
  await writeJsonAtomic(path, manifest);
  return manifest;
}

/**
 * Reads a sweep's manifest: `ref` is a sweep id under `runsDir` or a path to the sweep directory.
 * @throws {UsageError} when there is no manifest there.
 */
export function readManifest(runsDir: string, ref: string): SweepManifest {
  const dir = existsSync(join(ref, 'manifest.json')) ? resolve(ref) : sweepDir(runsDir, ref);
  const path = join(dir, 'manifest.json');
  if (!existsSync(path))
    throw new UsageError(`${dir}: not a sweep directory (no manifest.json)`, {
      hint: `sweeps are the sweep-* folders of ${resolve(runsDir)}`,
    });
  return JSON.parse(readFileSync(path, 'utf8')) as SweepManifest;
}

/**
 * The id of the sweep planned last under `runsDir` (newest manifest), or null when there is none.
 */
export function latestSweepId(runsDir: string): string | null {
  const root = resolve(runsDir);
  if (!existsSync(root)) return null;
  let best: { id: string; ms: number } | null = null;
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (!e.isDirectory() || !e.name.startsWith('sweep-')) continue;
    const m = join(root, e.name, 'manifest.json');
    if (!existsSync(m)) continue;
    const ms = statSync(m).mtimeMs;
    if (best === null || ms > best.ms) best = { id: e.name, ms };
  }
  return best?.id ?? null;
}
