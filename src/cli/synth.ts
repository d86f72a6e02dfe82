// `ctm synth generate | calibrate | realism`: synthetic markets in the layout of the real data
// folder, their calibration on real candles, and their measured realism. A thin layer: each
// command parses options, resolves the config, calls the library and prints a short summary.

import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { parseDateMs } from '../utils/config.js';
import { createRun } from '../utils/runs.js';
import { createProgress } from '../utils/progress.js';
import { writeFileAtomicSync, writeJsonAtomic } from '../utils/fs.js';
import {
  generateBaseMarket,
  marketOptionsFromSettings,
  symbolStem,
  writeSyntheticMarket,
  type BaseProcessParams,
  type SyntheticLabels,
} from '../synthetic-data/base-process.js';
import { calibrateBaseProcess, loadCalibration } from '../synthetic-data/calibration.js';
import { realismReportHtml, realismReportMarkdown } from '../synthetic-data/realism-report.js';
import {
  calibrationYearsOf,
  readMarkets,
  runRealism,
} from '../synthetic-data/realism.js';
import { action, resolveConfig, withCommonOptions, type CommonOptions } from './common.js';
import { realismSettings } from '../synthetic-data/realism-settings.js';

const DAY_MS = 86_400_000;

function dateMs(value: string, flag: string): number {
  const ms = parseDateMs(value);
  if (Number.isNaN(ms))
    throw new UsageError(`${flag} "${value}" is not a date`, { hint: 'use YYYY-MM-DD (UTC)' });
  return ms;
}

/** `1 thread`, `2 threads`. */
function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Seconds as `1m05s` (or `42s`). */
function duration(seconds: number): string {
  const s = Math.round(seconds);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function positive(value: string, flag: string): number {
  const v = Number(value);
  if (!(Number.isFinite(v) && v > 0))
    throw new UsageError(`${flag} "${value}" must be a positive number`);
  return v;
}

/** The `synth` command group (created once; other modules may add subcommands to it). */
export function synthGroup(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'synth');
  return (
    existing ??
    program.command('synth').description('synthetic markets: generate, calibrate, measure realism')
  );
}

interface GenerateOptions extends CommonOptions {
  out: string;
  years?: string;
  calibration?: string;
  start?: string;
  fine?: string;
}

interface CalibrateOptions extends CommonOptions {
  real: string;
  symbol?: string;
  from?: string;
  until?: string;
  out: string;
  workers?: string;
}

interface RealismOptions extends CommonOptions {
  real: string;
  synthetic: string;
  strength?: boolean;
  years?: boolean;
}

/** Registers `ctm synth generate`, `ctm synth calibrate` and `ctm synth realism`. */
export function registerSynthCommands(program: Command): void {
  const synth = synthGroup(program);

  withCommonOptions(
    synth
      .command('generate')
      .description(
        'generate synthetic 15m/4h/1d candles (synthetic-<SYM>-<tf>.csv.gz) and their regime/event labels',
      )
      .requiredOption('--out <dir>', 'output directory')
      .option('--years <n>', 'length in years of 365 days (default: synthetic.years)')
      .option('--calibration <name|file>', 'btc | eth | a JSON file from `ctm synth calibrate`')
      .option('--start <date>', 'first open time, a UTC date (default: synthetic.startDate)')
      .option('--fine <tf>', 'fine step: 5m | 1m (default: synthetic.fineTimeframe)'),
  ).action(
    action((opts: GenerateOptions) => {
      const config = resolveConfig(opts);
      const s = config.synthetic;
      const params = loadCalibration(opts.calibration ?? s.calibration);
      const years = opts.years === undefined ? s.years : positive(opts.years, '--years');
      const fine = opts.fine ?? s.fineTimeframe;
      if (fine !== '5m' && fine !== '1m') throw new UsageError(`--fine must be 5m or 1m`);
      const startTimeMs = dateMs(opts.start ?? s.startDate, '--start');
      const t0 = performance.now();
      const market = generateBaseMarket(params, {
        ...marketOptionsFromSettings(s),
        seed: config.seed,
        days: Math.round(years * 365),
        startTimeMs,
        fineTimeframe: fine,
      });
      const ms = performance.now() - t0;
      const files = writeSyntheticMarket(opts.out, market, params, config.seed);
      const run = createRun({ kind: 'synth-generate', config });
      files.forEach((f, k) => run.addArtifact(`file${k}`, f));
      run.writeMetrics({
        seconds: ms / 1000,
        bars15m: market.m15.openTime.length,
        jumps: market.path.jumps.length,
        regimes: market.path.regimes.length,
      });
      const last = market.m15.close.length - 1;
      process.stdout.write(
        `generated ${params.symbol} (${opts.calibration ?? s.calibration}, seed ${config.seed}): ${market.m15.openTime.length} 15m, ${market.h4.openTime.length} 4h, ${market.d1.openTime.length} 1d candles in ${ms.toFixed(0)} ms; ` +
          `price ${market.m15.open[0].toFixed(2)} -> ${market.m15.close[last].toFixed(2)}, ${market.path.regimes.length} regimes, ${market.path.jumps.length} jumps\n` +
          files.map((f) => `  ${f}\n`).join(''),
      );
    }),
  );

  withCommonOptions(
    synth
      .command('calibrate')
      .description('fit the base-process parameters to real 15m candles and save them as JSON')
      .requiredOption(
        '--real <file|dir>',
        'a 15m candle file, or a directory holding <...>-<SYM>-15m.csv.gz',
      )
      .option('--symbol <symbol>', 'symbol to pick from a directory (default BTC/USDT)')
      .option('--from <date>', 'first day used (default: synthetic.calibrate.from)')
      .option('--until <date>', 'last day used, inclusive (default: synthetic.calibrate.until)')
      .option(
        '--workers <n>',
        'threads, 1 or 2 (default: 2 on a machine with 2 cores or more); same result either way',
      )
      .requiredOption('--out <file>', 'output JSON file'),
  ).action(
    action(async (opts: CalibrateOptions) => {
      const config = resolveConfig(opts);
      const c = config.synthetic.calibrate;
      const fromMs = dateMs(opts.from ?? c.from, '--from');
      const toMs = dateMs(opts.until ?? c.until, '--until') + DAY_MS;
      const stem = symbolStem(opts.symbol ?? 'BTC/USDT');
      const markets = await readMarkets(opts.real);
      const market = markets.find((m) => symbolStem(m.market.m15.symbol) === stem) ?? markets[0];
      if (markets.length > 1 && symbolStem(market.market.m15.symbol) !== stem)
        throw new UsageError(`no ${stem} 15m file in ${opts.real}`, {
          hint: 'pass --symbol matching a file name, e.g. --symbol ETH/USDT',
        });
      const workers =
        opts.workers === undefined
          ? Math.min(2, availableParallelism())
          : positive(opts.workers, '--workers');
      if (workers !== 1 && workers !== 2) throw new UsageError(`--workers must be 1 or 2`);
      const total = c.iterations + c.windowRounds;
      const bar = createProgress('calibrating', total, { unit: 'iterations' });
      // Without a terminal (no bar drawn) one line per step, so a long fit is never silent.
      const lines = !process.stderr.isTTY;
      const started = Date.now();
      let inferenceEnd = started;
      if (lines)
        process.stderr.write(
          `calibrating ${market.market.m15.symbol}: ${plural(c.iterations, 'indirect-inference iteration')}, then ${plural(c.windowRounds, 'window-statistics round')} (${plural(workers, 'thread')})\n`,
        );
      const result = await calibrateBaseProcess(market.market.m15, {
        fromMs,
        toMs,
        iterations: c.iterations,
        seasonalityMonths: c.seasonalityMonths,
        microstructureMonths: c.microstructureMonths,
        microstructureRegimes: c.microstructureRegimes,
        tickSize: c.tickSize,
        windowRounds: c.windowRounds,
        windowSimulationDays: c.windowSimulationDays,
        windowStrideBars: c.windowStrideBars,
        seed: config.seed,
        workers,
        onIteration: (i) => {
          bar.update(i);
          if (!lines) return;
          const now = Date.now();
          // The stages' steps differ in length (a window round simulates dozens of paths): time
          // left from the current stage's own pace, plus the rounds still to come once one ran.
          const windowStage = i > c.iterations;
          if (i === c.iterations) inferenceEnd = now;
          const done = windowStage ? i - c.iterations : i;
          const pace = (now - (windowStage ? inferenceEnd : started)) / 1000 / done;
          const left = windowStage ? `, about ${duration(pace * (total - i))} left` : '';
          process.stderr.write(
            `  step ${i}/${total} (${windowStage ? 'window statistics' : 'indirect inference'}): ${duration((now - started) / 1000)} elapsed${left}\n`,
          );
        },
      });
      bar.stop();
      await writeJsonAtomic(opts.out, result.params);
      const r = result.real;
      const s = result.simulated;
      const pair = (name: string, a: number, b: number): string =>
        `  ${name.padEnd(22)} real ${a.toPrecision(3).padStart(9)}  simulated ${b.toPrecision(3).padStart(9)}\n`;
      process.stdout.write(
        `calibrated ${result.params.symbol} on ${result.params.fittedOn.from}..${result.params.fittedOn.to} (${result.params.fittedOn.bars} bars) -> ${opts.out}\n` +
          pair('median |r| 15m', r.medianAbs, s.medianAbs) +
          pair('Hill tail index', r.hill, s.hill) +
          pair('log|r| autocov lag 1', r.logAbsCov[0], s.logAbsCov[0]) +
          pair('log|r| autocov 1 day', r.logAbsCov[12], s.logAbsCov[12]) +
          pair('range / body 15m', r.rangeBody, s.rangeBody) +
          pair('range / body 4h', r.rangeBody4h, s.rangeBody4h) +
          pair('volume-range corr', r.volumeRangeCorr, s.volumeRangeCorr) +
          pair('variance ratio 16', r.varianceRatio[1], s.varianceRatio[1]),
      );
    }),
  );

  withCommonOptions(
    synth
      .command('realism')
      .description(
        'stylized-facts table (real yearly ranges vs synthetic) and discriminative score with its real-vs-real control',
      )
      .requiredOption(
        '--real <file|dir>',
        'a real 15m candle file (aggregated up to 4h/1d) or the real data directory',
      )
      .requiredOption('--synthetic <dir>', 'directory written by `ctm synth generate`')
      .option('--no-strength', 'skip the classifier-strength checks (random walk, GARCH, shuffled)')
      .option(
        '--years',
        'also score every other real year, and the calibration years pooled, against the score year',
      ),
  ).action(
    action(async (opts: RealismOptions) => {
      const config = resolveConfig(opts);
      const real = await readMarkets(opts.real);
      const synthetic = await readMarkets(opts.synthetic, 'synthetic-');
      const params = syntheticParams(opts.synthetic, synthetic[0].market.m15.symbol);
      const run = createRun({ kind: 'synth-realism', config });
      const bar = createProgress('realism', 1, { unit: 'steps' });
      let steps = 0;
      const report = runRealism(real, synthetic, real[0], {
        ...realismSettings(config),
        strengthChecks: opts.strength !== false,
        yearControls: opts.years === true,
        calibrationYears: calibrationYearsOf(params),
        microstructure: params.microstructure,
        seed: config.seed,
        onStep: () => bar.setTotal(++steps + 1),
      });
      bar.stop();
      writeFileAtomicSync(run.path('realism.md'), realismReportMarkdown(report) + '\n');
      writeFileAtomicSync(run.path('realism.html'), realismReportHtml(report));
      await writeJsonAtomic(run.path('realism.json'), {
        table: report.table,
        scores: report.scores,
      });
      run.addArtifact('table', 'realism.md');
      run.addArtifact('report', 'realism.html');
      run.addArtifact('json', 'realism.json');
      run.writeMetrics({
        fractionInRange: report.table.fractionInRange,
        scores: report.scores.map((s) => ({
          name: s.name,
          accuracy: s.result.accuracy,
          auc: s.result.auc,
        })),
      });
      const t = report.table;
      process.stdout.write(
        `stylized facts inside the real range: ${t.rows.length - t.outside.length}/${t.rows.length} (${(100 * t.fractionInRange).toFixed(1)}%)\n` +
          report.scores
            .map(
              (s) =>
                `  ${s.name}: accuracy ${s.result.accuracy.value.toFixed(3)} [${s.result.accuracy.lo.toFixed(3)}, ${s.result.accuracy.hi.toFixed(3)}], AUC ${s.result.auc.value.toFixed(3)}\n`,
            )
            .join('') +
          `report: ${run.path('realism.html')}\n`,
      );
    }),
  );
}

/** Parameters recorded in the labels file beside synthetic candles (else the BTC calibration). */
function syntheticParams(dir: string, symbol: string): BaseProcessParams {
  const file = join(dir, `synthetic-${symbolStem(symbol)}-labels.json`);
  if (existsSync(file)) {
    const labels = JSON.parse(readFileSync(file, 'utf8')) as SyntheticLabels;
    if (labels.params !== undefined) return labels.params;
  }
  return loadCalibration('btc');
}
