// Run directories: every command that produces something writes runs/<id>/ with run.json (what
// was run, with which config, seed, package versions and data), history.jsonl (one JSON object per
// logged step), metrics.json and its artifacts. All JSON writes are atomic.

import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
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
}

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
    artifacts: {},
  };
  return attach(dir, info, created.getTime(), true);
}

function attach(dir: string, info: RunInfo, startedMs: number, isNew: boolean): Run {
  const save = (): void =>
    writeFileAtomicSync(join(dir, 'run.json'), JSON.stringify(info, null, 2) + '\n');
  if (isNew) save();
  return {
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
  };
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
