// The env checker, like Gymnasium's check_env: validates any Env (and any VecEnv) against the
// contract agents rely on: spaces, observation dtype and shape, observations inside the space, no
// NaN or infinity, finite rewards, boolean flags, seed determinism, and that running out of data
// truncates rather than terminates. It only observes an env through its public interface and
// reports every problem it finds; it never repairs one.

import { CtmError } from '../../errors.js';
import { Rng } from '../../utils/random.js';
import { Box, Dict, Discrete, type Env, type Space } from './spaces.js';
import type { VecEnv } from './vec-env.js';

/** Options of `checkEnv` / `checkVecEnv`. */
export interface EnvCheckOptions {
  /** Seed of the resets and of the sampled actions (default 0). */
  seed?: number;
  /** Random steps to check (default 300). */
  steps?: number;
  /**
   * Longest episode the neutral-action rollout runs before giving up (default 200,000 steps);
   * an episode still running then is a warning, not a problem.
   */
  maxNeutralSteps?: number;
}

/** Result of a check: `ok` when `problems` is empty. */
export interface EnvCheckReport {
  /** True when `problems` is empty (warnings do not count). */
  ok: boolean;
  /** Contract violations, one sentence each. */
  problems: string[];
  /** Things worth knowing that do not break the contract. */
  warnings: string[];
  /** Steps taken while checking. */
  steps: number;
}

/** Thrown by `assertEnv` when the checker finds problems; `problems` lists them. */
export class EnvCheckError extends CtmError {
  /** Every problem found, one sentence each. */
  readonly problems: readonly string[];
  /** The message joins the problems with `; `. */
  constructor(problems: string[]) {
    super(`env check failed: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

type AnyEnv = Env<unknown, unknown, object>;

function isSpace(s: unknown): s is Space<unknown> {
  if (typeof s !== 'object' || s === null) return false;
  const o = s as Record<string, unknown>;
  return (
    typeof o.contains === 'function' && typeof o.sample === 'function' && Array.isArray(o.shape)
  );
}

/** Why `x` is not in `space` (a sentence), or '' when it is. */
function explain(space: Space<unknown>, x: unknown, what: string): string {
  if (space.contains(x)) return '';
  if (space instanceof Box) {
    const wanted = space.dtype === 'float32' ? Float32Array : Float64Array;
    if (!(x instanceof wanted))
      return `${what} is not a ${wanted.name} (dtype ${space.dtype} expected)`;
    const a = x as Float32Array | Float64Array;
    if (a.length !== space.size)
      return `${what} has ${a.length} values, the space's shape [${space.shape.join(', ')}] needs ${space.size}`;
    for (let i = 0; i < a.length; i++)
      if (Number.isNaN(a[i])) return `${what} holds NaN at index ${i}`;
    const i = space.firstViolation(a);
    return `${what}[${i}] = ${a[i]} is outside [${space.low[i]}, ${space.high[i]}]`;
  }
  if (space instanceof Dict && typeof x === 'object' && x !== null) {
    const obj = x as Record<string, unknown>;
    for (const k of space.keys) {
      if (!(k in obj)) return `${what} lacks key ${k}`;
      const why = explain(space.spaces[k], obj[k], `${what}.${k}`);
      if (why !== '') return why;
    }
    return `${what} has keys ${Object.keys(obj).join(', ')}, the space ${space.keys.join(', ')}`;
  }
  return `${what} ${String(x)} is not inside the ${space.constructor.name} space`;
}

/** Non-finite values anywhere in an observation (typed arrays, or dicts of them). */
function nonFinite(x: unknown, what: string): string {
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) {
    const a = x as unknown as ArrayLike<number>;
    for (let i = 0; i < a.length; i++)
      if (!Number.isFinite(a[i])) return `${what} holds ${a[i]} at index ${i}`;
    return '';
  }
  if (typeof x === 'number') return Number.isFinite(x) ? '' : `${what} is ${x}`;
  if (typeof x === 'object' && x !== null) {
    for (const [k, v] of Object.entries(x)) {
      const why = nonFinite(v, `${what}.${k}`);
      if (why !== '') return why;
    }
  }
  return '';
}

function copyObs(x: unknown): unknown {
  if (x instanceof Float32Array) return Float32Array.from(x);
  if (x instanceof Float64Array) return Float64Array.from(x);
  if (typeof x === 'object' && x !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = copyObs(v);
    return out;
  }
  return x;
}

function sameObs(a: unknown, b: unknown): boolean {
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = a as unknown as ArrayLike<number>;
    const y = b as unknown as ArrayLike<number>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) =>
      sameObs((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    );
  }
  return Object.is(a, b);
}

function sampleAction(env: AnyEnv, rng: Rng): unknown {
  const space = env.actionSpace;
  const mask = env.actionMasks?.() ?? null;
  if (space instanceof Discrete && mask !== null) return space.sample(rng, mask);
  return space.sample(rng);
}

/**
 * Checks `env` against the Env contract and returns every problem found.
 * 1. Both spaces are spaces; a sampled action is inside the action space.
 * 2. `reset({ seed })` returns [observation, info object]; observation inside the space (dtype,
 *    shape, bounds), finite.
 * 3. `steps` random steps (masked when the env masks): a 5-tuple, finite number reward, boolean
 *    flags, never both, observation inside the space and finite, info an object.
 * 4. Determinism: the same seed and actions give the same observations and rewards, bit for bit.
 * 5. With `neutralAction` (an action under which nothing can terminate, e.g. flat) an episode run
 *    to its end must be truncated, not terminated.
 */
export function checkEnv<O, A, I extends object>(
  env: Env<O, A, I>,
  options: EnvCheckOptions = {},
): EnvCheckReport {
  const e = env as unknown as AnyEnv;
  const problems: string[] = [];
  const warnings: string[] = [];
  const seed = options.seed ?? 0;
  const budget = options.steps ?? 300;
  let steps = 0;
  const report = (): EnvCheckReport => ({ ok: problems.length === 0, problems, warnings, steps });
  if (!isSpace(e.observationSpace)) problems.push('observationSpace is not a Space');
  if (!isSpace(e.actionSpace)) problems.push('actionSpace is not a Space');
  if (problems.length > 0) return report();
  const rng = new Rng(seed);
  const probe = e.actionSpace.sample(rng);
  if (!e.actionSpace.contains(probe))
    problems.push('a sample of the action space is not inside the action space');

  const checkObs = (obs: unknown, what: string): boolean => {
    const why = explain(e.observationSpace, obs, what) || nonFinite(obs, what);
    if (why !== '') {
      problems.push(why);
      return false;
    }
    return true;
  };

  const reset = e.reset({ seed });
  if (!Array.isArray(reset) || reset.length !== 2) {
    problems.push('reset() must return [observation, info]');
    return report();
  }
  if (typeof reset[1] !== 'object' || reset[1] === null)
    problems.push('reset() info is not an object');
  if (!checkObs(reset[0], 'reset observation')) return report();

  // Random steps.
  const actions: unknown[] = [];
  const trace: unknown[] = [copyObs(reset[0])];
  for (let k = 0; k < budget; k++) {
    const action = sampleAction(e, rng);
    actions.push(action);
    const out = e.step(action);
    steps++;
    if (!Array.isArray(out) || out.length !== 5) {
      problems.push('step() must return [observation, reward, terminated, truncated, info]');
      return report();
    }
    const [obs, reward, term, trunc, info] = out;
    const where = `step ${k + 1}`;
    if (typeof reward !== 'number' || !Number.isFinite(reward))
      problems.push(`${where}: reward ${String(reward)} is not a finite number`);
    if (typeof term !== 'boolean' || typeof trunc !== 'boolean')
      problems.push(`${where}: terminated and truncated must be booleans`);
    else if (term && trunc) warnings.push(`${where}: both terminated and truncated are true`);
    if (typeof info !== 'object' || info === null) problems.push(`${where}: info is not an object`);
    if (!checkObs(obs, `${where} observation`)) return report();
    trace.push(copyObs(obs), reward);
    if (problems.length > 0) return report();
    if (term || trunc) {
      const again = e.reset();
      if (!checkObs(again[0], `reset observation after ${where}`)) return report();
      trace.push(copyObs(again[0]));
    }
  }

  // Determinism under the same seed and actions.
  const replay = e.reset({ seed });
  let t = 0;
  let same = sameObs(replay[0], trace[t++]);
  for (let k = 0; k < actions.length && same; k++) {
    const out = e.step(actions[k] as never);
    same = sameObs(out[0], trace[t++]) && Object.is(out[1], trace[t++]);
    if (out[2] || out[3]) {
      const again = e.reset();
      same = same && sameObs(again[0], trace[t++]);
    }
  }
  if (!same) problems.push('not deterministic: the same seed and actions gave different results');

  // Running out of data under the neutral action must truncate, not terminate.
  if (e.neutralAction !== undefined) {
    const max = options.maxNeutralSteps ?? 200_000;
    e.reset({ seed: seed + 1 });
    let ended = false;
    for (let k = 0; k < max; k++) {
      const out = e.step(e.neutralAction as never);
      steps++;
      if (out[2]) {
        problems.push(
          `terminated after ${k + 1} steps under the neutral action: running out of data must truncate, not terminate`,
        );
        ended = true;
        break;
      }
      if (out[3]) {
        ended = true;
        break;
      }
    }
    if (!ended) warnings.push(`the neutral-action episode did not end within ${max} steps`);
  } else {
    warnings.push(
      'no neutralAction: the terminated/truncated contract at data end was not checked',
    );
  }
  return report();
}

/**
 * Checks a VecEnv: batched observations of N x size floats, every slot inside the single-env
 * observation space and finite, rewards finite, flags 0/1, final observations of ended episodes
 * inside the space, and seed determinism of the batch.
 */
export function checkVecEnv<I extends object>(
  vec: VecEnv<I>,
  options: EnvCheckOptions = {},
): EnvCheckReport {
  const problems: string[] = [];
  const warnings: string[] = [];
  const seed = options.seed ?? 0;
  const budget = options.steps ?? 300;
  const n = vec.numEnvs;
  const size = vec.observationSize;
  const space = vec.observationSpace;
  let steps = 0;
  const report = (): EnvCheckReport => ({ ok: problems.length === 0, problems, warnings, steps });
  const checkBatch = (batch: Float32Array, what: string): boolean => {
    if (!(batch instanceof Float32Array) || batch.length !== n * size) {
      problems.push(`${what}: expected a Float32Array of ${n} x ${size}`);
      return false;
    }
    for (let i = 0; i < n; i++) {
      const slot = batch.subarray(i * size, (i + 1) * size);
      const why = explain(space, slot, `${what} env ${i}`) || nonFinite(slot, `${what} env ${i}`);
      if (why !== '') {
        problems.push(why);
        return false;
      }
    }
    return true;
  };
  const rng = new Rng(seed);
  const actionSize = vec.actionSpace instanceof Box ? vec.actionSpace.size : 1;
  const actions = new Float64Array(n * actionSize);
  const draw = (): void => {
    const masks = vec.actionMasks();
    for (let i = 0; i < n; i++) {
      const space = vec.actionSpace;
      if (space instanceof Discrete) {
        const m = masks === null ? undefined : masks.subarray(i * space.n, (i + 1) * space.n);
        actions[i] = space.sample(rng, m);
      } else {
        const a = space.sample(rng) as ArrayLike<number>;
        for (let j = 0; j < actionSize; j++) actions[i * actionSize + j] = a[j];
      }
    }
  };
  const first = Float32Array.from(vec.reset(seed));
  if (!checkBatch(first, 'reset')) return report();
  const trace: number[] = [];
  const taken: Float64Array[] = [];
  let ended = 0;
  for (let k = 0; k < budget; k++) {
    draw();
    taken.push(Float64Array.from(actions));
    const r = vec.step(actions);
    steps += n;
    if (!checkBatch(r.observations, `step ${k + 1}`)) return report();
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(r.rewards[i]))
        problems.push(`step ${k + 1} env ${i}: reward ${r.rewards[i]} is not finite`);
      if (
        r.terminated[i] > 1 ||
        r.truncated[i] > 1 ||
        r.dones[i] !== (r.terminated[i] | r.truncated[i])
      )
        problems.push(
          `step ${k + 1} env ${i}: flags must be 0/1 and dones = terminated | truncated`,
        );
      if (r.dones[i] === 1) {
        ended++;
        const why = explain(space, r.finalObservations[i], `final observation of env ${i}`);
        if (why !== '') problems.push(why);
      }
      trace.push(r.rewards[i]);
    }
    if (problems.length > 0) return report();
  }
  if (ended === 0) warnings.push('no episode ended: auto-reset was not exercised');
  const again = vec.reset(seed);
  let same = sameObs(again, first);
  for (let k = 0; k < taken.length && same; k++) {
    const r = vec.step(taken[k]);
    for (let i = 0; i < n && same; i++) same = Object.is(r.rewards[i], trace[k * n + i]);
  }
  if (!same) problems.push('not deterministic: the same seed and actions gave different results');
  return report();
}

/**
 * `checkEnv` that throws.
 * @throws {EnvCheckError} listing every problem found.
 */
export function assertEnv<O, A, I extends object>(
  env: Env<O, A, I>,
  options: EnvCheckOptions = {},
): EnvCheckReport {
  const r = checkEnv(env, options);
  if (!r.ok) throw new EnvCheckError(r.problems);
  return r;
}
