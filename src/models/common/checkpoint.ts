// The one checkpoint format of every trainer (sequence model, DQN, PPO): a directory holding
// `checkpoint.json` (kind, the settings the run must be resumed with and their hash, step counters,
// RNG states, any JSON state, and an index of the tensors) and one binary file with every tensor
// (weights, optimizer moments, replay buffers...). The binary file is written first under a new
// name, then checkpoint.json atomically, then stale binaries are removed: a crash at any point
// leaves the previous checkpoint readable. Resuming with other settings is refused, naming the
// file and the keys that differ.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../../errors.js';
import { writeFileAtomicSync } from '../../utils/fs.js';
import type { RngState } from '../../utils/random.js';

const FORMAT = 'ctm-checkpoint';
const VERSION = 1;

/** Typed arrays a checkpoint can hold. */
export type CheckpointTensor = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array;

const DTYPES = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  uint32: Uint32Array,
  uint8: Uint8Array,
} as const;
type DType = keyof typeof DTYPES;

function dtypeOf(a: CheckpointTensor): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint32Array) return 'uint32';
  return 'uint8';
}

/** What a checkpoint holds. */
export interface CheckpointContent<S = unknown> {
  /** What wrote it (`train-model`, `train-dqn`, `train-ppo`, ...). */
  kind: string;
  /**
   * The settings a resumed run must share (resolved hyperparameters, data fingerprint,
   * observation layout...), as JSON. Stored whole, compared by hash on load.
   */
  settings: unknown;
  /** Step counters (optimizer steps, env steps, episodes...). */
  counters: Record<string, number>;
  /** Random-generator states by name. */
  rng: Record<string, RngState>;
  /** Any further JSON state of the trainer (NaN and ±Infinity allowed). */
  state: S;
  /** Tensors by name (weights, optimizer moments, buffers). */
  tensors: Map<string, CheckpointTensor>;
}

interface CheckpointDoc {
  format: string;
  version: number;
  kind: string;
  settingsHash: string;
  settings: unknown;
  counters: Record<string, number>;
  rng: Record<string, RngState>;
  state: unknown;
  dataFile: string;
  tensors: { name: string; dtype: DType; offset: number; length: number }[];
}

/** JSON has no Infinity or NaN: checkpoints carry them as tagged strings. */
function encodeNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? `#num:${value}` : value;
}

function decodeNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.startsWith('#num:') ? Number(value.slice(5)) : value;
}

/** Stable JSON of a value (object keys sorted), the input of `settingsHash`. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    const e = encodeNonFinite(_k, v);
    if (e !== null && typeof e === 'object' && !Array.isArray(e) && !ArrayBuffer.isView(e))
      return Object.fromEntries(
        Object.keys(e as Record<string, unknown>)
          .sort()
          .map((k) => [k, (e as Record<string, unknown>)[k]]),
      );
    return e;
  });
}

/** Hash (hex, 16 chars) of settings, independent of key order. */
export function settingsHash(settings: unknown): string {
  return createHash('sha256').update(stableJson(settings)).digest('hex').slice(0, 16);
}

/**
 * Key paths where two JSON values differ, each as `path: before -> now` (at most `limit`).
 * Used to say what differs when a checkpoint is refused.
 */
export function settingsDiff(before: unknown, now: unknown, limit = 5): string[] {
  const out: string[] = [];
  const show = (v: unknown): string => {
    const s = JSON.stringify(v, encodeNonFinite) ?? 'undefined';
    return s.length > 40 ? `${s.slice(0, 37)}...` : s;
  };
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (out.length >= limit) return;
    const objA = a !== null && typeof a === 'object';
    const objB = b !== null && typeof b === 'object';
    if (objA && objB && Array.isArray(a) === Array.isArray(b)) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of [...keys].sort())
        walk(
          (a as Record<string, unknown>)[k],
          (b as Record<string, unknown>)[k],
          path === '' ? k : `${path}.${k}`,
        );
      return;
    }
    if (stableJson(a) !== stableJson(b)) out.push(`${path || '(root)'}: ${show(a)} -> ${show(b)}`);
  };
  walk(before, now, '');
  return out;
}

/**
 * Writes a checkpoint into `dir` (created when missing), atomically: the tensors go to a new
 * binary file, then checkpoint.json replaces the previous one, then older binaries are removed.
 */
export function writeCheckpoint<S>(dir: string, content: CheckpointContent<S>): void {
  mkdirSync(dir, { recursive: true });
  const index: CheckpointDoc['tensors'] = [];
  let bytes = 0;
  for (const [name, a] of content.tensors) {
    // Each tensor starts on an 8-byte boundary, so it can be viewed in place when read back.
    bytes = Math.ceil(bytes / 8) * 8;
    index.push({ name, dtype: dtypeOf(a), offset: bytes, length: a.length });
    bytes += a.byteLength;
  }
  const all = new Uint8Array(bytes);
  let k = 0;
  for (const a of content.tensors.values()) {
    all.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), index[k].offset);
    k++;
  }
  const hash = createHash('sha256').update(all).digest('hex').slice(0, 12);
  const step = Math.max(0, ...Object.values(content.counters));
  const dataFile = `ckpt-${String(step).padStart(10, '0')}-${hash}.bin`;
  writeFileAtomicSync(join(dir, dataFile), all);
  const doc: CheckpointDoc = {
    format: FORMAT,
    version: VERSION,
    kind: content.kind,
    settingsHash: settingsHash(content.settings),
    settings: content.settings,
    counters: content.counters,
    rng: content.rng,
    state: content.state,
    dataFile,
    tensors: index,
  };
  writeFileAtomicSync(join(dir, 'checkpoint.json'), JSON.stringify(doc, encodeNonFinite) + '\n');
  for (const f of readdirSync(dir))
    if (/^ckpt-.*\.bin$/.test(f) && f !== dataFile) rmSync(join(dir, f), { force: true });
}

/**
 * Writes a trained network for inference (`save` of an agent): `content` without its optimizer
 * tensors (names starting `optimizer.`) and without RNG state, atomically into `dir`.
 * @throws {Error} when the directory cannot be written.
 */
export function writeInferenceCheckpoint<S>(
  dir: string,
  content: Omit<CheckpointContent<S>, 'rng'>,
): void {
  const tensors = new Map<string, CheckpointTensor>();
  for (const [k, v] of content.tensors) if (!k.startsWith('optimizer.')) tensors.set(k, v);
  writeCheckpoint(dir, { ...content, rng: {}, tensors });
}

/** The kind of the checkpoint in `dir`, or null when there is none or it is unreadable. */
export function checkpointKind(dir: string): string | null {
  const file = join(dir, 'checkpoint.json');
  if (!existsSync(file)) return null;
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as Partial<CheckpointDoc>;
    return doc.format === FORMAT && typeof doc.kind === 'string' ? doc.kind : null;
  } catch {
    return null;
  }
}

/** Whether `dir` holds a checkpoint. */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'checkpoint.json'));
}

/**
 * Reads the checkpoint in `dir`, or null when there is none. The checkpoint must have been
 * written by `kind` and, when `settings` is given, with the same settings (compared by hash).
 * @throws {CheckpointError} naming the file when it is unreadable, of another format or kind,
 *   written for other settings (listing the keys that differ), or its data are truncated.
 */
export function readCheckpoint<S>(
  dir: string,
  expected: { kind: string; settings?: unknown },
): CheckpointContent<S> | null {
  const file = join(dir, 'checkpoint.json');
  if (!existsSync(file)) return null;
  let doc: CheckpointDoc;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'), decodeNonFinite) as CheckpointDoc;
  } catch (err) {
    throw new CheckpointError(file, 'checkpoint.json is not valid JSON', { cause: err });
  }
  if (doc.format !== FORMAT || doc.version !== VERSION)
    throw new CheckpointError(file, `not a ${FORMAT} v${VERSION} checkpoint`);
  if (doc.kind !== expected.kind)
    throw new CheckpointError(
      file,
      `written by a ${doc.kind} run, cannot resume a ${expected.kind} run`,
    );
  if ('settings' in expected && doc.settingsHash !== settingsHash(expected.settings)) {
    const diff = settingsDiff(doc.settings, expected.settings);
    throw new CheckpointError(
      file,
      `the checkpoint was written for other settings (${diff.join('; ') || 'settings differ'})`,
      { hint: "resume with the run's own config and data, or start a new run" },
    );
  }
  const dataPath = join(dir, doc.dataFile);
  if (!existsSync(dataPath)) throw new CheckpointError(dataPath, 'checkpoint data file missing');
  const bin = readFileSync(dataPath);
  const buf = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  const tensors = new Map<string, CheckpointTensor>();
  for (const t of doc.tensors) {
    const Ctor = DTYPES[t.dtype];
    if (Ctor === undefined)
      throw new CheckpointError(file, `tensor ${t.name} has unknown dtype ${String(t.dtype)}`);
    if (t.offset + t.length * Ctor.BYTES_PER_ELEMENT > buf.byteLength)
      throw new CheckpointError(dataPath, `checkpoint data is truncated (tensor ${t.name})`);
    tensors.set(t.name, new Ctor(buf, t.offset, t.length));
  }
  return {
    kind: doc.kind,
    settings: doc.settings,
    counters: doc.counters,
    rng: doc.rng,
    state: doc.state as S,
    tensors,
  };
}

/**
 * A tensor of a checkpoint, of the expected type and length.
 * @throws {CheckpointError} naming `dir` and the tensor when it is missing or mis-shaped.
 */
export function checkpointTensor<T extends CheckpointTensor>(
  dir: string,
  content: CheckpointContent<unknown>,
  name: string,
  ctor: { new (n: number): T; readonly name: string },
  length?: number,
): T {
  const t = content.tensors.get(name);
  if (t === undefined) throw new CheckpointError(dir, `checkpoint lacks tensor ${name}`);
  if (!(t instanceof ctor))
    throw new CheckpointError(dir, `checkpoint tensor ${name} is not a ${ctor.name}`);
  if (length !== undefined && t.length !== length)
    throw new CheckpointError(
      dir,
      `checkpoint tensor ${name} has ${t.length} values, expected ${length}`,
    );
  return t;
}
