// Merging a sweep: the result file of every job (and, with a queue, each job's queue state) become
// the sweep's progress, its summary table ranked by the deflated Sharpe ratio over the true number
// of trials, and runs/<sweep id>/summary.json and report.html (one self-contained page). Reads
// results and metrics only; never runs or enqueues a job.

import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { JobState } from 'bullmq';
import { writeFileAtomic, writeJsonAtomic } from '../utils/fs.js';
import { esc, htmlPage } from '../utils/visualization.js';
import { describeParams, jobDir, sweepDir, type SweepJob, type SweepManifest } from './jobs.js';
import { readResult, type JobResult } from './runner.js';
import { deflatedSharpes, sweepTrials, type ReturnStats } from './stats.js';

/** The queue's view of one job. */
export interface QueuedJobState {
  /** BullMQ state, or `absent` (removed after completing, or lost with Redis's data). */
  readonly state: JobState | 'unknown' | 'absent';
  /** Starts of the job so far (a recovered stalled job counts its new start). */
  readonly starts: number;
  /** Times it was recovered after its worker's lock lapsed. */
  readonly stalled: number;
  /** Why it failed, when it did. */
  readonly failedReason: string | null;
}

/** Where a job stands. */
export type JobStatus = 'done' | 'failed' | 'running' | 'waiting' | 'pending' | 'lost';

/** One job in the summary. */
export interface SweepRow {
  /** Job id. */
  readonly id: string;
  /** Position in the sweep. */
  readonly index: number;
  /** Varied parameters, seed, symbol and fold. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly seed: number | null;
  readonly symbol: string | null;
  readonly fold: number | null;
  /** done / failed (result file or queue), running / waiting (queue), pending (no result, no queue
   * information), lost (neither a result nor a queue entry: re-submit the sweep). */
  readonly status: JobStatus;
  /** Starts of the job (1 = no retry). */
  readonly starts: number;
  /** Wall time of the finished start, seconds. */
  readonly seconds: number | null;
  /** The error line of a failed job. */
  readonly error: string | null;
  /** Run folders, relative to the sweep directory. */
  readonly runs: readonly string[];
  /** Return statistics of its run, when it reports returns. */
  readonly stats: ReturnStats | null;
  /** Deflated Sharpe ratio over the sweep's trials. */
  readonly dsr: number | null;
  /** Values of the summary's extra columns. */
  readonly columns: Readonly<Record<string, number | string | null>>;
}

/** A merged sweep. */
export interface SweepSummary {
  /** Sweep id, name and command. */
  readonly id: string;
  readonly name: string;
  readonly command: readonly string[];
  /** Trials the deflated Sharpe ratios correct for (every job, failures included). */
  readonly trials: number;
  /** Jobs per status. */
  readonly counts: Readonly<Record<JobStatus, number>>;
  /** Extra starts over all jobs (retries and recoveries). */
  readonly retries: number;
  /** Variance of the runs' per-bar Sharpe ratios, and the expected maximum annualised Sharpe
   * ratio of that many unskilled trials (the DSR's benchmark). */
  readonly sharpeVariance: number | null;
  readonly expectedMaxSharpe: number | null;
  /** Extra columns (paths into metrics.json). */
  readonly columns: readonly string[];
  /** Every job, best deflated Sharpe first (then Sharpe, then sweep order; unfinished last). */
  readonly rows: readonly SweepRow[];
  /** True when every job is done or failed. */
  readonly complete: boolean;
}

/** Columns shown for runs without returns (training) when the sweep names none. */
const TRAINING_COLUMNS = ['bestValLoss', 'validation.accuracy', 'test.accuracy'];

function at(obj: unknown, path: string): number | string | null {
  let cur: unknown = obj;
  for (const key of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return null;
    cur = (cur as Record<string, unknown>)[key];
  }
  return typeof cur === 'number' || typeof cur === 'string' ? cur : null;
}

function metricsOf(runsDir: string, job: SweepJob, result: JobResult | null): unknown {
  for (const r of result?.runs ?? []) {
    const f = join(jobDir(runsDir, job.id), r, 'metrics.json');
    if (existsSync(f)) return JSON.parse(readFileSync(f, 'utf8')) as unknown;
  }
  return null;
}

function statusOf(result: JobResult | null, queued: QueuedJobState | undefined): JobStatus {
  if (result !== null) return result.status;
  if (queued === undefined) return 'pending';
  switch (queued.state) {
    case 'active':
      return 'running';
    case 'failed':
      return 'failed';
    case 'absent':
    case 'unknown':
    case 'completed':
      return 'lost';
    default:
      return 'waiting';
  }
}

/**
 * Merges a sweep's results (and, when given, each job's queue state) into its summary.
 * @param queued the queue state per job id (`queuedJobStates`), or undefined for a local sweep
 */
export function summarizeSweep(
  manifest: SweepManifest,
  runsDir: string,
  queued?: ReadonlyMap<string, QueuedJobState>,
): SweepSummary {
  const results = manifest.jobs.map((j) => readResult(runsDir, j.id));
  const metrics = manifest.jobs.map((j, k) => metricsOf(runsDir, j, results[k]));
  const stats = results.map((r) => (r?.status === 'done' ? r.stats : null));
  const trials = sweepTrials(manifest);
  const deflated = deflatedSharpes(stats, trials);
  let columns = [...manifest.columns];
  if (columns.length === 0 && stats.every((s) => s === null))
    columns = TRAINING_COLUMNS.filter((c) => metrics.some((m) => at(m, c) !== null));
  const dir = sweepDir(runsDir, manifest.id);
  const counts: Record<JobStatus, number> = {
    done: 0,
    failed: 0,
    running: 0,
    waiting: 0,
    pending: 0,
    lost: 0,
  };
  let retries = 0;
  const rows: SweepRow[] = manifest.jobs.map((job, k) => {
    const result = results[k];
    const q = queued?.get(job.id);
    const status = statusOf(result, q);
    counts[status]++;
    const starts = Math.max(
      result?.attempt ?? 0,
      q?.starts ?? 0,
      status === 'done' || status === 'failed' ? 1 : 0,
    );
    retries += Math.max(0, starts - 1);
    return {
      id: job.id,
      index: job.index,
      params: job.params,
      seed: job.seed,
      symbol: job.symbol,
      fold: job.fold?.index ?? null,
      status,
      starts,
      seconds: result === null ? null : result.durationMs / 1000,
      error: result?.error ?? (status === 'failed' ? (q?.failedReason ?? null) : null),
      runs: (result?.runs ?? []).map((r) => relative(dir, join(jobDir(runsDir, job.id), r))),
      stats: stats[k],
      dsr: deflated.dsr[k],
      columns: Object.fromEntries(columns.map((c) => [c, at(metrics[k], c)])),
    };
  });
  const rank = (r: SweepRow): number => (r.status === 'done' ? 0 : r.status === 'failed' ? 1 : 2);
  rows.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (b.dsr ?? -Infinity) - (a.dsr ?? -Infinity) ||
      (b.stats?.sharpe ?? -Infinity) - (a.stats?.sharpe ?? -Infinity) ||
      a.index - b.index,
  );
  return {
    id: manifest.id,
    name: manifest.name,
    command: manifest.command,
    trials,
    counts,
    retries,
    sharpeVariance: deflated.variance,
    expectedMaxSharpe: deflated.expectedMaxSharpe,
    columns,
    rows,
    complete: counts.done + counts.failed === manifest.jobs.length,
  };
}

function num(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

function pct(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(2)}%`;
}

function cell(v: number | string | null): string {
  return v === null
    ? '—'
    : typeof v === 'number'
      ? Math.abs(v) >= 1000 || Number.isInteger(v)
        ? String(v)
        : v.toPrecision(4)
      : v;
}

/** The table cells of a row: one string per heading of `tableHeadings`. */
function rowCells(r: SweepRow, columns: readonly string[]): string[] {
  const s = r.stats;
  return [
    r.id,
    describeParams(r),
    r.status,
    num(s?.sharpe, 2),
    num(r.dsr, 3),
    num(s?.psr, 3),
    pct(s?.totalReturn),
    pct(s?.maxDrawdown),
    s?.trades === null || s?.trades === undefined ? '—' : String(s.trades),
    String(r.starts),
    num(r.seconds, 1),
    ...columns.map((c) => cell(r.columns[c] ?? null)),
  ];
}

function tableHeadings(columns: readonly string[]): string[] {
  return [
    'job',
    'parameters',
    'status',
    'Sharpe',
    'DSR',
    'PSR',
    'return',
    'max DD',
    'trades',
    'starts',
    'seconds',
    ...columns,
  ];
}

/** The progress lines and summary table of a sweep, as text for the terminal. */
export function formatSummary(summary: SweepSummary): string {
  const c = summary.counts;
  const lines = [
    `sweep ${summary.id}: ${summary.rows.length} jobs of \`ctm ${summary.command.join(' ')}\``,
    `done ${c.done}, failed ${c.failed}, running ${c.running}, waiting ${c.waiting}` +
      (c.pending > 0 ? `, not started ${c.pending}` : '') +
      (c.lost > 0
        ? `, lost ${c.lost} (neither result nor queue entry: submit the sweep again)`
        : '') +
      `; retries ${summary.retries}`,
    `deflated Sharpe over ${summary.trials} trials (every job, failures included); expected max Sharpe of ${summary.trials} unskilled trials: ${num(summary.expectedMaxSharpe, 2)}`,
  ];
  const head = tableHeadings(summary.columns);
  const body = summary.rows.map((r) => rowCells(r, summary.columns));
  const widths = head.map((h, k) => Math.max(h.length, ...body.map((b) => b[k].length)));
  const fmt = (cells: string[]): string =>
    cells
      .map((x, k) => (k <= 2 ? x.padEnd(widths[k]) : x.padStart(widths[k])))
      .join('  ')
      .trimEnd();
  lines.push('', fmt(head), ...body.map(fmt));
  const failed = summary.rows.filter((r) => r.status === 'failed');
  if (failed.length > 0) {
    lines.push('', 'failures:');
    for (const r of failed)
      lines.push(`  ${r.id} (${describeParams(r)}): ${r.error ?? 'no error recorded'}`);
  }
  return lines.join('\n') + '\n';
}

/** A bar per finished run: its annualised Sharpe ratio, and the DSR's benchmark as a line. */
function sharpeBarsSvg(summary: SweepSummary): string {
  const rows = summary.rows.filter(
    (r) => r.stats?.sharpe !== null && r.stats?.sharpe !== undefined,
  );
  if (rows.length === 0) return '';
  const w = 900;
  const h = 260;
  const left = 50;
  const top = 20;
  const bottom = h - 30;
  const values = rows.map((r) => r.stats!.sharpe!);
  const bench = summary.expectedMaxSharpe;
  const hi = Math.max(0, ...values, bench ?? 0);
  const lo = Math.min(0, ...values);
  const y = (v: number): number => bottom - ((v - lo) / (hi - lo || 1)) * (bottom - top);
  const bw = (w - left - 10) / rows.length;
  let out = `<svg xmlns="http://www.w3.org/2000/svg" id="sweep-sharpe" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">`;
  out += `<text x="${left}" y="12">Annualised Sharpe ratio per run (ranked by DSR); dashed: expected max of ${summary.trials} unskilled trials</text>`;
  out += `<line x1="${left}" x2="${w - 10}" y1="${y(0)}" y2="${y(0)}" stroke="#555"/>`;
  out += `<text x="${left - 4}" y="${y(hi) + 4}" text-anchor="end">${hi.toFixed(2)}</text><text x="${left - 4}" y="${y(lo) + 4}" text-anchor="end">${lo.toFixed(2)}</text>`;
  rows.forEach((r, k) => {
    const v = values[k];
    const x = left + k * bw;
    out += `<rect class="bar" data-job="${esc(r.id)}" x="${(x + 1).toFixed(1)}" y="${Math.min(y(v), y(0)).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${Math.abs(y(v) - y(0)).toFixed(1)}" fill="${v >= 0 ? '#26a69a' : '#ef5350'}"><title>${esc(`${r.id} ${describeParams(r)}: Sharpe ${v.toFixed(2)}, DSR ${num(r.dsr, 3)}`)}</title></rect>`;
  });
  if (bench !== null)
    out += `<line x1="${left}" x2="${w - 10}" y1="${y(bench).toFixed(1)}" y2="${y(bench).toFixed(1)}" stroke="#2962ff" stroke-dasharray="6 4"/>`;
  return out + '</svg>';
}

/** The self-contained HTML page of a sweep summary (the summary is embedded as JSON too). */
export function renderSweepReport(summary: SweepSummary): string {
  const c = summary.counts;
  const head = tableHeadings(summary.columns);
  const body = summary.rows
    .map((r) => {
      const cells = rowCells(r, summary.columns).map((x) => `<td>${esc(x)}</td>`);
      const report = r.runs.map((run) => join(run, 'report.html'))[0];
      if (report !== undefined) cells[0] = `<td><a href="${esc(report)}">${esc(r.id)}</a></td>`;
      return `<tr class="${r.status}">${cells.join('')}</tr>`;
    })
    .join('\n');
  const failures = summary.rows
    .filter((r) => r.status === 'failed')
    .map(
      (r) =>
        `<tr><td>${esc(r.id)}</td><td>${esc(describeParams(r))}</td><td>${esc(r.error ?? '')}</td></tr>`,
    )
    .join('');
  const sections = [
    '<style>table.metrics td:nth-child(2),table.metrics th:nth-child(2),table.metrics td:nth-child(3){text-align:left}tr.failed td{color:#b71c1c}</style>',
    `<p class="note">Runs ranked by the deflated Sharpe ratio (Bailey &amp; López de Prado): the probability that a run's true Sharpe ratio exceeds the best one expected from ${summary.trials} trials without skill; every job of the sweep counts as a trial, failed and unfinished ones included.</p>`,
    `<div class="svgs">${sharpeBarsSvg(summary)}</div>`,
    `<h2>Runs</h2><table class="metrics" id="sweep-runs"><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>\n${body}</table>`,
  ];
  if (failures !== '')
    sections.push(
      `<h2>Failures</h2><table class="metrics" id="sweep-failures"><tr><th>job</th><th>parameters</th><th>error</th></tr>${failures}</table>`,
    );
  return htmlPage({
    title: `Sweep ${summary.id}`,
    facts: {
      command: `ctm ${summary.command.join(' ')}`,
      jobs: summary.rows.length,
      done: c.done,
      failed: c.failed,
      unfinished: c.running + c.waiting + c.pending + c.lost,
      retries: summary.retries,
      'trials (DSR)': summary.trials,
      'expected max Sharpe': num(summary.expectedMaxSharpe, 2),
    },
    sections,
    data: summary,
    script: '',
    chartLibrary: false,
  });
}

/**
 * Writes runs/<sweep id>/summary.json and report.html (atomically); returns their paths.
 */
export async function writeSweepSummary(
  runsDir: string,
  summary: SweepSummary,
): Promise<{ json: string; html: string }> {
  const dir = sweepDir(runsDir, summary.id);
  const json = join(dir, 'summary.json');
  const html = join(dir, 'report.html');
  await writeJsonAtomic(json, summary);
  await writeFileAtomic(html, renderSweepReport(summary));
  return { json, html };
}

/**
 * Merges a sweep (`summarizeSweep`) and writes its summary.json and report.html.
 * @param queued the queue state per job id, or undefined for a local sweep
 */
export async function mergeSweep(
  manifest: SweepManifest,
  runsDir: string,
  queued?: ReadonlyMap<string, QueuedJobState>,
): Promise<{ summary: SweepSummary; json: string; html: string }> {
  const summary = summarizeSweep(manifest, runsDir, queued);
  return { summary, ...(await writeSweepSummary(runsDir, summary)) };
}
