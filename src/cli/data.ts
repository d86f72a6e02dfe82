// `ctm data ...`: import, info, export and download of candles. A thin layer: each command parses
// its options, resolves the config, calls one library function and prints a short summary on
// stdout. Errors go through `action()` (one line, exit 2 usage / 3 bad data / 4 network).

import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import {
  parseTimeframe,
  TIMEFRAME_MS,
  type Gap,
  type Timeframe,
} from '../data-processing/candles.js';
import { importCandleFile } from '../data-processing/data-loader.js';
import { downloadCandles } from '../data-processing/exchange.js';
import { CandleStore, type SeriesCoverage } from '../data-processing/store.js';
import type { Config } from '../utils/config.js';
import {
  action,
  dateOption,
  listOption,
  resolveConfig,
  symbolOption,
  withCommonOptions,
  type CommonOptions,
} from './common.js';

/** `2021-03-04 05:15` (UTC, minutes; seconds and ms shown only when present). */
function when(ms: number): string {
  const iso = new Date(ms).toISOString();
  const trimmed = iso.endsWith(':00.000Z') ? iso.slice(0, 16) : iso.slice(0, -1);
  return trimmed.replace('T', ' ');
}

/** A duration as `1d9h30m`. */
function duration(ms: number): string {
  const parts: string[] = [];
  let rest = Math.round(ms / 60_000);
  const d = Math.floor(rest / 1440);
  rest -= d * 1440;
  const h = Math.floor(rest / 60);
  const m = rest - h * 60;
  if (d > 0) parts.push(`${d}d`);
  if (h > 0) parts.push(`${h}h`);
  if (m > 0 || parts.length === 0) parts.push(`${m}m`);
  return parts.join('');
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** `1 gap`, `3 gaps`. */
function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${count(n)} ${n === 1 ? noun : nouns}`;
}

function describeGap(g: Gap, tf: Timeframe): string {
  const bars = g.missingBars === 1 ? '1 bar' : `${count(g.missingBars)} bars`;
  return `${duration(g.nextOpenTime - g.afterOpenTime - TIMEFRAME_MS[tf])} (${bars}) after ${when(g.afterOpenTime)}`;
}

interface ImportOptions extends CommonOptions {
  symbol: string;
  timeframe: string;
  exchange?: string;
  format?: string;
  repair?: boolean;
  rejectGaps?: boolean;
}

interface InfoOptions extends CommonOptions {
  exchange?: string;
  symbol?: string;
  timeframe?: string;
  gaps?: boolean;
  json?: boolean;
}

interface ExportOptions extends CommonOptions {
  symbol: string;
  timeframe: string;
  out: string;
  exchange?: string;
  from?: string;
  to?: string;
}

interface DownloadCliOptions extends CommonOptions {
  exchange?: string;
  symbols?: string;
  timeframes?: string;
  since?: string;
  until?: string;
  repair?: boolean;
}

function dataOverrides(opts: {
  repair?: boolean;
  rejectGaps?: boolean;
}): Record<string, unknown>[] {
  const data: Record<string, unknown> = {};
  if (opts.repair === true) data.repair = true;
  if (opts.rejectGaps === true) data.rejectGaps = true;
  return Object.keys(data).length > 0 ? [{ data }] : [];
}

async function runImport(file: string, opts: ImportOptions): Promise<void> {
  const config: Config = resolveConfig(opts, dataOverrides(opts));
  const symbol = symbolOption(opts.symbol);
  const timeframe = parseTimeframe(opts.timeframe, file);
  const exchange = opts.exchange ?? config.data.exchange;
  const store = await CandleStore.open(config.paths.store);
  try {
    const r = await importCandleFile(store, file, {
      exchange,
      symbol,
      timeframe,
      format: opts.format,
      repair: config.data.repair,
      rejectGaps: config.data.rejectGaps,
    });
    const w = r.written;
    const out = [
      `imported ${exchange} ${symbol} ${timeframe} from ${file} (${r.layout}, time in ${r.timeUnit === 'iso' ? 'ISO-8601 dates' : `epoch ${r.timeUnit}`})`,
      `  ${count(w.rows)} candles ${when(r.firstOpenTime)} .. ${when(r.lastOpenTime)} UTC: ${count(w.added)} added, ${count(w.changed)} changed, ${count(w.unchanged)} unchanged`,
      `  gaps: ${w.gaps.count === 0 ? 'none' : `${count(w.gaps.count)} (${plural(w.gaps.missingBars, 'missing candle')}), largest ${describeGap(w.gaps.largest!, timeframe)}`}`,
    ];
    if (config.data.repair) {
      const offGrid = r.repairs.filter((a) => a.action === 'dropped-off-grid').length;
      out.push(
        `  repaired: ${plural(r.repairs.length, 'row')} dropped (${count(offGrid)} off the ${timeframe} grid, ${count(r.repairs.length - offGrid)} exact duplicates), each logged`,
      );
    }
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    store.close();
  }
}

function infoLines(coverage: SeriesCoverage[], showGaps: boolean): string[] {
  const header = [
    'exchange',
    'symbol',
    'tf',
    'candles',
    'first (UTC)',
    'last (UTC)',
    'missing',
    'gaps',
    'largest gap',
    'last write',
  ];
  const rows = coverage.map((c) => [
    c.exchange,
    c.symbol,
    c.timeframe,
    count(c.rows),
    when(c.firstOpenTime),
    when(c.lastOpenTime),
    count(c.gaps.missingBars),
    count(c.gaps.count),
    c.gaps.largest === null ? '-' : describeGap(c.gaps.largest, c.timeframe),
    c.lastIngest === null
      ? '-'
      : `${c.lastIngest.kind} ${new Date(c.lastIngest.atMs).toISOString().slice(0, 16).replace('T', ' ')}${c.pending === null ? '' : ' (download interrupted: rerun to finish)'}`,
  ]);
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const fmt = (r: string[]): string =>
    r
      .map((v, k) =>
        k >= 3 && k <= 7 && k !== 4 && k !== 5 ? v.padStart(widths[k]) : v.padEnd(widths[k]),
      )
      .join('  ')
      .trimEnd();
  const out = [fmt(header), ...rows.map(fmt)];
  for (const c of coverage) {
    if (c.duplicates > 0)
      out.push(
        `warning: ${c.exchange} ${c.symbol} ${c.timeframe} holds ${c.duplicates} duplicate open times`,
      );
    if (showGaps && c.gaps.count > 0) {
      out.push(`gaps of ${c.exchange} ${c.symbol} ${c.timeframe}:`);
      for (const g of c.gaps.gaps)
        out.push(
          `  ${when(g.afterOpenTime)} -> ${when(g.nextOpenTime)}  ${count(g.missingBars)} missing`,
        );
    }
  }
  return out;
}

async function runInfo(opts: InfoOptions): Promise<void> {
  const config = resolveConfig(opts);
  const filter = {
    ...(opts.exchange === undefined ? {} : { exchange: opts.exchange }),
    ...(opts.symbol === undefined ? {} : { symbol: symbolOption(opts.symbol) }),
    ...(opts.timeframe === undefined ? {} : { timeframe: parseTimeframe(opts.timeframe) }),
  };
  let store: CandleStore;
  try {
    store = await CandleStore.open(config.paths.store, { readOnly: true });
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('no store at')) {
      if (opts.json === true) process.stdout.write('[]\n');
      else
        process.stdout.write(
          `${err.message}: nothing stored yet (ctm data import / ctm data download)\n`,
        );
      return;
    }
    throw err;
  }
  try {
    const coverage = await store.coverage(filter);
    if (opts.json === true) {
      process.stdout.write(
        JSON.stringify(
          { store: store.path, checksum: await store.checksum(filter), series: coverage },
          null,
          2,
        ) + '\n',
      );
      return;
    }
    if (coverage.length === 0) {
      process.stdout.write(
        `store ${store.path}: no series${Object.keys(filter).length > 0 ? ' match' : ''}\n`,
      );
      return;
    }
    process.stdout.write(
      [`store ${store.path}`, ...infoLines(coverage, opts.gaps === true)].join('\n') + '\n',
    );
  } finally {
    store.close();
  }
}

async function runExport(opts: ExportOptions): Promise<void> {
  const config = resolveConfig(opts);
  const key = {
    exchange: opts.exchange ?? config.data.exchange,
    symbol: symbolOption(opts.symbol),
    timeframe: parseTimeframe(opts.timeframe),
  };
  const range = { fromMs: dateOption(opts.from, 'from'), toMs: dateOption(opts.to, 'to') };
  const store = await CandleStore.open(config.paths.store, { readOnly: true });
  try {
    const r = await store.exportSeries(key, opts.out, range);
    process.stdout.write(
      `exported ${count(r.rows)} candles of ${key.exchange} ${key.symbol} ${key.timeframe} to ${r.path} (${r.format})\n`,
    );
  } finally {
    store.close();
  }
}

async function runDownload(opts: DownloadCliOptions): Promise<void> {
  const config = resolveConfig(opts, dataOverrides(opts));
  const exchange = opts.exchange ?? config.data.exchange;
  const symbols = (opts.symbols === undefined ? config.data.symbols : listOption(opts.symbols)).map(
    symbolOption,
  );
  const timeframes = (
    opts.timeframes === undefined ? config.data.timeframes : listOption(opts.timeframes)
  ).map((tf) => parseTimeframe(tf));
  const sinceMs = dateOption(opts.since ?? config.data.startDate ?? undefined, 'since') ?? null;
  const untilMs = dateOption(opts.until ?? config.data.endDate ?? undefined, 'until') ?? null;
  if (sinceMs !== null && untilMs !== null && untilMs <= sinceMs) {
    throw new UsageError('--until must be after --since');
  }
  const store = await CandleStore.open(config.paths.store);
  try {
    const reports = await downloadCandles(store, {
      exchange,
      symbols,
      timeframes,
      sinceMs,
      untilMs,
      settings: config.data.download,
      repair: config.data.repair,
      rejectGaps: config.data.rejectGaps,
      seed: config.seed,
    });
    for (const r of reports) {
      const span =
        r.firstOpenTime === null || r.lastOpenTime === null
          ? 'nothing stored'
          : `stored ${when(r.firstOpenTime)} .. ${when(r.lastOpenTime)} UTC, ${r.gaps.count === 0 ? 'no gaps' : `${plural(r.gaps.count, 'gap')} (${plural(r.gaps.missingBars, 'missing candle')})`}`;
      process.stdout.write(
        `${exchange} ${r.symbol} ${r.timeframe}: ${count(r.added)} added, ${count(r.changed)} changed, ${plural(r.pages, 'page')}, ${plural(r.retries, 'retry', 'retries')}${r.repaired > 0 ? `, ${plural(r.repaired, 'row')} dropped by repair` : ''}; ${span}\n`,
      );
    }
  } finally {
    store.close();
  }
}

/** Registers `ctm data import | info | export | download`. */
export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('candle store: import, download, info, export');
  withCommonOptions(
    data
      .command('import')
      .description(
        'validate a candle file (CSV, CSV.gz, JSON, Parquet) and upsert it into the store',
      )
      .argument('<file>', 'candle file')
      .requiredOption('--symbol <symbol>', 'ccxt unified symbol, e.g. BTC/USDT')
      .requiredOption('--timeframe <tf>', 'timeframe of the file, e.g. 15m')
      .option('--exchange <id>', 'exchange the candles come from (default: config data.exchange)')
      .option('--format <format>', 'csv | json | parquet (default: from the extension)')
      .option(
        '--repair',
        'drop exact duplicate and off-grid rows, logging each (config data.repair)',
      )
      .option('--reject-gaps', 'refuse a file with gaps (config data.rejectGaps)'),
  ).action(action((file: string, opts: ImportOptions) => runImport(file, opts)));

  withCommonOptions(
    data
      .command('info')
      .description('coverage and gaps of every stored series')
      .option('--exchange <id>', 'only this exchange')
      .option('--symbol <symbol>', 'only this symbol')
      .option('--timeframe <tf>', 'only this timeframe')
      .option('--gaps', 'list every gap')
      .option('--json', 'print JSON (coverage, gaps and a content checksum)'),
  ).action(action((opts: InfoOptions) => runInfo(opts)));

  withCommonOptions(
    data
      .command('export')
      .description('write one stored series to .csv, .csv.gz or .parquet')
      .requiredOption('--symbol <symbol>', 'ccxt unified symbol')
      .requiredOption('--timeframe <tf>', 'timeframe')
      .requiredOption('--out <file>', 'output file (.csv, .csv.gz or .parquet)')
      .option('--exchange <id>', 'exchange (default: config data.exchange)')
      .option('--from <date>', 'first open time included (UTC)')
      .option('--to <date>', 'first open time excluded (UTC)'),
  ).action(action((opts: ExportOptions) => runExport(opts)));

  withCommonOptions(
    data
      .command('download')
      .description(
        'incremental ccxt download into the store (resumes after the last stored candle)',
      )
      .option('--exchange <id>', 'ccxt exchange id (default: config data.exchange)')
      .option('--symbols <list>', 'comma-separated ccxt symbols (default: config data.symbols)')
      .option('--timeframes <list>', 'comma-separated timeframes (default: config data.timeframes)')
      .option('--since <date>', 'first open time wanted, UTC (default: config data.startDate)')
      .option('--until <date>', 'first open time not wanted, UTC (default: the last closed candle)')
      .option('--repair', 'drop off-grid and duplicated rows, logging each (config data.repair)'),
  ).action(action((opts: DownloadCliOptions) => runDownload(opts)));
}
