// Run directories: every command that produces something writes runs/<id>/ with run.json (what
// was run, with which config, seed, package versions and data, and whether it is running, completed
// or failed), history.jsonl (one JSON object per logged step), metrics.json and its artifacts; and
// the one trial counter: runs of the same kind on the same data, failures included, counted from
// these folders for the deflated Sharpe ratio. All JSON writes are atomic; nothing here deletes a
// run.

import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { writeFileAtomicSync } from './fs.js';
import { CheckpointError } from '../errors.js';
import type { Config } from './config.js';

/** What run.json records about the data a run read. */
export interface DataFingerprint {
  /** Symbols read, ccxt unified. */
  symbols: string[];
  /** Timeframes read. */
  timeframes: string[];
  /** Per series `symbol timeframe` -> [first open time, last open time, rows] (UTC ms). */
  ranges: Record<string, [number, number, number]>;
  /** sha256 over the series' columns, hex. */
  hash: string;
}

/** Contents of run.json. */
export interface RunInfo {
  /** Run id: the directory name under `paths.runs` (`<kind>-YYYYMMDD-HHMMSS[-k]` unless given). */
  id: string;
  /** Run kind, e.g. `backtest`, `train-model`. */
  kind: string;
  /** Creation time, ISO 8601 UTC. */
  created: string;
  /** Command line that started the run (without node and the script). */
  commandLine: string[];
  /** The config's seed. */
  seed: number;
  /** The full resolved config the run used. */
  config: Config;
  /** Node, this package and the dependency version ranges of package.json. */
  packageVersions: Record<string, string>;
  /** What data the run read, when it recorded it. */
  data?: DataFingerprint;
  /** The feature spec or input spec the run used, when it recorded one. */
  featureSpec?: unknown;
  /** Artifacts by name: path relative to the run directory. */
  artifacts: Record<string, string>;
  /** Free-form fields a run kind adds (e.g. `resumedFrom`). */
  extra?: Record<string, unknown>;
  /**
   * `running` from creation until the run is finished, then `completed` or `failed` (a run killed
   * without a chance to say so stays `running`); absent in runs written before statuses existed.
   */
  status?: RunStatus;
  /** When the run finished, ISO 8601 UTC. */
  finished?: string;
  /** Why a failed run failed (the error's message). */
  error?: string;
}

/** Where a run stands. */
export type RunStatus = 'running' | 'completed' | 'failed';

/** A run being written. */
export interface Run {
  /** The run id (its directory name). */
  readonly id: string;
  /** Absolute path of runs/<id>/. */
  readonly dir: string;
  /** The current contents of run.json. */
  readonly info: RunInfo;
  /** Absolute path of a file inside the run directory. */
  path(name: string): string;
  /** Merges fields into run.json and rewrites it atomically. */
  update(fields: Partial<Omit<RunInfo, 'id' | 'kind' | 'created'>>): void;
  /** Records an artifact (name -> path relative to the run dir) in run.json. */
  addArtifact(name: string, relativePath: string): void;
  /** Appends one line to history.jsonl: `{ step, wallMs, ...metrics }`. */
  logHistory(step: number, metrics: Record<string, number | string | null>): void;
  /** Writes metrics.json atomically. */
  writeMetrics(metrics: unknown): void;
  /**
   * Records the end of the run in run.json: `completed`, or `failed` with the error's message.
   * Only the first call counts.
   */
  finish(status: 'completed' | 'failed', error?: unknown): void;
}

function packageVersions(): Record<string, string> {
  const versions: Record<string, string> = { node: process.version };
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
      dependencies?: Record<string, string>;
    };
    versions['crypto-trading-model'] = pkg.version;
    for (const [name, range] of Object.entries(pkg.dependencies ?? {})) versions[name] = range;
  } catch {
    // Running from an unusual layout: versions stay partial.
  }
  return versions;
}

function timestampId(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** Options of `createRun`. */
export interface CreateRunOptions {
  /** Run kind: `backtest`, `train-model`, `train-dqn`, `synth`, ... */
  kind: string;
  /** The resolved config (its `paths.runs` is where the run is created; recorded in run.json). */
  config: Config;
  /** The command line (default: process.argv without node and script). */
  commandLine?: string[];
  /** Use this id instead of a generated one (fails if the directory exists). */
  id?: string;
  /**
   * The data the run will read, recorded at creation so that the run counts as a trial on that
   * data even when it fails before recording it itself.
   */
  data?: DataFingerprint;
}

/** Runs created by this process and not finished yet (finished together by `finishOpenRuns`). */
const openRuns = new Set<Run>();

/**
 * Finishes every run this process created and has not finished (the CLI calls it when a command
 * ends: `completed`, or `failed` with the error that stopped it).
 */
export function finishOpenRuns(status: 'completed' | 'failed', error?: unknown): void {
  for (const run of [...openRuns]) run.finish(status, error);
}

/**
 * Creates runs/<id>/ under `config.paths.runs` and writes its run.json.
 * @throws {CheckpointError} if a run with that id already exists.
 */
export function createRun(options: CreateRunOptions): Run {
  const created = new Date();
  const base = resolve(options.config.paths.runs);
  let id = options.id ?? `${options.kind}-${timestampId(created)}`;
  if (options.id === undefined) {
    for (let k = 2; existsSync(join(base, id)); k++)
      id = `${options.kind}-${timestampId(created)}-${k}`;
  } else if (existsSync(join(base, id))) {
    throw new CheckpointError(join(base, id), 'run directory already exists');
  }
  const dir = join(base, id);
  mkdirSync(dir, { recursive: true });
  const info: RunInfo = {
    id,
    kind: options.kind,
    created: created.toISOString(),
    commandLine: options.commandLine ?? process.argv.slice(2),
    seed: options.config.seed,
    config: options.config,
    packageVersions: packageVersions(),
    ...(options.data === undefined ? {} : { data: options.data }),
    artifacts: {},
    status: 'running',
  };
  const run = attach(dir, info, created.getTime(), true);
  openRuns.add(run);
  return run;
}

function attach(dir: string, info: RunInfo, startedMs: number, isNew: boolean): Run {
  const save = (): void =>
    writeFileAtomicSync(join(dir, 'run.json'), JSON.stringify(info, null, 2) + '\n');
  if (isNew) save();
  const run: Run = {
    id: info.id,
    dir,
    info,
    path: (name) => join(dir, name),
    update(fields) {
      Object.assign(info, fields);
      save();
    },
    addArtifact(name, relativePath) {
      info.artifacts[name] = relativePath;
      save();
    },
    logHistory(step, metrics) {
      appendFileSync(
        join(dir, 'history.jsonl'),
        JSON.stringify({ step, wallMs: Date.now() - startedMs, ...metrics }) + '\n',
      );
    },
    writeMetrics(metrics) {
      writeFileAtomicSync(join(dir, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
    },
    finish(status, error) {
      if (!openRuns.delete(run) && info.status !== 'running') return;
      info.status = status;
      info.finished = new Date().toISOString();
      if (status === 'failed')
        info.error = error instanceof Error ? error.message : String(error ?? 'failed');
      save();
    },
  };
  return run;
}

/**
 * Runs `fn` for `run` and finishes the run: `completed` when `fn` returns, `failed` (with the error,
 * which is rethrown) when it throws.
 */
export async function withRun<T>(run: Run, fn: () => Promise<T> | T): Promise<T> {
  try {
    const out = await fn();
    run.finish('completed');
    return out;
  } catch (err) {
    run.finish('failed', err);
    throw err;
  }
}

/**
 * Opens an existing run directory (for `--resume`, `ctm report RUN`, `--init-from RUN`). `ref` is a
 * path to the directory or a run id under `runsDir`.
 * @throws {CheckpointError} when the directory or its run.json is missing or unreadable.
 */
export function openRun(ref: string, runsDir: string): Run {
  const dir = existsSync(join(ref, 'run.json')) ? resolve(ref) : resolve(runsDir, ref);
  const file = join(dir, 'run.json');
  if (!existsSync(file))
    throw new CheckpointError(dir, 'not a run directory (no run.json)', {
      hint: `list runs with: ls ${runsDir}`,
    });
  let info: RunInfo;
  try {
    info = JSON.parse(readFileSync(file, 'utf8')) as RunInfo;
  } catch (err) {
    throw new CheckpointError(file, 'run.json is not valid JSON', { cause: err });
  }
  return attach(dir, info, Date.parse(info.created), false);
}

/** Reads history.jsonl of a run (empty when there is none). */
export function readHistory(run: Run): Array<Record<string, number | string | null>> {
  const file = run.path('history.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, number | string | null>);
}

/** sha256 (hex) over typed-array columns, for data fingerprints. */
export function hashColumns(columns: readonly ArrayBufferView[]): string {
  const h = createHash('sha256');
  for (const c of columns) h.update(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
  return h.digest('hex');
}

/** Flattens the numbers and strings of a JSON value to `a.b.c` keys (arrays and nulls skipped). */
export function flattenMetrics(
  value: unknown,
  prefix = '',
  out: Record<string, number | string> = {},
): Record<string, number | string> {
  if (typeof value === 'number' && Number.isFinite(value)) out[prefix] = value;
  else if (typeof value === 'string' && prefix !== '') out[prefix] = value;
  else if (typeof value === 'object' && value !== null && !Array.isArray(value))
    for (const [k, v] of Object.entries(value))
      flattenMetrics(v, prefix === '' ? k : `${prefix}.${k}`, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The trial counter

/** A run folder found under a runs directory. */
export interface RunEntry {
  /** Absolute path of the run directory. */
  dir: string;
  /** Its run.json, or null when it is missing fields or unreadable (`problem` says why). */
  info: RunInfo | null;
  /** Why `info` is null. */
  problem?: string;
}

/**
 * Every run folder directly under `runsDir` (directories holding a run.json), oldest first by
 * creation time (unreadable ones last). An absent directory has none.
 */
export function listRuns(runsDir: string): RunEntry[] {
  const base = resolve(runsDir);
  if (!existsSync(base)) return [];
  const entries: RunEntry[] = [];
  for (const name of readdirSync(base, { withFileTypes: true })) {
    if (!name.isDirectory()) continue;
    const dir = join(base, name.name);
    const file = join(dir, 'run.json');
    if (!existsSync(file)) continue;
    try {
      const info = JSON.parse(readFileSync(file, 'utf8')) as RunInfo;
      if (typeof info.kind !== 'string' || typeof info.id !== 'string')
        entries.push({ dir, info: null, problem: 'run.json lacks id or kind' });
      else entries.push({ dir, info });
    } catch {
      entries.push({ dir, info: null, problem: 'run.json is not valid JSON' });
    }
  }
  const t = (e: RunEntry): number => (e.info === null ? Infinity : Date.parse(e.info.created));
  return entries.sort((a, b) => t(a) - t(b) || a.dir.localeCompare(b.dir));
}

/**
 * What makes runs trials of one another: the same kind on the same data (fingerprint hash and
 * ranges). Null for a run that recorded no data.
 */
export function trialKey(kind: string, data: DataFingerprint | undefined): string | null {
  if (data === undefined || typeof data.hash !== 'string') return null;
  return JSON.stringify([kind, data.hash, data.ranges]);
}

/** How many configurations were tried on some data (see `countTrials`). */
export interface TrialCount {
  /** Runs of the kind on the data, whatever their status. */
  trials: number;
  /** Of those, failed ones. */
  failed: number;
  /** Of those, ones still running (or killed without finishing). */
  running: number;
  /** Their ids, oldest first. */
  ids: string[];
}

/**
 * The one trial counter behind the deflated Sharpe ratio: the runs under `runsDir` of `kind` on
 * the same data fingerprint and ranges, failed and unfinished ones included (a configuration that
 * was tried and crashed was still tried). A run that recorded no data counts for nothing.
 */
export function countTrials(
  runsDir: string,
  kind: string,
  data: DataFingerprint | undefined,
): TrialCount {
  const key = trialKey(kind, data);
  const out: TrialCount = { trials: 0, failed: 0, running: 0, ids: [] };
  if (key === null) return out;
  for (const e of listRuns(runsDir)) {
    const info = e.info;
    if (info === null || trialKey(info.kind, info.data) !== key) continue;
    out.trials++;
    if (info.status === 'failed') out.failed++;
    if (info.status === 'running') out.running++;
    out.ids.push(info.id);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// `ctm runs`

/** One line of `ctm runs`. */
export interface RunSummary {
  /** Run id. */
  id: string;
  /** Absolute path of the run directory. */
  dir: string;
  /** Run kind (empty for an unreadable run.json). */
  kind: string;
  /** Status (`unknown` for runs written before statuses existed, `unreadable` for a broken run.json). */
  status: RunStatus | 'unknown' | 'unreadable';
  /** Creation time, ISO 8601 UTC. */
  created: string;
  /** What data it read, in words (symbols or scenario, timeframes, first and last open time). */
  data: string;
  /** Config keys that differ from the defaults, `key.path=value`. */
  configChanges: string[];
  /** Key figures of its metrics.json (total return, Sharpe, max drawdown, DSR, accuracy, ...). */
  metrics: Record<string, number>;
  /** Runs of its kind on the same data: the count a result of it was chosen from. */
  trials: number;
  /** The error of a failed run, or why run.json is unreadable. */
  error?: string;
}

/** Figures `ctm runs` shows when a run's metrics.json has them (benchmark figures skipped). */
const KEY_METRICS = ['totalReturn', 'sharpe', 'maxDrawdown', 'dsr', 'accuracy', 'loss', 'leaks'];

function keyMetrics(file: string): Record<string, number> {
  if (!existsSync(file)) return {};
  let flat: Record<string, number | string>;
  try {
    flat = flattenMetrics(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    return {};
  }
  const out: Record<string, number> = {};
  for (const name of KEY_METRICS) {
    const key = Object.keys(flat).find(
      (k) => k.split('.').pop() === name && !/benchmark/i.test(k) && typeof flat[k] === 'number',
    );
    if (key !== undefined) out[name] = flat[key] as number;
  }
  return out;
}

/** `key.path=value` for every leaf of `value` that differs from `base` (arrays compared whole). */
export function configChanges(value: unknown, base: unknown, prefix = ''): string[] {
  const isMap = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isMap(value) && isMap(base)) {
    const out: string[] = [];
    for (const k of Object.keys(value))
      out.push(...configChanges(value[k], base[k], prefix === '' ? k : `${prefix}.${k}`));
    return out;
  }
  return JSON.stringify(value) === JSON.stringify(base)
    ? []
    : [`${prefix}=${JSON.stringify(value)}`];
}

function dataWords(data: DataFingerprint | undefined): string {
  if (data === undefined) return '';
  const ranges = Object.values(data.ranges ?? {});
  const first = Math.min(...ranges.map((r) => r[0]));
  const last = Math.max(...ranges.map((r) => r[1]));
  const span =
    ranges.length === 0
      ? ''
      : first > 1e11
        ? ` ${new Date(first).toISOString().slice(0, 10)}..${new Date(last).toISOString().slice(0, 10)}`
        : ` ${Object.entries(data.ranges)
            .map(([k, r]) => `${k} ${r[0]}..${r[1]}`)
            .join(', ')}`;
  return `${data.symbols.join(',')} ${data.timeframes.join(',')}${span}`;
}

/**
 * Every run under `runsDir` (optionally of one kind), oldest first, with its status, data, config
 * changes from `defaults`, key figures and the number of trials behind it (`countTrials`).
 */
export function summarizeRuns(
  runsDir: string,
  defaults: Config,
  options: { kind?: string } = {},
): RunSummary[] {
  const entries = listRuns(runsDir);
  const groups = new Map<string, number>();
  for (const e of entries) {
    const key = e.info === null ? null : trialKey(e.info.kind, e.info.data);
    if (key !== null) groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  const out: RunSummary[] = [];
  for (const e of entries) {
    const info = e.info;
    if (info === null) {
      if (options.kind === undefined)
        out.push({
          id: e.dir.split('/').pop() ?? e.dir,
          dir: e.dir,
          kind: '',
          status: 'unreadable',
          created: '',
          data: '',
          configChanges: [],
          metrics: {},
          trials: 0,
          error: e.problem,
        });
      continue;
    }
    if (options.kind !== undefined && info.kind !== options.kind) continue;
    const key = trialKey(info.kind, info.data);
    out.push({
      id: info.id,
      dir: e.dir,
      kind: info.kind,
      status: info.status ?? 'unknown',
      created: info.created,
      data: dataWords(info.data),
      configChanges: info.config === undefined ? [] : configChanges(info.config, defaults),
      metrics: keyMetrics(join(e.dir, 'metrics.json')),
      trials: key === null ? 0 : (groups.get(key) ?? 0),
      ...(info.error === undefined ? {} : { error: info.error }),
    });
  }
  return out;
}
