// Baseline policies every strategy is compared with (flat, buy-and-hold on the configured broker
// and on a spot account, seeded random over several seeds, SMA cross long/short on named features,
// the pattern oracle that knows how each labelled pattern resolves, and a cost-aware
// perfect-foresight oracle as the upper bound), and the check that a value is a Policy. Resolving
// `--policy` references (modules, runs) is the registry's job above evaluation/ (src/policies.ts):
// nothing here knows a model kind. Rule baselines read only named features of their
// ObservationSpec; only the two oracles see the future, on purpose, and say so.

import { timeframeMs, type Timeframe } from '../data-processing/candles.js';
import type { MultiTimeframeFeatures } from '../data-processing/feature-engineering.js';
import { UsageError } from '../errors.js';
import type { Config } from '../utils/config.js';
import { Rng } from '../utils/random.js';
import type { Run } from '../utils/runs.js';
import type { RowAwarePolicy } from './backtest.js';
import { spotBrokerConfig, type BrokerConfig } from './broker.js';
import { observationSize, type ObservationSpec, type Policy } from './policy.js';

/** Names of the built-in baselines. */
export const BASELINES = [
  'flat',
  'buy-hold',
  'spot-buy-hold',
  'random',
  'sma-cross',
  'pattern-oracle',
  'oracle',
] as const;
/** One built-in baseline. */
export type BaselineName = (typeof BASELINES)[number];

/** The `backtest` config section. */
export type BacktestConfig = Config['backtest'];

const EMPTY_SPEC: ObservationSpec = { timeframes: [], windows: {}, features: {}, account: false };

function constantPolicy(level: number): Policy {
  return {
    observation: EMPTY_SPEC,
    act(_obs, numEnvs, out) {
      for (let i = 0; i < numEnvs; i++) out[i] = level;
    },
  };
}

/** Always flat: zero return, zero cost (the floor every strategy must beat after costs). */
export function flatPolicy(): Policy {
  return constantPolicy(0);
}

/** Always fully long (enters on the first bar and holds). */
export function buyAndHoldPolicy(): Policy {
  return constantPolicy(1);
}

/**
 * Seeded random positions: each bar, with probability `switchProbability`, a new level is drawn
 * uniformly from `levels`; otherwise the previous level is kept. `reset` restarts the sequence.
 */
export function randomPolicy(options: {
  seed: number;
  levels: readonly number[];
  switchProbability: number;
}): Policy {
  const levels = Float64Array.from(options.levels);
  if (levels.length === 0) throw new RangeError('random policy: levels must not be empty');
  const p = options.switchProbability;
  if (!(p >= 0 && p <= 1))
    throw new RangeError(`random policy: switchProbability ${p} not in [0, 1]`);
  let rng = new Rng(options.seed);
  let current = new Float64Array(1);
  return {
    observation: EMPTY_SPEC,
    reset(numEnvs) {
      rng = new Rng(options.seed);
      current = new Float64Array(numEnvs);
      for (let i = 0; i < numEnvs; i++) current[i] = levels[rng.int(levels.length)];
    },
    act(_obs, numEnvs, out) {
      if (current.length < numEnvs) {
        const grown = new Float64Array(numEnvs);
        grown.set(current);
        current = grown;
      }
      for (let i = 0; i < numEnvs; i++) {
        if (rng.next() < p) current[i] = levels[rng.int(levels.length)];
        out[i] = current[i];
      }
    },
  };
}

/**
 * Long/short moving-average cross on two named base-timeframe features of the form close/SMA(n) − 1
 * (`close_sma_10`, `close_sma_20` by default): SMA(fast) > SMA(slow) ⇔ close/SMA(fast) <
 * close/SMA(slow), so the policy is long when the fast feature is below the slow one and short
 * otherwise. Reads one row (window 1) of those two columns, nothing else.
 * @throws {RangeError} when the features lack either column (listing the SMA columns they have).
 */
export function smaCrossPolicy(
  features: MultiTimeframeFeatures,
  options: { fastFeature: string; slowFeature: string; allowShort?: boolean },
): Policy {
  const base: Timeframe = features.base;
  const names = features.perTimeframe.get(base)?.names ?? [];
  for (const f of [options.fastFeature, options.slowFeature])
    if (!names.includes(f))
      throw new RangeError(
        `sma-cross reads feature ${base}.${f}, which the features lack (SMA-like columns: ${
          names.filter((n) => /sma/i.test(n)).join(', ') || 'none'
        }); set backtest.smaCross.fastFeature/slowFeature`,
      );
  const short = (options.allowShort ?? true) ? -1 : 0;
  return {
    observation: {
      timeframes: [base],
      windows: { [base]: 1 },
      features: { [base]: [options.fastFeature, options.slowFeature] },
      account: false,
    },
    act(obs, numEnvs, out) {
      for (let i = 0; i < numEnvs; i++) out[i] = obs[2 * i] < obs[2 * i + 1] ? 1 : short;
    },
  };
}

/**
 * Perfect-foresight upper bound: the sequence of `levels` that maximises log equity given the
 * future opens, with the cost of each change (`feeRate` × |Δlevel|) included, found by dynamic
 * programming over every base row. A decision at row i holds from open[i+1] to open[i+2]. It
 * ignores funding and slippage, so it bounds what a policy limited to these levels can earn. It
 * reads the future by construction: use it only as a ceiling.
 */
export function oraclePolicy(
  features: MultiTimeframeFeatures,
  options: { feeRate: number; levels: readonly number[] },
): RowAwarePolicy {
  const levels = Float64Array.from(options.levels);
  const L = levels.length;
  if (L === 0) throw new RangeError('oracle: levels must not be empty');
  const { open, close } = features.aligned.base;
  const n = open.length;
  const f = options.feeRate;
  // best[i * L + a] = index of the optimal level to decide at row i when holding level a.
  const best = new Int8Array(Math.max(0, n) * L);
  let value = new Float64Array(L); // value of holding level b from the next interval on
  let next = new Float64Array(L);
  for (let i = n - 2; i >= 0; i--) {
    // Interval held after the decision at row i: open[i+1] → open[i+2] (the last: → close).
    const p0 = open[i + 1];
    const p1 = i + 2 < n ? open[i + 2] : close[n - 1];
    const r = p1 / p0 - 1;
    for (let a = 0; a < L; a++) {
      let bestV = -Infinity;
      let bestB = 0;
      for (let b = 0; b < L; b++) {
        const g = 1 + levels[b] * r;
        const cost = 1 - f * Math.abs(levels[b] - levels[a]);
        const v = (g > 0 && cost > 0 ? Math.log(g) + Math.log(cost) : -Infinity) + value[b];
        if (v > bestV) {
          bestV = v;
          bestB = b;
        }
      }
      next[a] = bestV;
      best[i * L + a] = bestB;
    }
    const t = value;
    value = next;
    next = t;
  }
  const flat = levels.indexOf(0);
  let row = 0;
  let held = flat >= 0 ? flat : 0;
  return {
    observation: EMPTY_SPEC,
    reset() {
      row = 0;
      held = flat >= 0 ? flat : 0;
    },
    startAt(baseRow) {
      row = baseRow;
      held = flat >= 0 ? flat : 0;
    },
    act(_obs, numEnvs, out) {
      const b = row < n - 1 ? best[row * L + held] : held;
      held = b;
      row++;
      for (let i = 0; i < numEnvs; i++) out[i] = levels[b];
    },
  };
}

/**
 * What the pattern oracle reads of a planted pattern's label (`PatternLabel` of the synthetic
 * generator has these fields).
 */
export interface PatternOutcome {
  /** Close time of the completion bar (UTC ms): the earliest decision time it is complete. */
  readonly completionTimeMs: number;
  /** Close time of the bar the resolution was pinned at (UTC ms); NaN when none was planted. */
  readonly resolutionTimeMs: number;
  /** Textbook direction of the move after completion (-1, 0, 1). */
  readonly expectedDirection: number;
  /** True when the pattern was made to resolve against `expectedDirection`. */
  readonly adversarial: boolean;
}

/**
 * The pattern oracle, the learnable ceiling of a labelled market: at the first decision time at or
 * after each pattern's completion it takes the full position in the direction the pattern resolves
 * (the label's expected direction, reversed when planted to fail), holds it until the first
 * decision time at or after the label's resolution time, or until the next pattern's entry, and
 * is flat otherwise. It knows how each pattern resolves, not the noise. Patterns without a
 * direction or a resolution are skipped. Run through the same broker as any policy.
 */
export function patternOraclePolicy(
  features: MultiTimeframeFeatures,
  labels: readonly PatternOutcome[],
): RowAwarePolicy {
  const base = features.aligned.base;
  const n = base.openTime.length;
  const barMs = timeframeMs(features.base);
  // First base row whose decision time (its close) is at or after t.
  const rowAt = (t: number): number => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (base.openTime[mid] + barMs < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const trades = labels
    .filter((l) => l.expectedDirection !== 0 && Number.isFinite(l.resolutionTimeMs))
    .map((l) => ({
      entry: rowAt(l.completionTimeMs),
      exit: rowAt(l.resolutionTimeMs),
      side: (l.adversarial ? -1 : 1) * Math.sign(l.expectedDirection),
    }))
    .sort((a, b) => a.entry - b.entry);
  const target = new Float32Array(n);
  trades.forEach((t, k) => {
    const until = Math.min(t.exit, k + 1 < trades.length ? trades[k + 1].entry : n, n);
    for (let r = t.entry; r < until; r++) target[r] = t.side;
  });
  let row = 0;
  return {
    observation: EMPTY_SPEC,
    reset() {
      row = 0;
    },
    startAt(baseRow) {
      row = baseRow;
    },
    act(_obs, numEnvs, out) {
      const v = row < n ? target[row] : 0;
      row++;
      for (let i = 0; i < numEnvs; i++) out[i] = v;
    },
  };
}

/** What `resolvePolicy` needs to build a policy. */
export interface PolicyContext {
  /** Features of the data the policy will be run on. */
  readonly features: MultiTimeframeFeatures;
  /** The resolved config. */
  readonly config: Config;
  /** Directory that relative module paths and run ids are resolved against (default: cwd). */
  readonly cwd?: string;
  /** Labels of the patterns planted in the data (synthetic markets), for `pattern-oracle`. */
  readonly labels?: readonly PatternOutcome[];
}

/**
 * The seeded random baselines over `seeds` seeds (`backtest.random`): seed k is drawn from the
 * config's seed + k, so seed 0 is the one `baselinePolicy('random')` runs.
 */
export function randomBaselines(config: Config, seeds: number): Policy[] {
  const cfg = config.backtest.random;
  return Array.from({ length: seeds }, (_, k) =>
    randomPolicy({
      seed: new Rng(config.seed + k).fork('random-baseline').nextU32(),
      levels: cfg.levels,
      switchProbability: cfg.switchProbability,
    }),
  );
}

/**
 * Broker overrides a baseline runs with (`spot-buy-hold`: a spot account, see
 * `spotBrokerConfig`); undefined for the configured broker.
 */
export function baselineBroker(name: BaselineName, broker: BrokerConfig): BrokerConfig | undefined {
  return name === 'spot-buy-hold' ? spotBrokerConfig(broker) : undefined;
}

/**
 * A baseline by name, configured from the `backtest` config section. `spot-buy-hold` is the
 * buy-and-hold policy; run it on `baselineBroker`'s spot account.
 * @throws {UsageError} for `pattern-oracle` without labels in the context.
 */
export function baselinePolicy(name: BaselineName, context: PolicyContext): Policy {
  const cfg = context.config.backtest;
  switch (name) {
    case 'flat':
      return flatPolicy();
    case 'buy-hold':
    case 'spot-buy-hold':
      return buyAndHoldPolicy();
    case 'random':
      return randomBaselines(context.config, 1)[0];
    case 'pattern-oracle':
      if (context.labels === undefined)
        throw new UsageError('pattern-oracle needs labelled markets', {
          hint: 'run it on a synthetic scenario (ctm compare --scenario mix); real data has no pattern labels',
        });
      return patternOraclePolicy(context.features, context.labels);
    case 'sma-cross':
      return smaCrossPolicy(context.features, {
        ...cfg.smaCross,
        allowShort: context.config.broker.allowShort,
      });
    case 'oracle':
      return oraclePolicy(context.features, {
        feeRate: context.config.broker.takerFeeRate,
        levels: cfg.oracle.levels,
      });
  }
}

/** Throws a UsageError naming the module when `value` is not a Policy. */
export function validatePolicy(value: unknown, source: string): Policy {
  const fail = (what: string): never => {
    throw new UsageError(`policy ${source}: ${what}`, {
      hint: 'export default { observation: { timeframes, windows, features, account }, act(obs, numEnvs, out) { ... } } or a function (context) => such an object',
    });
  };
  if (typeof value !== 'object' || value === null)
    return fail(`expected an object, got ${value === null ? 'null' : typeof value}`);
  const p = value as Partial<Policy>;
  if (typeof p.act !== 'function') return fail('has no act(obs, numEnvs, out) function');
  if (p.reset !== undefined && typeof p.reset !== 'function')
    return fail('reset is not a function');
  const spec = p.observation;
  if (typeof spec !== 'object' || spec === null) return fail('has no observation spec');
  if (!Array.isArray(spec.timeframes)) return fail('observation.timeframes is not an array');
  if (typeof spec.windows !== 'object' || spec.windows === null)
    return fail('observation.windows is not an object');
  if (typeof spec.features !== 'object' || spec.features === null)
    return fail('observation.features is not an object');
  if (typeof spec.account !== 'boolean' && !Array.isArray(spec.account))
    return fail('observation.account must be true, false or a list of account fields');
  try {
    observationSize(spec);
  } catch (err) {
    return fail((err as Error).message);
  }
  return p as Policy;
}

/** What `--policy` named, resolved. */
export interface ResolvedPolicy {
  /** The policy itself. */
  policy: Policy;
  /** `baseline`, `module` or `run`. */
  kind: 'baseline' | 'module' | 'run';
  /** A display name (the baseline, the module path or the run id). */
  name: string;
  /** The broker config it runs on when not the configured one (spot buy-and-hold). */
  broker?: BrokerConfig;
  /** The run it was loaded from (kind `run`). */
  run?: Run;
  /**
   * Its seeds when it is reported over several (random: `backtest.random.seeds` of them, the
   * first being `policy`), never one path.
   */
  seeds?: readonly Policy[];
}
