// The pattern gallery (`ctm synth gallery`): one PNG chart per pattern type, with the pattern on
// its primary timeframe and its natural expression on the other two (15m, 4h, 1d panels stacked),
// the pattern's span shaded, its key points and the decision time marked, and the volume below.
// It draws what the generator produced: it never changes a candle and never writes outside `outDir`.

import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import {
  lowerBound,
  sliceCandles,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from '../data-processing/candles.js';
import { svgToPng } from '../utils/visualization.js';
import { writeFileAtomicSync } from '../utils/fs.js';
import { createProgress } from '../utils/progress.js';
import {
  generateContinuationPattern,
  generateReversalPattern,
  generateSupportResistanceReaction,
  generateTrendPattern,
  patternFamily,
  PATTERN_TYPES,
  type ContinuationType,
  type GeneratedPattern,
  type PatternType,
  type ReversalType,
  type TrendType,
} from './pattern-generator.js';
import type { BaseProcessParams } from './base-process.js';

/** A time range to mark on a panel. */
interface Span {
  fromMs: number;
  toMs: number;
}

/** Options of `candlestickPanelSvg`. */
export interface CandlePanelOptions {
  /** Panel title (escaped for SVG). */
  title: string;
  /** Panel width in SVG pixels. */
  width: number;
  /** Panel height in SVG pixels. */
  height: number;
  /** Shaded span (the pattern) and a vertical line (the decision time). */
  span?: Span;
  /** Time (UTC ms) of the vertical decision line. */
  decisionTimeMs?: number;
  /** Dots at (time, price). */
  marks?: Array<{ timeMs: number; price: number }>;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmtPrice(v: number): string {
  return v >= 1000 ? v.toFixed(0) : v >= 10 ? v.toFixed(2) : v.toPrecision(4);
}

/**
 * One candlestick panel (price above, volume below) as an SVG group of the given size: candles
 * green up / red down, the span shaded, the decision time as a dashed line, marks as dots.
 */
export function candlestickPanelSvg(c: Candles, o: CandlePanelOptions, offsetY = 0): string {
  const n = c.openTime.length;
  const left = 70;
  const right = o.width - 12;
  const top = offsetY + 26;
  const volH = Math.round(o.height * 0.18);
  const bottom = offsetY + o.height - volH - 18;
  const vTop = bottom + 6;
  const vBottom = offsetY + o.height - 14;
  let s = `<text x="${left}" y="${offsetY + 17}" font-size="14" font-weight="bold" fill="#222">${esc(o.title)}</text>`;
  if (n === 0) return s;
  const barMs = TIMEFRAME_MS[c.timeframe];
  const t0 = c.openTime[0];
  const t1 = c.openTime[n - 1] + barMs;
  let lo = Infinity;
  let hi = -Infinity;
  let vMax = 0;
  for (let i = 0; i < n; i++) {
    lo = Math.min(lo, c.low[i]);
    hi = Math.max(hi, c.high[i]);
    vMax = Math.max(vMax, c.volume[i]);
  }
  const pad = (hi - lo) * 0.04 || hi * 0.01;
  lo -= pad;
  hi += pad;
  const sx = (t: number): number => left + ((t - t0) / (t1 - t0)) * (right - left);
  const sy = (p: number): number => bottom - ((p - lo) / (hi - lo)) * (bottom - top);
  s += `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="#fbfbfd" stroke="#ccc"/>`;
  if (o.span !== undefined) {
    const a = Math.max(left, sx(o.span.fromMs));
    const b = Math.min(right, sx(o.span.toMs));
    if (b > a)
      s += `<rect x="${a.toFixed(1)}" y="${top}" width="${(b - a).toFixed(1)}" height="${vBottom - top}" fill="#3b7dd8" fill-opacity="0.10"/>`;
  }
  for (let k = 0; k <= 4; k++) {
    const p = lo + ((hi - lo) * k) / 4;
    const y = sy(p).toFixed(1);
    s += `<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" stroke="#eee"/>`;
    s += `<text x="${left - 6}" y="${y}" font-size="10" text-anchor="end" fill="#666">${fmtPrice(p)}</text>`;
  }
  const w = Math.max(1, ((right - left) / n) * 0.7);
  for (let i = 0; i < n; i++) {
    const x = sx(c.openTime[i] + barMs / 2);
    const up = c.close[i] >= c.open[i];
    const col = up ? '#26a269' : '#c01c28';
    const yo = sy(c.open[i]);
    const yc = sy(c.close[i]);
    s += `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${sy(c.high[i]).toFixed(1)}" y2="${sy(c.low[i]).toFixed(1)}" stroke="${col}" stroke-width="1"/>`;
    s += `<rect x="${(x - w / 2).toFixed(1)}" y="${Math.min(yo, yc).toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(0.8, Math.abs(yc - yo)).toFixed(1)}" fill="${col}"/>`;
    if (vMax > 0) {
      const vy = vBottom - (c.volume[i] / vMax) * (vBottom - vTop);
      s += `<rect x="${(x - w / 2).toFixed(1)}" y="${vy.toFixed(1)}" width="${w.toFixed(1)}" height="${(vBottom - vy).toFixed(1)}" fill="${col}" fill-opacity="0.45"/>`;
    }
  }
  if (o.decisionTimeMs !== undefined && o.decisionTimeMs >= t0 && o.decisionTimeMs <= t1) {
    const x = sx(o.decisionTimeMs).toFixed(1);
    s += `<line x1="${x}" x2="${x}" y1="${top}" y2="${vBottom}" stroke="#333" stroke-dasharray="4 3"/>`;
    s += `<text x="${x}" y="${top + 12}" font-size="10" fill="#333" text-anchor="end">decision </text>`;
  }
  for (const m of o.marks ?? []) {
    if (m.timeMs < t0 || m.timeMs > t1) continue;
    s += `<circle cx="${sx(m.timeMs - barMs / 2).toFixed(1)}" cy="${sy(m.price).toFixed(1)}" r="3.5" fill="#3b7dd8" stroke="#fff"/>`;
  }
  const fmtT = (t: number): string => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
  s += `<text x="${left}" y="${offsetY + o.height - 2}" font-size="10" fill="#666">${fmtT(t0)}</text>`;
  s += `<text x="${right}" y="${offsetY + o.height - 2}" font-size="10" fill="#666" text-anchor="end">${fmtT(t1)} UTC</text>`;
  return s;
}

/** Bars each panel of the gallery shows, by timeframe. */
const PANEL_BARS: Record<string, number> = { '15m': 160, '4h': 60, '1d': 40 };

function panelCandles(c: Candles, endMs: number, bars: number): Candles {
  const end = Math.min(c.openTime.length, lowerBound(c.openTime, endMs));
  const start = Math.max(0, end - bars);
  return sliceCandles(c, start, end);
}

/**
 * The gallery chart of one generated pattern: three panels (15m, 4h, 1d) stacked, each ending a
 * little after the pattern's resolution, the pattern span shaded and its key points marked.
 * @returns the SVG document
 */
export function patternChartSvg(g: GeneratedPattern): string {
  const width = 1100;
  const panelH = 300;
  const tfs: Timeframe[] = ['15m', '4h', '1d'];
  const frames: Record<string, Candles> = {
    '15m': g.frames.m15,
    '4h': g.frames.h4,
    '1d': g.frames.d1,
  };
  const label = g.label;
  const span = { fromMs: label.onsetTimeMs, toMs: label.completionTimeMs };
  const afterMs = Number.isFinite(label.resolutionTimeMs)
    ? label.resolutionTimeMs
    : label.completionTimeMs;
  const header = `${label.type.replace(/_/g, ' ')} — primary ${label.primaryTimeframe}, expected ${label.expectedDirection > 0 ? 'up' : label.expectedDirection < 0 ? 'down' : 'sideways'}, height ${label.heightAtr.toFixed(1)} ATR`;
  let body = `<text x="14" y="24" font-size="18" font-weight="bold" fill="#111">${esc(header)}</text>`;
  tfs.forEach((tf, k) => {
    const c = frames[tf];
    const barMs = TIMEFRAME_MS[tf];
    const bars = PANEL_BARS[tf];
    // The primary panel shows the whole pattern; lower ones the end of it; higher ones its context.
    const end = Math.max(afterMs, label.completionTimeMs + 0.2 * bars * barMs) + barMs;
    const primary = tf === label.primaryTimeframe;
    const title = `${tf}${primary ? ' (primary timeframe)' : ''}`;
    body += candlestickPanelSvg(
      panelCandles(c, end, bars),
      {
        title,
        width,
        height: panelH,
        span,
        decisionTimeMs: label.completionTimeMs,
        marks: primary
          ? label.keyPoints.filter((p) => p.role !== 'shape' && p.role !== 'start')
          : [],
      },
      40 + k * panelH,
    );
  });
  const height = 40 + tfs.length * panelH + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif"><rect width="100%" height="100%" fill="#fff"/>${body}</svg>`;
}

/** Options of `renderPatternGallery`. */
export interface GalleryOptions {
  /** Seed of the gallery (the k-th type drawn uses seed x 1000 + k). Default 0. */
  seed?: number;
  /** Primary timeframe of every pattern (default 4h: its 15m and 1d expressions are both telling). */
  timeframe?: Timeframe;
  /** Pattern types to draw (default: all). */
  types?: readonly PatternType[];
  /** Base-process parameters. Default the shipped BTC calibration. */
  params?: BaseProcessParams;
}

/** Generates one pattern of a type for the gallery (enough history for 40 daily candles). */
export function galleryPattern(
  type: PatternType,
  tf: Timeframe,
  seed: number,
  params?: BaseProcessParams,
): GeneratedPattern {
  const barsPerDay = 86_400_000 / TIMEFRAME_MS[tf];
  const length = tf === '1d' ? 24 : 44;
  const common = { timeframe: tf, seed, params, historyBars: Math.ceil(34 * barsPerDay) };
  switch (patternFamily(type)) {
    case 'trend':
      return generateTrendPattern(length, type as TrendType, common);
    case 'reversal':
      return generateReversalPattern(length, type as ReversalType, common);
    case 'continuation':
      return generateContinuationPattern(length, type as ContinuationType, common);
    default: {
      const [level, ...rest] = type.split('_');
      return generateSupportResistanceReaction(
        length,
        rest.join('_') as 'bounce' | 'breakout' | 'false_breakout' | 'retest',
        { ...common, level: level as 'support' | 'resistance' },
      );
    }
  }
}

/**
 * Renders one PNG per pattern type into `outDir` (`<type>.png`), plus `index.html` listing them.
 * @returns the files written, relative to `outDir`
 */
export function renderPatternGallery(outDir: string, options: GalleryOptions = {}): string[] {
  mkdirSync(outDir, { recursive: true });
  const types = options.types ?? PATTERN_TYPES;
  const tf = options.timeframe ?? '4h';
  const seed = options.seed ?? 0;
  const written: string[] = [];
  const bar = createProgress('gallery', types.length, { unit: 'charts' });
  try {
    types.forEach((type, k) => {
      const g = galleryPattern(type, tf, seed * 1000 + k, options.params);
      const png = svgToPng(patternChartSvg(g));
      const file = `${type}.png`;
      writeFileAtomicSync(join(outDir, file), png);
      written.push(file);
      bar.tick();
    });
  } finally {
    bar.stop();
  }
  const html = `<!doctype html><meta charset="utf-8"><title>Pattern gallery</title><body style="font-family:sans-serif">${written
    .map((f) => `<h2>${esc(f.replace('.png', ''))}</h2><img src="${f}" width="1100">`)
    .join('')}</body>`;
  writeFileAtomicSync(join(outDir, 'index.html'), html);
  written.push('index.html');
  return written;
}
