// The realism report: the scores as markdown, and a self-contained HTML page with the table and
// inline SVG plots of the facts. Renders only what it is given; computes no measurement.

import { type DiscriminativeResult, type Estimate } from './realism-discriminator.js';
import {
  formatFactValue,
  HIST_BINS,
  HIST_HI,
  HIST_LO,
  type RealismTable,
  realismTableMarkdown,
  type StylizedFacts,
  type YearlyFacts,
} from './realism-facts.js';
import { median } from './realism-stats.js';

/** A named discriminative score for the report. */
export interface NamedScore {
  /** What was told apart, e.g. `synthetic (btc) vs BTC 2023`. */
  name: string;
  /** The score with its intervals. */
  result: DiscriminativeResult;
}

/** Everything the realism report shows. */
export interface RealismReport {
  /** Report title. */
  title: string;
  /** Stylized facts, real ranges vs synthetic. */
  table: RealismTable;
  /** Discriminative scores, the real-vs-real control first. */
  scores: NamedScore[];
  /** Per timeframe: yearly facts of the real and synthetic series (for the plots). */
  real: Map<string, YearlyFacts[]>;
  /** Per timeframe: yearly facts of the synthetic series (for the plots). */
  synthetic: Map<string, YearlyFacts[]>;
}

function fmtEstimate(e: Estimate): string {
  return `${e.value.toFixed(3)} [${e.lo.toFixed(3)}, ${e.hi.toFixed(3)}]`;
}

/** The discriminative scores as a markdown table. */
export function scoresMarkdown(scores: NamedScore[]): string {
  const lines = [
    '| comparison | accuracy [95% CI] | AUC [95% CI] | windows per class | strongest statistics |',
    '|---|---:|---:|---:|---|',
  ];
  for (const s of scores)
    lines.push(
      `| ${s.name} | ${fmtEstimate(s.result.accuracy)} | ${fmtEstimate(s.result.auc)} | ${s.result.windowsPerClass} | ${s.result.topFeatures
        .slice(0, 3)
        .map((f) => f.name)
        .join(', ')} |`,
    );
  return lines.join('\n');
}

function escHtml(s: string): string {
  return s.replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c,
  );
}

/** A minimal multi-series line chart as inline SVG (numeric x). */
export function lineSvg(
  title: string,
  xLabel: string,
  series: { name: string; x: number[]; y: number[]; color: string; dash?: boolean }[],
  width = 520,
  height = 300,
): string {
  const left = 56;
  const right = width - 12;
  const top = 28;
  const bottom = height - 36;
  let xLo = Infinity;
  let xHi = -Infinity;
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const s of series)
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) return;
      xLo = Math.min(xLo, x);
      xHi = Math.max(xHi, x);
      yLo = Math.min(yLo, y);
      yHi = Math.max(yHi, y);
    });
  if (!Number.isFinite(xLo)) {
    xLo = 0;
    xHi = 1;
    yLo = 0;
    yHi = 1;
  }
  if (yHi === yLo) yHi = yLo + 1;
  const sx = (x: number): number => left + ((x - xLo) / (xHi - xLo || 1)) * (right - left);
  const sy = (y: number): number => bottom - ((y - yLo) / (yHi - yLo)) * (bottom - top);
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`;
  out += `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">${escHtml(title)}</text>`;
  out += `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#888"/><line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#888"/>`;
  for (let k = 0; k <= 4; k++) {
    const yv = yLo + ((yHi - yLo) * k) / 4;
    const xv = xLo + ((xHi - xLo) * k) / 4;
    out += `<text x="${left - 4}" y="${sy(yv) + 4}" text-anchor="end" fill="#555">${escHtml(formatFactValue(yv))}</text>`;
    out += `<text x="${sx(xv)}" y="${bottom + 14}" text-anchor="middle" fill="#555">${escHtml(formatFactValue(xv))}</text>`;
    out += `<line x1="${left}" y1="${sy(yv)}" x2="${right}" y2="${sy(yv)}" stroke="#eee"/>`;
  }
  out += `<text x="${(left + right) / 2}" y="${height - 6}" text-anchor="middle" fill="#555">${escHtml(xLabel)}</text>`;
  series.forEach((s, k) => {
    let d = '';
    let pen = false;
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
      pen = true;
    });
    out += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dash === true ? ' stroke-dasharray="5 3"' : ''}><title>${escHtml(s.name)}</title></path>`;
    out += `<rect x="${right - 150}" y="${top + 4 + k * 15}" width="10" height="3" fill="${s.color}"/><text x="${right - 136}" y="${top + 9 + k * 15}">${escHtml(s.name)}</text>`;
  });
  return out + '</svg>';
}

function medianCurve(list: YearlyFacts[], pick: (f: StylizedFacts) => number[]): number[] {
  if (list.length === 0) return [];
  const len = pick(list[0].facts).length;
  return Array.from({ length: len }, (_, k) => median(list.map((y) => pick(y.facts)[k])));
}

/** Plots per timeframe: overlaid return histograms (log density) and ACFs, as inline SVG. */
export function realismPlots(report: RealismReport): { timeframe: string; svgs: string[] }[] {
  const out: { timeframe: string; svgs: string[] }[] = [];
  const width = (HIST_HI - HIST_LO) / HIST_BINS;
  const centres = Array.from({ length: HIST_BINS }, (_, k) => HIST_LO + (k + 0.5) * width);
  const normal = centres.map((z) => Math.log10(Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI)));
  for (const [tf, realYears] of report.real) {
    const synYears = report.synthetic.get(tf) ?? [];
    const log10 = (v: number[]): number[] => v.map((d) => (d > 0 ? Math.log10(d) : NaN));
    const rh = log10(medianCurve(realYears, (f) => f.histogram));
    const sh = log10(medianCurve(synYears, (f) => f.histogram));
    const lags100 = Array.from({ length: 100 }, (_, k) => k + 1);
    const lags10 = lags100.slice(0, 10);
    out.push({
      timeframe: tf,
      svgs: [
        lineSvg(`${tf}: density of standardized log returns (log10)`, 'return / std', [
          { name: 'real (median year)', x: centres, y: rh, color: '#1f77b4' },
          { name: 'synthetic (median year)', x: centres, y: sh, color: '#d62728' },
          { name: 'normal', x: centres, y: normal, color: '#999', dash: true },
        ]),
        lineSvg(`${tf}: ACF of |returns|`, 'lag (bars)', [
          {
            name: 'real (median year)',
            x: lags100,
            y: medianCurve(realYears, (f) => f.acfAbs),
            color: '#1f77b4',
          },
          {
            name: 'synthetic (median year)',
            x: lags100,
            y: medianCurve(synYears, (f) => f.acfAbs),
            color: '#d62728',
          },
        ]),
        lineSvg(`${tf}: ACF of returns`, 'lag (bars)', [
          {
            name: 'real (median year)',
            x: lags10,
            y: medianCurve(realYears, (f) => f.acfReturns),
            color: '#1f77b4',
          },
          {
            name: 'synthetic (median year)',
            x: lags10,
            y: medianCurve(synYears, (f) => f.acfReturns),
            color: '#d62728',
          },
        ]),
      ],
    });
  }
  return out;
}

/** The realism report as markdown (scores, then the table). */
export function realismReportMarkdown(report: RealismReport): string {
  return [
    `## ${report.title}`,
    '',
    '### Discriminative score',
    '',
    scoresMarkdown(report.scores),
    '',
    '### Stylized facts',
    '',
    realismTableMarkdown(report.table),
  ].join('\n');
}

/** The realism report as one self-contained HTML page (no scripts, no network). */
export function realismReportHtml(report: RealismReport): string {
  const row = (cells: string[], tag = 'td'): string =>
    `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;
  let html = `<!doctype html><html><head><meta charset="utf-8"><title>${escHtml(report.title)}</title>`;
  html +=
    '<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ddd;padding:3px 8px;font-size:12px;text-align:right}td:first-child,th:first-child{text-align:left}.no{background:#fde2e2}.plots{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>';
  html += `<h1>${escHtml(report.title)}</h1>`;
  html += '<h2>Discriminative score</h2><table>';
  html += row(
    [
      'comparison',
      'accuracy [95% CI]',
      'AUC [95% CI]',
      'windows per class',
      'strongest statistics',
    ],
    'th',
  );
  for (const s of report.scores)
    html += row([
      escHtml(s.name),
      fmtEstimate(s.result.accuracy),
      fmtEstimate(s.result.auc),
      String(s.result.windowsPerClass),
      escHtml(s.result.topFeatures.map((f) => f.name).join(', ')),
    ]);
  html += '</table>';
  const t = report.table;
  html += `<h2>Stylized facts</h2><p>${t.rows.length - t.outside.length} of ${t.rows.length} facts (${(100 * t.fractionInRange).toFixed(1)}%) inside the real range (${escHtml(t.realYears.join(', '))}).</p>`;
  for (const p of realismPlots(report)) {
    html += `<h3>${escHtml(p.timeframe)}</h3><div class="plots">${p.svgs.join('')}</div><table>`;
    html += row(
      ['fact', 'real min', 'real median', 'real max', 'synthetic', 'synthetic years', 'in range'],
      'th',
    );
    for (const r of t.rows.filter((x) => x.timeframe === p.timeframe))
      html += `<tr${r.inRange ? '' : ' class="no"'}>${[
        escHtml(r.fact),
        formatFactValue(r.realMin),
        formatFactValue(r.realMedian),
        formatFactValue(r.realMax),
        formatFactValue(r.synthetic),
        `${formatFactValue(r.syntheticMin)} … ${formatFactValue(r.syntheticMax)}`,
        r.inRange ? 'yes' : `no (by ${formatFactValue(r.outsideBy)})`,
      ]
        .map((c) => `<td>${c}</td>`)
        .join('')}</tr>`;
    html += '</table>';
  }
  return html + '</body></html>';
}
