// `ctm features` (the decision-row view of the multi-timeframe features, to CSV / CSV.gz / Parquet,
// raw or normalised with a normaliser fitted on a training range only) and `ctm lookahead-check`
// (the truncation + poisoned-future analysis of the same feature pipeline; with --env also of the
// RL env's observations along an episode). A thin layer: candles come from the store
// (`loadHistoricalData`) or a directory of files in the shared data layout
// (`<exchange>-<BASEQUOTE>-<tf>.csv.gz`); the library builds, checks and writes.

import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { LookAheadError, UsageError } from '../errors.js';
import {
  parseTimeframe,
  lowerBound,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import {
  dataFingerprint,
  loadCandleDirectory,
  loadHistoricalData,
} from '../data-processing/data-loader.js';
import {
  buildFeatures,
  checkFeatureLookAhead,
  writeFeatureTable,
} from '../data-processing/feature-engineering.js';
import { fitNormalizer, FittedNormalizer } from '../data-processing/normalizer.js';
import { formatLookAheadReport, randomCandles } from '../data-processing/lookahead.js';
import { checkEnvLookAhead } from '../models/reinforcement/trading-env.js';
import { createRun } from '../utils/runs.js';
import type { Config } from '../utils/config.js';
import { configDataRange } from '../data-processing/splits.js';
import {
  action,
  dateOption,
  listOption,
  resolveConfig,
  symbolOption,
  withCommonOptions,
  type CommonOptions,
} from './common.js';

function intOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name} "${value}" is not a positive integer`);
  return n;
}

function timeframesOf(config: Config, value: string | undefined): Timeframe[] {
  const list = value === undefined ? config.data.timeframes : listOption(value);
  return list.map((tf) => parseTimeframe(tf, '--timeframes'));
}

interface SourceOptions extends CommonOptions {
  symbol?: string;
  dataDir?: string;
  exchange?: string;
  timeframes?: string;
  from?: string;
  to?: string;
  repair?: boolean;
  mode?: string;
}

function overrides(opts: SourceOptions): Record<string, unknown>[] {
  const o: Record<string, unknown>[] = [];
  if (opts.repair === true) o.push({ data: { repair: true } });
  if (opts.mode !== undefined) {
    if (opts.mode !== 'last-closed' && opts.mode !== 'forming')
      throw new UsageError(`--mode "${opts.mode}" is not last-closed or forming`);
    o.push({ features: { alignment: opts.mode } });
  }
  return o;
}

/** Candles of one symbol: from `--data-dir` files, or from the store. */
async function loadSymbol(
  config: Config,
  opts: SourceOptions,
  symbol: string,
  timeframes: Timeframe[],
  fromMs: number | undefined,
  toMs: number | undefined,
): Promise<Map<Timeframe, Candles>> {
  const exchange = opts.exchange ?? config.data.exchange;
  if (opts.dataDir !== undefined)
    return loadCandleDirectory(opts.dataDir, {
      exchange,
      symbol,
      timeframes,
      fromMs,
      toMs,
      repair: config.data.repair,
    });
  const data = await loadHistoricalData({
    exchange,
    symbols: [symbol],
    timeframes,
    startDate: fromMs ?? null,
    endDate: toMs ?? null,
    store: config.paths.store,
  });
  return data.get(symbol)!;
}

interface FeaturesOptions extends SourceOptions {
  symbol: string;
  out: string;
  normalize?: boolean;
  fitFrom?: string;
  fitTo?: string;
  normalizer?: string;
  includeWarmup?: boolean;
}

async function runFeatures(opts: FeaturesOptions): Promise<void> {
  const config = resolveConfig(opts, overrides(opts));
  const symbol = symbolOption(opts.symbol);
  const timeframes = timeframesOf(config, opts.timeframes);
  const fromMs = dateOption(opts.from, 'from');
  const toMs = dateOption(opts.to, 'to');
  const fitFrom = dateOption(opts.fitFrom, 'fit-from');
  const fitTo = dateOption(opts.fitTo, 'fit-to');
  if (opts.normalize === true && opts.normalizer !== undefined)
    throw new UsageError('give either --normalize (fit) or --normalizer FILE (apply), not both');
  if (opts.normalize === true && (fitFrom === undefined || fitTo === undefined))
    throw new UsageError('--normalize needs --fit-from DATE and --fit-to DATE', {
      hint: 'fit on the training range only, e.g. --fit-from 2018-01-01 --fit-to 2022-01-01',
    });
  if (opts.normalize !== true && (fitFrom !== undefined || fitTo !== undefined))
    throw new UsageError('--fit-from/--fit-to are used only with --normalize');
  if (fitFrom !== undefined && fitTo !== undefined && !(fitFrom < fitTo))
    throw new UsageError('--fit-from must be before --fit-to');

  // Everything before --to is read: indicators warm up on the history before --from.
  const data = await loadSymbol(config, opts, symbol, timeframes, undefined, toMs);
  let features = buildFeatures(data, { spec: config.features, windows: config.windows });
  const run = createRun({ kind: 'features', config });
  run.update({ data: dataFingerprint(symbol, data), featureSpec: features.spec });
  let normalizerNote = 'raw values';
  if (opts.normalize === true) {
    const normalizer = fitNormalizer(features, {
      fromMs: fitFrom!,
      toMs: fitTo!,
      method: config.features.normalize.method,
      clip: config.features.normalize.clip,
    });
    await normalizer.save(run.path('normalizer.json'));
    run.addArtifact('normalizer', 'normalizer.json');
    features = normalizer.apply(features);
    normalizerNote = `normalised (${normalizer.json.method}, fitted on ${opts.fitFrom} .. ${opts.fitTo}, saved to ${run.path('normalizer.json')})`;
  } else if (opts.normalizer !== undefined) {
    const normalizer = await FittedNormalizer.load(opts.normalizer);
    features = normalizer.apply(features);
    normalizerNote = `normalised with ${opts.normalizer} (fitted on ${normalizer.json.fit.from} .. ${normalizer.json.fit.to})`;
  }
  const decision = features.decisionRows;
  const baseOpen = features.aligned.base.openTime;
  let fromRow = fromMs === undefined ? 0 : lowerBound(baseOpen, fromMs);
  const skippedWarmup =
    opts.includeWarmup === true ? 0 : Math.max(0, features.firstValidRow - fromRow);
  if (opts.includeWarmup !== true) fromRow = Math.max(fromRow, features.firstValidRow);
  const out = resolve(opts.out);
  const written = await writeFeatureTable(decision, out, { fromRow });
  run.addArtifact('features', relative(run.dir, out));
  const metrics = {
    rows: written.rows,
    columns: written.cols,
    firstValidRow: features.firstValidRow,
    warmupRowsSkipped: skippedWarmup,
    mode: features.aligned.mode,
  };
  run.writeMetrics(metrics);
  const lines = [
    `wrote ${written.rows.toLocaleString('en-US')} decision rows x ${written.cols} columns (decision_time + ${written.cols - 1} features) of ${symbol} to ${out} (${written.format}, ${normalizerNote})`,
  ];
  if (written.rows > 0)
    lines.push(
      `  decision times ${new Date(decision.time[fromRow]).toISOString()} .. ${new Date(decision.time[fromRow + written.rows - 1]).toISOString()} (close of each ${features.base} row; alignment ${features.aligned.mode})`,
    );
  if (skippedWarmup > 0)
    lines.push(
      `  ${skippedWarmup.toLocaleString('en-US')} warm-up rows before the first valid row left out (--include-warmup keeps them)`,
    );
  lines.push(`  run ${run.dir}`);
  process.stdout.write(lines.join('\n') + '\n');
}

interface LookAheadCliOptions extends SourceOptions {
  synthetic?: boolean;
  rows?: string;
  cuts?: string;
  env?: boolean;
}

async function runLookAhead(opts: LookAheadCliOptions): Promise<void> {
  const config = resolveConfig(opts, overrides(opts));
  if (opts.synthetic === true && (opts.symbol !== undefined || opts.dataDir !== undefined))
    throw new UsageError('--synthetic checks generated candles: drop --symbol and --data-dir');
  if (opts.synthetic !== true && opts.symbol === undefined && opts.dataDir === undefined)
    throw new UsageError('say what to check: --symbol S (store), --data-dir DIR or --synthetic');
  const timeframes = timeframesOf(config, opts.timeframes);
  const cuts = intOption(opts.cuts, 'cuts') ?? config.features.lookahead.cuts;
  const configured = configDataRange(config);
  const fromMs = dateOption(opts.from, 'from') ?? finite(configured.fromMs);
  const toMs = dateOption(opts.to, 'to') ?? finite(configured.toMs);
  const sets: Array<[string, Map<Timeframe, Candles>]> = [];
  if (opts.synthetic === true) {
    const rows = intOption(opts.rows, 'rows') ?? 20_000;
    const [base, ...higher] = [...timeframes].sort((a, b) => TIMEFRAME_MS[a] - TIMEFRAME_MS[b]);
    sets.push([
      `synthetic (seed ${config.seed}, ${rows} ${base} rows)`,
      randomCandles({
        seed: config.seed,
        rows,
        base,
        higher,
        gapProbability: 0.002,
        dropHigherProbability: 0.01,
      }),
    ]);
  } else {
    const symbols = opts.symbol !== undefined ? [symbolOption(opts.symbol)] : config.data.symbols;
    for (const symbol of symbols)
      sets.push([symbol, await loadSymbol(config, opts, symbol, timeframes, fromMs, toMs)]);
  }
  const run = createRun({ kind: 'lookahead-check', config });
  const reports: Record<string, unknown> = {};
  let leaks = 0;
  for (const [name, data] of sets) {
    const report = checkFeatureLookAhead(data, {
      spec: config.features,
      windows: config.windows,
      cuts,
      seed: config.seed,
      checks: config.features.lookahead.checks,
    });
    reports[name] = report;
    leaks += report.leaks.length;
    process.stdout.write(`${name}: ${formatLookAheadReport(report)}\n`);
    if (opts.env === true) {
      const envReport = checkEnvLookAhead(data, {
        spec: config.features,
        windows: config.windows,
        cuts,
        seed: config.seed,
        checks: config.features.lookahead.checks,
        env: { config },
      });
      reports[`${name} env`] = envReport;
      leaks += envReport.leaks.length;
      process.stdout.write(`${name} env observations: ${formatLookAheadReport(envReport)}\n`);
    }
  }
  run.writeMetrics({ leaks, reports });
  process.stdout.write(`run ${run.dir}\n`);
  if (leaks > 0)
    throw new LookAheadError(
      `${leaks} look-ahead leaks found (details above and in ${run.path('metrics.json')})`,
    );
}

function finite(ms: number): number | undefined {
  return Number.isFinite(ms) ? ms : undefined;
}

/** Registers `ctm features`. */
export function registerFeaturesCommand(program: Command): void {
  withCommonOptions(
    program
      .command('features')
      .description(
        'write the multi-timeframe features, one row per decision time (.csv, .csv.gz, .parquet)',
      )
      .requiredOption('--symbol <symbol>', 'ccxt unified symbol, e.g. BTC/USDT')
      .requiredOption('--out <file>', 'output file; the format follows the extension')
      .option('--from <date>', 'first candle open time written (UTC)')
      .option('--to <date>', 'open time after the last candle read and written (UTC, exclusive)')
      .option(
        '--data-dir <dir>',
        'read <exchange>-<BASEQUOTE>-<tf>.csv.gz files instead of the store',
      )
      .option('--exchange <id>', 'exchange of the candles (default: config data.exchange)')
      .option('--timeframes <list>', 'timeframes, e.g. 15m,4h,1d (default: config data.timeframes)')
      .option('--mode <mode>', 'higher-timeframe alignment: last-closed | forming')
      .option('--repair', 'drop off-grid and exact-duplicate rows of --data-dir files (logged)')
      .option('--normalize', 'normalise with statistics fitted on --fit-from .. --fit-to only')
      .option('--fit-from <date>', 'start of the normaliser fit range (the training split)')
      .option('--fit-to <date>', 'end of the normaliser fit range (exclusive)')
      .option('--normalizer <file>', 'apply a saved normaliser (normalizer.json of an earlier run)')
      .option('--include-warmup', 'also write the warm-up rows before the first valid row'),
  ).action(action((opts: FeaturesOptions) => runFeatures(opts)));
}

/** Registers `ctm lookahead-check`. */
export function registerLookAheadCommand(program: Command): void {
  withCommonOptions(
    program
      .command('lookahead-check')
      .description(
        'truncate / poison the future at random cut points and demand unchanged features before them',
      )
      .option(
        '--symbol <symbol>',
        'check this symbol (default with --data-dir: config data.symbols)',
      )
      .option(
        '--data-dir <dir>',
        'read <exchange>-<BASEQUOTE>-<tf>.csv.gz files instead of the store',
      )
      .option('--synthetic', 'check seeded random candles (with gaps) instead of real ones')
      .option('--rows <n>', 'base rows of --synthetic candles (default 20000)')
      .option('--from <date>', 'first candle open time checked (default: config data.startDate)')
      .option(
        '--to <date>',
        'open time after the last candle checked (default: config data.endDate)',
      )
      .option('--exchange <id>', 'exchange of the candles (default: config data.exchange)')
      .option('--timeframes <list>', 'timeframes, e.g. 15m,4h,1d (default: config data.timeframes)')
      .option('--mode <mode>', 'higher-timeframe alignment: last-closed | forming')
      .option(
        '--cuts <n>',
        'number of cut points: one per higher timeframe at a candle close, the rest random (default: config features.lookahead.cuts)',
      )
      .option('--repair', 'drop off-grid and exact-duplicate rows of --data-dir files (logged)')
      .option(
        '--env',
        "also check the RL env's observations (windows and account state) along one episode with seeded random actions",
      ),
  ).action(action((opts: LookAheadCliOptions) => runLookAhead(opts)));
}
