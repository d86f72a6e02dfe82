// Scenarios: the named markets agents are trained on and judged on (config section `scenarios`).
// A synthetic scenario is a set of markets of the dataset builder's generator (`seriesMarket`:
// patterns planted back to back on the base process, look-alikes, higher-timeframe influence),
// one market per seed, with disjoint train / validation / test seeds and the generator's labels;
// `real` is the yearly walk-forward folds of real candles. This module only builds markets (candles,
// features, labels and the range an env or backtest may trade); it never trains nor scores.

import { createHash } from 'node:crypto';
import { TIMEFRAME_MS, type Candles, type Timeframe } from '../data-processing/candles.js';
import {
  buildFeatures,
  type MultiTimeframeFeatures,
} from '../data-processing/feature-engineering.js';
import { yearlyFolds, type DateRange } from '../data-processing/splits.js';
import { ConfigError, UsageError } from '../errors.js';
import {
  resolveDatasetSettings,
  seriesMarket,
  SERIES_START_MS,
  type DatasetSettings,
} from '../synthetic-data/dataset-builder.js';
import { isPatternType, type PatternLabel } from '../synthetic-data/pattern-generator.js';
import { rangeMs, type Config } from '../utils/config.js';
import type { DataFingerprint } from '../utils/runs.js';
import { loadEvaluationData } from './evaluate.js';

/** The three splits of a scenario's markets. */
export const SCENARIO_SPLITS = ['train', 'validation', 'test'] as const;
/** One split of a scenario's markets. */
export type ScenarioSplit = (typeof SCENARIO_SPLITS)[number];

/** One synthetic scenario of the config (`scenarios.synthetic.<name>`). */
export type SyntheticScenarioConfig = Config['scenarios']['synthetic'][string];

/** A market of a scenario: candles, features, labels and the rows an env or a backtest trades. */
export interface ScenarioMarket {
  /** Scenario name. */
  readonly scenario: string;
  /** Split the market belongs to. */
  readonly split: ScenarioSplit;
  /** Display name, e.g. `mix/test/4300` or `real/test/2021`. */
  readonly name: string;
  /** Seed of a synthetic market; null for real data. */
  readonly seed: number | null;
  /** Walk-forward fold of a real market (0, 1, ...); null for synthetic ones. */
  readonly fold: number | null;
  /** Candles per timeframe (base first), the warm-up before `range` included. */
  readonly candles: ReadonlyMap<Timeframe, Candles>;
  /** Features of `candles` (config `features` and `windows`). */
  readonly features: MultiTimeframeFeatures;
  /**
   * Labels of the planted patterns (type, onset, completion, expected direction, resolution,
   * adversarial), in time order; empty for real data.
   */
  readonly labels: readonly PatternLabel[];
  /** Open times of the bars that are traded (after the features' warm-up). */
  readonly range: DateRange;
  /** Steps of a training episode on this market. */
  readonly episodeSteps: number;
}

/** Options of `scenarioMarkets`. */
export interface ScenarioMarketsOptions {
  /** Only these markets of the split (indices into its seeds or folds, in order). */
  readonly indices?: readonly number[];
  /** `real` only: a data directory instead of `scenarios.real.dataDir` (null = the store). */
  readonly dataDir?: string | null;
  /** Called after each market is built (index, count) for progress displays. */
  readonly onMarket?: (done: number, total: number) => void;
}

/** Names of every scenario of a config: the synthetic ones, then `real`. */
export function scenarioNames(config: Config): string[] {
  return [...Object.keys(config.scenarios.synthetic), 'real'];
}

/**
 * A scenario name checked against the config.
 * @throws {UsageError} naming the scenarios there are.
 */
export function checkScenarioName(config: Config, name: string): string {
  if (name === 'real' || name in config.scenarios.synthetic) return name;
  throw new UsageError(`unknown scenario ${name}`, {
    hint: `scenarios: ${scenarioNames(config).join(', ')} (config section scenarios)`,
  });
}

/**
 * A curriculum: scenario names in training order (a comma-separated list, or the config's
 * `scenarios.curriculum` when empty).
 * @throws {UsageError} for an unknown scenario name.
 */
export function parseCurriculum(config: Config, list?: string): string[] {
  const names =
    list === undefined || list.trim() === ''
      ? [...config.scenarios.curriculum]
      : list
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  if (names.length === 0) throw new UsageError('the curriculum names no scenario');
  return names.map((n) => checkScenarioName(config, n));
}

/** Seeds of a synthetic scenario's split, in order. */
export function scenarioSeeds(sc: SyntheticScenarioConfig, split: ScenarioSplit): number[] {
  const r = sc.seeds[split];
  return Array.from({ length: r.count }, (_, k) => r.from + k);
}

/**
 * The config a synthetic scenario's markets are generated with: the `dataset` section with the
 * scenario's generator keys (null keeps the dataset's value) and its market length.
 * @throws {ConfigError} naming `scenarios.synthetic.<name>.patternWeights.<type>` for an unknown type.
 */
export function scenarioDatasetConfig(config: Config, name: string): Config['dataset'] {
  const sc = syntheticScenario(config, name);
  const key = `scenarios.synthetic.${name}`;
  for (const t of Object.keys(sc.patternWeights ?? {}))
    if (!isPatternType(t))
      throw new ConfigError(`${key}.patternWeights.${t}`, 'unknown pattern type');
  const d = config.dataset;
  return {
    ...d,
    calibration: sc.calibration ?? d.calibration,
    patternWeights: sc.patternWeights ?? d.patternWeights,
    timeframeWeights: sc.timeframeWeights ?? d.timeframeWeights,
    adversarialFraction: sc.adversarialFraction ?? d.adversarialFraction,
    htfInfluence: sc.htfInfluence ?? d.htfInfluence,
    amplitudeScale: sc.amplitudeScale ?? d.amplitudeScale,
    noiseLevel: sc.noiseLevel ?? d.noiseLevel,
    noneFraction: 0,
    withIndicators: true,
  };
}

function syntheticScenario(config: Config, name: string): SyntheticScenarioConfig {
  const sc = config.scenarios.synthetic[name];
  if (sc === undefined) {
    checkScenarioName(config, name);
    throw new UsageError(`scenario ${name} is not synthetic`);
  }
  return sc;
}

/** Warm-up days per feature spec, windows and calibration (a probe market each, once a process). */
const warmupCache = new Map<string, number>();

/** The generator settings of a synthetic scenario, the features' warm-up measured (cached). */
function scenarioSettings(config: Config, name: string): DatasetSettings {
  const sc = syntheticScenario(config, name);
  const dataset = scenarioDatasetConfig(config, name);
  const probeKey = JSON.stringify([config.features, config.windows, dataset.calibration]);
  const probeConfig: Config = { ...config, dataset: { ...dataset, seriesDays: 200 } };
  const s = resolveDatasetSettings(
    {},
    { config: probeConfig, seed: 0, warmupDays: warmupCache.get(probeKey) },
  );
  warmupCache.set(probeKey, s.warmupDays);
  return { ...s, cfg: { ...s.cfg, seriesDays: s.warmupDays + sc.days } };
}

/** The synthetic market of `seed` of scenario `name` (deterministic: same config, same bits). */
function syntheticMarket(
  config: Config,
  name: string,
  split: ScenarioSplit,
  seed: number,
  s: DatasetSettings,
): ScenarioMarket {
  const sc = syntheticScenario(config, name);
  const data = seriesMarket(0, { ...s, seed });
  const features = buildFeatures(data.frames, { spec: config.features, windows: config.windows });
  const base = features.aligned.base;
  const n = base.openTime.length;
  const warmEnd = SERIES_START_MS + s.warmupDays * 86_400_000;
  const from = Math.max(warmEnd, base.openTime[Math.min(n - 1, features.firstValidRow)]);
  const barMs = TIMEFRAME_MS[features.base];
  return {
    scenario: name,
    split,
    name: `${name}/${split}/${seed}`,
    seed,
    fold: null,
    candles: data.frames,
    features,
    labels: data.labels,
    range: { fromMs: from, toMs: base.openTime[n - 1] + barMs },
    episodeSteps: sc.episodeSteps,
  };
}

/** The date ranges of the real scenario's folds for a split. */
export function realFoldRanges(config: Config, split: ScenarioSplit): DateRange[] {
  const r = config.scenarios.real;
  const base = [...config.data.timeframes].sort((a, b) => TIMEFRAME_MS[a] - TIMEFRAME_MS[b])[0];
  const folds = yearlyFolds({
    fromMs: rangeMs({ from: r.trainFrom, to: null }).fromMs,
    testYears: r.testYears,
    purgeMs: config.backtest.walkForward.purgeBars * TIMEFRAME_MS[base],
    holdout: rangeMs(config.splits.holdout),
  });
  const valMs = r.validationDays * 86_400_000;
  return folds.map((f) => {
    const train = f.train[0];
    if (split === 'test') return f.test;
    if (!(train.toMs - valMs > train.fromMs))
      throw new ConfigError(
        'scenarios.real.validationDays',
        `leaves no training data before ${new Date(f.test.fromMs).toISOString().slice(0, 10)}`,
      );
    return split === 'train'
      ? { fromMs: train.fromMs, toMs: train.toMs - valMs }
      : { fromMs: train.toMs - valMs, toMs: train.toMs };
  });
}

/**
 * The markets of scenario `name` for one split: for a synthetic scenario one market per seed of
 * the split (generated, features built, labels attached); for `real` one market per walk-forward
 * fold (the test year, or the fold's training or validation range), read from the store or a data
 * directory with `backtest.warmupDays` of history before it for the features.
 * @throws {UsageError} for an unknown scenario or missing real data; {ConfigError} for bad
 *   scenario keys; {LookAheadError} when a real range touches the closed holdout.
 * @example const test = await scenarioMarkets(config, 'mix', 'test'); test[0].labels[0].type
 */
export async function scenarioMarkets(
  config: Config,
  name: string,
  split: ScenarioSplit,
  options: ScenarioMarketsOptions = {},
): Promise<ScenarioMarket[]> {
  checkScenarioName(config, name);
  if (name === 'real') return realMarkets(config, split, options);
  const sc = syntheticScenario(config, name);
  const seeds = pick(scenarioSeeds(sc, split), options.indices, name, split);
  const s = scenarioSettings(config, name);
  const key = scenarioFingerprint(config, name, split).hash;
  const out: ScenarioMarket[] = [];
  for (const seed of seeds) {
    // Markets are immutable: one built in this process is reused by every later caller.
    const k = `${key}:${seed}`;
    let m = marketMemo.get(k);
    if (m === undefined) {
      m = syntheticMarket(config, name, split, seed, s);
      marketMemo.set(k, m);
    }
    out.push(m);
    options.onMarket?.(out.length, seeds.length);
  }
  return out;
}

/** Synthetic markets built in this process, by scenario fingerprint and seed. */
const marketMemo = new Map<string, ScenarioMarket>();

/** Forgets the synthetic markets built so far in this process (to free their memory). */
export function clearScenarioMarkets(): void {
  marketMemo.clear();
}

function pick<T>(
  all: readonly T[],
  indices: readonly number[] | undefined,
  name: string,
  split: string,
): T[] {
  if (indices === undefined) return [...all];
  return indices.map((i) => {
    if (!(Number.isInteger(i) && i >= 0 && i < all.length))
      throw new UsageError(`scenario ${name} has ${all.length} ${split} markets, no index ${i}`);
    return all[i];
  });
}

async function realMarkets(
  config: Config,
  split: ScenarioSplit,
  options: ScenarioMarketsOptions,
): Promise<ScenarioMarket[]> {
  const r = config.scenarios.real;
  const ranges = realFoldRanges(config, split);
  const folds = pick(
    ranges.map((range, fold) => ({ range, fold })),
    options.indices,
    'real',
    split,
  );
  const dataDir = options.dataDir !== undefined ? options.dataDir : r.dataDir;
  const out: ScenarioMarket[] = [];
  for (const { range, fold } of folds) {
    const data = await loadEvaluationData({
      config,
      symbol: r.symbol,
      dataDir: dataDir ?? undefined,
      from: range.fromMs,
      to: range.toMs,
    });
    const year = new Date(range.fromMs).getUTCFullYear();
    out.push({
      scenario: 'real',
      split,
      name: `real/${split}/${split === 'test' ? year : `fold${fold}`}`,
      seed: null,
      fold,
      candles: data.candles,
      features: data.features,
      labels: [],
      range: data.range,
      episodeSteps: r.episodeSteps,
    });
    options.onMarket?.(out.length, folds.length);
  }
  return out;
}

/**
 * What a run trained or evaluated on a scenario records as its data (for the trial counter): the
 * scenario, split and seeds (or folds) as the series, and a hash of the scenario's config (the
 * generator keys, seeds, features and windows; for `real`, the real section and the splits) and of
 * the markets taken (`indices`, all when omitted).
 */
export function scenarioFingerprint(
  config: Config,
  name: string,
  split: ScenarioSplit,
  indices?: readonly number[],
): DataFingerprint {
  checkScenarioName(config, name);
  const h = createHash('sha256');
  const what =
    name === 'real'
      ? { real: config.scenarios.real, holdout: config.splits.holdout, data: config.data.exchange }
      : {
          scenario: config.scenarios.synthetic[name],
          dataset: scenarioDatasetConfig(config, name),
        };
  h.update(
    JSON.stringify({
      name,
      split,
      indices: indices ?? null,
      what,
      features: config.features,
      windows: config.windows,
    }),
  );
  const ranges: Record<string, [number, number, number]> = {};
  if (name === 'real')
    realFoldRanges(config, split).forEach((r, k) => {
      ranges[`real ${split} fold ${k}`] = [r.fromMs, r.toMs, 0];
    });
  else {
    const seeds = config.scenarios.synthetic[name].seeds[split];
    ranges[`${name} ${split} seeds`] = [seeds.from, seeds.from + seeds.count - 1, seeds.count];
  }
  return {
    symbols: [name === 'real' ? config.scenarios.real.symbol : `scenario:${name}`],
    timeframes: [...config.data.timeframes],
    ranges,
    hash: h.digest('hex'),
  };
}
