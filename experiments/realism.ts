// Realism of the synthetic markets at full size: for the BTC and the ETH calibration (fitted on
// data up to 2021-12-31), six synthetic years each against the real BTC and ETH yearly values
// 2018-2023 (stylized-facts table), and the discriminative score against real 2023 windows beside
// its real-vs-real control (2022 vs 2023), the classifier-strength checks (Gaussian walk,
// GARCH(1,1)-t, shuffled BTC) and, for context, every other real year against 2023. Writes
// runs/<id>/ (markdown, JSON, HTML with plots) and its section of docs/results.md.

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { generateBaseMarket } from '../src/synthetic-data/base-process.js';
import { sliceByTime } from '../src/data-processing/candles.js';
import { loadCalibration } from '../src/synthetic-data/calibration.js';
import { median, toGrid } from '../src/synthetic-data/realism-stats.js';
import { type WindowSet } from '../src/synthetic-data/realism-windows.js';
import { discriminativeScore } from '../src/synthetic-data/realism-discriminator.js';
import { realismTableMarkdown } from '../src/synthetic-data/realism-facts.js';
import {
  type NamedScore,
  type RealismReport,
  realismReportHtml,
  realismReportMarkdown,
  scoresMarkdown,
} from '../src/synthetic-data/realism-report.js';
import {
  calibrationYearsOf,
  type LabelledMarket,
  marketStateAt,
  marketWindows,
  poolWindows,
  readMarkets,
  runRealism,
} from '../src/synthetic-data/realism.js';
import { defaultConfig } from '../src/utils/config.js';
import { RESULTS_FILE, signed, writeResultsSection } from './results-section.js';
import { laterCalibrations } from './later-calibrations.js';
import { createRun } from '../src/utils/runs.js';
import { writeFileAtomicSync } from '../src/utils/fs.js';
import { setLogLevel } from '../src/utils/logger.js';
import { realismSettings, realismWindows } from '../src/synthetic-data/realism-settings.js';

setLogLevel('warn');
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DATA = process.env.CTM_SHARED_DATA ?? join(ROOT, '..', 'shared', 'data');

const config = defaultConfig();
const r = config.synthetic.realism;
const t0 = Date.now();
const log = (msg: string): void => {
  process.stderr.write(`[realism ${((Date.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`);
};

const real = await readMarkets(DATA, 'binance-');
const bySymbol = new Map(real.map((m) => [m.label, m]));
const run = createRun({
  kind: 'experiment-realism',
  config,
  commandLine: ['experiments/realism.ts'],
});

const DAY_MS = 86_400_000;
/** Days each synthetic path runs before the year whose windows are scored (their 4h/1d context). */
const LEAD_DAYS = 40;
const reports: { calibration: string; report: RealismReport }[] = [];
const starts: { calibration: string; price: number; volatility15m: number; startMs: number }[] = [];
/** The last calibration year: the in-sample check scores the synthetic data against it. */
const IN_SAMPLE_YEAR = 2021;
const inSample: { calibration: string; scores: NamedScore[] }[] = [];
const diagnostics: { calibration: string; scores: NamedScore[] }[] = [];
/** Medians of the QUARTERLY statistics of the (start-conditioned) synthetic windows. */
const syntheticQuarterly = new Map<string, number[]>();
/** Scores of calibrations that see the control year (experiments/calibrations/). */
const equalInformation: {
  calibration: string;
  shown: string;
  fittedOn: string;
  /** Last calendar year of the fit: the year of the in-sample check. */
  lastYear: number;
  /** Number of microstructure regimes of the calibration (1 = stationary). */
  regimes: number;
  score: NamedScore;
  /** The control of the last fitted year, then the synthetic data against that year. */
  inSample: NamedScore[];
}[] = [];
/** Window statistics of candle microstructure (price discreteness and the exchange's matching). */
const MICROSTRUCTURE = ['gap.zero', 'gap.abs.mean', 'wick.upper.zero', 'wick.lower.zero', 'doji'];

/** Window statistics shown by quarter: microstructure and the volume-range coupling. */
const QUARTERLY = [
  'gap.abs.mean',
  'gap.zero',
  'wick.upper.zero',
  'wick.upper.median',
  'rangeBody.logMedian',
  'corr.lv.range',
];

/** A copy of a window set with the microstructure statistics set to 0 (a diagnostic). */
function withoutMicrostructure(set: WindowSet): WindowSet {
  const x = set.x.slice();
  const cols = set.names.length;
  for (const name of MICROSTRUCTURE) {
    const j = set.names.indexOf(name);
    for (let i = 0; i < set.rows; i++) x[i * cols + j] = 0;
  }
  return { ...set, x };
}
for (const name of ['btc', 'eth']) {
  const params = loadCalibration(name);
  const scoring = bySymbol.get(name.toUpperCase()) as LabelledMarket;
  // Independent synthetic years, each with LEAD_DAYS before it for the windows' 1d context. With
  // conditionOnStart they start where the real market stood LEAD_DAYS before the score year (its
  // last close and trailing realised volatility: information available then), on the same
  // calendar; else at the calibration's reference price with a stationary volatility draw.
  const startMs = Date.UTC(r.scoreYear, 0, 1) - LEAD_DAYS * DAY_MS;
  const state = marketStateAt(scoring.market.m15, startMs, r.trailingDays);
  const generate = (conditioned: boolean, k: number, p = params): LabelledMarket => ({
    label: `${name} seed ${1000 + k}`,
    market: generateBaseMarket(
      p,
      conditioned
        ? {
            seed: 1000 + k,
            days: 365 + LEAD_DAYS,
            startTimeMs: startMs,
            initialPrice: state.price,
            initialVolatility15m: state.volatility15m,
          }
        : { seed: 1000 + k, days: 365 + LEAD_DAYS, startTimeMs: Date.UTC(2024, 0, 1) },
    ),
  });
  const synthetic: LabelledMarket[] = [];
  for (let k = 0; k < r.syntheticYears; k++) {
    log(`${name}: generating synthetic year ${k + 1}/${r.syntheticYears}`);
    synthetic.push(generate(r.conditionOnStart, k));
  }
  starts.push({ calibration: name, ...state, startMs });
  const report = runRealism(
    real,
    synthetic,
    scoring,
    {
      ...realismSettings(config),
      strengthChecks: name === 'btc',
      yearControls: true,
      calibrationYears: calibrationYearsOf(params),
      microstructure: params.microstructure,
      seed: config.seed,
      onStep: (what) => log(`${name}: ${what}`),
    },
    `Realism of the ${name.toUpperCase()} calibration`,
  );
  // The same calibration with the other start, scored the same way, for transparency; and an
  // in-sample check against the last calibration year (real windows the fit has seen), beside
  // its own real-vs-real control.
  log(`${name}: ${r.conditionOnStart ? 'unconditioned' : 'conditioned'} start`);
  const w = realismWindows(config);
  const d = { ...realismSettings(config).discriminative, seed: config.seed };
  const Y = (y: number): number => Date.UTC(y, 0, 1);
  const otherSet = Array.from({ length: r.syntheticYears }, (_, k) =>
    marketWindows(generate(!r.conditionOnStart, k).market, w),
  );
  const scoreWindows = marketWindows(scoring.market, w, Y(r.scoreYear), Y(r.scoreYear + 1));
  report.scores.splice(2, 0, {
    name: `synthetic, ${r.conditionOnStart ? 'unconditioned start (reference price, stationary volatility)' : `start conditioned on ${new Date(startMs).toISOString().slice(0, 10)}`} vs ${scoring.label} ${r.scoreYear}`,
    result: discriminativeScore(scoreWindows, poolWindows(otherSet), d),
  });
  const unconditioned = r.conditionOnStart
    ? poolWindows(otherSet)
    : poolWindows(synthetic.map((s) => marketWindows(s.market, w)));
  const fitYear = IN_SAMPLE_YEAR;
  const fitWindows = marketWindows(scoring.market, w, Y(fitYear), Y(fitYear + 1));
  log(`${name}: in-sample check against ${fitYear}`);
  inSample.push({
    calibration: name,
    scores: [
      {
        name: `in-sample control: ${scoring.label} ${fitYear - 1} vs ${fitYear}`,
        result: discriminativeScore(
          fitWindows,
          marketWindows(scoring.market, w, Y(fitYear - 1), Y(fitYear)),
          d,
        ),
      },
      {
        name: `in-sample: synthetic (unconditioned start) vs ${scoring.label} ${fitYear}`,
        result: discriminativeScore(fitWindows, unconditioned, d),
      },
    ],
  });
  // Diagnostic, not the protocol: the same two comparisons with the candle-microstructure
  // statistics (close-to-open gaps, bars without a wick, doji) held constant on both sides.
  const control = marketWindows(scoring.market, w, Y(r.controlYear), Y(r.controlYear + 1));
  const conditioned = r.conditionOnStart
    ? poolWindows(synthetic.map((x) => marketWindows(x.market, w)))
    : poolWindows(otherSet);
  syntheticQuarterly.set(name, columnMedians(conditioned, QUARTERLY));
  log(`${name}: diagnostic without microstructure statistics`);
  diagnostics.push({
    calibration: name,
    scores: [
      {
        name: `diagnostic, microstructure statistics held constant: control ${scoring.label} ${r.controlYear} vs ${r.scoreYear}`,
        result: discriminativeScore(
          withoutMicrostructure(scoreWindows),
          withoutMicrostructure(control),
          d,
        ),
      },
      {
        name: `diagnostic, microstructure statistics held constant: synthetic vs ${scoring.label} ${r.scoreYear}`,
        result: discriminativeScore(
          withoutMicrostructure(scoreWindows),
          withoutMicrostructure(conditioned),
          d,
        ),
      },
    ],
  });
  // Not the protocol: calibrations that see the control year too (as the control itself does),
  // scored against the score year the same way.
  // In-sample controls (year before vs year), once per year: calibrations ending in the same
  // year share theirs.
  const controls = new Map<number, NamedScore>();
  for (const later of laterCalibrations(name, r.controlYear)) {
    log(`${name}: calibration ${later.fittedOn}`);
    const years = Array.from({ length: r.syntheticYears }, (_, k) =>
      marketWindows(generate(r.conditionOnStart, k, later.params).market, w),
    );
    // And in-sample, against the last year it was fitted on, beside that year's own control.
    const lastYear = Number(later.params.fittedOn.to.slice(0, 4));
    const last = marketWindows(scoring.market, w, Y(lastYear), Y(lastYear + 1));
    if (!controls.has(lastYear))
      controls.set(lastYear, {
        name: `not the protocol, in-sample control: ${scoring.label} ${lastYear - 1} vs ${lastYear}`,
        result: discriminativeScore(
          last,
          marketWindows(scoring.market, w, Y(lastYear - 1), Y(lastYear)),
          d,
        ),
      });
    const free = Array.from({ length: r.syntheticYears }, (_, k) =>
      marketWindows(generate(false, k, later.params).market, w),
    );
    equalInformation.push({
      calibration: name,
      shown: later.shown,
      fittedOn: later.fittedOn,
      lastYear,
      regimes: later.params.microstructure.regimes?.length ?? 1,
      score: {
        name: `not the protocol: synthetic calibrated on ${later.fittedOn} vs ${scoring.label} ${r.scoreYear}`,
        result: discriminativeScore(scoreWindows, poolWindows(years), d),
      },
      inSample: [
        controls.get(lastYear) as NamedScore,
        {
          name: `not the protocol, in-sample: synthetic calibrated on ${later.fittedOn} (unconditioned start) vs ${scoring.label} ${lastYear}`,
          result: discriminativeScore(last, poolWindows(free), d),
        },
      ],
    });
  }
  reports.push({ calibration: name, report });
  writeFileAtomicSync(run.path(`realism-${name}.md`), realismReportMarkdown(report) + '\n');
  writeFileAtomicSync(run.path(`realism-${name}.html`), realismReportHtml(report));
  writeFileAtomicSync(
    run.path(`realism-${name}.json`),
    JSON.stringify({ table: report.table, scores: report.scores }, null, 1) + '\n',
  );
  run.addArtifact(`report-${name}`, `realism-${name}.html`);
}

/** Median of each named statistic over the windows of `set`. */
function columnMedians(set: WindowSet, names: string[]): number[] {
  return names.map((name) => {
    const j = set.names.indexOf(name);
    return median(Array.from({ length: set.rows }, (_, i) => set.x[i * set.names.length + j]));
  });
}

/**
 * Median of each QUARTERLY statistic over the windows ending in each quarter from `fromYear` to
 * the score year: when did the real market's microstructure change?
 */
function quarterlyStatistics(
  scoring: LabelledMarket,
  fromYear: number,
): { quarter: string; values: number[] }[] {
  const w = realismWindows(config);
  const out: { quarter: string; values: number[] }[] = [];
  for (let y = fromYear; y <= r.scoreYear; y++)
    for (let q = 0; q < 4; q++) {
      const set = marketWindows(
        scoring.market,
        w,
        Date.UTC(y, 3 * q, 1),
        Date.UTC(y, 3 * q + 3, 1),
      );
      out.push({
        quarter: `${y} Q${q + 1}`,
        values: columnMedians(set, QUARTERLY),
      });
    }
  return out;
}

/**
 * Do the 2018-2021 relations of candle microstructure to volatility and volume predict later
 * years? Per non-overlapping 256-bar 15m window: log RMS return, mean log quote volume, the
 * share of bar sides without a wick and the share of close-to-open gaps of 2 ticks or more;
 * logit(share) ~ 1 + log vol + log quote volume fitted on 2018-2021 windows, then the mean
 * prediction per year against the mean actual share.
 */
function microstructureExtrapolation(
  market: LabelledMarket,
  tick: number,
): { target: string; year: number; actual: number; predicted: number }[] {
  const c = market.market.m15;
  const g = toGrid(sliceByTime(c, Date.UTC(2018, 0, 1), Date.UTC(2024, 0, 1)));
  type Row = { year: number; x: number[]; wick: number; gap: number };
  const rows: Row[] = [];
  for (let e = 256; e < g.close.length; e += 256) {
    let complete = true;
    for (let k = e - 255; k <= e; k++) if (!Number.isFinite(g.close[k])) complete = false;
    if (!complete) continue;
    let ss = 0;
    let lqv = 0;
    let wick = 0;
    let gap = 0;
    for (let k = e - 254; k <= e; k++) {
      ss += Math.log(g.close[k] / g.close[k - 1]) ** 2;
      lqv += Math.log(g.volume[k] * g.close[k] + 1e-9) / 255;
      const top = Math.max(g.open[k], g.close[k]);
      const bottom = Math.min(g.open[k], g.close[k]);
      if (g.high[k] === top) wick += 0.5 / 255;
      if (g.low[k] === bottom) wick += 0.5 / 255;
      if (Math.abs(g.open[k] - g.close[k - 1]) >= 1.5 * tick) gap += 1 / 255;
    }
    rows.push({
      year: new Date(g.startTimeMs + e * g.stepMs).getUTCFullYear(),
      x: [1, 0.5 * Math.log(ss / 255), lqv],
      wick,
      gap,
    });
  }
  const logit = (p: number): number => Math.log((p + 0.005) / (1.005 - p));
  const inverse = (z: number): number => (Math.exp(z) * 1.005 - 0.005) / (1 + Math.exp(z));
  const out: { target: string; year: number; actual: number; predicted: number }[] = [];
  for (const [target, pick] of [
    ['bar sides without a wick', (q: Row): number => q.wick],
    ['gaps of 2+ ticks', (q: Row): number => q.gap],
  ] as const) {
    // Least squares by the normal equations (3 x 3, Gauss-Jordan).
    const a = [0, 1, 2].map(() => [0, 0, 0, 0]);
    for (const q of rows.filter((q) => q.year <= 2021))
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) a[i][j] += q.x[i] * q.x[j];
        a[i][3] += q.x[i] * logit(pick(q));
      }
    for (let i = 0; i < 3; i++)
      for (let r = 0; r < 3; r++)
        if (r !== i) {
          const f = a[r][i] / a[i][i];
          for (let j = i; j < 4; j++) a[r][j] -= f * a[i][j];
        }
    const beta = [0, 1, 2].map((i) => a[i][3] / a[i][i]);
    for (const year of [2021, 2022, 2023]) {
      const ys = rows.filter((q) => q.year === year);
      out.push({
        target,
        year,
        actual: ys.reduce((t, q) => t + pick(q), 0) / ys.length,
        predicted:
          ys.reduce((t, q) => t + inverse(q.x.reduce((z, v, i) => z + v * beta[i], 0)), 0) /
          ys.length,
      });
    }
  }
  return out;
}

function gapToControl(report: RealismReport): string {
  return signed(report.scores[1].result.accuracy.value - report.scores[0].result.accuracy.value);
}

/** The score of the calibration years' own real windows against the score year, if run. */
function calibrationDataScore(report: RealismReport): NamedScore | undefined {
  return report.scores.find((x) => x.name.startsWith('calibration data itself'));
}

const fmt = (v: number): string => v.toFixed(3);
const est = (e: { value: number; lo: number; hi: number }): string =>
  `**${fmt(e.value)}** [${fmt(e.lo)}, ${fmt(e.hi)}]`;
const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
const lines: string[] = [
  '## Realism of synthetic markets',
  '',
  `Generated by \`npm run experiments\` (experiments/realism.ts) on ${day(Date.now())}; run directory \`runs/${run.id}\` holds the full tables and the HTML report with plots. ` +
    `Calibrations: config/calibrations/{btc,eth}.json, fitted by \`ctm synth calibrate\` on Binance 15m candles 2018-01-01..2021-12-31 only (indirect inference on long-range targets, then ${config.synthetic.calibrate.windowRounds} rounds of fitting the shape parameters so that the quartiles of the discriminator's window statistics on 2018-2021 windows match; nothing is fitted to 2022-23). ` +
    `${r.syntheticYears} synthetic years per calibration (seeds 1000-${999 + r.syntheticYears}). ` +
    `Discriminator: histogram gradient-boosted trees (${r.gbt.rounds} rounds, depth ${r.gbt.depth}) on ${r.levels ? 'scale-free statistics plus volatility levels' : 'scale-free statistics'} of ${r.windowBars}-bar 15m windows (stride ${r.strideBars}) with ${r.context4h} closed 4h and ${r.context1d} closed 1d bars of context; ` +
    `${r.folds}-fold time-blocked cross-validation (windows overlapping the test block purged), 95% intervals from a bootstrap over ${r.clusterDays}-day clusters of windows (${r.bootstrap} resamples). Classes are balanced (chance = 0.5). Control and synthetic scores use the same statistics; none of them reads a price or volume level (prices enter as log returns and ratios to the window's own volatility, volume as log volume relative to the window).`,
  '',
  r.conditionOnStart
    ? `**Start conditioning** (information available before the scored period only): each synthetic path starts ${LEAD_DAYS} days before ${r.scoreYear}-01-01 (so that the 4h/1d context of the first scored window lies inside it) at the real market's last close and its trailing ${r.trailingDays}-day realised 15m volatility at that time, on the same calendar, then runs freely; the row "unconditioned start" scores the same calibration started at its reference price (the last 2021 close) with a stationary volatility draw.`
    : 'The synthetic years start at the calibration reference price with a stationary volatility draw (`synthetic.realism.conditionOnStart: false`).',
  '',
];
for (const { calibration, report } of reports) {
  const t = report.table;
  const st = starts.find((x) => x.calibration === calibration);
  lines.push(`### ${calibration.toUpperCase()} calibration`, '');
  lines.push(
    `- Stylized facts inside the range of the real yearly values (BTC and ETH, ${r.realYears[0]}-${r.realYears[1]}): **${t.rows.length - t.outside.length}/${t.rows.length} (${(100 * t.fractionInRange).toFixed(1)}%)** (goal >= 90%).`,
  );
  lines.push(
    `- Discriminative accuracy, synthetic vs ${report.scores[1].name.split(' vs ')[1]}: ${est(report.scores[1].result.accuracy)} vs control ${est(report.scores[0].result.accuracy)}: synthetic minus control ${gapToControl(report)} (the earlier goal, <= +0.05, is replaced by the recent-year protocol of the next section).`,
  );
  if (st !== undefined && r.conditionOnStart)
    lines.push(
      `- Start: ${day(st.startMs)}, close ${st.price}, trailing ${r.trailingDays}-day 15m volatility ${(1e4 * st.volatility15m).toFixed(1)} bp.`,
    );
  const ceiling = calibrationDataScore(report);
  if (ceiling !== undefined)
    lines.push(
      `- Ceiling of the protocol: the calibration data itself (${ceiling.name.split(': ')[1]}) scores ${est(ceiling.result.accuracy)}, ${signed(ceiling.result.accuracy.value - report.scores[0].result.accuracy.value)} over the control: a generator that reproduced its calibration years exactly would land there. Synthetic minus calibration data: ${signed(report.scores[1].result.accuracy.value - ceiling.result.accuracy.value)}.`,
    );
  const equal = equalInformation.filter((x) => x.calibration === calibration);
  for (const e of equal)
    lines.push(
      `- Not the protocol: the same generator calibrated on ${e.fittedOn} (${e.shown}), with information the control has, scores ${est(e.score.result.accuracy)}: ${signed(e.score.result.accuracy.value - report.scores[0].result.accuracy.value)} over the control; in-sample, ${calibration.toUpperCase()} ${e.lastYear}: ${est(e.inSample[1].result.accuracy)} beside its control ${calibration.toUpperCase()} ${e.lastYear - 1} vs ${e.lastYear} ${est(e.inSample[0].result.accuracy)}.`,
    );
  const ins = inSample.find((x) => x.calibration === calibration);
  if (ins !== undefined)
    lines.push(
      `- In-sample check (the last calibration year, seen by the fit): synthetic vs ${IN_SAMPLE_YEAR} ${est(ins.scores[1].result.accuracy)} beside its control ${IN_SAMPLE_YEAR - 1} vs ${IN_SAMPLE_YEAR} ${est(ins.scores[0].result.accuracy)}.`,
    );
  const diag = diagnostics.find((x) => x.calibration === calibration);
  if (diag !== undefined)
    lines.push(
      `- Diagnostic (not the protocol): with the microstructure statistics (${MICROSTRUCTURE.join(', ')}) held constant on both sides, synthetic ${est(diag.scores[1].result.accuracy)} vs control ${est(diag.scores[0].result.accuracy)}.`,
    );
  lines.push('');
  lines.push(
    scoresMarkdown([
      ...report.scores,
      ...equal.map((e) => e.score),
      // Each in-sample control once (calibrations ending in the same year share it).
      ...[...new Map(equal.map((e) => [e.inSample[0].name, e.inSample[0]])).values()],
      ...equal.map((e) => e.inSample[1]),
      ...(ins?.scores ?? []),
      ...(diag?.scores ?? []),
    ]),
    '',
  );
  const scoring = bySymbol.get(calibration.toUpperCase()) as LabelledMarket;
  const extrapolation = microstructureExtrapolation(
    scoring,
    loadCalibration(calibration).microstructure.tickSize,
  );
  lines.push(
    `Microstructure against volatility and volume, fitted on ${calibration.toUpperCase()} 2018-2021 windows (logit of the share ~ log 15m volatility + log quote volume per 256-bar window), predicting later years from their own volatility and volume:`,
    '',
    '| share | year | actual | predicted from 2018-2021 |',
    '|---|---:|---:|---:|',
    ...extrapolation.map(
      (e) => `| ${e.target} | ${e.year} | ${e.actual.toFixed(3)} | ${e.predicted.toFixed(3)} |`,
    ),
    '',
  );
  lines.push(
    `Window statistics by quarter (median over the ${scoring.label} windows ending in the quarter; the synthetic median beside them):`,
    '',
    `| quarter | ${QUARTERLY.join(' | ')} |`,
    `|---|${QUARTERLY.map(() => '---:').join('|')}|`,
    ...quarterlyStatistics(scoring, IN_SAMPLE_YEAR).map(
      (q) => `| ${q.quarter} | ${q.values.map((v) => v.toPrecision(3)).join(' | ')} |`,
    ),
    `| synthetic | ${(syntheticQuarterly.get(calibration) ?? []).map((v) => v.toPrecision(3)).join(' | ')} |`,
    '',
  );
  if (t.outside.length > 0) {
    lines.push('Facts outside the real range:', '');
    for (const o of t.outside)
      lines.push(
        `- ${o.timeframe} ${o.fact}: synthetic ${o.synthetic.toPrecision(3)} vs real [${o.realMin.toPrecision(3)}, ${o.realMax.toPrecision(3)}], outside by ${o.outsideBy.toPrecision(2)} (${(100 * o.outsideRelative).toFixed(0)}% of the range width)`,
      );
    lines.push('');
  }
  lines.push('<details><summary>Full stylized-facts table</summary>', '');
  lines.push(realismTableMarkdown(t), '</details>', '');
}
const ceilingText = reports
  .map(({ calibration, report }) => {
    const c = calibrationDataScore(report);
    const control = report.scores[0].result.accuracy.value;
    return c === undefined
      ? ''
      : `${calibration.toUpperCase()} ${fmt(c.result.accuracy.value)} (${signed(c.result.accuracy.value - control)} over the control; the synthetic data ${signed(report.scores[1].result.accuracy.value - c.result.accuracy.value)} beyond it)`;
  })
  .filter((x) => x !== '')
  .join(', ');
const laterText = equalInformation
  .map((e) => `${e.calibration.toUpperCase()} ${e.fittedOn} ${fmt(e.score.result.accuracy.value)}`)
  .join(', ');
/** Range of (score - control) of the calibrations under experiments/calibrations/, in words. */
function laterGaps(): string {
  const gaps = equalInformation.map((e) => {
    const report = reports.find((x) => x.calibration === e.calibration)?.report;
    return e.score.result.accuracy.value - (report?.scores[0].result.accuracy.value ?? NaN);
  });
  return `${signed(Math.min(...gaps))} to ${signed(Math.max(...gaps))}`;
}

/** In-sample scores of the calibrations fitted on the control year alone, in words. */
function controlYearFits(): string {
  const fits = equalInformation.filter((e) => e.fittedOn.startsWith(String(r.controlYear)));
  if (fits.length === 0) return '';
  const below = fits.every(
    (e) => e.inSample[1].result.accuracy.value < e.inSample[0].result.accuracy.value,
  );
  const regimes = fits.map((e) => `${e.calibration.toUpperCase()} ${e.regimes}`).join(', ');
  return (
    `In-sample, the calibrations fitted on ${r.controlYear} alone (microstructure regimes found in that year: ${regimes}) score against ${r.controlYear} ` +
    fits
      .map(
        (e) =>
          `${e.calibration.toUpperCase()} ${fmt(e.inSample[1].result.accuracy.value)} (control ${fmt(e.inSample[0].result.accuracy.value)})`,
      )
      .join(', ') +
    (below
      ? ': the generator is harder to tell from the year it was fitted on than the adjacent real year is. '
      : '. ')
  );
}

lines.push(
  '### What limits the score',
  '',
  `The earlier goal of this protocol (synthetic no more than 0.05 above the control; replaced by the recent-year protocol, next section) is not met, and under this protocol a generator faithful to its calibration years cannot meet it (only one that guessed regimes first seen in 2022-23 could): the calibration data itself, real windows of the calibration years, is told from ${r.scoreYear} at ${ceilingText}. A generator that reproduced its calibration years exactly would land there, not at the control (its time-blocked folds hold out roughly one calibration year each, which if anything flatters it). ` +
    `The quarterly tables show why: the control year and ${r.scoreYear} share regimes that the calibration years never had. From 2022 Q1 the volume-range correlation of both symbols sits at 0.80-0.87 (0.75-0.78 in every 2021 quarter); BTC's close-to-open gaps shrink by one to two orders of magnitude in 2022 Q2 and again from 2023 Q2, with the zero-fee period (2022 Q3 to 2023 Q1) between; from 2023 Q2 bar sides without a wick are up to three times as common as in any earlier quarter, with shorter upper wicks and lower range/body (both symbols). ` +
    `The microstructure tables show that the 2018-2021 relations of wickless bars and multi-tick gaps to volatility and volume do not predict these levels (for ETH gaps by two orders of magnitude). ` +
    (laterText === ''
      ? ''
      : `Given the control's own information (calibrations fitted through ${r.controlYear}, rows marked "not the protocol": ${laterText}) the synthetic data is still ${laterGaps()} over the control: the April-December ${r.scoreYear} regime is new in ${r.scoreYear} itself. ${controlYearFits()}`) +
    `Conditioning on the start state (price, trailing volatility) changes the score by less than its interval. ` +
    `In-sample, where no such shift exists, the synthetic data is scored against ${IN_SAMPLE_YEAR} at ${inSample.map((x) => `${x.calibration.toUpperCase()} ${fmt(x.scores[1].result.accuracy.value)} (control ${fmt(x.scores[0].result.accuracy.value)})`).join(', ')}.`,
  '',
);
writeResultsSection('realism', lines.join('\n'));
run.writeMetrics(
  reports.map(({ calibration, report }) => ({
    calibration,
    fractionInRange: report.table.fractionInRange,
    scores: report.scores.map((s) => ({
      name: s.name,
      accuracy: s.result.accuracy,
      auc: s.result.auc,
    })),
  })),
);
log(`done: ${RESULTS_FILE}`);
