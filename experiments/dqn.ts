// Experiment of the DQN agent (section `dqn` of docs/results.md), the spec's step 6: "build DQN
// agent, train on simpler scenarios, evaluate performance".
// 1. Recipe, chosen on validation markets only, trained on `mix`, >= 3 seeds: first the decision
//    interval (bars each action holds: 1, 4, 16) with every Rainbow component on, then at the
//    best interval all components (n-step returns, prioritised replay, Double DQN, dueling head)
//    switched off (vanilla); the best mean validation return is kept.
// 2. The curriculum trend -> pullback -> patterns -> mix with that recipe (weights carried over),
//    and a control trained on `mix` alone for the same number of env steps; both evaluated once on
//    every scenario's test markets after costs, beside spot buy-and-hold, flat, random (over seeds)
//    and the pattern oracle; "beats" = ahead by more than two standard errors.
// 3. Real BTC/USDT (../shared/data): yearly walk-forward folds (test years 2021-2023), an agent per
//    fold and seed trained on the fold's training range, tested on its year beside spot
//    buy-and-hold, with turnover, fee drag and the deflated Sharpe over the configurations tried
//    (the trial counter counts every DQN run on the same data in the runs folder).
// Run: `npm run experiments dqn` (or `node --import tsx experiments/dqn.ts [--tiny] [--out FILE]`).

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parsePolicyList } from '../src/evaluation/compare.js';
import type { Config } from '../src/utils/config.js';
import { logger } from '../src/utils/logger.js';
import {
  compare,
  compareMarkdown,
  experimentConfig,
  meanSe,
  pct,
  FULL,
  TINY,
  trainAgent,
  type AgentScale,
} from './agents-lib.js';
import { writeResultsSection } from './results-section.js';

const log = logger.child({ module: 'experiment.dqn' });
const SECTION = 'dqn';
const SHARED = fileURLToPath(new URL('../../shared/data/', import.meta.url));
const CURRICULUM = ['trend', 'pullback', 'patterns', 'mix'];

/** Decision intervals tried first (bars each action holds). */
const INTERVALS = [1, 4, 16];

/**
 * The ablation at the chosen interval: every Rainbow component off at once (vanilla). Switching
 * each off in turn would cost four more runs per seed than the hour allows.
 */
const RECIPES: Record<string, Partial<Config['dqn']>> = {
  vanilla: { nSteps: 1, prioritizedReplay: false, doubleQ: false, dueling: false },
};

function withDqn(config: Config, over: Partial<Config['dqn']>): Config {
  return { ...config, dqn: { ...config.dqn, ...over } };
}

function withInterval(config: Config, decisionInterval: number): Config {
  return { ...config, env: { ...config.env, decisionInterval } };
}

/** Options of `runDqnExperiment`. */
export interface AgentExperimentOptions {
  /** The tiny scale (seconds; what the tests run). */
  tiny?: boolean;
  /** Runs folder (default runs/experiments). */
  runsDir?: string;
  /** Where figures go (default docs/figures). */
  figuresDir?: string;
}

/** Runs the experiment and returns its section of docs/results.md. */
export async function runDqnExperiment(options: AgentExperimentOptions = {}): Promise<string> {
  const scale: AgentScale = options.tiny === true ? TINY : FULL;
  const base = experimentConfig(scale, options.runsDir);
  const started = Date.now();
  const lines: string[] = [];

  // 1. Recipe on validation markets: the decision interval, then the components at it.
  const runRecipe = async (
    name: string,
    config: Config,
  ): Promise<{ name: string; vals: number[] }> => {
    const vals: number[] = [];
    for (const seed of scale.seeds) {
      const r = await trainAgent(config, 'dqn', ['mix'], seed, { timesteps: scale.dqnSteps });
      vals.push(r.validation);
      log.info({ recipe: name, seed, validation: r.validation }, 'recipe run');
    }
    return { name, vals };
  };
  const byMean = (a: { vals: number[] }, b: { vals: number[] }): number =>
    meanSe(b.vals).mean - meanSe(a.vals).mean;
  const intervals: Array<{ name: string; vals: number[] }> = [];
  for (const k of INTERVALS)
    intervals.push(await runRecipe(`rainbow, decision every ${k} bars`, withInterval(base, k)));
  const bestInterval = INTERVALS[intervals.indexOf([...intervals].sort(byMean)[0])];
  const atInterval = withInterval(base, bestInterval);
  const ablation = [[...intervals].sort(byMean)[0]];
  for (const [name, over] of Object.entries(RECIPES))
    ablation.push(await runRecipe(`${name}, every ${bestInterval}`, withDqn(atInterval, over)));
  const best = [...ablation].sort(byMean)[0];
  const bestRecipe = Object.keys(RECIPES).find((n) => best.name.startsWith(`${n},`));
  const config = bestRecipe === undefined ? atInterval : withDqn(atInterval, RECIPES[bestRecipe]);
  lines.push(
    `### Recipe (chosen on validation markets)`,
    '',
    `Trained on \`mix\` (${scale.markets.train} markets of ${scale.days} days, ${scale.dqnSteps.toLocaleString('en-US')} agent steps; an agent step holds its action for the decision interval), seeds ${scale.seeds.join(', ')}; mean total return on the ${scale.markets.validation} validation markets after costs, mean ± standard error over seeds. The interval is chosen first (all components on), then the components at that interval. Kept: **${best.name}**.`,
    '',
    '| configuration | validation return | per seed |',
    '|---|---:|---|',
    ...[...intervals, ...ablation.slice(1)].map((a) => {
      const m = meanSe(a.vals);
      return `| ${a.name} | ${pct(m.mean)} ± ${pct(m.se).replace('+', '')} | ${a.vals.map((v) => pct(v)).join(', ')} |`;
    }),
    '',
  );

  // 2. Curriculum and the mix-only control, tested once on every scenario.
  const curriculum: string[] = [];
  const control: string[] = [];
  for (const seed of scale.seeds) {
    curriculum.push(
      (await trainAgent(config, 'dqn', CURRICULUM, seed, { timesteps: scale.dqnSteps })).dir,
    );
    control.push(
      (
        await trainAgent(config, 'dqn', ['mix'], seed, {
          timesteps: scale.dqnSteps * CURRICULUM.length,
        })
      ).dir,
    );
  }
  lines.push(
    `### Curriculum ${CURRICULUM.join(' → ')} vs mix alone (test markets, after costs)`,
    '',
    `Each curriculum stage ${scale.dqnSteps.toLocaleString('en-US')} env steps; the control ${(scale.dqnSteps * CURRICULUM.length).toLocaleString('en-US')} on \`mix\`. Mean ± sd over seeds × markets; differences are paired per market, mean ± standard error.`,
    '',
  );
  for (const scenario of CURRICULUM) {
    const result = await compare(
      config,
      scenario,
      parsePolicyList(
        `dqn-curriculum=${curriculum.join('+')},dqn-mix-only=${control.join('+')},spot-buy-hold,flat,random,pattern-oracle`,
      ),
    );
    lines.push(
      `**${scenario}** (${result.markets.length} test markets)`,
      '',
      compareMarkdown(result),
      '',
    );
  }

  // 3. Real BTC/USDT, yearly walk-forward folds.
  if (scale.realFolds.length > 0 && existsSync(SHARED)) {
    // ../shared/data has known off-grid rows (its README): dropped and logged, never kept.
    const real = {
      ...config,
      data: { ...config.data, repair: true },
      scenarios: { ...config.scenarios, real: { ...config.scenarios.real, dataDir: SHARED } },
    };
    lines.push('### Real BTC/USDT, yearly walk-forward folds (test years, after costs)', '');
    for (const fold of scale.realFolds) {
      const dirs: string[] = [];
      for (const seed of scale.seeds)
        dirs.push(
          (await trainAgent(real, 'dqn', ['real'], seed, { timesteps: scale.realSteps, fold })).dir,
        );
      const result = await compare(
        real,
        'real',
        parsePolicyList(`dqn=${dirs.join('+')},spot-buy-hold,flat,random`),
        {
          markets: [fold],
        },
      );
      const dqn = result.policies.find((p) => p.label === 'dqn')!;
      lines.push(
        `**${result.markets[0]}**: deflated Sharpe of the DQN seeds ${dqn.samples.map((s) => (s.dsr === null ? '—' : s.dsr.toFixed(2))).join(', ')} over ${dqn.trials} DQN runs on this data.`,
        '',
        compareMarkdown(result),
        '',
      );
    }
  } else
    lines.push(
      `Real BTC/USDT: ${scale.realFolds.length === 0 ? 'not run at this scale' : `skipped, ${SHARED} is absent`}.`,
      '',
    );

  const body = [
    '## DQN',
    '',
    `\`npm run experiments dqn\` (${scale.name} scale, ${((Date.now() - started) / 60_000).toFixed(0)} min). Fees (${(100 * base.broker.takerFeeRate).toFixed(2)}% taker), slippage (${base.broker.slippage.fixedBps} bps fixed) and funding on in every backtest (config \`broker\`); DQN observes the newest ${Object.entries(
      scale.agentWindows,
    )
      .map(([t, w]) => `${w} ${t}`)
      .join(', ')} bars of every feature and its account (\`env.windows\`).`,
    '',
    ...lines,
  ].join('\n');
  log.info({ minutes: (Date.now() - started) / 60_000 }, 'dqn experiment done');
  return body;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv.indexOf('--out');
  const body = await runDqnExperiment({ tiny: process.argv.includes('--tiny') });
  writeResultsSection(SECTION, body, out > 0 ? process.argv[out + 1] : undefined);
}
