// The policy registry: user modules, run directories of a registered kind, and clear errors for
// anything else; `policySource` hands a trained policy's features to the evaluation.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { backtestStrategy } from '../src/evaluation/backtest.js';
import { smaCrossPolicy } from '../src/evaluation/baselines.js';
import { initTensorflow } from '../src/models/common/backend.js';
import { MultiTimeframeModel, modelConfigFromSection } from '../src/models/time-series/model.js';
import { policySource, registerRunPolicyLoader, resolvePolicy } from '../src/policies.js';
import { defaultConfig } from '../src/utils/config.js';
import { createRun } from '../src/utils/runs.js';
import { smaFeatures, walkCandles } from './evaluation/fixtures.js';

describe('policy references', () => {
  const f = smaFeatures(walkCandles(300));
  const context = { features: f, config: defaultConfig() };

  it('loads a user module exporting a policy factory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctm-policy-'));
    const file = join(dir, 'my-policy.mjs');
    writeFileSync(
      file,
      `export default (ctx) => ({ observation: { timeframes: [ctx.features.base], windows: { [ctx.features.base]: 1 }, features: { [ctx.features.base]: ['close_sma_10'] }, account: ['position'] },
        act(obs, n, out) { for (let i = 0; i < n; i++) out[i] = obs[2 * i] > 0 ? 1 : 0; } });\n`,
    );
    const resolved = await resolvePolicy(file, context);
    expect(resolved.kind).toBe('module');
    const r = backtestStrategy({ policy: resolved.policy, data: f, benchmark: false });
    expect(r.rows).toBeGreaterThan(100);
    expect(new Set(r.target)).toEqual(new Set([0, 1]));
  });

  it('rejects a module without act, a missing file and an unknown name with a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctm-policy-'));
    const file = join(dir, 'bad.mjs');
    writeFileSync(
      file,
      'export default { observation: { timeframes: [], windows: {}, features: {}, account: false } };\n',
    );
    await expect(resolvePolicy(file, context)).rejects.toThrow(
      /has no act\(obs, numEnvs, out\) function/,
    );
    await expect(resolvePolicy(join(dir, 'none.js'), context)).rejects.toThrow(UsageError);
    await expect(resolvePolicy('sma-crosss', context)).rejects.toThrow(/unknown policy sma-crosss/);
  });
});

describe('a sequence-model run as the policy', () => {
  it('loads the model of a train-model run directory and backtests it as a Policy', async () => {
    const config = defaultConfig();
    config.paths.runs = mkdtempSync(join(tmpdir(), 'ctm-model-runs-'));
    config.model.backend = 'wasm';
    config.model.policy = { threshold: 0, sizing: 'discrete' };
    await initTensorflow('wasm');
    const spec = {
      timeframes: ['15m' as const],
      windows: { '15m': 8 },
      features: { '15m': ['close_sma_10', 'close_sma_20'] },
    };
    const model = MultiTimeframeModel.create(
      modelConfigFromSection({ ...config.model, hiddenDims: 8, denseUnits: 8 }, spec),
      1,
    );
    const run = createRun({ kind: 'train-model', config, commandLine: ['train', 'model'] });
    model.save(run.path('model'));
    const f = smaFeatures(walkCandles(300));
    const resolved = await resolvePolicy(run.dir, { features: f, config });
    expect(resolved).toMatchObject({ kind: 'run', name: run.id });
    expect(resolved.policy.observation.windows).toEqual({ '15m': 8 });
    const r = backtestStrategy({ policy: resolved.policy, data: f, benchmark: false });
    // SMA(20) warm-up (row 19) plus a full 8-bar window: the first decision is at row 26.
    expect(r.startRow).toBe(26);
    // Threshold 0 and discrete sizing: every decision is long or short.
    expect(new Set(r.target)).toEqual(new Set([-1, 1]));
    const other = createRun({ kind: 'synth', config, commandLine: ['synth'] });
    await expect(resolvePolicy(other.dir, { features: f, config })).rejects.toThrow(
      /runs of kind synth hold no policy/,
    );
  });
});

describe('run kinds registered by their modules', () => {
  it('loads a run of a registered kind through its loader, with the run’s own features', async () => {
    const config = defaultConfig();
    config.paths.runs = mkdtempSync(join(tmpdir(), 'ctm-agent-runs-'));
    const f = smaFeatures(walkCandles(300));
    const trainedConfig = structuredClone(config);
    trainedConfig.windows = { '15m': 3 };
    const run = createRun({ kind: 'train-test-agent', config: trainedConfig });
    registerRunPolicyLoader('train-test-agent', (_run, context) =>
      smaCrossPolicy(context.features, {
        fastFeature: 'close_sma_10',
        slowFeature: 'close_sma_20',
      }),
    );
    const source = policySource(run.dir, config);
    expect(source.trainedOn?.windows).toEqual({ '15m': 3 });
    const resolved = await source.resolve({ features: f, config });
    expect(resolved).toMatchObject({ kind: 'run', name: run.id });
    expect(resolved.policy.observation.features).toEqual({
      [f.base]: ['close_sma_10', 'close_sma_20'],
    });
    expect(policySource('buy-hold', config).trainedOn).toBeUndefined();
  });
});
