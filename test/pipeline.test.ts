// `ctm run` (npm start) end to end on tiny sizes: every stage runs and records its output, the
// report opens in headless Chromium without errors and names every agent and baseline, metrics.json
// holds every agent, the same seed gives the same comparison figures byte for byte, `--reuse RUN
// --stage compare` reuses the earlier stages, and bad configs fail before anything runs, naming
// the key or the missing input.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { runPipeline, type PipelineResult } from '../src/pipeline.js';
import { loadConfig, type Config } from '../src/utils/config.js';
import { launchChromium, openReport } from './helpers/chromium.js';

const AGENTS = ['dqn', 'ppo-transfer', 'ppo-random'] as const;
const BASELINES = ['spot-buy-hold', 'buy-hold', 'flat', 'random', 'pattern-oracle'];

let dir: string;
let context: BrowserContext | undefined;

/** The default config with tiny pipeline sizes, small windows and a small model. */
function tinyConfig(runs: string): Config {
  return loadConfig({
    set: [
      `paths.runs=${runs}`,
      'windows={15m: 8, 4h: 4, 1d: 2}',
      'features.lookahead.cuts=2',
      'dataset.workers=1',
      'model.hiddenDims=8',
      'model.denseUnits=8',
      'model.attentionHeads=2',
      'pipeline.agentWindows={15m: 2, 4h: 1, 1d: 1}',
      'pipeline.sizes.quick={datasetSamples: 300, modelEpochs: 1, modelStepsPerEpoch: 4, marketDays: 10, trainMarkets: 1, validationMarkets: 1, testMarkets: 1, dqnTimesteps: 400, ppoTimesteps: 256, ppoFinetuneTimesteps: 128, compareSeeds: 2}',
      'ppo.nSteps=128',
      'ppo.batchSize=64',
      'ppo.nEpochs=2',
      'dqn.learningStarts=100',
    ],
  });
}

/**
 * The comparison figures of a run, without paths (run folders differ between runs); without the
 * deflated Sharpe ratios when `withDsr` is false.
 */
function figures(runDir: string, withDsr = true): string {
  const m = JSON.parse(readFileSync(join(runDir, 'metrics.json'), 'utf8')) as {
    comparison: {
      policies: Array<{ label: string; stats: unknown; samples: Array<{ dsr: unknown }> }>;
    };
  };
  return JSON.stringify(
    m.comparison.policies.map((p) => [
      p.label,
      p.stats,
      p.samples.map((x) => (withDsr ? x : { ...x, dsr: null })),
    ]),
  );
}

let first: PipelineResult;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-pipeline-'));
  first = await runPipeline({
    config: tinyConfig(join(dir, 'runs')),
    quick: true,
    onLine: () => {},
  });
  context = await launchChromium();
}, 600_000);

afterAll(async () => {
  await context?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ctm run --quick (npm start on tiny sizes)', () => {
  it('runs every stage and records its output', () => {
    expect(first.outputs.lookahead?.leaks).toBe(0);
    for (const key of ['dataset', 'model', ...AGENTS, 'compare'] as const)
      expect(existsSync(first.outputs[key]!), key).toBe(true);
    for (const a of AGENTS) expect(existsSync(join(first.outputs[a]!, 'agent'))).toBe(true);
    const labels = first.comparison!.policies.map((p) => p.label);
    expect(labels).toEqual([...AGENTS, ...BASELINES]);
    const m = JSON.parse(readFileSync(join(first.runDir, 'metrics.json'), 'utf8')) as {
      comparison: { policies: Array<{ label: string }> };
    };
    expect(m.comparison.policies.map((p) => p.label)).toEqual(labels);
    expect(first.table).toContain('ppo-transfer');
  });

  it('writes a report that opens without errors and shows every agent and baseline', async () => {
    const { page, errors } = await openReport(context!, join(first.runDir, 'report.html'));
    const text = await page.locator('body').innerText();
    for (const name of [...AGENTS, ...BASELINES]) expect(text).toContain(name);
    expect(text).toContain('Training curves');
    expect(text).toContain('model:');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('gives the same comparison figures, byte for byte, when run again with the same seed', async () => {
    // A folder of its own: the deflated Sharpe counts the trials of the runs folder.
    const again = await runPipeline({
      config: tinyConfig(join(dir, 'runs-again')),
      quick: true,
      onLine: () => {},
    });
    expect(again.outputs.model).not.toBe(first.outputs.model);
    expect(figures(again.runDir)).toBe(figures(first.runDir));
  }, 600_000);

  it('--reuse RUN --stage compare runs only the comparison, on the earlier stages of RUN', async () => {
    const again = await runPipeline({
      config: tinyConfig(join(dir, 'runs')),
      reuse: first.runDir,
      stage: 'compare',
      onLine: () => {},
    });
    for (const key of ['dataset', 'model', ...AGENTS] as const)
      expect(again.outputs[key]).toBe(first.outputs[key]);
    expect(again.outputs.compare).not.toBe(first.outputs.compare);
    // The same backtests (only the trial count behind the deflated Sharpe moves on).
    expect(figures(again.runDir, false)).toBe(figures(first.runDir, false));
  }, 300_000);

  it('fails fast on bad configs and missing inputs, naming the key or the input', async () => {
    const runs = join(dir, 'bad');
    const bad = (set: string[]): Config => loadConfig({ set: [`paths.runs=${runs}`, ...set] });
    await expect(
      runPipeline({ config: bad(['pipeline.scenario=nope']), onLine: () => {} }),
    ).rejects.toThrow(/pipeline\.scenario: unknown scenario nope/);
    await expect(
      runPipeline({ config: bad(['pipeline.stages=[model, dataset]']), onLine: () => {} }),
    ).rejects.toThrow(ConfigError);
    expect(() => bad(['pipeline.sizes.quick.dqnTimesteps=-1'])).toThrow(
      /pipeline\.sizes\.quick\.dqnTimesteps/,
    );
    expect(() => bad(['pipeline.unknownKey=1'])).toThrow(/pipeline/);
    // A stage whose input this run does not have.
    await expect(
      runPipeline({ config: bad(['pipeline.stages=[model]']), quick: true, onLine: () => {} }),
    ).rejects.toThrow(/stage model needs the output of stage dataset/);
    // Reusing a run that is not there.
    await expect(
      runPipeline({
        config: tinyConfig(runs),
        reuse: 'no-such-run',
        stage: 'compare',
        onLine: () => {},
      }),
    ).rejects.toThrow(/no-such-run/);
  }, 300_000);
});
