// What makes two sweep jobs the same job: the package version and build (a hash of the code that
// runs and of the dependency lock), the fingerprint of the data the command reads (a content hash
// of its input files), the resolved config, the seed and the fold. Owns those hashes and the job id
// built from them; never writes a file and never reads a file's contents more than once per process.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../utils/config.js';

/** Root of the running package (where package.json is). */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The code directory that runs: dist/ when built, src/ under tsx. */
const CODE_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

/** JSON with object keys sorted at every depth, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
            a < b ? -1 : a > b ? 1 : 0,
          ),
        )
      : v,
  );
}

/** sha256 of a string, hex. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The files under `dir`, recursively, as paths relative to it, sorted. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** The version field of package.json. */
export function packageVersion(): string {
  return (
    JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

let cachedBuild: string | undefined;

/**
 * The build of the running code: sha256 over every file of the code directory (dist/, or src/ under
 * tsx) and package-lock.json. Two workers agree on it exactly when they run the same code with the
 * same dependencies. Computed once per process.
 */
export function buildId(): string {
  if (cachedBuild !== undefined) return cachedBuild;
  const h = createHash('sha256');
  for (const rel of listFiles(CODE_DIR)) {
    h.update(`${rel}\0`);
    h.update(readFileSync(join(CODE_DIR, rel)));
  }
  const lock = join(PACKAGE_ROOT, 'package-lock.json');
  if (existsSync(lock)) h.update(readFileSync(lock));
  cachedBuild = h.digest('hex').slice(0, 16);
  return cachedBuild;
}

const fileHashes = new Map<string, Promise<string>>();

function hashFile(path: string): Promise<string> {
  const key = `${path}\0${statSync(path).mtimeMs}`;
  let p = fileHashes.get(key);
  if (p === undefined) {
    p = new Promise<string>((resolvePromise, reject) => {
      const h = createHash('sha256');
      createReadStream(path)
        .on('data', (chunk) => h.update(chunk))
        .on('error', reject)
        .on('end', () => resolvePromise(h.digest('hex')));
    });
    fileHashes.set(key, p);
  }
  return p;
}

/** Content hash of a file or of every file under a directory (names relative to it). */
async function hashInput(path: string): Promise<string> {
  if (statSync(path).isFile()) return hashFile(path);
  const h = createHash('sha256');
  for (const rel of listFiles(path)) h.update(`${rel}\0${await hashFile(join(path, rel))}\n`);
  return h.digest('hex');
}

/**
 * The fingerprint of the data a `ctm` command reads: a content hash of every file or directory
 * named by one of its option values (`--data-dir`, `--data`, a policy module, a run to start from),
 * plus the candle store (`paths.store`) when the command names no data file and is not a synthetic
 * run. `none` when it reads nothing on disk. Inputs are named by their last path element, so the
 * same files at another path give the same fingerprint.
 */
export async function inputFingerprint(
  argv: readonly string[],
  config: Config,
  cwd = process.cwd(),
): Promise<string> {
  const inputs = new Set<string>();
  const firstOption = argv.findIndex((a) => a.startsWith('-'));
  if (firstOption >= 0)
    for (const token of argv.slice(firstOption)) {
      if (token.startsWith('-')) continue;
      const p = resolve(cwd, token);
      if (existsSync(p)) inputs.add(p);
    }
  const namesData = argv.includes('--data') || argv.includes('--data-dir');
  const synthetic = argv.some((a, i) => a === '--source' && argv[i + 1] === 'synthetic');
  const store = resolve(cwd, config.paths.store);
  if (!namesData && !synthetic && existsSync(store)) inputs.add(store);
  if (inputs.size === 0) return 'none';
  const parts: string[] = [];
  for (const p of [...inputs].sort()) parts.push(`${p.split(/[\\/]/).pop()}:${await hashInput(p)}`);
  return sha256(parts.join('\n')).slice(0, 16);
}

/** What a job id is a hash of. */
export interface JobIdentity {
  /** The `ctm` command words and flags (without seed, overrides and paths). */
  readonly command: readonly string[];
  /** package.json version. */
  readonly packageVersion: string;
  /** `buildId()` of the code that plans the job (and must run it). */
  readonly build: string;
  /** `inputFingerprint` of the job's inputs. */
  readonly data: string;
  /** The job's resolved config; `paths` (where things go on one machine) is left out. */
  readonly config: Config;
  /** The job's seed (also in the config). */
  readonly seed: number;
  /** The fold index, or null. */
  readonly fold: number | null;
}

/**
 * The job id: `<command words>-<20 hex digits of sha256 over the identity>`, e.g.
 * `backtest-3fa9c0…`. Equal identities give equal ids on any machine.
 */
export function jobId(identity: JobIdentity): string {
  const { paths: _paths, ...config } = identity.config;
  const hash = sha256(canonicalJson({ ...identity, config })).slice(0, 20);
  return `${commandKind(identity.command)}-${hash}`;
}

/** The command words before the first option, joined by `-` (`train model ...` → `train-model`). */
export function commandKind(argv: readonly string[]): string {
  const first = argv.findIndex((a) => a.startsWith('-'));
  return (first < 0 ? argv : argv.slice(0, first)).join('-').replace(/[^A-Za-z0-9-]+/g, '-');
}
