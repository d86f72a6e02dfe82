// `ctm compare`: runs policies (rule baselines, user modules and trained runs alike) on a
// scenario's markets through the one backtester and broker, and summarises them honestly: per
// policy the mean and spread of return, Sharpe, maximum drawdown, turnover and fee drag over every
// (policy seed x market) sample, random always over several seeds, and each policy's paired
// difference in return to spot buy-and-hold and to random with "beats" meaning ahead by more than
// two standard errors. Writes a run folder with metrics.json and an HTML page. Knows no model kind:
// policies come from the one resolver.

import { TIMEFRAME_MS } from '../data-processing/candles.js';
import { UsageError } from '../errors.js';
import type { Config } from '../utils/config.js';
import { createProgress } from '../utils/progress.js';
import { countTrials, createRun, withRun, type Run } from '../utils/runs.js';
import { emptyReportPayload, writeRunReport, type ComparisonPayload } from './report.js';
import { backtestStrategy } from './backtest.js';
import type { PolicyContext, ResolvedPolicy } from './baselines.js';
import { meanSpread, type MeanSpread } from './metrics.js';
import type { BrokerConfig } from './broker.js';
import type { Policy } from './policy.js';
import {
  scenarioFingerprint,
  scenarioMarkets,
  type ScenarioMarket,
  type ScenarioSplit,
} from './scenarios.js';

/** The figures compared, per sample. */
export const COMPARE_METRICS = [
  'totalReturn',
  'sharpe',
  'maxDrawdown',
  'turnover',
  'feeDrag',
] as const;
/** One compared figure. */
export type CompareMetric = (typeof COMPARE_METRICS)[number];

/** The reference every policy is held to: spot buy-and-hold and random (over seeds). */
export const COMPARE_REFERENCES = ['spot-buy-hold', 'random'] as const;

/** A policy of the comparison: a label and one reference per seed. */
export interface ComparePolicySpec {
  /** Name in the table. */
  readonly label: string;
  /**
   * What to resolve (a baseline name, a run directory or id, a module path); several references
   * are seeds of one policy (e.g. three training runs). `random` alone expands to its seeds.
   */
  readonly refs: readonly string[];
}

/**
 * Parses `--policies`: comma-separated references, each `REF` or `LABEL=REF+REF+...` (several
 * runs as the seeds of one policy).
 * @throws {UsageError} for an empty list, an empty label or reference, or a label given twice.
 */
export function parsePolicyList(list: string): ComparePolicySpec[] {
  const specs = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((item) => {
      const eq = item.indexOf('=');
      const label = (eq < 0 ? item : item.slice(0, eq)).trim();
      const refs = (eq < 0 ? item : item.slice(eq + 1))
        .split('+')
        .map((r) => r.trim())
        .filter((r) => r !== '');
      if (label === '' || refs.length === 0)
        throw new UsageError(`--policies item "${item}" has an empty label or reference`, {
          hint: 'write REF or LABEL=RUN1+RUN2+RUN3',
        });
      return { label, refs };
    });
  if (specs.length === 0) throw new UsageError('--policies names no policy');
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.label)) throw new UsageError(`--policies names ${s.label} twice`);
    seen.add(s.label);
  }
  return specs;
}

/** Options of `comparePolicies`. */
export interface CompareOptions {
  /** The resolved config (scenarios, broker, backtest). */
  readonly config: Config;
  /** Scenario whose markets the policies run on. */
  readonly scenario: string;
  /** The policies; spot buy-and-hold and random are added when missing (they are the references). */
  readonly policies: readonly ComparePolicySpec[];
  /** Seeds of `random` (default `backtest.random.seeds`). */
  readonly seeds?: number;
  /** Split of the scenario's markets (default test). */
  readonly split?: ScenarioSplit;
  /** `real` only: data directory (null = the store; default `scenarios.real.dataDir`). */
  readonly dataDir?: string | null;
  /** Only these markets of the split (indices). */
  readonly markets?: readonly number[];
  /** Directory run ids and module paths are resolved against (default cwd). */
  readonly cwd?: string;
  /**
   * The one policy resolver (`resolvePolicy` of the registry above evaluation/, src/policies.ts):
   * baseline names, run directories and module paths to policies.
   */
  readonly resolvePolicy: (ref: string, context: PolicyContext) => Promise<ResolvedPolicy>;
}

/** One backtest of a comparison: a policy seed on a market. */
export interface CompareSample {
  /** Market name (`mix/test/4300`, `real/test/2021`). */
  market: string;
  /** Seed index of the policy (0 for a deterministic one). */
  seed: number;
  /** The compared figures (null when undefined, e.g. the Sharpe ratio of a flat policy). */
  values: Record<CompareMetric, number | null>;
  /** Deflated Sharpe ratio given the policy's trials. */
  dsr: number | null;
}

/** A paired difference in total return to a reference (per market, against its mean there). */
export interface ReturnDifference {
  /** Mean difference in total return (fraction). */
  mean: number;
  /** Standard error of the mean difference (null below two samples). */
  se: number | null;
  /** Samples. */
  n: number;
  /** Ahead by more than two standard errors (null when the standard error is unknown). */
  beats: boolean | null;
}

/** One policy of a comparison. */
export interface ComparePolicyResult {
  /** Label in the table. */
  label: string;
  /** baseline, module or run. */
  kind: ResolvedPolicy['kind'];
  /** The references resolved (one per seed; random: `random#k`). */
  refs: string[];
  /** Seeds (policy instances) run on every market. */
  seeds: number;
  /** Trials behind it for the deflated Sharpe ratio (training runs of a run's kind on its data). */
  trials: number;
  /** Every backtest, seed-major. */
  samples: CompareSample[];
  /** Mean and spread of each figure over the samples. */
  stats: Record<CompareMetric, MeanSpread>;
  /** Difference in total return to spot buy-and-hold. */
  vsSpotBuyHold: ReturnDifference;
  /** Difference in total return to random (its mean over seeds on each market). */
  vsRandom: ReturnDifference;
  /**
   * Mean over the samples of equity / initial capital, bar by bar (to the shortest sample; six
   * decimals).
   */
  meanEquity: number[];
}

/** What `comparePolicies` returns. */
export interface CompareResult {
  /** Scenario name. */
  scenario: string;
  /** Split of its markets. */
  split: ScenarioSplit;
  /** Market names, in order. */
  markets: string[];
  /** Seeds of random. */
  randomSeeds: number;
  /** Bar length of the markets' base timeframe (the steps of `meanEquity`), ms. */
  barMs: number;
  /** Labels of the two references in `policies`. */
  references: { spotBuyHold: string; random: string };
  /** Every policy, in the order given (references appended when they were missing). */
  policies: ComparePolicyResult[];
}

interface Instance {
  policy: Policy;
  broker: BrokerConfig | undefined;
  kind: ResolvedPolicy['kind'];
  ref: string;
  trials: number;
}

/** The paired difference of `samples`' total returns to a reference's mean per market. */
function difference(
  samples: readonly CompareSample[],
  ref: ReadonlyMap<string, number>,
): ReturnDifference {
  const d = samples.map((s) => (s.values.totalReturn ?? 0) - (ref.get(s.market) ?? 0));
  const st = meanSpread(d);
  const mean = st.mean ?? 0;
  const se = st.sd === null ? null : st.sd / Math.sqrt(st.n);
  return { mean, se, n: st.n, beats: se === null ? null : mean > 2 * se };
}

function marketMeans(p: ComparePolicyResult): Map<string, number> {
  const sums = new Map<string, [number, number]>();
  for (const s of p.samples) {
    const [a, k] = sums.get(s.market) ?? [0, 0];
    sums.set(s.market, [a + (s.values.totalReturn ?? 0), k + 1]);
  }
  return new Map([...sums].map(([m, [a, k]]) => [m, a / k]));
}

/**
 * Refuses to score a policy trained on real walk-forward fold k on an earlier fold's market: that
 * market's test year lies inside the policy's training range (fold k trains on everything before
 * its own test year). Reads only the generic facts a training run records (`scenarios`, `fold`).
 * @throws {UsageError} naming the run, its fold and the market, with the `--markets` to use.
 */
function checkOutOfSample(r: ResolvedPolicy, market: ScenarioMarket): void {
  if (r.run === undefined || market.scenario !== 'real' || market.fold === null) return;
  const extra = r.run.info.extra as { scenarios?: unknown; fold?: unknown } | undefined;
  if (
    Array.isArray(extra?.scenarios) &&
    extra.scenarios.includes('real') &&
    typeof extra.fold === 'number' &&
    market.fold < extra.fold
  )
    throw new UsageError(
      `${r.name} trained on real fold ${extra.fold}, whose training range holds ${market.name}: it would be scored on its own training data`,
      { hint: `compare it on --markets ${extra.fold} or later folds` },
    );
}

async function instancesOf(
  spec: ComparePolicySpec,
  market: ScenarioMarket,
  options: CompareOptions,
  config: Config,
): Promise<Instance[]> {
  const context = { features: market.features, config, cwd: options.cwd, labels: market.labels };
  const out: Instance[] = [];
  for (const ref of spec.refs) {
    const r = await options.resolvePolicy(ref, context);
    checkOutOfSample(r, market);
    const trained =
      r.run === undefined
        ? 0
        : countTrials(config.paths.runs, r.run.info.kind, r.run.info.data).trials;
    const seeds = r.seeds ?? [r.policy];
    seeds.forEach((policy, k) =>
      out.push({
        policy,
        broker: r.broker,
        kind: r.kind,
        ref: seeds.length > 1 ? `${r.name}#${k}` : r.name,
        trials: Math.max(config.backtest.trials, trained),
      }),
    );
  }
  return out;
}

/**
 * Runs every policy (every seed of it) on every market of the scenario's split and summarises
 * them (see the file comment). Spot buy-and-hold and random are always included, as references.
 * A sample is one backtest of one policy seed on one market over the market's range, through the
 * configured broker (spot buy-and-hold through its spot account), closed at the end as configured.
 * @throws as `scenarioMarkets`, `resolvePolicy` and `backtestStrategy` do; {UsageError} for
 *   `--seeds` below 1.
 */
export async function comparePolicies(options: CompareOptions): Promise<CompareResult> {
  const seeds = options.seeds ?? options.config.backtest.random.seeds;
  if (!(Number.isInteger(seeds) && seeds >= 1))
    throw new UsageError(`--seeds must be a whole number >= 1, got ${seeds}`);
  const config: Config = {
    ...options.config,
    backtest: {
      ...options.config.backtest,
      random: { ...options.config.backtest.random, seeds },
    },
  };
  const split = options.split ?? 'test';
  const specs = [...options.policies];
  for (const ref of COMPARE_REFERENCES)
    if (!specs.some((s) => s.refs.length === 1 && s.refs[0] === ref))
      specs.push({ label: ref, refs: [ref] });
  const markets = await scenarioMarkets(config, options.scenario, split, {
    indices: options.markets,
    dataDir: options.dataDir,
  });
  const bt = config.backtest;
  const results = specs.map((spec) => ({
    spec,
    kind: 'baseline' as ResolvedPolicy['kind'],
    refs: [] as string[],
    trials: 1,
    samples: [] as CompareSample[],
    equitySum: [] as number[],
    equityCount: 0,
    shortest: Infinity,
  }));
  const progress = createProgress('compare', markets.length * specs.length, { unit: 'policies' });
  for (const market of markets) {
    for (const r of results) {
      const instances = await instancesOf(r.spec, market, options, config);
      r.kind = instances[0].kind;
      r.refs = instances.map((i) => i.ref);
      r.trials = Math.max(...instances.map((i) => i.trials));
      instances.forEach((inst, seed) => {
        const res = backtestStrategy({
          policy: inst.policy,
          data: market.features,
          broker: inst.broker ?? config.broker,
          range: market.range,
          closeAtEnd: bt.closeAtEnd,
          benchmark: false,
          trials: inst.trials,
          riskFreeRate: bt.riskFreeRate,
          progressAfterSeconds: Infinity,
        });
        const m = res.metrics;
        r.samples.push({
          market: market.name,
          seed,
          values: {
            totalReturn: m.returns.totalReturn,
            sharpe: m.returns.sharpe,
            maxDrawdown: m.drawdown.maxDrawdown,
            turnover: m.costs.turnover,
            feeDrag: m.costs.feeDrag,
          },
          dsr: m.trust.dsr,
        });
        const eq = res.equity;
        r.shortest = Math.min(r.shortest, eq.length);
        for (let k = 0; k < eq.length; k++)
          r.equitySum[k] = (r.equitySum[k] ?? 0) + eq[k] / res.initialCapital;
        r.equityCount++;
      });
      progress.tick();
    }
  }
  progress.stop();
  const summarised = results.map((r) => ({
    label: r.spec.label,
    kind: r.kind,
    refs: r.refs,
    seeds: r.refs.length,
    trials: r.trials,
    samples: r.samples.sort((a, b) => a.seed - b.seed),
    stats: Object.fromEntries(
      COMPARE_METRICS.map((k) => [k, meanSpread(r.samples.map((s) => s.values[k]))]),
    ) as Record<CompareMetric, MeanSpread>,
    meanEquity: r.equitySum
      .slice(0, r.shortest)
      .map((x) => Math.round((1e6 * x) / r.equityCount) / 1e6),
    vsSpotBuyHold: { mean: 0, se: null, n: 0, beats: null } as ReturnDifference,
    vsRandom: { mean: 0, se: null, n: 0, beats: null } as ReturnDifference,
  }));
  const spot = summarised[referenceIndex(specs, 'spot-buy-hold')];
  const random = summarised[referenceIndex(specs, 'random')];
  const spotMeans = marketMeans(spot);
  const randomMeans = marketMeans(random);
  for (const p of summarised) {
    p.vsSpotBuyHold = difference(p.samples, spotMeans);
    p.vsRandom = difference(p.samples, randomMeans);
  }
  return {
    scenario: options.scenario,
    split,
    markets: markets.map((m) => m.name),
    randomSeeds: seeds,
    barMs: TIMEFRAME_MS[markets[0].features.base],
    references: { spotBuyHold: spot.label, random: random.label },
    policies: summarised,
  };
}

/** Index of the spec that is the reference `ref` alone. */
function referenceIndex(specs: readonly ComparePolicySpec[], ref: string): number {
  return specs.findIndex((s) => s.refs.length === 1 && s.refs[0] === ref);
}

function pct(x: number | null, digits = 1): string {
  return x === null ? '—' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(digits)}%`;
}

function num(x: number | null, digits = 2): string {
  return x === null ? '—' : x.toFixed(digits);
}

/** `mean ± sd` of a figure (percent or plain). */
function cell(s: MeanSpread, percent: boolean): string {
  const f = percent ? (x: number | null) => pct(x) : (x: number | null) => num(x);
  return s.sd === null
    ? f(s.mean)
    : `${f(s.mean)} ± ${percent ? (100 * s.sd).toFixed(1) + '%' : s.sd.toFixed(2)}`;
}

function diffCell(d: ReturnDifference): string {
  const verdict = d.beats === null ? '' : d.beats ? ' beats' : '';
  return d.se === null
    ? `${pct(d.mean)}`
    : `${pct(d.mean)} ± ${(100 * d.se).toFixed(1)}%${verdict}`;
}

/** Header and rows of the comparison table (terminal and HTML share them). */
export function compareTableRows(result: CompareResult): { header: string[]; rows: string[][] } {
  const header = [
    'policy',
    'samples',
    'return',
    'Sharpe',
    'max DD',
    'turnover',
    'fee drag',
    'vs spot B&H',
    'vs random',
  ];
  const rows = result.policies.map((p) => [
    p.label,
    `${p.seeds}x${result.markets.length}`,
    cell(p.stats.totalReturn, true),
    cell(p.stats.sharpe, false),
    cell(p.stats.maxDrawdown, true),
    cell(p.stats.turnover, false),
    cell(p.stats.feeDrag, true),
    p.label === result.references.spotBuyHold ? '—' : diffCell(p.vsSpotBuyHold),
    p.label === result.references.random ? '—' : diffCell(p.vsRandom),
  ]);
  return { header, rows };
}

/** How to read the table, in one paragraph. */
export function compareNote(result: CompareResult): string {
  return (
    `Scenario ${result.scenario}, ${result.split} markets (${result.markets.length}); random over ${result.randomSeeds} seeds. ` +
    'Each figure is the mean ± standard deviation over the samples (policy seeds x markets), one backtest each over the ' +
    "market's range through the same broker and costs (spot buy-and-hold on a spot account: no funding, no borrow). " +
    'The last two columns are the difference in total return to spot buy-and-hold and to random (its mean over seeds on ' +
    'the same market), mean ± standard error over the samples; "beats" = ahead by more than two standard errors.'
  );
}

/** The comparison as a plain-text table (what `ctm compare` prints). */
export function formatCompareTable(result: CompareResult): string {
  const { header, rows } = compareTableRows(result);
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (cells: string[]): string =>
    cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The comparison as the report draws it: the table and each policy's mean equity. */
export function comparisonPayload(result: CompareResult): ComparisonPayload {
  const { header, rows } = compareTableRows(result);
  return {
    note: compareNote(result),
    header,
    rows,
    equity: result.policies.map((p) => ({ name: p.label, y: p.meanEquity })),
    barMs: result.barMs,
  };
}

/** Options of `runCompare`: those of `comparePolicies`, and the command line to record. */
export interface RunCompareOptions extends CompareOptions {
  /** The command line recorded in run.json. */
  readonly commandLine?: string[];
}

/** What `runCompare` produced. */
export interface RunCompareOutcome {
  /** The comparison. */
  readonly result: CompareResult;
  /** The run folder (metrics.json, report.html, comparison-equity.png). */
  readonly run: Run;
  /** The table as text. */
  readonly table: string;
}

/**
 * `ctm compare`: `comparePolicies` into a run folder of kind `compare` (its data: the scenario's
 * fingerprint), with metrics.json (every sample and summary) and report.html (the table and each
 * policy's mean equity). The folder says `failed` when the comparison throws.
 * @throws as `comparePolicies` does.
 */
export async function runCompare(options: RunCompareOptions): Promise<RunCompareOutcome> {
  const { config } = options;
  const split = options.split ?? 'test';
  const run = createRun({
    kind: 'compare',
    config,
    commandLine: options.commandLine,
    data: scenarioFingerprint(config, options.scenario, split, options.markets),
  });
  run.update({
    extra: { scenario: options.scenario, split, policies: options.policies.map((p) => p.label) },
  });
  return withRun(run, async () => {
    const result = await comparePolicies(options);
    run.writeMetrics(result);
    const comparison = comparisonPayload(result);
    const payload = {
      ...emptyReportPayload(`Comparison on ${options.scenario} (${split})`),
      facts: {
        scenario: options.scenario,
        split,
        markets: result.markets.length,
        'random seeds': result.randomSeeds,
        fee: config.broker.takerFeeRate,
        market: config.broker.marketType,
      },
      comparison,
    };
    writeRunReport(run, payload, config.report);
    return { result, run, table: formatCompareTable(result) };
  });
}
