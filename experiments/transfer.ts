// Experiment of the transfer from the sequence model into PPO (section `transfer` of
// docs/results.md): on the same `mix` markets and seeds with a step budget fixed in advance, PPO
// whose encoders are the sequence model's (frozen, then fine-tuned), the same frozen for the whole
// budget (frozen-only), and the same architecture from a fresh initialisation with the same
// schedule (random init). Every `evaluateEvery` env steps each agent is backtested on the
// validation markets (after costs); the learning curves (mean and spread over seeds) go to
// docs/figures/transfer-curves.{png,html}. Reported: whether random init ends above flat by more
// than two standard errors, and the env steps pretrained init needs to reach random init's final
// return (the ratio to the budget; the goal is at most one half).
// Run: `npm run experiments transfer` (or `node --import tsx experiments/transfer.ts [--tiny]
// [--out FILE]`).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTensorflow } from '../src/models/common/backend.js';
import { runAgentTraining } from '../src/models/reinforcement/agent-runs.js';
import type { Config } from '../src/utils/config.js';
import { writeFileAtomicSync } from '../src/utils/fs.js';
import { logger } from '../src/utils/logger.js';
import { readHistory, openRun } from '../src/utils/runs.js';
import { htmlPage, lineChartSvg, svgToPng } from '../src/utils/visualization.js';
import {
  experimentConfig,
  FULL,
  meanSe,
  pct,
  sequenceModel,
  TINY,
  withSeed,
} from './agents-lib.js';
import { writeResultsSection } from './results-section.js';
import type { AgentExperimentOptions } from './dqn.js';

const log = logger.child({ module: 'experiment.transfer' });
const SECTION = 'transfer';
const ROOT = fileURLToPath(new URL('../', import.meta.url));

interface Arm {
  label: string;
  encoderInit: 'pretrained' | 'random';
  /** Env steps before the encoder is unfrozen (the budget = never). */
  frozen: (budget: number, finetune: number) => number;
}

const ARMS: Arm[] = [
  { label: 'transfer', encoderInit: 'pretrained', frozen: (b, f) => b - f },
  { label: 'frozen-only', encoderInit: 'pretrained', frozen: (b) => b },
  { label: 'random init', encoderInit: 'random', frozen: (b, f) => b - f },
];

/** Runs the experiment and returns its section of docs/results.md. */
export async function runTransferExperiment(options: AgentExperimentOptions = {}): Promise<string> {
  const scale = options.tiny === true ? TINY : FULL;
  // Settings fixed in advance: decisions every 16 bars (env.decisionInterval), as the 4h bars.
  const base = { ...experimentConfig(scale, options.runsDir) };
  base.env = { ...base.env, decisionInterval: 16 };
  await initTensorflow(base.model.backend);
  const started = Date.now();
  const model = await sequenceModel(base, scale);
  const budget = scale.ppoSteps;
  const every = Math.max(base.ppo.nSteps * base.ppo.numEnvs, Math.round(budget / 8));
  // Curves: arm -> seed -> [(step, validation return)].
  const curves = new Map<string, Array<Array<[number, number]>>>();
  for (const arm of ARMS) {
    const perSeed: Array<Array<[number, number]>> = [];
    for (const seed of scale.seeds) {
      const config: Config = withSeed(
        {
          ...base,
          ppo: {
            ...base.ppo,
            transfer: {
              ...base.ppo.transfer,
              frozenTimesteps: arm.frozen(budget, scale.finetuneSteps),
            },
          },
        },
        seed,
      );
      const r = await runAgentTraining({
        config,
        algorithm: 'ppo',
        scenarios: ['mix'],
        timesteps: budget,
        initFrom: model,
        encoderInit: arm.encoderInit,
        evaluateEvery: every,
        commandLine: ['experiments', 'transfer', arm.label, `seed ${seed}`],
      });
      const history = readHistory(openRun(r.run.dir, base.paths.runs));
      const pts: Array<[number, number]> = [];
      for (const l of history)
        if (typeof l.validationReturn === 'number') pts.push([Number(l.step), l.validationReturn]);
      // The run's own validation at the end, unless the last evaluation was already there.
      const final = r.validation.map((v) => v.totalReturn ?? 0);
      if (pts.length === 0 || pts[pts.length - 1][0] < r.steps)
        pts.push([r.steps, final.reduce((a, b) => a + b, 0) / Math.max(1, final.length)]);
      perSeed.push(pts);
      log.info({ arm: arm.label, seed, final: pts[pts.length - 1][1] }, 'transfer run');
    }
    curves.set(arm.label, perSeed);
  }
  // Mean curves on the common step grid.
  const grid = curves.get('transfer')![0].map((p) => p[0]);
  const meanAt = (arm: string, k: number): { mean: number; se: number } =>
    meanSe(curves.get(arm)!.map((pts) => pts[Math.min(k, pts.length - 1)][1]));
  const last = grid.length - 1;
  const randomFinal = meanAt('random init', last);
  const randomAboveFlat = randomFinal.mean > 2 * randomFinal.se;
  // Steps pretrained init needs to reach random init's final return, per seed.
  const reach = curves.get('transfer')!.map((pts) => {
    const hit = pts.find((p) => p[1] >= randomFinal.mean);
    return hit === undefined ? null : hit[0];
  });
  const meanReach = reach.every((r) => r !== null) ? meanSe(reach as number[]).mean : null;

  // Figures: the mean validation return of each arm against env steps.
  const svg = lineChartSvg({
    id: 'transfer-curves',
    title: 'Validation total return (mean over seeds) against env steps',
    xType: 'number',
    xLabel: 'env steps',
    width: 900,
    height: 420,
    series: ARMS.map((a) => ({
      name: a.label,
      x: grid,
      y: grid.map((_, k) => meanAt(a.label, k).mean),
    })),
  });
  const figDir = options.figuresDir ?? join(ROOT, 'docs', 'figures');
  mkdirSync(figDir, { recursive: true });
  writeFileAtomicSync(join(figDir, 'transfer-curves.png'), svgToPng(svg));
  writeFileAtomicSync(
    join(figDir, 'transfer-curves.html'),
    htmlPage({
      title: 'Transfer: learning curves',
      facts: { budget, seeds: scale.seeds.join(', ') },
      sections: [svg],
      data: {},
      chartLibrary: false,
      script: '',
    }),
  );

  const lines = [
    '## Transfer from the sequence model into PPO',
    '',
    `\`npm run experiments transfer\` (${scale.name} scale, ${((Date.now() - started) / 60_000).toFixed(0)} min). \`mix\` (${scale.markets.train} training markets of ${scale.days} days), ${budget.toLocaleString('en-US')} env steps per run fixed in advance, seeds ${scale.seeds.join(', ')}; decisions every ${base.env.decisionInterval} bars; validation backtests (after costs) every ${every.toLocaleString('en-US')} agent steps. Pretrained encoders: the sequence model ${model}. Transfer and random init: encoders frozen (embeddings cached) for ${(budget - scale.finetuneSteps).toLocaleString('en-US')} steps, then fine-tuned for ${scale.finetuneSteps.toLocaleString('en-US')}; frozen-only never unfreezes. Curves: docs/figures/transfer-curves.png (and .html).`,
    '',
    '| env steps | ' + ARMS.map((a) => a.label).join(' | ') + ' |',
    '|---:|' + ARMS.map(() => '---:').join('|') + '|',
    ...grid.map(
      (step, k) =>
        `| ${step.toLocaleString('en-US')} | ${ARMS.map((a) => {
          const m = meanAt(a.label, k);
          return `${pct(m.mean)} ± ${(100 * m.se).toFixed(1)}%`;
        }).join(' | ')} |`,
    ),
    '',
    `- Random init's final validation return ${pct(randomFinal.mean)} ± ${(100 * randomFinal.se).toFixed(1)}%: ${randomAboveFlat ? 'above flat (0) by more than two standard errors, so the comparison below applies' : 'not above flat by two standard errors: the speed-up criterion has nothing to reach'}.`,
    `- Env steps the pretrained init needs to reach random init's final return, per seed: ${reach.map((r) => (r === null ? 'not reached' : r.toLocaleString('en-US'))).join(', ')}${meanReach === null ? '' : ` (mean ${Math.round(meanReach).toLocaleString('en-US')}, ratio ${(meanReach / budget).toFixed(2)} of the budget; goal <= 0.5)`}.`,
    '',
  ];
  const body = lines.join('\n');
  log.info({ minutes: (Date.now() - started) / 60_000 }, 'transfer experiment done');
  return body;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv.indexOf('--out');
  const body = await runTransferExperiment({ tiny: process.argv.includes('--tiny') });
  writeResultsSection(SECTION, body, out > 0 ? process.argv[out + 1] : undefined);
}
