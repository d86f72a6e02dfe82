// Realism measurement of synthetic markets, end to end: the stylized-facts table against the real
// yearly ranges, the discriminative scores (real-vs-real control first, then synthetic, reference
// processes and other years), and the reading of candle files for it. Shared by
// `ctm synth realism` and the experiments. It never changes the candles it is given and never
// feeds a measurement back into generation.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  type Candles,
  repairCandles,
  sliceByTime,
  type Timeframe,
  TIMEFRAME_MS,
  validateCandles,
} from '../data-processing/candles.js';
import { readCandlesCsv } from '../data-processing/file-formats.js';
import { resample } from '../data-processing/resample.js';
import { DataValidationError } from '../errors.js';
import { logger } from '../utils/logger.js';
import { type BaseProcessParams } from './base-process.js';
import {
  DEFAULT_DISCRIMINATIVE,
  type DiscriminativeOptions,
  discriminativeScore,
} from './realism-discriminator.js';
import {
  meanProfiles,
  realismTable,
  type RealismTable,
  seasonalProfiles,
  splitByDays,
  splitByYear,
  stylizedFacts,
  type YearlyFacts,
} from './realism-facts.js';
import {
  garchMarket,
  gaussianWalkMarket,
  type ReferenceProcessOptions,
  shuffledMarket,
} from './realism-reference.js';
import { type NamedScore, type RealismReport } from './realism-report.js';
import { moments, toGrid } from './realism-stats.js';
import {
  DEFAULT_WINDOWS,
  extractWindowFeatures,
  type MarketSeries,
  type WindowOptions,
  type WindowSet,
} from './realism-windows.js';

/** A labelled market (real symbol or synthetic run). */
export interface LabelledMarket {
  /** Name of the market, e.g. a symbol or a synthetic run. */
  label: string;
  /** Its 15m, 4h and 1d candles. */
  market: MarketSeries;
}

const TIMEFRAME_KEYS = [
  ['15m', 'm15'],
  ['4h', 'h4'],
  ['1d', 'd1'],
] as const;

/**
 * Stylized facts of real markets by calendar year and of synthetic markets by 365-day chunk, on
 * 15m, 4h and 1d, with seasonal facts measured against the pooled real profiles; and the table.
 * @param realYears only calendar years in this inclusive range are used (default 2018–2023).
 */
export function realismFacts(
  real: LabelledMarket[],
  synthetic: LabelledMarket[],
  realYears: [number, number] = [2018, 2023],
): {
  real: Map<string, YearlyFacts[]>;
  synthetic: Map<string, YearlyFacts[]>;
  table: RealismTable;
} {
  const realMap = new Map<string, YearlyFacts[]>();
  const synMap = new Map<string, YearlyFacts[]>();
  for (const [tf, key] of TIMEFRAME_KEYS) {
    const realParts: { label: string; candles: Candles }[] = [];
    for (const r of real)
      for (const y of splitByYear(r.market[key]))
        if (y.year >= realYears[0] && y.year <= realYears[1])
          realParts.push({ label: `${r.label} ${y.year}`, candles: y.candles });
    const reference = meanProfiles(realParts.map((p) => seasonalProfiles(p.candles)));
    realMap.set(
      tf,
      realParts.map((p) => ({ label: p.label, facts: stylizedFacts(p.candles, reference) })),
    );
    const synParts: YearlyFacts[] = [];
    for (const s of synthetic)
      splitByDays(s.market[key], 365).forEach((c, k) =>
        synParts.push({ label: `${s.label} #${k + 1}`, facts: stylizedFacts(c, reference) }),
      );
    synMap.set(tf, synParts);
  }
  return { real: realMap, synthetic: synMap, table: realismTable(realMap, synMap) };
}

/** Where a real market stood at a time: the start state a synthetic continuation is given. */
export interface MarketState {
  /** Close of the last 15m candle that opened before `atMs` (quote currency). */
  price: number;
  /** RMS of the 15m log returns over the trailing days before `atMs` (gaps skipped). */
  volatility15m: number;
}

/**
 * The last close and the trailing realised volatility of 15m candles before `atMs`: only
 * candles that opened before `atMs` are read (information available at that time).
 * @throws {DataValidationError} when fewer than 96 returns fall in the trailing range.
 */
export function marketStateAt(m15: Candles, atMs: number, trailingDays = 30): MarketState {
  const before = sliceByTime(
    m15,
    atMs - trailingDays * TIMEFRAME_MS['1d'] - TIMEFRAME_MS['15m'],
    atMs,
  );
  const g = toGrid(before);
  let ss = 0;
  let n = 0;
  for (let i = 1; i < g.logReturn.length; i++) {
    const r = g.logReturn[i];
    if (Number.isFinite(r)) {
      ss += r * r;
      n++;
    }
  }
  if (n < 96)
    throw new DataValidationError({
      source: m15.symbol,
      reason: `only ${n} 15m returns in the ${trailingDays} days before ${new Date(atMs).toISOString()}`,
    });
  return { price: before.close[before.close.length - 1], volatility15m: Math.sqrt(ss / n) };
}

/** Windows of `market` whose bars lie in [fromMs, toMs) (all of it when omitted, after a warm-up for the 1d context). */
export function marketWindows(
  market: MarketSeries,
  options: Partial<WindowOptions> = {},
  fromMs?: number,
  toMs?: number,
): WindowSet {
  const o = { ...DEFAULT_WINDOWS, ...options };
  const first = market.m15.openTime[0];
  const last = market.m15.openTime[market.m15.openTime.length - 1] + TIMEFRAME_MS['15m'];
  return extractWindowFeatures(
    market,
    fromMs ?? first + (o.context1d + 1) * TIMEFRAME_MS['1d'],
    toMs ?? last,
    o,
  );
}

/**
 * The calendar years a calibration was fitted on (`params.fittedOn`, inclusive), or undefined when
 * the parameters carry no fit range (hand-made parameters).
 */
export function calibrationYearsOf(
  params: Pick<BaseProcessParams, 'fittedOn'>,
): [number, number] | undefined {
  const from = Number(params.fittedOn.from.slice(0, 4));
  const to = Number(params.fittedOn.to.slice(0, 4));
  return from >= 1970 && to >= from ? [from, to] : undefined;
}

/** Options of `runRealism`. */
export interface RunRealismOptions {
  /** Real years whose values span the ranges (inclusive). */
  realYears: [number, number];
  /** Real windows scored against, and the control year. */
  scoreYear: number;
  /**
   * Year of the scoring market whose windows are scored against `scoreYear` as the real-vs-real
   * control.
   */
  controlYear: number;
  /** Window options (defaults `DEFAULT_WINDOWS`). */
  windows: Partial<WindowOptions>;
  /**
   * Options of `discriminativeScore` (defaults `DEFAULT_DISCRIMINATIVE`; its seed is replaced by
   * `seed`).
   */
  discriminative: Partial<DiscriminativeOptions>;
  /** Also score the reference processes (Gaussian walk, GARCH-t, shuffled real) and the levels variant. */
  strengthChecks: boolean;
  /** Also score every other real year against the score year (context for the control). */
  yearControls: boolean;
  /**
   * With `yearControls`: the years the calibration was fitted on (inclusive). Their real windows,
   * pooled, are also scored against the score year: what a perfect copy of the calibration data
   * would score (optional).
   */
  calibrationYears?: [number, number];
  /** Microstructure of the reference processes' candles. */
  microstructure: BaseProcessParams['microstructure'];
  /** Seed of the scores and the reference processes. */
  seed: number;
  /** Called with a short description before each expensive step. */
  onStep?: (what: string) => void;
}

/**
 * Runs the whole realism measurement: the stylized-facts table of `synthetic` against the yearly
 * ranges of `real`, and the discriminative scores against the score year of `scoring` (the first
 * real market by default): the real-vs-real control first, then each synthetic market, then
 * (optionally) the reference processes and the other real years.
 */
export function runRealism(
  real: LabelledMarket[],
  synthetic: LabelledMarket[],
  scoring: LabelledMarket,
  options: RunRealismOptions,
  title = 'Realism of synthetic markets',
): RealismReport {
  const step = options.onStep ?? ((): void => undefined);
  const Y = (y: number): number => Date.UTC(y, 0, 1);
  const w = options.windows;
  const d = { ...options.discriminative, seed: options.seed };
  step('windows');
  const scoreWindows = marketWindows(
    scoring.market,
    w,
    Y(options.scoreYear),
    Y(options.scoreYear + 1),
  );
  const controlWindows = marketWindows(
    scoring.market,
    w,
    Y(options.controlYear),
    Y(options.controlYear + 1),
  );
  checkRealismInputs(real, synthetic, scoring, options, scoreWindows.rows, controlWindows.rows);
  step('stylized facts');
  const facts = realismFacts(real, synthetic, options.realYears);
  const scores: NamedScore[] = [];
  const score = (name: string, other: WindowSet): void => {
    step(name);
    scores.push({ name, result: discriminativeScore(scoreWindows, other, d) });
  };
  score(`control: ${scoring.label} ${options.controlYear} vs ${options.scoreYear}`, controlWindows);
  const synWindows = synthetic.map((s) => marketWindows(s.market, w));
  const pooled = poolWindows(synWindows);
  score(
    `synthetic (${synthetic.map((s) => s.label).join(', ')}) vs ${scoring.label} ${options.scoreYear}`,
    pooled,
  );
  if (options.strengthChecks) {
    const year = sliceByTime(scoring.market.m15, Y(options.scoreYear), Y(options.scoreYear + 1));
    const g = toGrid(year);
    const lv = Array.from(g.volume, (v) => (v > 0 ? Math.log(v) : NaN));
    const lvm = moments(lv);
    const ref: ReferenceProcessOptions = {
      seed: options.seed + 17,
      days: 365 + 40,
      startTimeMs: Y(options.scoreYear + 1),
      sigma15m: moments(g.logReturn).std,
      logVolumeMean: lvm.mean,
      logVolumeStd: lvm.std,
      initialPrice: year.close[0],
      microstructure: options.microstructure,
      symbol: scoring.market.m15.symbol,
    };
    score(
      `Gaussian random walk vs ${scoring.label} ${options.scoreYear}`,
      marketWindows(gaussianWalkMarket(ref), w),
    );
    score(
      `GARCH(1,1)-t walk vs ${scoring.label} ${options.scoreYear}`,
      marketWindows(garchMarket(ref), w),
    );
    const shuffleFrom =
      Y(options.scoreYear) - (w.context1d ?? DEFAULT_WINDOWS.context1d) * 2 * TIMEFRAME_MS['1d'];
    score(
      `${scoring.label} ${options.scoreYear} shuffled in time vs ${scoring.label} ${options.scoreYear}`,
      marketWindows(
        shuffledMarket(
          sliceByTime(scoring.market.m15, shuffleFrom, Y(options.scoreYear + 1)),
          options.seed + 29,
        ),
        w,
      ),
    );
    const levels = { ...w, levels: true };
    const scoreLevels = marketWindows(
      scoring.market,
      levels,
      Y(options.scoreYear),
      Y(options.scoreYear + 1),
    );
    step('levels');
    scores.push({
      name: `with volatility levels: control ${options.controlYear} vs ${options.scoreYear}`,
      result: discriminativeScore(
        scoreLevels,
        marketWindows(scoring.market, levels, Y(options.controlYear), Y(options.controlYear + 1)),
        d,
      ),
    });
    scores.push({
      name: `with volatility levels: synthetic vs ${options.scoreYear}`,
      result: discriminativeScore(
        scoreLevels,
        poolWindows(synthetic.map((s) => marketWindows(s.market, levels))),
        d,
      ),
    });
  }
  if (options.yearControls) {
    for (let y = options.realYears[0]; y <= options.realYears[1]; y++) {
      if (y === options.scoreYear || y === options.controlYear) continue;
      const other = marketWindows(scoring.market, w, Y(y), Y(y + 1));
      if (other.rows >= 4 * (d.folds ?? DEFAULT_DISCRIMINATIVE.folds))
        score(`${scoring.label} ${y} vs ${options.scoreYear}`, other);
    }
    const fit = options.calibrationYears;
    if (fit)
      score(
        `calibration data itself: ${scoring.label} ${fit[0]}-${fit[1]} pooled vs ${options.scoreYear}`,
        marketWindows(scoring.market, w, Y(fit[0]), Y(fit[1] + 1)),
      );
  }
  return { title, table: facts.table, scores, real: facts.real, synthetic: facts.synthetic };
}

/** `YYYY-MM-DD` of a UTC time. */
function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The span of a 15m series, e.g. `BTC 2023-07-01..2023-12-31 (184 days)`. */
function spanOf(m: LabelledMarket): string {
  const t = m.market.m15.openTime;
  if (t.length === 0) return `${m.label} no candles`;
  const days = Math.round((t[t.length - 1] + TIMEFRAME_MS['15m'] - t[0]) / TIMEFRAME_MS['1d']);
  return `${m.label} ${isoDay(t[0])}..${isoDay(t[t.length - 1])} (${days} days)`;
}

/**
 * Fails fast, in one line, when the inputs cannot give every part of the measurement: a real
 * calendar year in `realYears` with >= 300 days on each timeframe (the ranges of the table), at
 * least 2 x folds windows in the score year and in the control year of `scoring`, and synthetic
 * markets of at least 365 days (their yearly facts).
 * @throws {DataValidationError} saying what is needed and what the inputs hold.
 */
function checkRealismInputs(
  real: LabelledMarket[],
  synthetic: LabelledMarket[],
  scoring: LabelledMarket,
  options: RunRealismOptions,
  scoreRows: number,
  controlRows: number,
): void {
  const [y0, y1] = options.realYears;
  const needs: string[] = [];
  const short = TIMEFRAME_KEYS.filter(
    ([, key]) =>
      !real.some((r) => splitByYear(r.market[key]).some((y) => y.year >= y0 && y.year <= y1)),
  ).map(([tf]) => tf);
  if (short.length > 0)
    needs.push(
      `real ${short.join('/')} candles of >= 300 days in one calendar year of ${y0}-${y1}`,
    );
  const minRows = 2 * (options.discriminative.folds ?? DEFAULT_DISCRIMINATIVE.folds);
  const context = options.windows.context1d ?? DEFAULT_WINDOWS.context1d;
  for (const [what, year, rows] of [
    ['score year', options.scoreYear, scoreRows],
    ['control year', options.controlYear, controlRows],
  ] as const)
    if (rows < minRows)
      needs.push(
        `${minRows} windows of ${scoring.label} 15m candles in ${year} (the ${what}; each with ${context} days of candles before it), got ${rows}`,
      );
  if (synthetic.some((s) => splitByDays(s.market.m15, 365).length === 0))
    needs.push('synthetic markets of at least 365 days');
  if (needs.length === 0) return;
  throw new DataValidationError(
    {
      source: 'realism',
      reason: `needs ${needs.join('; ')}; got real ${real.map(spanOf).join(', ')} and synthetic ${synthetic.map(spanOf).join(', ')}`,
    },
    {
      hint: 'give real candles that cover those years (e.g. the shared data folder), or change synthetic.realism.realYears / scoreYear / controlYear',
    },
  );
}

/**
 * Concatenates window sets (same statistics) into one; end times of each later set are shifted
 * past the previous one so that the time blocks of the cross-validation stay contiguous per set.
 */
export function poolWindows(sets: WindowSet[]): WindowSet {
  const names = sets[0].names;
  const rows = sets.reduce((s, w) => s + w.rows, 0);
  const x = new Float64Array(rows * names.length);
  const endTimes = new Float64Array(rows);
  let at = 0;
  let shift = 0;
  let lastEnd = -Infinity;
  for (const s of sets) {
    if (s.rows === 0) continue;
    x.set(s.x, at * names.length);
    shift = Math.max(shift, lastEnd - s.endTimes[0] + 366 * TIMEFRAME_MS['1d']);
    for (let i = 0; i < s.rows; i++)
      endTimes[at + i] = s.endTimes[i] + (lastEnd === -Infinity ? 0 : shift);
    lastEnd = endTimes[at + s.rows - 1];
    at += s.rows;
  }
  return { x, rows, names, endTimes };
}

/** ccxt-style symbol from a file stem such as `BTCUSDT` (quote USDT, USDC, BUSD, USD, BTC, ETH). */
function symbolFromStem(stem: string): string {
  for (const q of ['USDT', 'USDC', 'BUSD', 'USD', 'BTC', 'ETH'])
    if (stem.length > q.length && stem.endsWith(q)) return `${stem.slice(0, -q.length)}/${q}`;
  return stem;
}

async function readRepaired(path: string, symbol: string, tf: Timeframe): Promise<Candles> {
  const { candles } = await readCandlesCsv(path, { symbol, timeframe: tf });
  const { candles: repaired, actions } = repairCandles(candles);
  if (actions.length > 0)
    logger.info({ file: path, dropped: actions.length }, 'dropped off-grid or duplicate rows');
  validateCandles(repaired, { source: path });
  return repaired;
}

/**
 * Reads a market from its 15m candle file (`...-15m.csv` or `.csv.gz`): the 4h and 1d files
 * beside it (same name with `-4h` / `-1d`) when present, else aggregated from the 15m. Exact
 * duplicate and off-grid rows are dropped (logged).
 * @throws {DataValidationError} for unreadable or invalid candles, naming the file.
 */
export async function readMarket(path15m: string): Promise<LabelledMarket> {
  const name = basename(path15m);
  const m = /^(?:.*-)?([A-Za-z0-9]+)-15m\.csv(\.gz)?$/.exec(name);
  const stem = m === null ? name : m[1].toUpperCase();
  const symbol = symbolFromStem(stem);
  const m15 = await readRepaired(path15m, symbol, '15m');
  const sibling = (tf: Timeframe): string => path15m.replace(/-15m\.csv(\.gz)?$/, `-${tf}.csv$1`);
  const h4 = existsSync(sibling('4h'))
    ? await readRepaired(sibling('4h'), symbol, '4h')
    : resample(m15, '4h').candles;
  const d1 = existsSync(sibling('1d'))
    ? await readRepaired(sibling('1d'), symbol, '1d')
    : resample(m15, '1d').candles;
  return { label: symbol.split('/')[0], market: { m15, h4, d1 } };
}

/**
 * Reads markets from a 15m file or from every `*-15m.csv(.gz)` file of a directory (whose name
 * starts with `prefix` when given), sorted by file name.
 * @throws {DataValidationError} when nothing matches.
 */
export async function readMarkets(fileOrDir: string, prefix = ''): Promise<LabelledMarket[]> {
  if (!existsSync(fileOrDir))
    throw new DataValidationError({ source: fileOrDir, reason: 'no such file or directory' });
  const files = statSync(fileOrDir).isDirectory()
    ? readdirSync(fileOrDir)
        .filter((f) => f.startsWith(prefix) && /-15m\.csv(\.gz)?$/.test(f))
        .sort()
        .map((f) => join(fileOrDir, f))
    : [fileOrDir];
  if (files.length === 0)
    throw new DataValidationError({
      source: fileOrDir,
      reason: `no ${prefix}*-15m.csv(.gz) candle file found`,
    });
  const out: LabelledMarket[] = [];
  for (const f of files) out.push(await readMarket(f));
  return out;
}
