// Chart patterns at full size: the markets a default dataset is cut from (config `dataset`, BTC
// calibration) are regenerated and measured. (1) An independent rule-based detector (the tests'
// test/synthetic-data/pattern-detector.ts, thresholds fixed there) on each planted pattern's
// primary window: hit rate per pattern type and timeframe, and its false-positive rate on windows
// where no pattern completes. (2) False signals: how often planted patterns resolve against their
// textbook direction (natural failures and adversarial look-alikes), and the false-signal rates of
// classic indicator signals on synthetic vs real candles. (3) Realism survives the patterns: the
// realism issue's discriminative score of pattern-bearing windows against real BTC 2023, beside
// the real-vs-real control (2022 vs 2023) and the base process without patterns.
// Writes runs/<id>/ and the `patterns` section of docs/results.md.

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  TIMEFRAME_MS,
  sliceByTime,
  type Candles,
  type Timeframe,
} from '../src/data-processing/candles.js';
import { generateBaseMarket } from '../src/synthetic-data/base-process.js';
import { loadCalibration } from '../src/synthetic-data/calibration.js';
import {
  resolveDatasetSettings,
  seriesMarket,
  type DatasetSettings,
} from '../src/synthetic-data/dataset-builder.js';
import {
  measureFalseSignals,
  type FalseSignalReport,
} from '../src/synthetic-data/indicator-engineering.js';
import { PATTERN_TYPES } from '../src/synthetic-data/pattern-generator.js';
import {
  extractWindowFeatures,
  type MarketSeries,
  type WindowSet,
} from '../src/synthetic-data/realism-windows.js';
import {
  type DiscriminativeResult,
  discriminativeScore,
} from '../src/synthetic-data/realism-discriminator.js';
import { scoresMarkdown } from '../src/synthetic-data/realism-report.js';
import {
  calibrationYearsOf,
  marketWindows,
  poolWindows,
  readMarkets,
} from '../src/synthetic-data/realism.js';
import { realismWindows } from '../src/synthetic-data/realism-settings.js';
import { defaultConfig } from '../src/utils/config.js';
import { RESULTS_FILE, signed, writeResultsSection } from './results-section.js';
import { laterCalibrations } from './later-calibrations.js';
import { createRun } from '../src/utils/runs.js';
import { writeFileAtomicSync } from '../src/utils/fs.js';
import { setLogLevel } from '../src/utils/logger.js';
import { Rng } from '../src/utils/random.js';
import {
  detect,
  detectAll,
  DETECTABLE,
  type Detectable,
} from '../test/synthetic-data/pattern-detector.js';

setLogLevel('warn');
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DATA = process.env.CTM_SHARED_DATA ?? join(ROOT, '..', 'shared', 'data');
const MARKETS = Number(process.env.CTM_PATTERN_MARKETS ?? 100);
const DAY = 86_400_000;
const M15 = 900_000;

const config = defaultConfig();
const t0 = Date.now();
const log = (msg: string): void => {
  process.stderr.write(`[patterns ${((Date.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`);
};
const run = createRun({
  kind: 'experiment-patterns',
  config,
  commandLine: ['experiments/patterns.ts'],
});
const settings = resolveDatasetSettings({}, { config, seed: config.seed });
const windowsOpt = realismWindows(config);

// ---------------------------------------------------------------------------------------------
// Markets, detection, failures, windows.

type Count = { n: number; hit: number };
const byType = new Map<string, Count>();
const byTf = new Map<string, Count>();
const fp = new Map<string, number>();
let noneWindows = 0;
const adversarial = { n: 0, found: 0, against: 0 };
const ordinary = { n: 0, against: 0 };
/** Directional patterns by the higher timeframes' confluence at onset: planted to fail, and failed. */
const byAlignment = new Map<string, { n: number; planted: number; against: number }>();
const alignmentName = (a: number): string =>
  a > 0 ? 'confirms' : a < 0 ? 'contradicts' : a === 0 ? 'flat or split' : 'not consulted (1d)';
const synthSignals: FalseSignalReport[] = [];
const patternedWindows: WindowSet[] = [];
const decisionWindows: WindowSet[] = [];
const rng = new Rng(config.seed).fork('patterns-experiment');

function primaryWindow(
  c: Candles,
  closeMs: number,
  bars: number,
): { high: Float64Array; low: Float64Array; close: Float64Array } {
  const barMs = TIMEFRAME_MS[c.timeframe];
  let end = 0;
  while (end < c.openTime.length && c.openTime[end] + barMs <= closeMs) end++;
  return {
    high: c.high.subarray(end - bars, end),
    low: c.low.subarray(end - bars, end),
    close: c.close.subarray(end - bars, end),
  };
}

for (let k = 0; k < MARKETS; k++) {
  if (k % 10 === 0) log(`market ${k + 1}/${MARKETS}`);
  const d = seriesMarket(k, settings);
  const m15 = d.frames.get('15m') as Candles;
  const busy: Array<[number, number]> = [];
  for (const l of d.labels) {
    const tf = l.primaryTimeframe;
    const c = d.frames.get(tf) as Candles;
    const ok = detect(
      l.type as Detectable,
      primaryWindow(c, l.completionTimeMs, settings.windows[tf]),
    );
    for (const [map, key] of [
      [byType, l.type],
      [byTf, tf],
    ] as const) {
      const e = map.get(key) ?? { n: 0, hit: 0 };
      e.n++;
      if (ok) e.hit++;
      map.set(key, e);
    }
    busy.push([l.onsetTimeMs, l.completionTimeMs + TIMEFRAME_MS[tf]]);
    // The realised move over the horizon from the completion close.
    const h = (config.dataset.horizonBars[tf] ?? 1) * (TIMEFRAME_MS[tf] / M15);
    const r0 = Math.round((l.completionTimeMs - M15 - m15.openTime[0]) / M15);
    if (r0 + h < m15.close.length && l.expectedDirection !== 0) {
      const against =
        Math.sign(Math.log(m15.close[r0 + h] / m15.close[r0])) === -l.expectedDirection;
      const g = byAlignment.get(alignmentName(l.htfAlignment)) ?? { n: 0, planted: 0, against: 0 };
      g.n++;
      if (l.adversarial) g.planted++;
      if (against) g.against++;
      byAlignment.set(alignmentName(l.htfAlignment), g);
      if (l.adversarial) {
        adversarial.n++;
        if (ok) adversarial.found++;
        if (against) adversarial.against++;
      } else {
        ordinary.n++;
        if (against) ordinary.against++;
      }
    }
  }
  // Specificity: windows of every timeframe ending where no pattern is forming or completing.
  const from = m15.openTime[0] + (settings.warmupDays + 2) * DAY;
  for (let q = 0; q < 30; q++) {
    const t = from + Math.floor(rng.next() * (m15.openTime[m15.openTime.length - 1] - from));
    const closeMs = t - (t % M15) + M15;
    if (busy.some(([a, b]) => closeMs >= a && closeMs <= b)) continue;
    for (const tf of ['15m', '4h', '1d'] as Timeframe[]) {
      const c = d.frames.get(tf) as Candles;
      noneWindows++;
      for (const p of detectAll(primaryWindow(c, closeMs, settings.windows[tf])))
        fp.set(p, (fp.get(p) ?? 0) + 1);
    }
  }
  synthSignals.push(measureFalseSignals(m15, { horizonBars: 16 }));
  const market: MarketSeries = {
    m15,
    h4: d.frames.get('4h') as Candles,
    d1: d.frames.get('1d') as Candles,
  };
  const usable = m15.openTime[0] + settings.warmupDays * DAY;
  patternedWindows.push(
    marketWindows(market, windowsOpt, usable, m15.openTime[m15.openTime.length - 1] + M15),
  );
  // Windows ending exactly at pattern completions (the decision times of the dataset).
  const atDecisions: WindowSet[] = [];
  for (const l of d.labels)
    if (l.completionTimeMs - windowsOpt.windowBars * M15 >= usable)
      atDecisions.push(
        extractWindowFeatures(
          market,
          l.completionTimeMs - windowsOpt.windowBars * M15,
          l.completionTimeMs,
          windowsOpt,
        ),
      );
  if (atDecisions.length > 0)
    decisionWindows.push(poolWindows(atDecisions.filter((w) => w.rows > 0)));
}

// ---------------------------------------------------------------------------------------------
// Real candles: false signals and the windows scored against.

log('real data');
const real = await readMarkets(DATA, 'binance-');
const btc = real.find((m) => m.label === 'BTC');
if (btc === undefined) throw new Error(`no BTC candles in ${DATA}`);
const r = config.synthetic.realism;
const Y = (y: number): number => Date.UTC(y, 0, 1);
const realSignals = measureFalseSignals(
  sliceByTime(btc.market.m15, Y(r.scoreYear), Y(r.scoreYear + 1)),
  { horizonBars: 16 },
);
const score2023 = marketWindows(btc.market, windowsOpt, Y(r.scoreYear), Y(r.scoreYear + 1));
const control = marketWindows(btc.market, windowsOpt, Y(r.controlYear), Y(r.controlYear + 1));
log('base-process markets');
const params = loadCalibration(config.dataset.calibration);
const fitYears = calibrationYearsOf(params) ?? [2018, 2021];
const fitWindows = marketWindows(btc.market, windowsOpt, Y(fitYears[0]), Y(fitYears[1] + 1));
const base: WindowSet[] = [];
for (let k = 0; k < r.syntheticYears; k++) {
  const m = generateBaseMarket(params, { seed: 1000 + k, days: 365 + 40, startTimeMs: Y(2024) });
  base.push(marketWindows(m, windowsOpt));
}
const d = {
  folds: r.folds,
  bootstrap: r.bootstrap,
  clusterDays: r.clusterDays,
  gbt: r.gbt,
  seed: config.seed,
};
const scores: Array<{ name: string; result: DiscriminativeResult }> = [];
for (const [name, other] of [
  [`control: BTC ${r.controlYear} vs ${r.scoreYear}`, control],
  [`base process without patterns vs BTC ${r.scoreYear}`, poolWindows(base)],
  [`pattern-bearing markets (all windows) vs BTC ${r.scoreYear}`, poolWindows(patternedWindows)],
  [`windows ending at pattern completions vs BTC ${r.scoreYear}`, poolWindows(decisionWindows)],
  [
    `calibration data itself: BTC ${fitYears[0]}-${fitYears[1]} pooled vs ${r.scoreYear}`,
    fitWindows,
  ],
] as const) {
  log(`score: ${name}`);
  scores.push({ name, result: discriminativeScore(score2023, other, d) });
}

// ---------------------------------------------------------------------------------------------
// Report.

const pct = (a: number, b: number): string => (b > 0 ? `${((100 * a) / b).toFixed(1)}%` : 'n/a');
const f3 = (v: number): string => v.toFixed(3);
const totalHit = [...byType.values()].reduce((s, e) => s + e.hit, 0);
const totalN = [...byType.values()].reduce((s, e) => s + e.n, 0);

// ---------------------------------------------------------------------------------------------
// The trade-off of pattern size: the same markets with every pattern scaled by
// dataset.amplitudeScale (the visibility search still grows an unclear one by up to
// maxAmplitudeScale): detection on the primary timeframe against the realism of all windows.

const SMALLER_AMPLITUDES = [0.8, 0.6];
// The configured size is the run above.
const tradeOff: Array<{ amplitude: number; found: number; n: number; accuracy: number }> = [
  {
    amplitude: config.dataset.amplitudeScale,
    found: totalHit,
    n: totalN,
    accuracy: scores[2].result.accuracy.value,
  },
];
/** Detection and realism of the MARKETS pattern markets generated with `scaled` settings. */
function measureMarkets(scaled: DatasetSettings): {
  found: number;
  n: number;
  result: DiscriminativeResult;
} {
  let found = 0;
  let n = 0;
  const windows: WindowSet[] = [];
  for (let k = 0; k < MARKETS; k++) {
    const market = seriesMarket(k, scaled);
    for (const l of market.labels) {
      const c = market.frames.get(l.primaryTimeframe) as Candles;
      n++;
      const window = primaryWindow(c, l.completionTimeMs, scaled.windows[l.primaryTimeframe]);
      if (detect(l.type as Detectable, window)) found++;
    }
    const m15 = market.frames.get('15m') as Candles;
    windows.push(
      marketWindows(
        { m15, h4: market.frames.get('4h') as Candles, d1: market.frames.get('1d') as Candles },
        windowsOpt,
        m15.openTime[0] + scaled.warmupDays * DAY,
        m15.openTime[m15.openTime.length - 1] + M15,
      ),
    );
  }
  return { found, n, result: discriminativeScore(score2023, poolWindows(windows), d) };
}

const withDataset = (dataset: Partial<typeof config.dataset>): DatasetSettings =>
  resolveDatasetSettings(
    {},
    { config: { ...config, dataset: { ...config.dataset, ...dataset } }, seed: config.seed },
  );

for (const factor of SMALLER_AMPLITUDES) {
  const amplitude = factor * config.dataset.amplitudeScale;
  log(`amplitude ${amplitude}`);
  const { found, n, result } = measureMarkets(withDataset({ amplitudeScale: amplitude }));
  tradeOff.push({ amplitude, found, n, accuracy: result.accuracy.value });
}

// Not the protocol: the same markets on calibrations that see the control year too (as the
// control itself does), from experiments/calibrations/.
const equalInformation: Array<{
  fittedOn: string;
  found: number;
  n: number;
  result: DiscriminativeResult;
}> = [];
for (const later of laterCalibrations(
  config.dataset.calibration,
  config.synthetic.realism.controlYear,
)) {
  log(`calibration ${later.fittedOn}`);
  equalInformation.push({
    fittedOn: later.fittedOn,
    ...measureMarkets(withDataset({ calibration: later.file })),
  });
}

const sumSignals = (
  list: FalseSignalReport[],
): { signals: number; falseSignals: number; perKind: Record<string, [number, number]> } => {
  const perKind: Record<string, [number, number]> = {};
  let signals = 0;
  let falseSignals = 0;
  for (const s of list) {
    signals += s.overall.signals;
    falseSignals += s.overall.falseSignals;
    for (const [k, v] of Object.entries(s.perKind)) {
      const e = perKind[k] ?? [0, 0];
      e[0] += v.signals;
      e[1] += v.falseSignals;
      perKind[k] = e;
    }
  }
  return { signals, falseSignals, perKind };
};
const synth = sumSignals(synthSignals);
const realSum = sumSignals([realSignals]);
const controlAcc = scores[0].result.accuracy.value;
const gap = (k: number): string => signed(scores[k].result.accuracy.value - controlAcc);

const lines: string[] = [
  '## Chart patterns',
  '',
  `Generated by \`npm run experiments\` (experiments/patterns.ts) on ${new Date().toISOString().slice(0, 10)}; run directory \`runs/${run.id}\`. ` +
    `${MARKETS} markets of ${config.dataset.seriesDays} days exactly as \`ctm dataset build\` generates them (BTC calibration, seed ${config.seed}, default \`dataset\` settings: ${settings.warmupDays}-day warm-up, patterns back to back, ${Math.round(100 * config.dataset.adversarialFraction)}% drawn adversarial, then moved by the confluence of the higher timeframes' trends with htfInfluence ${config.dataset.htfInfluence}, resolutions starting ${config.dataset.resolutionDelayBars} primary bar(s) after completion), ${totalN} planted patterns.`,
  '',
  `### Detection by an independent rule-based detector`,
  '',
  `The detector (test/synthetic-data/pattern-detector.ts: zigzag pivots in units of the window's median true range, textbook rules, thresholds fixed in that file, nothing imported from the generator) sees only the primary timeframe's window (${settings.windows['15m']} x 15m, ${settings.windows['4h']} x 4h or ${settings.windows['1d']} x 1d bars) ending at the completion bar. ` +
    `**Found: ${pct(totalHit, totalN)} of planted patterns** (goal >= 90%); by primary timeframe: ${[...byTf].map(([tf, e]) => `${tf} ${pct(e.hit, e.n)} (${e.n})`).join(', ')}. ` +
    `Adversarial look-alikes: ${pct(adversarial.found, adversarial.n)} found as the pattern, ${pct(adversarial.against, adversarial.n)} resolved against its expected direction (${adversarial.n} look-alikes).`,
  '',
  '| pattern | planted | found | false positives on windows without a pattern |',
  '|---|---:|---:|---:|',
  ...PATTERN_TYPES.map((t) => {
    const e = byType.get(t) ?? { n: 0, hit: 0 };
    return `| ${t} | ${e.n} | ${pct(e.hit, e.n)} | ${pct(fp.get(t) ?? 0, noneWindows)} |`;
  }),
  '',
  `False positives: the share of ${noneWindows} windows (15m, 4h and 1d, ending where no planted pattern forms or completes) on which the detector reports the type. Any pattern: ${pct(
    [...fp.values()].reduce((s, v) => s + v, 0),
    noneWindows * DETECTABLE.length,
  )} per type on average.`,
  '',
  '### False signals',
  '',
  `- Planted patterns resolving against their textbook direction over the label horizon (15m: ${config.dataset.horizonBars['15m']}, 4h: ${config.dataset.horizonBars['4h']}, 1d: ${config.dataset.horizonBars['1d']} bars): **${pct(ordinary.against, ordinary.n)}** of ordinary patterns (natural failures: the noise after the resolution), plus the adversarial look-alikes (${pct(adversarial.against, adversarial.n)} of which failed as planted); share of failing patterns overall ${pct(ordinary.against + adversarial.against, ordinary.n + adversarial.n)}.`,
  `- Outcomes and the higher timeframe (the confluence of the higher timeframes' trends at the pattern's onset — 4h and 1d for 15m patterns, 1d for 4h ones — relative to its expected direction; 1d patterns have none in the data): ${[
    'confirms',
    'flat or split',
    'contradicts',
    'not consulted (1d)',
  ]
    .map((k) => {
      const g = byAlignment.get(k) ?? { n: 0, planted: 0, against: 0 };
      return `${k}: ${g.n} patterns, ${pct(g.planted, g.n)} planted to fail, ${pct(g.against, g.n)} resolved against the textbook direction`;
    })
    .join('; ')}.`,
  `- Classic indicator signals on 15m candles, false when the close 16 bars later is on the wrong side: synthetic pattern markets **${pct(synth.falseSignals, synth.signals)}** (${synth.signals} signals) vs real BTC ${r.scoreYear} **${pct(realSum.falseSignals, realSum.signals)}** (${realSum.signals} signals).`,
  '',
  '| signal | synthetic: signals | synthetic: false | BTC ' +
    r.scoreYear +
    ': signals | BTC ' +
    r.scoreYear +
    ': false |',
  '|---|---:|---:|---:|---:|',
  ...Object.keys(synth.perKind).map((k) => {
    const s = synth.perKind[k];
    const q = realSum.perKind[k] ?? [0, 0];
    return `| ${k} | ${s[0]} | ${pct(s[1], s[0])} | ${q[0]} | ${pct(q[1], q[0])} |`;
  }),
  '',
  '### Realism survives the patterns',
  '',
  `The realism issue's discriminator (src/synthetic-data/realism-discriminator.ts, same settings as the realism section: ${r.windowBars}-bar 15m windows with 4h/1d context, ${r.folds}-fold time-blocked cross-validation, 95% bootstrap intervals) against real BTC ${r.scoreYear} windows. ` +
    `Pattern-bearing windows minus the real-vs-real control: **${gap(2)}** (all windows of the pattern markets), **${gap(3)}** (windows ending at completions); the base process without patterns: ${gap(1)} (goal for the patterns: within +0.10 of the control, ideally +0.05; the gap of the patterned markets over the base process is what the patterns add: ${signed(scores[2].result.accuracy.value - scores[1].result.accuracy.value)}). ` +
    `Ceiling of the protocol: the calibration data itself (real BTC ${fitYears[0]}-${fitYears[1]} windows) scores ${f3(scores[4].result.accuracy.value)} against ${r.scoreYear}, ${gap(4)} over the control (see the realism section); pattern-bearing windows lie ${signed(scores[2].result.accuracy.value - scores[4].result.accuracy.value)} beyond it.` +
    equalInformation
      .map(
        (e) =>
          ` Not the protocol: the same markets on the BTC calibration fitted on ${e.fittedOn} (information the control has): ${f3(e.result.accuracy.value)}, ${signed(e.result.accuracy.value - controlAcc)} over the control; the detector finds ${pct(e.found, e.n)} of their patterns.`,
      )
      .join(''),
  '',
  scoresMarkdown([
    ...scores,
    ...equalInformation.map((e) => ({
      name: `not the protocol: pattern-bearing markets (all windows), calibration ${e.fittedOn}, vs BTC ${r.scoreYear}`,
      result: e.result,
    })),
  ]),
  '',
  `Pattern size against realism: the same ${MARKETS} markets with every pattern scaled by \`dataset.amplitudeScale\` (skeleton sizes times the factor; an unclear pattern may still grow by up to maxAmplitudeScale ${config.dataset.maxAmplitudeScale}). From ${tradeOff[0].amplitude} to ${tradeOff[tradeOff.length - 1].amplitude} the detector's share falls from ${pct(tradeOff[0].found, tradeOff[0].n)} to ${pct(tradeOff[tradeOff.length - 1].found, tradeOff[tradeOff.length - 1].n)}, while the score against BTC ${r.scoreYear} stays between ${f3(Math.min(...tradeOff.map((t) => t.accuracy)))} and ${f3(Math.max(...tradeOff.map((t) => t.accuracy)))} (its 95% interval at the default size is ${f3(scores[2].result.accuracy.lo)}-${f3(scores[2].result.accuracy.hi)}); the base process without patterns scores ${f3(scores[1].result.accuracy.value)}.`,
  '',
  '| amplitudeScale | patterns found by the detector | pattern-bearing markets (all windows) vs BTC ' +
    r.scoreYear +
    ' | minus control |',
  '|---:|---:|---:|---:|',
  ...tradeOff.map(
    (t) =>
      `| ${t.amplitude} | ${pct(t.found, t.n)} | ${f3(t.accuracy)} | ${signed(t.accuracy - controlAcc)} |`,
  ),
];

const section = writeResultsSection('patterns', lines.join('\n'));
writeFileAtomicSync(run.path('patterns.md'), section + '\n');
run.writeMetrics({
  markets: MARKETS,
  patterns: totalN,
  detected: totalHit / totalN,
  byTimeframe: Object.fromEntries([...byTf].map(([k, e]) => [k, e.hit / e.n])),
  byType: Object.fromEntries([...byType].map(([k, e]) => [k, { n: e.n, detected: e.hit / e.n }])),
  falsePositives: Object.fromEntries([...fp].map(([k, v]) => [k, v / noneWindows])),
  adversarial,
  ordinaryAgainst: ordinary.against / ordinary.n,
  indicatorFalseSignals: {
    synthetic: synth.falseSignals / synth.signals,
    real: realSum.falseSignals / realSum.signals,
  },
  scores: scores.map((s) => ({ name: s.name, accuracy: s.result.accuracy, auc: s.result.auc })),
  amplitudeTradeOff: tradeOff.map((t) => ({ ...t, detected: t.found / t.n })),
});
log(`done: ${RESULTS_FILE}`);
