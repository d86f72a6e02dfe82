// Configuration: one zod schema with fixed top-level sections, defaults in config/default.yaml
// (every key commented there), a user file (`--config FILE`) merged over them, then `--set
// key.path=value` and command flags. Unknown keys and wrong types are errors naming the key path.
// Each module owns its section and reads only the resolved, validated object.

import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { TIMEFRAMES, type Timeframe } from './timeframes.js';

const timeframe = z.enum(TIMEFRAMES as [Timeframe, ...Timeframe[]]);
/** A UTC date `YYYY-MM-DD` or an ISO-8601 timestamp. */
const dateString = z.string().refine((s) => !Number.isNaN(parseDateMs(s)), {
  message: 'expected a date like 2021-01-31 or an ISO-8601 timestamp',
});
const range = z.strictObject({ from: dateString.nullable(), to: dateString.nullable() });
const positiveInt = z.number().int().positive();

/** First seed and number of seeds of a scenario's markets of one split. */
const seedRange = z.strictObject({ from: z.number().int().nonnegative(), count: positiveInt });

/** One synthetic scenario (`scenarios.synthetic.<name>`); see config/default.yaml. */
const syntheticScenario = z
  .strictObject({
    calibration: z.string().min(1).nullable(),
    days: positiveInt,
    episodeSteps: positiveInt,
    patternWeights: z.record(z.string(), z.number().min(0)).nullable(),
    timeframeWeights: z.partialRecord(timeframe, z.number().min(0)).nullable(),
    adversarialFraction: z.number().min(0).max(1).nullable(),
    htfInfluence: z.number().min(0).max(1).nullable(),
    amplitudeScale: z.number().positive().max(5).nullable(),
    noiseLevel: z.number().positive().nullable(),
    seeds: z.strictObject({ train: seedRange, validation: seedRange, test: seedRange }),
  })
  .superRefine((s, ctx) => {
    const splits = ['train', 'validation', 'test'] as const;
    for (let a = 0; a < splits.length; a++)
      for (let b = a + 1; b < splits.length; b++) {
        const x = s.seeds[splits[a]];
        const y = s.seeds[splits[b]];
        if (x.from < y.from + y.count && y.from < x.from + x.count)
          ctx.addIssue({
            code: 'custom',
            path: ['seeds', splits[b]],
            message: `seeds ${y.from}..${y.from + y.count - 1} overlap the ${splits[a]} seeds ${x.from}..${x.from + x.count - 1}`,
          });
      }
  });

/** Sizes of a `ctm run` (`pipeline.sizes.default` and `.quick`). */
const PIPELINE_SIZES = z.strictObject({
  datasetSamples: positiveInt,
  modelEpochs: positiveInt,
  modelStepsPerEpoch: positiveInt,
  marketDays: positiveInt,
  trainMarkets: positiveInt,
  validationMarkets: positiveInt,
  testMarkets: positiveInt,
  dqnTimesteps: positiveInt,
  ppoTimesteps: positiveInt,
  ppoFinetuneTimesteps: z.number().int().nonnegative(),
  compareSeeds: positiveInt,
});

/** The config schema. Sections are filled by the modules that own them. */
export const configSchema = z.strictObject({
  seed: z.number().int().nonnegative(),
  paths: z.strictObject({
    store: z.string().min(1),
    runs: z.string().min(1),
  }),
  data: z.strictObject({
    exchange: z.string().min(1),
    symbols: z
      .array(
        z
          .string()
          .regex(
            /^[A-Z0-9]+\/[A-Z0-9]+(:[A-Z0-9]+)?$/,
            'expected a ccxt unified symbol like BTC/USDT',
          ),
      )
      .min(1),
    timeframes: z.array(timeframe).min(1),
    startDate: dateString.nullable(),
    endDate: dateString.nullable(),
    repair: z.boolean(),
    rejectGaps: z.boolean(),
    download: z.strictObject({
      pageLimit: positiveInt,
      maxRetries: z.number().int().nonnegative(),
      backoffMs: positiveInt,
      maxBackoffMs: positiveInt,
      timeoutMs: positiveInt,
      baseUrl: z.url({ protocol: /^https?$/ }).nullable(),
    }),
  }),
  splits: z.strictObject({
    train: range,
    validation: range,
    test: range,
    holdout: range,
  }),
  windows: z.partialRecord(timeframe, positiveInt),
  features: z.strictObject({
    alignment: z.enum(['last-closed', 'forming']),
    atrPeriod: positiveInt,
    returns: z.array(positiveInt),
    sma: z.array(positiveInt),
    ema: z.array(positiveInt),
    rsi: z.array(z.number().int().min(2)),
    macd: z.array(z.strictObject({ fast: positiveInt, slow: positiveInt, signal: positiveInt })),
    bollinger: z.array(z.strictObject({ period: positiveInt, stdDev: z.number().positive() })),
    atr: z.array(positiveInt),
    adx: z.array(positiveInt),
    stochastic: z.array(z.strictObject({ k: positiveInt, smoothK: positiveInt, d: positiveInt })),
    williamsR: z.array(positiveInt),
    cci: z.array(positiveInt),
    roc: z.array(positiveInt),
    obv: z.array(positiveInt),
    mfi: z.array(positiveInt),
    vwap: z.array(positiveInt),
    vwapDaily: z.boolean(),
    donchian: z.array(positiveInt),
    keltner: z.array(
      z.strictObject({
        period: positiveInt,
        atrPeriod: positiveInt,
        multiplier: z.number().positive(),
      }),
    ),
    realizedVol: z.array(z.number().int().min(2)),
    volumeZ: z.array(z.number().int().min(2)),
    candleShape: z.boolean(),
    supportResistance: z.strictObject({
      enabled: z.boolean(),
      left: positiveInt,
      right: positiveInt,
      lookback: positiveInt,
      tolerance: z.number().min(0),
      maxDistanceAtr: z.number().positive(),
      roleReversal: z.boolean(),
    }),
    cross: z.strictObject({
      trendPeriod: positiveInt,
      rsiPeriod: z.number().int().min(2),
      volPeriod: z.number().int().min(2),
      trend: z.boolean(),
      rangePosition: z.boolean(),
      supportResistance: z.boolean(),
      rsi: z.boolean(),
      volatilityRatio: z.boolean(),
      timeOfDay: z.boolean(),
      dayOfWeek: z.boolean(),
      staleness: z.boolean(),
    }),
    normalize: z.strictObject({
      method: z.enum(['zscore', 'robust']),
      clip: z.number().positive().nullable(),
    }),
    lookahead: z.strictObject({
      cuts: positiveInt,
      checks: z.array(z.enum(['truncate', 'poison-nan', 'poison-1e9'])).min(1),
    }),
  }),
  synthetic: z.strictObject({
    calibration: z.string().min(1),
    fineTimeframe: z.enum(['1m', '5m']),
    years: z.number().positive(),
    startDate: dateString,
    initialPrice: z.number().positive().nullable(),
    initialVolatility: z.number().positive().nullable(),
    annualDrift: z.number(),
    volatilityScale: z.number().positive(),
    calibrate: z.strictObject({
      from: dateString,
      until: dateString,
      iterations: positiveInt,
      seasonalityMonths: positiveInt,
      microstructureMonths: positiveInt,
      microstructureRegimes: z.boolean(),
      tickSize: z.number().min(0),
      windowRounds: z.number().int().min(0),
      windowSimulationDays: z.number().int().min(120),
      windowStrideBars: positiveInt,
    }),
    realism: z.strictObject({
      realYears: z.tuple([z.number().int(), z.number().int()]),
      scoreYear: z.number().int(),
      controlYear: z.number().int(),
      syntheticYears: positiveInt,
      conditionOnStart: z.boolean(),
      trailingDays: positiveInt,
      windowBars: z.number().int().min(32),
      strideBars: positiveInt,
      context4h: z.number().int().min(8),
      context1d: z.number().int().min(8),
      levels: z.boolean(),
      folds: z.number().int().min(2),
      bootstrap: positiveInt,
      clusterDays: z.number().positive(),
      gbt: z.strictObject({
        rounds: positiveInt,
        depth: positiveInt,
        learningRate: z.number().positive(),
        bins: z.number().int().min(2).max(250),
        minLeaf: positiveInt,
        lambda: z.number().min(0),
        rowSubsample: z.number().gt(0).max(1),
        colSubsample: z.number().gt(0).max(1),
      }),
    }),
  }),
  dataset: z.strictObject({
    samples: positiveInt,
    calibration: z.string().min(1),
    seriesDays: z.number().int().min(30),
    noneFraction: z.number().min(0).max(0.95),
    patternWeights: z.record(z.string(), z.number().min(0)),
    timeframeWeights: z.partialRecord(timeframe, z.number().min(0)),
    adversarialFraction: z.number().min(0).max(1),
    htfInfluence: z.number().min(0).max(1),
    resolutionDelayBars: z.number().int().nonnegative(),
    decisionsPerPattern: z.partialRecord(timeframe, positiveInt),
    horizonBars: z.partialRecord(timeframe, positiveInt),
    roundTripCost: z.number().min(0).nullable(),
    splits: z.strictObject({
      train: z.number().positive(),
      validation: z.number().min(0),
      test: z.number().min(0),
    }),
    embargoHours: z.number().min(0),
    amplitudeScale: z.number().positive().max(5),
    visibilityShift: z.number().min(0).max(1),
    maxAmplitudeScale: z.number().min(1).max(3),
    noiseLevel: z.number().positive(),
    shardSize: positiveInt,
    workers: positiveInt.nullable(),
    withIndicators: z.boolean(),
    augment: z.strictObject({
      lagFraction: z.number().min(0).max(1),
      lagBars: positiveInt,
      noiseFraction: z.number().min(0).max(1),
      noiseLevel: z.union([z.enum(['low', 'realistic', 'high']), z.number().min(0)]),
    }),
    real: z.strictObject({
      file: z.string().min(1).nullable(),
      symbol: z.string().min(1),
      sampleRatio: z.number().min(0).max(1),
    }),
  }),
  model: z.strictObject({
    backend: z.enum(['auto', 'wasm', 'tensorflow']),
    cell: z.enum(['gru', 'lstm']),
    gruImplementation: z.enum(['fused', 'layers']),
    hiddenDims: positiveInt,
    numLayers: positiveInt,
    pooling: z.enum(['last', 'attention']),
    attentionHeads: z.number().int().nonnegative(),
    denseUnits: positiveInt,
    dropout: z.number().min(0).lt(1),
    inputClip: z.number().positive(),
    lossWeights: z.strictObject({
      direction: z.number().min(0),
      forwardReturn: z.number().min(0),
      pattern: z.number().min(0),
    }),
    labels: z.strictObject({
      horizon: positiveInt,
      threshold: z.enum(['quantile', 'fixed']),
      thresholdValue: z.number().positive(),
    }),
    embargoBars: z.number().int().nonnegative(),
    sampleStride: positiveInt,
    synthetic: z.strictObject({
      calibration: z.string().min(1),
      days: positiveInt,
      trainFraction: z.number().gt(0).lt(1),
      validationFraction: z.number().gt(0).lt(1),
    }),
    train: z.strictObject({
      epochs: positiveInt,
      batchSize: positiveInt,
      learningRate: z.number().positive(),
      weightDecay: z.number().min(0),
      averageDecay: z.number().min(0).lt(1),
      clipNorm: z.number().min(0),
      classWeights: z.union([z.enum(['balanced', 'none']), z.array(z.number().min(0)).length(3)]),
      schedule: z.enum(['constant', 'cosine', 'plateau']),
      warmupSteps: z.number().int().nonnegative(),
      minLearningRate: z.number().min(0),
      plateauFactor: z.number().gt(0).lt(1),
      plateauPatience: positiveInt,
      earlyStoppingPatience: z.number().int().nonnegative(),
      minDelta: z.number().min(0),
      monitor: z.enum(['loss', 'directionLoss', 'accuracy']),
      checkpointEverySteps: positiveInt,
      logEverySteps: z.number().int().nonnegative(),
      maxStepsPerEpoch: positiveInt.nullable(),
      evalBatchSize: positiveInt,
    }),
    policy: z.strictObject({
      threshold: z.number().min(0).max(1),
      sizing: z.enum(['discrete', 'proportional']),
    }),
  }),
  broker: z.strictObject({
    initialCapital: z.number().positive(),
    marketType: z.enum(['perpetual', 'spot']),
    leverage: z.number().positive().max(125),
    allowShort: z.boolean(),
    takerFeeRate: z.number().min(0).max(0.1),
    makerFeeRate: z.number().min(0).max(0.1),
    slippage: z.strictObject({
      model: z.enum(['fixed', 'range', 'atr', 'volume']),
      fixedBps: z.number().min(0),
      rangeFraction: z.number().min(0),
      atrFraction: z.number().min(0),
      atrPeriod: positiveInt,
      volumeImpact: z.number().min(0),
      volumeExponent: z.number().positive().max(2),
      maxBps: z.number().min(0),
    }),
    funding: z.strictObject({
      enabled: z.boolean(),
      constantRate: z.number().min(-0.1).max(0.1),
      intervalHours: z.number().int().positive().max(24),
    }),
    borrow: z.strictObject({ annualRate: z.number().min(0).max(10) }),
    margin: z.strictObject({ maintenanceMarginRate: z.number().min(0).max(0.5) }),
    constraints: z.strictObject({
      minNotional: z.number().min(0),
      minQuantity: z.number().min(0),
      lotSize: z.number().min(0),
      priceTick: z.number().min(0),
    }),
    stops: z.strictObject({
      stopLossFraction: z.number().positive().max(1).nullable(),
      takeProfitFraction: z.number().positive().nullable(),
    }),
    risk: z.strictObject({
      maxPosition: z.number().positive().max(1),
      maxDailyLossFraction: z.number().positive().max(1).nullable(),
    }),
    recordLedger: z.boolean(),
  }),
  env: z.strictObject({
    actionType: z.enum(['discrete', 'continuous']),
    positionLevels: z.array(z.number().min(-1).max(1)).min(1),
    accountFields: z.array(z.enum(['position', 'unrealizedPnl', 'timeInPosition', 'drawdown'])),
    maxEpisodeSteps: positiveInt.nullable(),
    randomStart: z.boolean(),
    ruinEquityFraction: z.number().min(0).max(1),
    windows: z.partialRecord(timeframe, positiveInt).nullable(),
    decisionInterval: positiveInt,
  }),
  rewards: z.strictObject({
    pnl: z.number(),
    differentialSharpe: z.number(),
    differentialDownside: z.number(),
    drawdownPenalty: z.number().min(0),
    turnoverPenalty: z.number().min(0),
    eta: z.number().positive().max(1),
    riskFreeRate: z.number(),
  }),
  backtest: z.strictObject({
    defaultRange: z.enum(['test', 'all']),
    warmupDays: z.number().nonnegative(),
    closeAtEnd: z.boolean(),
    benchmark: z.boolean(),
    trials: positiveInt,
    riskFreeRate: z.number().min(-1).max(1),
    progressAfterSeconds: z.number().nonnegative(),
    smaCross: z.strictObject({ fastFeature: z.string().min(1), slowFeature: z.string().min(1) }),
    random: z.strictObject({
      levels: z.array(z.number().min(-1).max(1)).min(1),
      switchProbability: z.number().min(0).max(1),
      seeds: positiveInt,
    }),
    oracle: z.strictObject({ levels: z.array(z.number().min(-1).max(1)).min(1) }),
    walkForward: z.strictObject({
      mode: z.enum(['rolling', 'expanding', 'purged-kfold']),
      trainDays: z.number().positive(),
      testDays: z.number().positive(),
      stepDays: z.number().positive().nullable(),
      folds: z.number().int().min(2),
      purgeBars: z.number().int().nonnegative(),
      embargoBars: z.number().int().nonnegative(),
    }),
  }),
  report: z.strictObject({
    maxCandles: positiveInt,
    histogramBins: positiveInt,
    pngWidth: z.number().int().min(200).max(8000),
    pngHeight: z.number().int().min(150).max(8000),
    markerLabelLimit: z.number().int().nonnegative(),
  }),
  sweep: z.strictObject({
    workers: positiveInt.nullable(),
    queue: z
      .string()
      .min(1)
      .regex(/^[^:]+$/, 'a queue name cannot contain ":"'),
    concurrency: positiveInt,
    attempts: positiveInt,
    backoffMs: z.number().int().nonnegative(),
    lockDurationMs: z.number().int().min(1000),
    stalledIntervalMs: z.number().int().min(500),
    maxStalledCount: z.number().int().nonnegative(),
    connectTimeoutSeconds: z.number().positive(),
    errorLines: positiveInt,
    foldValidationDays: z.number().min(0),
    pollMs: z.number().int().min(50),
  }),
  scenarios: z
    .strictObject({
      curriculum: z.array(z.string().min(1)).min(1),
      real: z.strictObject({
        symbol: z
          .string()
          .regex(
            /^[A-Z0-9]+\/[A-Z0-9]+(:[A-Z0-9]+)?$/,
            'expected a ccxt unified symbol like BTC/USDT',
          ),
        dataDir: z.string().min(1).nullable(),
        trainFrom: dateString,
        testYears: z.array(z.number().int().min(1970).max(2100)).min(1),
        validationDays: positiveInt,
        episodeSteps: positiveInt,
      }),
      synthetic: z.record(z.string().regex(/^[a-z][a-z0-9-]*$/), syntheticScenario),
    })
    .superRefine((s, ctx) => {
      if ('real' in s.synthetic)
        ctx.addIssue({
          code: 'custom',
          path: ['synthetic', 'real'],
          message: 'the name real is the real-data scenario',
        });
      s.curriculum.forEach((name, i) => {
        if (name !== 'real' && !(name in s.synthetic))
          ctx.addIssue({
            code: 'custom',
            path: ['curriculum', i],
            message: `unknown scenario ${name} (scenarios: ${[...Object.keys(s.synthetic), 'real'].join(', ')})`,
          });
      });
    }),
  pipeline: z.strictObject({
    data: z.enum(['synthetic', 'real']),
    scenario: z.string().min(1),
    stages: z
      .array(
        z.enum(['lookahead', 'dataset', 'model', 'dqn', 'ppo-transfer', 'ppo-random', 'compare']),
      )
      .min(1),
    baselines: z.array(z.string().min(1)),
    agentWindows: z.partialRecord(timeframe, positiveInt),
    decisionInterval: positiveInt,
    sizes: z.strictObject({ default: PIPELINE_SIZES, quick: PIPELINE_SIZES }),
  }),
  dqn: z.strictObject({
    learningRate: z.number().positive(),
    hiddenDim: positiveInt,
    hiddenLayers: positiveInt,
    activation: z.enum(['relu', 'tanh']),
    totalTimesteps: positiveInt,
    numEnvs: positiveInt,
    bufferSize: positiveInt,
    learningStarts: z.number().int().nonnegative(),
    batchSize: positiveInt,
    tau: z.number().positive().max(1),
    gamma: z.number().positive().max(1),
    trainFrequency: positiveInt,
    gradientSteps: positiveInt,
    targetUpdateInterval: positiveInt,
    explorationFraction: z.number().positive().max(1),
    explorationInitialEps: z.number().min(0).max(1),
    explorationFinalEps: z.number().min(0).max(1),
    maxGradNorm: z.number().nonnegative(),
    nSteps: positiveInt,
    prioritizedReplay: z.boolean(),
    priorityAlpha: z.number().min(0).max(1),
    priorityBetaStart: z.number().min(0).max(1),
    priorityEpsilon: z.number().positive(),
    doubleQ: z.boolean(),
    dueling: z.boolean(),
    normalizeObservations: z.boolean(),
    observationClip: z.number().positive(),
    adamEpsilon: z.number().positive(),
    rewardScale: z.number().positive(),
    checkpointEvery: positiveInt,
    logEvery: positiveInt,
  }),
  ppo: z.strictObject({
    learningRate: z.number().positive(),
    hiddenDim: positiveInt,
    hiddenLayers: positiveInt,
    activation: z.enum(['tanh', 'relu']),
    actionType: z.enum(['discrete', 'continuous']),
    totalTimesteps: positiveInt,
    numEnvs: positiveInt,
    nSteps: positiveInt,
    batchSize: positiveInt,
    nEpochs: positiveInt,
    gamma: z.number().positive().max(1),
    gaeLambda: z.number().min(0).max(1),
    clipRange: z.number().positive(),
    clipRangeVf: z.number().positive().nullable(),
    normalizeAdvantage: z.boolean(),
    entCoef: z.number().nonnegative(),
    vfCoef: z.number().nonnegative(),
    maxGradNorm: z.number().nonnegative(),
    targetKl: z.number().positive().nullable(),
    annealLearningRate: z.boolean(),
    logStdInit: z.number(),
    normalizeObservations: z.boolean(),
    observationClip: z.number().positive(),
    normalizeRewards: z.boolean(),
    rewardClip: z.number().positive(),
    adamEpsilon: z.number().positive(),
    checkpointEveryUpdates: positiveInt,
    transfer: z.strictObject({
      level: z.enum(['encoders', 'fused']),
      shareEncoder: z.boolean(),
      frozenTimesteps: z.number().int().nonnegative(),
      finetuneLearningRate: z.number().positive(),
    }),
  }),
  live: z.strictObject({
    feed: z.enum(['auto', 'watch', 'poll']),
    wsUrl: z.string().nullable(),
    pollMs: positiveInt,
    closeGraceMs: z.number().int().nonnegative(),
    backoffMs: positiveInt,
    maxBackoffMs: positiveInt,
    stallTimeoutMs: positiveInt,
    warmupDays: positiveInt,
    shadowEveryBars: positiveInt,
    maxOrdersPerHour: positiveInt,
    rebalanceTolerance: z.number().min(0).max(1),
    stopFile: z.string().min(1),
    confirm: z.string().nullable(),
    sandbox: z.boolean(),
    apiKeyEnv: z.string().min(1),
    apiSecretEnv: z.string().min(1),
    statusDecisions: positiveInt,
  }),
});

/** The resolved, validated configuration. */
export type Config = z.infer<typeof configSchema>;

/** Path of the shipped defaults (config/default.yaml at the package root). */
export const DEFAULT_CONFIG_PATH = fileURLToPath(
  new URL('../../config/default.yaml', import.meta.url),
);

/**
 * Parses a UTC date (`YYYY-MM-DD`, treated as 00:00 UTC) or ISO-8601 timestamp (a timestamp without
 * a zone is read as UTC) to epoch ms; NaN when it is not a date.
 */
export function parseDateMs(s: string): number {
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return Date.parse(`${s}T00:00:00Z`);
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s))
    return Date.parse(`${s.replace(' ', 'T')}Z`);
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s))
    return Date.parse(s.replace(' ', 'T'));
  return NaN;
}

type Plain = Record<string, unknown>;

function isPlainObject(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readYamlFile(file: string): unknown {
  if (!existsSync(file)) throw new ConfigError('', 'config file not found', { file });
  try {
    return parseYaml(readFileSync(file, 'utf8')) ?? {};
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const line = err.linePos?.[0]?.line;
      throw new ConfigError(
        '',
        `YAML syntax error${line === undefined ? '' : ` at line ${line}`}: ${err.message.split('\n')[0]}`,
        { file },
      );
    }
    throw err;
  }
}

/**
 * Deep-merges `override` onto `base` (objects merge key by key; arrays and scalars replace).
 * A key absent from `base` is an error naming its path: defaults hold every valid key. Mappings
 * whose keys are open (records such as `windows` or the scenarios) accept new keys.
 */
function mergeInto(
  base: Plain,
  override: unknown,
  path: string[],
  file: string | undefined,
  openRecords: readonly string[],
): Plain {
  if (!isPlainObject(override)) {
    throw new ConfigError(path.join('.'), `expected a mapping, got ${describe(override)}`, {
      file,
    });
  }
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const keyPath = [...path, key];
    const dotted = keyPath.join('.');
    if (!(key in base)) {
      if (isOpenRecord(path, openRecords)) {
        out[key] = value;
        continue;
      }
      throw new ConfigError(dotted, 'unknown key', {
        file,
        hint: `valid keys here: ${Object.keys(base).join(', ')}`,
      });
    }
    const current = base[key];
    out[key] =
      isPlainObject(current) && isPlainObject(value)
        ? mergeInto(current, value, keyPath, file, openRecords)
        : value;
  }
  return out;
}

/** Whether the mapping at `path` takes new keys: a pattern of `openRecords` matches it (`*` = any key). */
function isOpenRecord(path: readonly string[], openRecords: readonly string[]): boolean {
  return openRecords.some((pattern) => {
    const parts = pattern.split('.');
    return parts.length === path.length && parts.every((p, i) => p === '*' || p === path[i]);
  });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v;
}

/** Parses a `--set` value: YAML scalar/flow syntax (`0.001`, `true`, `[15m, 4h]`, `null`). */
function parseOverrideValue(raw: string): unknown {
  try {
    return parseYaml(raw);
  } catch {
    return raw;
  }
}

/** Turns `a.b.c=value` into a nested object `{ a: { b: { c: value } } }`. */
export function overrideToObject(assignment: string): Plain {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new ConfigError(assignment, 'expected key.path=value');
  const keys = assignment.slice(0, eq).trim().split('.');
  const value = parseOverrideValue(assignment.slice(eq + 1));
  let obj: unknown = value;
  for (let i = keys.length - 1; i >= 0; i--) obj = { [keys[i]]: obj };
  return obj as Plain;
}

/** Options of `loadConfig`. */
export interface LoadConfigOptions {
  /** A user YAML file merged over the defaults (`--config FILE`). */
  file?: string;
  /** `key.path=value` assignments applied after the file (`--set`). */
  set?: string[];
  /** Already-structured overrides applied last (command flags such as `--seed`). */
  overrides?: Plain[];
  /** Defaults file; the shipped config/default.yaml unless given (tests). */
  defaultsFile?: string;
}

/** Mappings that take keys the defaults do not have (timeframes, scenario names, pattern types). */
const OPEN_RECORDS = [
  'windows',
  'scenarios.synthetic',
  'scenarios.synthetic.*.patternWeights',
  'scenarios.synthetic.*.timeframeWeights',
];

/**
 * Loads and validates the configuration: defaults, then `file`, then `set`, then `overrides`.
 * @throws {ConfigError} naming the key path for unknown keys, wrong types and bad values, and the
 * file and line for YAML syntax errors.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const defaultsFile = options.defaultsFile ?? DEFAULT_CONFIG_PATH;
  const defaults = readYamlFile(defaultsFile);
  if (!isPlainObject(defaults))
    throw new ConfigError('', 'defaults must be a mapping', { file: defaultsFile });
  // Each stage is validated on its own so an error names where the bad value came from.
  let merged: Plain = defaults;
  let config = validateConfig(merged, defaultsFile);
  if (options.file !== undefined) {
    merged = mergeInto(merged, readYamlFile(options.file), [], options.file, OPEN_RECORDS);
    config = validateConfig(merged, options.file);
  }
  for (const assignment of options.set ?? []) {
    merged = mergeInto(merged, overrideToObject(assignment), [], '--set', OPEN_RECORDS);
    config = validateConfig(merged, `--set ${assignment}`);
  }
  for (const o of options.overrides ?? []) {
    merged = mergeInto(merged, o, [], 'command line', OPEN_RECORDS);
    config = validateConfig(merged, 'command line');
  }
  return config;
}

/**
 * Validates a plain object against the schema.
 * @throws {ConfigError} for the first problem, naming its key path.
 */
export function validateConfig(value: unknown, file?: string): Config {
  const result = configSchema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  let keyPath = issue.path.map(String).join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    keyPath = [...issue.path.map(String), issue.keys[0]].join('.');
    message = 'unknown key';
  }
  throw new ConfigError(keyPath, message, { file });
}

let cachedDefaults: Config | undefined;

/** The shipped defaults, validated; each call returns a fresh deep copy. */
export function defaultConfig(): Config {
  cachedDefaults ??= loadConfig();
  return structuredClone(cachedDefaults);
}

/** Returns the epoch-ms bounds `[fromMs, toMs)` of a range (`to` is exclusive; `null` ends are ±Infinity). */
export function rangeMs(r: { from: string | null; to: string | null }): {
  fromMs: number;
  toMs: number;
} {
  return {
    fromMs: r.from === null ? -Infinity : parseDateMs(r.from),
    toMs: r.to === null ? Infinity : parseDateMs(r.to),
  };
}
