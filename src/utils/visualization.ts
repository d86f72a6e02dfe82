// Generic drawing: SVG charts (line, monthly heatmap, histogram, trade scatter, confusion matrix,
// training curves), PNG rasterisation and the shell of a self-contained HTML page (style, header,
// inlined data and chart library). It knows no candles, metrics or runs: what a report shows is
// decided next to what it renders (the run and backtest report is evaluation/report.ts). Imports
// nothing of the project.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Resvg } from '@resvg/resvg-js';

const DAY_MS = 86_400_000;

/** A classifier's confusion matrix: `matrix[true][predicted]` counts. */
export interface ConfusionMatrix {
  /** Class names, in row and column order. */
  readonly labels: readonly string[];
  /** Counts, `matrix[true][predicted]`. */
  readonly matrix: readonly (readonly number[])[];
}

/** A confusion matrix found in a run's metrics, named by where it was found (`test`, ...). */
export interface NamedConfusionMatrix extends ConfusionMatrix {
  /** Where the matrix was found, e.g. `validation` or `test`. */
  readonly name: string;
}

// ---------------------------------------------------------------------------------------------
// SVG charts (inlined in the page and rasterised to PNG)

/** Font stack of every chart and page. */
export const FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';
/** Colours of the charts (strategy, benchmark, paper run, up/down, grid, axis, text). */
export const COLORS = {
  strategy: '#2962ff',
  benchmark: '#9e9e9e',
  paper: '#ff6d00',
  up: '#26a69a',
  down: '#ef5350',
  grid: '#e6e6e6',
  axis: '#555555',
  text: '#222222',
};
const SERIES_COLORS = ['#2962ff', '#ff6d00', '#26a69a', '#ab47bc', '#ef5350', '#8d6e63', '#00838f'];

/** Escapes text for HTML and SVG (`&`, `<`, `>`, `"`). */
export function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A name as a file/id fragment: `validation.test` → `validation-test`. */
export function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'run';
}

function niceStep(range: number, target: number): number {
  const raw = range / Math.max(1, target);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, target);
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** A number for an axis tick: compact (`12k`, `1.5M`), at most a few significant digits. */
export function fmtNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, '');
  if (a === 0) return '0';
  return v.toPrecision(2);
}

/** A fraction as a percentage with `digits` decimals (`0.0123` → `1.2%`). */
export function fmtPct(v: number, digits = 1): string {
  return `${(v * 100).toFixed(digits)}%`;
}

function timeTicks(lo: number, hi: number): { v: number; label: string }[] {
  const span = hi - lo;
  const steps: Array<[number, (d: Date) => string]> = [
    [3_600_000, (d) => `${d.toISOString().slice(5, 10)} ${d.toISOString().slice(11, 16)}`],
    [6 * 3_600_000, (d) => `${d.toISOString().slice(5, 10)} ${d.toISOString().slice(11, 16)}`],
    [DAY_MS, (d) => d.toISOString().slice(0, 10)],
    [7 * DAY_MS, (d) => d.toISOString().slice(0, 10)],
    [30 * DAY_MS, (d) => d.toISOString().slice(0, 7)],
    [91 * DAY_MS, (d) => d.toISOString().slice(0, 7)],
    [365 * DAY_MS, (d) => d.toISOString().slice(0, 4)],
  ];
  let chosen = steps[steps.length - 1];
  for (const s of steps)
    if (span / s[0] <= 7) {
      chosen = s;
      break;
    }
  const [step, fmt] = chosen;
  const out: { v: number; label: string }[] = [];
  if (step >= 30 * DAY_MS) {
    // Calendar months / quarters / years.
    const months = step >= 365 * DAY_MS ? 12 : step >= 91 * DAY_MS ? 3 : 1;
    const d = new Date(lo);
    let y = d.getUTCFullYear();
    let m = Math.ceil(d.getUTCMonth() / months) * months;
    for (;;) {
      const t = Date.UTC(y + Math.floor(m / 12), m % 12, 1);
      if (t > hi) break;
      if (t >= lo) out.push({ v: t, label: fmt(new Date(t)) });
      m += months;
      if (m >= 12) {
        y += Math.floor(m / 12);
        m %= 12;
      }
    }
  } else {
    for (let t = Math.ceil(lo / step) * step; t <= hi; t += step)
      out.push({ v: t, label: fmt(new Date(t)) });
  }
  return out;
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function frame(width: number, height: number): Frame {
  return { width, height, left: 70, right: width - 20, top: 40, bottom: height - 45 };
}

function svgOpen(f: Frame, id: string, title: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" id="${esc(id)}" class="ctm-svg" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" font-family="${FONT}" font-size="12">` +
    `<rect x="0" y="0" width="${f.width}" height="${f.height}" fill="#ffffff"/>` +
    `<text x="${f.left}" y="22" font-size="15" font-weight="bold" fill="${COLORS.text}">${esc(title)}</text>`
  );
}

function yAxis(f: Frame, lo: number, hi: number, fmt: (v: number) => string): string {
  let s = '';
  for (const v of niceTicks(lo, hi)) {
    const y = f.bottom - ((v - lo) / (hi - lo || 1)) * (f.bottom - f.top);
    s += `<line x1="${f.left}" x2="${f.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${COLORS.grid}"/>`;
    s += `<text x="${f.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" fill="${COLORS.axis}">${esc(fmt(v))}</text>`;
  }
  return s;
}

function xAxisTime(f: Frame, lo: number, hi: number): string {
  let s = `<line x1="${f.left}" x2="${f.right}" y1="${f.bottom}" y2="${f.bottom}" stroke="${COLORS.axis}"/>`;
  for (const { v, label } of timeTicks(lo, hi)) {
    const x = f.left + ((v - lo) / (hi - lo || 1)) * (f.right - f.left);
    s += `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${f.bottom}" y2="${f.bottom + 4}" stroke="${COLORS.axis}"/>`;
    s += `<text x="${x.toFixed(1)}" y="${f.bottom + 18}" text-anchor="middle" fill="${COLORS.axis}">${esc(label)}</text>`;
  }
  return s;
}

function xAxisNumber(f: Frame, lo: number, hi: number, label: string): string {
  let s = `<line x1="${f.left}" x2="${f.right}" y1="${f.bottom}" y2="${f.bottom}" stroke="${COLORS.axis}"/>`;
  for (const v of niceTicks(lo, hi, 6)) {
    const x = f.left + ((v - lo) / (hi - lo || 1)) * (f.right - f.left);
    s += `<text x="${x.toFixed(1)}" y="${f.bottom + 18}" text-anchor="middle" fill="${COLORS.axis}">${esc(fmtNumber(v))}</text>`;
  }
  s += `<text x="${(f.left + f.right) / 2}" y="${f.height - 6}" text-anchor="middle" fill="${COLORS.axis}">${esc(label)}</text>`;
  return s;
}

function legend(f: Frame, items: Array<{ name: string; color: string }>): string {
  let x = f.right;
  let s = '';
  for (let i = items.length - 1; i >= 0; i--) {
    const w = 24 + items[i].name.length * 7;
    x -= w;
    s += `<rect x="${x}" y="14" width="12" height="4" fill="${items[i].color}"/>`;
    s += `<text x="${x + 16}" y="20" fill="${COLORS.text}">${esc(items[i].name)}</text>`;
  }
  return s;
}

/** A line series for `lineChartSvg`. */
export interface SvgSeries {
  /** Legend label. */
  readonly name: string;
  /** X values (same length as `y`). */
  readonly x: ArrayLike<number>;
  /** Y values. */
  readonly y: ArrayLike<number>;
  /** Line colour (any SVG colour); default from the palette. */
  readonly color?: string;
  /** Fill between the line and zero. */
  readonly fill?: boolean;
}

/**
 * Reduces a series to at most `maxPoints` by keeping, per bucket, its first, minimum and maximum
 * points (extremes survive). Returns index lists.
 */
function decimate(n: number, y: ArrayLike<number>, maxPoints: number): number[] {
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => i);
  const buckets = Math.max(1, Math.floor(maxPoints / 3));
  const out: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const a = Math.floor((b * n) / buckets);
    const e = Math.floor(((b + 1) * n) / buckets);
    let iMin = a;
    let iMax = a;
    for (let i = a; i < e; i++) {
      if (y[i] < y[iMin]) iMin = i;
      if (y[i] > y[iMax]) iMax = i;
    }
    const idx = [a, iMin, iMax].sort((p, q) => p - q);
    for (let k = 0; k < 3; k++) if (k === 0 || idx[k] !== idx[k - 1]) out.push(idx[k]);
  }
  if (out[out.length - 1] !== n - 1) out.push(n - 1);
  return out;
}

/**
 * A line chart (time or numeric x axis) as an SVG string.
 * @param options.id element id; `options.yFormat` formats the y ticks
 */
export function lineChartSvg(options: {
  id: string;
  title: string;
  series: readonly SvgSeries[];
  xType: 'time' | 'number';
  xLabel?: string;
  yFormat?: (v: number) => string;
  width: number;
  height: number;
  maxPoints?: number;
}): string {
  const f = frame(options.width, options.height);
  let xLo = Infinity;
  let xHi = -Infinity;
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const s of options.series) {
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i];
      const y = s.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if (x < xLo) xLo = x;
      if (x > xHi) xHi = x;
      if (y < yLo) yLo = y;
      if (y > yHi) yHi = y;
    }
    if (s.fill === true) {
      yLo = Math.min(yLo, 0);
      yHi = Math.max(yHi, 0);
    }
  }
  let out = svgOpen(f, options.id, options.title);
  if (!Number.isFinite(xLo)) {
    out += `<text x="${f.width / 2}" y="${f.height / 2}" text-anchor="middle" fill="${COLORS.axis}">no data</text></svg>`;
    return out;
  }
  if (yHi === yLo) {
    yHi += Math.abs(yHi) * 0.01 || 1;
    yLo -= Math.abs(yLo) * 0.01 || 1;
  }
  const pad = (yHi - yLo) * 0.05;
  yLo -= pad;
  yHi += pad;
  const fmt = options.yFormat ?? fmtNumber;
  out += yAxis(f, yLo, yHi, fmt);
  out +=
    options.xType === 'time'
      ? xAxisTime(f, xLo, xHi)
      : xAxisNumber(f, xLo, xHi, options.xLabel ?? '');
  const sx = (x: number): number => f.left + ((x - xLo) / (xHi - xLo || 1)) * (f.right - f.left);
  const sy = (y: number): number => f.bottom - ((y - yLo) / (yHi - yLo)) * (f.bottom - f.top);
  options.series.forEach((s, k) => {
    const color = s.color ?? SERIES_COLORS[k % SERIES_COLORS.length];
    const idx = decimate(s.x.length, s.y, options.maxPoints ?? 3000);
    let d = '';
    let first = true;
    for (const i of idx) {
      if (!Number.isFinite(s.y[i]) || !Number.isFinite(s.x[i])) {
        first = true;
        continue;
      }
      d += `${first ? 'M' : 'L'}${sx(s.x[i]).toFixed(1)},${sy(s.y[i]).toFixed(1)}`;
      first = false;
    }
    if (s.fill === true && idx.length > 0) {
      const x0 = sx(s.x[idx[0]]).toFixed(1);
      const x1 = sx(s.x[idx[idx.length - 1]]).toFixed(1);
      const y0 = sy(0).toFixed(1);
      out += `<path d="M${x0},${y0}${d.replace(/^M/, 'L')}L${x1},${y0}Z" fill="${color}" fill-opacity="0.25" stroke="none"/>`;
    }
    out += `<path class="series" data-name="${esc(s.name)}" d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
  });
  if (options.series.length > 1)
    out += legend(
      f,
      options.series.map((s, k) => ({
        name: s.name,
        color: s.color ?? SERIES_COLORS[k % SERIES_COLORS.length],
      })),
    );
  return out + '</svg>';
}

function heatColor(v: number, scale: number): string {
  const a = Math.min(1, Math.abs(v) / (scale || 1));
  const [r, g, b] = v >= 0 ? [38, 166, 154] : [239, 83, 80];
  const mix = (c: number): number => Math.round(255 + (c - 255) * a);
  return `rgb(${mix(r)},${mix(g)},${mix(b)})`;
}

/** A compounded return over a period, as the heatmap reads it. */
export interface PeriodValue {
  /** `YYYY-MM` for months, `YYYY` for years. */
  readonly period: string;
  /** Compounded return over the period (fraction). */
  readonly return: number;
}

/** Monthly returns heatmap (years × months, plus the year's total) as an SVG string. */
export function monthlyHeatmapSvg(
  monthly: readonly PeriodValue[],
  yearly: readonly PeriodValue[],
  width: number,
): string {
  const years = [...new Set(monthly.map((m) => m.period.slice(0, 4)))].sort();
  const cell = Math.max(30, Math.floor((width - 90) / 13));
  const height = 70 + years.length * 26 + 10;
  const f = { ...frame(width, height), left: 60 };
  let out = svgOpen(f, 'monthly-heatmap', 'Monthly returns');
  const months = [
    'Jan',
    'Feb',
    'Mar',
    'Apr',
    'May',
    'Jun',
    'Jul',
    'Aug',
    'Sep',
    'Oct',
    'Nov',
    'Dec',
    'Year',
  ];
  months.forEach((m, k) => {
    out += `<text x="${f.left + k * cell + cell / 2}" y="52" text-anchor="middle" fill="${COLORS.axis}">${m}</text>`;
  });
  let scale = 0;
  for (const m of monthly) scale = Math.max(scale, Math.abs(m.return));
  const yearMap = new Map(yearly.map((y) => [y.period, y.return]));
  years.forEach((y, row) => {
    const yTop = 60 + row * 26;
    out += `<text x="${f.left - 8}" y="${yTop + 17}" text-anchor="end" fill="${COLORS.axis}">${y}</text>`;
    for (const m of monthly) {
      if (!m.period.startsWith(y)) continue;
      const k = Number(m.period.slice(5, 7)) - 1;
      out += `<g class="cell" data-period="${m.period}"><rect class="cell" x="${f.left + k * cell}" y="${yTop}" width="${cell - 2}" height="24" fill="${heatColor(m.return, scale)}"><title>${m.period}: ${fmtPct(m.return, 2)}</title></rect>`;
      out += `<text x="${f.left + k * cell + cell / 2 - 1}" y="${yTop + 16}" text-anchor="middle" font-size="10" fill="${COLORS.text}">${fmtPct(m.return, 1)}</text></g>`;
    }
    const total = yearMap.get(y);
    if (total !== undefined) {
      out += `<rect class="year" x="${f.left + 12 * cell}" y="${yTop}" width="${cell - 2}" height="24" fill="${heatColor(total, scale * 3)}" stroke="#888"><title>${y}: ${fmtPct(total, 2)}</title></rect>`;
      out += `<text x="${f.left + 12 * cell + cell / 2 - 1}" y="${yTop + 16}" text-anchor="middle" font-size="10" font-weight="bold" fill="${COLORS.text}">${fmtPct(total, 1)}</text>`;
    }
  });
  return out + '</svg>';
}

/**
 * Histogram of returns with the normal density of the same mean and standard deviation, as SVG.
 * Each bin is one `rect.bin` carrying its count.
 */
export function histogramSvg(options: {
  id: string;
  title: string;
  values: readonly number[];
  bins: number;
  width: number;
  height: number;
}): string {
  const f = frame(options.width, options.height);
  let out = svgOpen(f, options.id, options.title);
  const v = options.values.filter((x) => Number.isFinite(x));
  if (v.length < 2) {
    out += `<text x="${f.width / 2}" y="${f.height / 2}" text-anchor="middle" fill="${COLORS.axis}">not enough data</text></svg>`;
    return out;
  }
  let lo = Infinity;
  let hi = -Infinity;
  let mean = 0;
  for (const x of v) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
    mean += x;
  }
  mean /= v.length;
  let sd = 0;
  for (const x of v) sd += (x - mean) * (x - mean);
  sd = Math.sqrt(sd / (v.length - 1));
  if (hi === lo) {
    hi += 1e-4;
    lo -= 1e-4;
  }
  const bins = Math.max(1, options.bins);
  const w = (hi - lo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (const x of v) counts[Math.min(bins - 1, Math.floor((x - lo) / w))]++;
  const maxCount = Math.max(...counts);
  const peakDensity = sd > 0 ? (v.length * w) / (sd * Math.sqrt(2 * Math.PI)) : 0;
  const yHi = Math.max(maxCount, peakDensity) * 1.08;
  out += yAxis(f, 0, yHi, fmtNumber);
  const sx = (x: number): number => f.left + ((x - lo) / (hi - lo)) * (f.right - f.left);
  const sy = (y: number): number => f.bottom - (y / yHi) * (f.bottom - f.top);
  let s = `<line x1="${f.left}" x2="${f.right}" y1="${f.bottom}" y2="${f.bottom}" stroke="${COLORS.axis}"/>`;
  for (const t of niceTicks(lo, hi, 6)) {
    const x = sx(t);
    s += `<text x="${x.toFixed(1)}" y="${f.bottom + 18}" text-anchor="middle" fill="${COLORS.axis}">${fmtPct(t, Math.abs(t) < 0.01 && t !== 0 ? 2 : 1)}</text>`;
  }
  out += s;
  counts.forEach((cnt, k) => {
    const x0 = sx(lo + k * w);
    const x1 = sx(lo + (k + 1) * w);
    const color = lo + (k + 0.5) * w >= 0 ? COLORS.up : COLORS.down;
    out += `<rect class="bin" data-count="${cnt}" x="${x0.toFixed(1)}" y="${sy(cnt).toFixed(1)}" width="${Math.max(0.5, x1 - x0 - 1).toFixed(1)}" height="${(f.bottom - sy(cnt)).toFixed(1)}" fill="${color}" fill-opacity="0.75"><title>${fmtPct(lo + k * w, 2)} to ${fmtPct(lo + (k + 1) * w, 2)}: ${cnt}</title></rect>`;
  });
  if (sd > 0) {
    let d = '';
    for (let k = 0; k <= 200; k++) {
      const x = lo + ((hi - lo) * k) / 200;
      const dens =
        (v.length * w * Math.exp(-0.5 * ((x - mean) / sd) ** 2)) / (sd * Math.sqrt(2 * Math.PI));
      d += `${k === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(dens).toFixed(1)}`;
    }
    out += `<path d="${d}" fill="none" stroke="${COLORS.axis}" stroke-dasharray="4 3" stroke-width="1.2"/>`;
    out += legend(f, [{ name: 'normal fit', color: COLORS.axis }]);
  }
  out += `<text x="${(f.left + f.right) / 2}" y="${f.height - 6}" text-anchor="middle" fill="${COLORS.axis}">${esc(`n = ${v.length}, mean ${fmtPct(mean, 3)}, sd ${fmtPct(sd, 3)}`)}</text>`;
  return out + '</svg>';
}

/** A closed trade as the scatter draws it. */
export interface ScatterTrade {
  /** Exit time, UTC ms. */
  readonly exitMs: number;
  /** Net return of the trade (fraction). */
  readonly ret: number;
  /** Net pnl (quote currency). */
  readonly pnl: number;
  /** Direction of the trade. */
  readonly side: 'long' | 'short';
  /** Bars the position was held. */
  readonly bars: number;
}

/** Trade returns over exit time (one `circle.trade` per closed trade), as SVG. */
export function tradeScatterSvg(
  trades: readonly ScatterTrade[],
  width: number,
  height: number,
): string {
  const f = frame(width, height);
  let out = svgOpen(f, 'trade-scatter', 'Trade returns (net of costs)');
  if (trades.length === 0) {
    out += `<text x="${f.width / 2}" y="${f.height / 2}" text-anchor="middle" fill="${COLORS.axis}">no closed trades</text></svg>`;
    return out;
  }
  let xLo = Infinity;
  let xHi = -Infinity;
  let yLo = 0;
  let yHi = 0;
  for (const t of trades) {
    xLo = Math.min(xLo, t.exitMs);
    xHi = Math.max(xHi, t.exitMs);
    yLo = Math.min(yLo, t.ret);
    yHi = Math.max(yHi, t.ret);
  }
  if (xHi === xLo) {
    xHi += DAY_MS;
    xLo -= DAY_MS;
  }
  if (yHi === yLo) yHi = yLo + 0.01;
  const pad = (yHi - yLo) * 0.06;
  yLo -= pad;
  yHi += pad;
  out += yAxis(f, yLo, yHi, (v) => fmtPct(v, 1));
  out += xAxisTime(f, xLo, xHi);
  const sx = (x: number): number => f.left + ((x - xLo) / (xHi - xLo)) * (f.right - f.left);
  const sy = (y: number): number => f.bottom - ((y - yLo) / (yHi - yLo)) * (f.bottom - f.top);
  out += `<line x1="${f.left}" x2="${f.right}" y1="${sy(0).toFixed(1)}" y2="${sy(0).toFixed(1)}" stroke="${COLORS.axis}" stroke-dasharray="3 3"/>`;
  const r = trades.length > 2000 ? 1.5 : 3;
  for (const t of trades) {
    const color = t.side === 'long' ? COLORS.up : COLORS.down;
    out += `<circle class="trade" cx="${sx(t.exitMs).toFixed(1)}" cy="${sy(t.ret).toFixed(1)}" r="${r}" fill="${color}" fill-opacity="0.6">${trades.length <= 3000 ? `<title>${t.side} ${new Date(t.exitMs).toISOString().slice(0, 16)} ${fmtPct(t.ret, 2)} (${t.bars} bars)</title>` : ''}</circle>`;
  }
  out += legend(f, [
    { name: 'long', color: COLORS.up },
    { name: 'short', color: COLORS.down },
  ]);
  return out + '</svg>';
}

/** Confusion matrix (rows true, columns predicted; one `rect.cm-cell` per cell) as SVG. */
export function confusionMatrixSvg(cm: NamedConfusionMatrix, width: number): string {
  const k = cm.labels.length;
  const cell = Math.min(90, Math.floor((width - 160) / Math.max(1, k)));
  const height = 90 + k * cell + 40;
  const f = { ...frame(width, height), left: 130 };
  let out = svgOpen(
    f,
    `confusion-matrix-${slug(cm.name)}`,
    `Confusion matrix, ${cm.name} (rows: true class, columns: predicted)`,
  );
  let max = 0;
  for (const row of cm.matrix) for (const v of row) max = Math.max(max, v);
  cm.labels.forEach((label, j) => {
    out += `<text x="${f.left + j * cell + cell / 2}" y="70" text-anchor="middle" fill="${COLORS.axis}">${esc(label)}</text>`;
  });
  cm.matrix.forEach((row, i) => {
    const rowSum = row.reduce((a, b) => a + b, 0);
    out += `<text x="${f.left - 8}" y="${80 + i * cell + cell / 2 + 4}" text-anchor="end" fill="${COLORS.axis}">${esc(cm.labels[i] ?? String(i))}</text>`;
    row.forEach((v, j) => {
      const a = max > 0 ? v / max : 0;
      const shade = Math.round(255 - 180 * a);
      out += `<rect class="cm-cell" x="${f.left + j * cell}" y="${80 + i * cell}" width="${cell - 2}" height="${cell - 2}" fill="rgb(${shade},${shade},255)"><title>true ${esc(cm.labels[i] ?? '')}, predicted ${esc(cm.labels[j] ?? '')}: ${v}</title></rect>`;
      out += `<text x="${f.left + j * cell + cell / 2 - 1}" y="${80 + i * cell + cell / 2}" text-anchor="middle" fill="${a > 0.6 ? '#fff' : COLORS.text}">${v}</text>`;
      out += `<text x="${f.left + j * cell + cell / 2 - 1}" y="${80 + i * cell + cell / 2 + 14}" text-anchor="middle" font-size="10" fill="${a > 0.6 ? '#fff' : COLORS.axis}">${rowSum > 0 ? fmtPct(v / rowSum, 0) : ''}</text>`;
    });
  });
  return out + '</svg>';
}

/** Training-curve panels: which history keys are drawn together, in this order. */
const TRAINING_PANELS: ReadonlyArray<{ title: string; keys: readonly string[] }> = [
  { title: 'Loss', keys: ['loss', 'trainLoss', 'valLoss', 'validationLoss'] },
  {
    title: 'Accuracy',
    keys: [
      'accuracy',
      'trainAccuracy',
      'valAccuracy',
      'validationAccuracy',
      'macroF1',
      'valMacroF1',
    ],
  },
  { title: 'Reward', keys: ['episodeReturn', 'reward', 'meanReward', 'evalReturn'] },
  { title: 'Epsilon', keys: ['epsilon'] },
  { title: 'Entropy', keys: ['entropy'] },
  { title: 'KL', keys: ['approxKl', 'kl', 'klDivergence'] },
  { title: 'Value loss', keys: ['valueLoss', 'policyLoss'] },
  { title: 'Learning rate', keys: ['learningRate', 'lr'] },
  { title: 'Gradient norm', keys: ['gradNorm'] },
];

/** History keys that are counters or clocks, not curves. */
const NOT_CURVES = new Set(['step', 'wallMs', 'epoch', 'seconds']);

/** Groups numeric history keys into panels (known groups first, then one panel per other key). */
export function trainingPanels(
  history: ReadonlyArray<Record<string, number | string | null>>,
): Array<{ title: string; keys: string[] }> {
  const numeric = new Set<string>();
  for (const row of history)
    for (const [k, v] of Object.entries(row))
      if (!NOT_CURVES.has(k) && typeof v === 'number' && Number.isFinite(v)) numeric.add(k);
  const used = new Set<string>();
  const panels: Array<{ title: string; keys: string[] }> = [];
  for (const p of TRAINING_PANELS) {
    const keys = p.keys.filter((k) => numeric.has(k));
    keys.forEach((k) => used.add(k));
    if (keys.length > 0) panels.push({ title: p.title, keys });
  }
  for (const k of [...numeric].sort()) if (!used.has(k)) panels.push({ title: k, keys: [k] });
  return panels;
}

/** One SVG line chart per training panel (x = step). */
export function trainingCurveSvgs(
  history: ReadonlyArray<Record<string, number | string | null>>,
  width: number,
  height: number,
  label = '',
): string[] {
  return trainingPanels(history).map((p, k) =>
    lineChartSvg({
      id: label === '' ? `training-${k}` : `training-${label}-${k}`,
      title: label === '' ? p.title : `${label}: ${p.title}`,
      xType: 'number',
      xLabel: 'step',
      width,
      height,
      series: p.keys.map((key) => {
        const x: number[] = [];
        const y: number[] = [];
        for (const row of history) {
          const v = row[key];
          const s = row.step;
          if (typeof v === 'number' && Number.isFinite(v) && typeof s === 'number') {
            x.push(s);
            y.push(v);
          }
        }
        return { name: key, x, y };
      }),
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The page

let chartLibrary: string | undefined;

/** The chart library's standalone build, read once from node_modules. */
function chartLibrarySource(): string {
  if (chartLibrary === undefined) {
    const require = createRequire(import.meta.url);
    const pkgDir = require.resolve('lightweight-charts/package.json').replace(/package\.json$/, '');
    chartLibrary = readFileSync(
      `${pkgDir}dist/lightweight-charts.standalone.production.js`,
      'utf8',
    );
  }
  return chartLibrary;
}

/** JSON safe to embed inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Style of every page (header, charts, figures, tables). */
const CSS = `
body{font-family:${FONT};margin:0;background:#fafafa;color:#222}
header{padding:16px 24px;background:#fff;border-bottom:1px solid #ddd}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:24px 0 8px}
.facts span{display:inline-block;margin:2px 14px 2px 0;font-size:13px;color:#444}
.facts b{color:#222}
main{padding:0 24px 40px}
.chart{background:#fff;border:1px solid #ddd;position:relative}
#price-chart{height:720px}#equity-chart{height:560px}
.legend{position:absolute;left:8px;top:6px;z-index:3;font-size:12px;background:rgba(255,255,255,.85);padding:4px 6px;border-radius:3px;pointer-events:none;white-space:pre;line-height:1.45}
.note{font-size:12px;color:#666;margin:4px 0}
.svgs{display:flex;flex-wrap:wrap;gap:12px}.svgs svg{max-width:100%;height:auto;background:#fff;border:1px solid #ddd}
table.metrics{border-collapse:collapse;background:#fff;font-size:13px}
table.metrics td,table.metrics th{border:1px solid #e0e0e0;padding:3px 10px;text-align:right}
table.metrics td:first-child,table.metrics th:first-child{text-align:left}
table.metrics tr.section td{background:#f0f0f0;font-weight:bold;text-align:left}
`;

/** What `htmlPage` puts on a page. */
export interface HtmlPageOptions {
  /** Title of the page and its header. */
  readonly title: string;
  /** Facts printed in the header, in order (`key: value`). */
  readonly facts: Readonly<Record<string, string | number>>;
  /** HTML sections of the page body, in order. */
  readonly sections: readonly string[];
  /** Data embedded as JSON in `<script type="application/json" id="ctm-data">`. */
  readonly data: unknown;
  /** The page's own script (run last). */
  readonly script: string;
  /** Inline the chart library (lightweight-charts) before the script. */
  readonly chartLibrary: boolean;
}

/** A self-contained HTML page: style, header, sections, embedded data and scripts, all inline. */
export function htmlPage(options: HtmlPageOptions): string {
  const facts = Object.entries(options.facts)
    .map(([k, v]) => `<span>${esc(k)}: <b>${esc(String(v))}</b></span>`)
    .join('');
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${esc(options.title)}</title>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><style>${CSS}</style></head><body>` +
    `<header><h1>${esc(options.title)}</h1><div class="facts">${facts}</div></header>` +
    `<main>${options.sections.join('\n')}</main>` +
    `<script type="application/json" id="ctm-data">${scriptJson(options.data)}</script>` +
    (options.chartLibrary
      ? `<script>${chartLibrarySource().replace(/<\/script/gi, '<\\/script')}</script>`
      : '') +
    `<script>${options.script}</script>` +
    `</body></html>\n`
  );
}

/** Rasterises an SVG string to PNG bytes (system fonts; text is skipped when none is installed). */
export function svgToPng(svg: string): Uint8Array {
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    background: '#ffffff',
  });
  return resvg.render().asPng();
}
