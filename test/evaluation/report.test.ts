// The report: what the page is drawn from (grouping, exact trade markers, higher-timeframe candles
// as known at each decision), the SVG figures and PNGs, `ctm report` on a training run, and the page
// itself in a real headless Chromium: no console errors, and every chart holds the run's data.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, openReport } from '../helpers/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timeframeMs } from '../../src/data-processing/candles.js';
import {
  backtestReportInput,
  backtestStrategy,
  type BacktestResult,
} from '../../src/evaluation/backtest.js';
import { smaCrossPolicy } from '../../src/evaluation/baselines.js';
import { defaultConfig } from '../../src/utils/config.js';
import { createRun } from '../../src/utils/runs.js';
import {
  buildBacktestPayload,
  DEFAULT_REPORT_OPTIONS,
  findConfusionMatrices,
  payloadSvgs,
  reportRun,
  writeReport,
  type ReportPayload,
} from '../../src/evaluation/report.js';
import { smaFeatures, walkCandles } from './fixtures.js';

// The page functions below run in the browser; the project compiles without the DOM library, so
// the few browser globals they touch are declared here.
interface PageElement {
  readonly textContent: string | null;
}
declare const document: {
  querySelectorAll(selector: string): { readonly length: number };
  querySelector(selector: string): PageElement | null;
  getElementById(id: string): PageElement | null;
};
declare const window: unknown;

const OPTIONS = { ...DEFAULT_REPORT_OPTIONS, maxCandles: 1000, pngWidth: 600, pngHeight: 300 };

function backtest(): BacktestResult {
  const c = walkCandles(6000, { seed: 4 }); // 62.5 days of 15m bars from 2023-01-01
  const f = smaFeatures(c);
  return backtestStrategy({
    policy: smaCrossPolicy(f, { fastFeature: 'close_sma_10', slowFeature: 'close_sma_20' }),
    data: f,
    transactionCost: 0.001,
    closeAtEnd: false,
  });
}

const result = backtest();
const payload = buildBacktestPayload(
  backtestReportInput(result, 'SMA cross', { policy: 'sma-cross' }),
  OPTIONS,
);
const price = payload.price!;

describe('report payload', () => {
  it('groups long runs into at most maxCandles candles, aggregating OHLC exactly', () => {
    const n = result.rows;
    const group = Math.ceil(n / 1000);
    expect(price.group).toBe(group);
    expect(price.candles.t).toHaveLength(Math.ceil(n / group));
    const c = result.candles;
    for (const g of [0, 1, 500, price.candles.t.length - 1]) {
      const a = g * group;
      const b = Math.min(n, a + group) - 1;
      expect(price.candles.t[g]).toBe(c.openTime[a] / 1000);
      expect(price.candles.o[g]).toBe(Number(c.open[a].toPrecision(10)));
      expect(price.candles.c[g]).toBe(Number(c.close[b].toPrecision(10)));
      expect(price.candles.h[g]).toBe(
        Number(Math.max(...c.high.subarray(a, b + 1)).toPrecision(10)),
      );
      expect(price.candles.l[g]).toBe(
        Number(Math.min(...c.low.subarray(a, b + 1)).toPrecision(10)),
      );
    }
  });

  it('keeps one marker per entry and exit with its exact fill time and price, on the candle containing it', () => {
    const closed = result.trades.length;
    const open = result.openTrade === null ? 0 : 1;
    expect(price.markers.t).toHaveLength(2 * closed + open);
    const entries = result.trades
      .map((t) => t.entryTimeMs)
      .concat(result.openTrade ? [result.openTrade.entryTimeMs] : []);
    const exits = result.trades.map((t) => t.exitTimeMs);
    expect([...price.markers.ms].sort((a, b) => a - b)).toEqual(
      [...entries, ...exits].sort((a, b) => a - b),
    );
    const tradePrices = new Set([
      ...result.trades.flatMap((t) => [t.entryPrice, t.exitPrice]),
      ...(result.openTrade ? [result.openTrade.entryPrice] : []),
    ]);
    const fills = Array.from({ length: result.fills.length }, (_, i) => result.fills.price[i]);
    for (let k = 0; k < price.markers.t.length; k++) {
      const t = price.markers.t[k] * 1000;
      expect(t).toBeLessThanOrEqual(price.markers.ms[k]);
      expect(price.markers.ms[k] - t).toBeLessThan(price.group * timeframeMs('15m'));
      // The trade's own (volume-weighted) price, which for one-fill legs is the fill price to 1e-12.
      const p = price.markers.price[k];
      expect(tradePrices.has(p)).toBe(true);
      expect(fills.some((f) => Math.abs(f - p) <= 1e-12 * p)).toBe(true);
    }
  });

  it('shows each higher candle only from the drawn bar at whose end it had closed (as known then)', () => {
    const barMs = timeframeMs('15m');
    for (const h of price.higher) {
      const tfMs = timeframeMs(h.timeframe);
      expect(h.t.length).toBeGreaterThan(0);
      for (let j = 0; j < h.t.length; j++) {
        const drawnBarEnd = h.t[j] * 1000 + price.group * barMs;
        expect(h.openMs[j] + tfMs).toBeLessThanOrEqual(drawnBarEnd);
        if (j > 0) expect(h.openMs[j]).toBeGreaterThan(h.openMs[j - 1]);
      }
    }
    // 62 days: every 4h candle closed in the range appears (15m rows are contiguous here).
    const h4 = price.higher.find((h) => h.timeframe === '4h')!;
    expect(h4.t.length).toBeGreaterThan(6 * 60);
  });

  it('lists the worst drawdowns (the deepest is the max drawdown) and a rolling 30-day Sharpe', () => {
    const m = result.metrics;
    expect(payload.drawdowns).toHaveLength(Math.min(5, m.drawdown.drawdownCount as number));
    expect(payload.drawdowns[0].depth).toBeCloseTo(m.drawdown.maxDrawdown as number, 9);
    for (const d of payload.drawdowns) {
      expect(d.valleyMs).toBeGreaterThan(d.peakMs);
      if (d.recoveryMs !== null) expect(d.recoveryMs).toBeGreaterThan(d.valleyMs);
    }
    const rs = payload.equity!.rollingSharpe;
    expect(rs).toHaveLength(price.candles.t.length);
    // 30 days = 2880 bars: no value before a full window, values after.
    const firstValue = rs.findIndex((x) => x !== null);
    expect(firstValue * price.group).toBeGreaterThanOrEqual(2880 - price.group);
    expect(rs[rs.length - 1]).not.toBeNull();
  });

  it('draws one heatmap cell per month, one histogram count per day and one dot per closed trade', () => {
    const svgs = payloadSvgs(payload, OPTIONS);
    const count = (svg: string, re: RegExp): number => (svg.match(re) ?? []).length;
    expect(count(svgs['monthly-returns'], /<rect class="cell"/g)).toBe(payload.monthly.length);
    expect(payload.monthly.map((m) => m.period)).toEqual(['2023-01', '2023-02', '2023-03']);
    const counts = [...svgs['returns-distribution'].matchAll(/data-count="(\d+)"/g)].map((m) =>
      Number(m[1]),
    );
    expect(counts).toHaveLength(OPTIONS.histogramBins);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(payload.dailyReturns.length);
    expect(count(svgs.trades, /<circle class="trade"/g)).toBe(result.trades.length);
  });
});

describe('confusion matrices of a run', () => {
  it('finds the trainer’s flat confusion counts (row = true class) and labelled matrices', () => {
    const found = findConfusionMatrices({
      bestEpoch: 3,
      validation: { confusion: [40, 12, 8, 10, 60, 12, 6, 14, 50] },
      test: {
        confusionMatrix: {
          labels: ['a', 'b'],
          matrix: [
            [1, 2],
            [3, 4],
          ],
        },
      },
    });
    expect(found.map((c) => c.name)).toEqual(['validation', 'test']);
    expect(found[0].labels).toEqual(['down', 'flat', 'up']);
    expect(found[0].matrix[1]).toEqual([10, 60, 12]);
    expect(found[1].matrix).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });
});

/** Width and height of a PNG from its IHDR chunk. */
function pngSize(file: string): [number, number] {
  const b = readFileSync(file);
  expect(b.subarray(1, 4).toString('latin1')).toBe('PNG');
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

describe('report in a real browser (headless Chromium)', () => {
  let context: BrowserContext;
  const root = mkdtempSync(join(tmpdir(), 'ctm-report-'));
  const shots = mkdtempSync(join(tmpdir(), 'ctm-shots-'));
  const backtestDir = join(root, 'backtest');
  mkdirSync(backtestDir);
  const written = writeReport(backtestDir, payload, OPTIONS);

  // A training run: history.jsonl and a metrics.json with two confusion matrices, one as the
  // trainer writes it (flat 3 x 3 counts, row = true class) and one as { labels, matrix }.
  const config = defaultConfig();
  config.paths.runs = join(root, 'runs');
  const train = createRun({ kind: 'train-model', config, commandLine: ['train', 'model'] });
  for (let s = 1; s <= 30; s++)
    train.logHistory(s, {
      loss: 1 / s,
      valLoss: 1.2 / s,
      accuracy: 0.3 + s / 100,
      entropy: 1 - s / 60,
      approxKl: 0.01 * s,
    });
  train.writeMetrics({
    validation: { accuracy: 0.55, confusion: [40, 12, 8, 10, 60, 12, 6, 14, 50] },
    test: {
      accuracy: 0.61,
      confusionMatrix: {
        labels: ['down', 'flat', 'up'],
        matrix: [
          [50, 10, 5],
          [8, 70, 9],
          [4, 11, 60],
        ],
      },
    },
  });
  const trainWritten = reportRun(train, OPTIONS);

  beforeAll(async () => {
    context = await launchChromium();
  });
  afterAll(async () => {
    await context?.close();
  });

  const open = (file: string): Promise<{ page: Page; errors: string[] }> =>
    openReport(context, file);

  it('writes the key plots as PNG files of the configured size', () => {
    for (const name of [
      'equity',
      'drawdown',
      'monthly-returns',
      'returns-distribution',
      'trades',
      'price',
    ])
      expect(written.pngs).toContain(`${name}.png`);
    expect(pngSize(join(backtestDir, 'equity.png'))).toEqual([600, 300]);
    expect(trainWritten.pngs).toContain('confusion-matrix-validation.png');
    expect(trainWritten.pngs).toContain('confusion-matrix-test.png');
    expect(trainWritten.pngs.filter((p) => p.startsWith('training-'))).toHaveLength(4);
  });

  it('draws the backtest: candles, higher timeframes, markers, position, equity, drawdown, figures, no errors', async () => {
    const { page, errors } = await open(join(backtestDir, 'report.html'));
    const drawn = await page.evaluate(() => {
      type Series = { data(): unknown[] };
      const r = (
        window as unknown as {
          ctmReport: {
            series: {
              candles: Series;
              higher: Record<string, Series>;
              position: Series;
              equity: Series;
              benchmark: Series;
              underwater: Series;
              rollingSharpe: Series;
            };
            markers: { markers(): unknown[] };
            charts: {
              price: { panes(): unknown[] };
              equity: { panes(): Array<{ getSeries(): unknown[] }> };
            };
          };
        }
      ).ctmReport;
      return {
        candles: r.series.candles.data().length,
        h4: r.series.higher['4h'].data().length,
        d1: r.series.higher['1d'].data().length,
        markers: r.markers.markers().length,
        position: r.series.position.data().length,
        equity: r.series.equity.data().length,
        benchmark: r.series.benchmark.data().length,
        underwater: r.series.underwater.data().length,
        rollingSharpe: r.series.rollingSharpe.data().length,
        drawdownRows: document.querySelectorAll('#drawdown-table tbody tr').length,
        pricePanes: r.charts.price.panes().length,
        equitySeries: r.charts.equity.panes()[0].getSeries().length,
        canvases: document.querySelectorAll('#price-chart canvas').length,
        cells: document.querySelectorAll('#monthly-heatmap rect.cell').length,
        dots: document.querySelectorAll('#trade-scatter circle.trade').length,
        bins: document.querySelectorAll('#returns-distribution rect.bin').length,
        metricRows: document.querySelectorAll('#metrics-table tr[data-metric]').length,
        sharpeCell: document.querySelector(
          '#metrics-table tr[data-metric="returns.sharpe"] td:nth-child(2)',
        )?.textContent,
        legend: document.getElementById('price-legend')?.textContent ?? '',
      };
    });
    await page.screenshot({ path: join(shots, 'backtest.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(drawn.candles).toBe(price.candles.t.length);
    expect(drawn.h4).toBe(price.higher[0].t.length);
    expect(drawn.d1).toBe(price.higher[1].t.length);
    expect(drawn.markers).toBe(2 * result.trades.length + (result.openTrade === null ? 0 : 1));
    expect(drawn.position).toBe(price.candles.t.length);
    expect([drawn.equity, drawn.benchmark, drawn.underwater]).toEqual(
      Array(3).fill(price.candles.t.length),
    );
    // Whitespace while the 30-day window fills is not data: one point per computed value.
    expect(drawn.rollingSharpe).toBe(
      payload.equity!.rollingSharpe.filter((x) => x !== null).length,
    );
    expect(drawn.drawdownRows).toBe(payload.drawdowns.length);
    expect(drawn.pricePanes).toBe(4); // 15m, 4h as known, 1d as known, position
    expect(drawn.equitySeries).toBe(2); // strategy and buy-and-hold
    expect(drawn.canvases).toBeGreaterThan(0);
    expect(drawn.cells).toBe(payload.monthly.length);
    expect(drawn.dots).toBe(result.trades.length);
    expect(drawn.bins).toBe(OPTIONS.histogramBins);
    expect(drawn.metricRows).toBeGreaterThan(50);
    expect(drawn.sharpeCell).toBe((result.metrics.returns.sharpe as number).toFixed(3));
    expect(drawn.legend).toMatch(/4h last closed \(opened .*\)/);
    expect(existsSync(join(shots, 'backtest.png'))).toBe(true);
  });

  it('draws a training run: one chart per curve group and its confusion matrices', async () => {
    const { page, errors } = await open(train.path('report.html'));
    const drawn = await page.evaluate(() => ({
      panels: document.querySelectorAll('#training-curves svg').length,
      lines: document.querySelectorAll('#training-curves path.series').length,
      cells: document.querySelectorAll('#confusion-matrices rect.cm-cell').length,
      validationTitle: document.querySelector('#confusion-matrix-validation text')?.textContent,
      summary: document.querySelector(
        '#summary-table tr[data-metric="test.accuracy"] td:nth-child(2)',
      )?.textContent,
    }));
    await page.screenshot({ path: join(shots, 'training.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(drawn.panels).toBe(4); // loss (+ valLoss), accuracy, entropy, KL
    expect(drawn.lines).toBe(5);
    expect(drawn.cells).toBe(18);
    expect(drawn.validationTitle).toMatch(/Confusion matrix, validation/);
    expect(drawn.summary).toBe('0.610000');
  });

  it('needs nothing but the file: the data and chart library are inlined', () => {
    const html = readFileSync(join(backtestDir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+href=/);
    const data = JSON.parse(
      readFileSync(join(backtestDir, 'report-data.json'), 'utf8'),
    ) as ReportPayload;
    expect(data.price?.candles.t).toHaveLength(price.candles.t.length);
    writeFileSync(join(root, 'ok'), '');
  });
});
