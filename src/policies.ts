// The policy registry, above evaluation/: turns a `--policy` reference (a baseline name, a user
// module path or a run directory) into a Policy. Run kinds map to loaders (`train-model` built in;
// model and agent modules add theirs with `registerRunPolicyLoader`), imported only when a run of
// that kind is loaded, so a baseline backtest never starts TensorFlow.js. The evaluator receives
// the resolved policy and never learns a model kind. See docs/architecture.md.

import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CheckpointError, UsageError } from './errors.js';
import {
  BASELINES,
  baselineBroker,
  baselinePolicy,
  randomBaselines,
  validatePolicy,
  type BaselineName,
  type PolicyContext,
  type ResolvedPolicy,
} from './evaluation/baselines.js';
import type { PolicySource } from './evaluation/evaluate.js';
import type { Policy } from './evaluation/policy.js';
import type { Config } from './utils/config.js';
import { openRun, type Run } from './utils/runs.js';

/** Builds a policy from a training run (registered per run kind by the model and agent modules). */
export type RunPolicyLoader = (run: Run, context: PolicyContext) => Policy | Promise<Policy>;

/**
 * Run kinds whose policies this package knows how to load (modules imported only when needed, so a
 * baseline backtest never starts TensorFlow.js).
 */
const BUILTIN_RUN_LOADERS: Readonly<Record<string, RunPolicyLoader>> = {
  'train-model': async (run, context) => {
    const { initTensorflow } = await import('./models/common/backend.js');
    const { MultiTimeframeModel } = await import('./models/time-series/model.js');
    const { SequenceModelPolicy } = await import('./models/time-series/policy.js');
    await initTensorflow(context.config.model.backend);
    const model = MultiTimeframeModel.load(run.path('model'));
    return new SequenceModelPolicy(model, context.config.model.policy);
  },
  'train-dqn': async (run, context) => {
    const { agentPolicy } = await import('./models/reinforcement/agent-runs.js');
    return agentPolicy(run.path('agent'), context.config.model.backend);
  },
  'train-ppo': async (run, context) => {
    const { agentPolicy } = await import('./models/reinforcement/agent-runs.js');
    return agentPolicy(run.path('agent'), context.config.model.backend);
  },
};

const runLoaders = new Map<string, RunPolicyLoader>(Object.entries(BUILTIN_RUN_LOADERS));

/**
 * Registers how runs of `kind` (e.g. `train-ppo`) become a Policy for `ctm backtest --policy RUN`.
 * Called by the modules that write those runs; a later registration of the same kind replaces it.
 */
export function registerRunPolicyLoader(kind: string, loader: RunPolicyLoader): void {
  runLoaders.set(kind, loader);
}

const POLICY_HINT = `--policy takes ${BASELINES.join('|')}, a run directory or a .js/.mjs module path`;

/**
 * Loads a user policy from a JavaScript module: its default export (or `policy` / `createPolicy`)
 * is a Policy or a function `(context) => Policy | Promise<Policy>`.
 * @throws {UsageError} when the file is missing, fails to load, or exports no valid Policy.
 */
export async function loadPolicyModule(path: string, context: PolicyContext): Promise<Policy> {
  const file = isAbsolute(path) ? path : resolve(context.cwd ?? process.cwd(), path);
  if (!existsSync(file))
    throw new UsageError(`policy module ${path} not found (looked at ${file})`, {
      hint: POLICY_HINT,
    });
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`policy module ${path} failed to load: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const exported = mod.default ?? mod.policy ?? mod.createPolicy;
  if (exported === undefined)
    throw new UsageError(`policy module ${path} exports neither default, policy nor createPolicy`, {
      hint: 'export default { observation, act }',
    });
  const value: unknown =
    typeof exported === 'function'
      ? await (exported as (c: PolicyContext) => unknown)(context)
      : exported;
  return validatePolicy(value, path);
}

/**
 * The run a `--policy` reference names (a directory holding run.json, or a run id under
 * `paths.runs`), or null when it names no run.
 */
export function policyRun(ref: string, config: Config, cwd = process.cwd()): Run | null {
  if ((BASELINES as readonly string[]).includes(ref) || /\.(m|c)?js$/.test(ref)) return null;
  const runsDir = resolve(cwd, config.paths.runs);
  if (existsSync(resolve(cwd, ref, 'run.json'))) return openRun(resolve(cwd, ref), runsDir);
  if (existsSync(resolve(runsDir, ref, 'run.json'))) return openRun(ref, runsDir);
  return null;
}

/**
 * Resolves a `--policy` reference: a baseline name, a run directory (or run id under
 * `paths.runs`), or a module path (anything ending in .js, .mjs or .cjs).
 * @throws {UsageError} for an unknown reference or a bad module; {CheckpointError} for a run whose
 *   kind has no registered policy loader.
 */
export async function resolvePolicy(ref: string, context: PolicyContext): Promise<ResolvedPolicy> {
  if ((BASELINES as readonly string[]).includes(ref)) {
    const name = ref as BaselineName;
    const broker = baselineBroker(name, context.config.broker);
    const seeds =
      name === 'random'
        ? randomBaselines(context.config, context.config.backtest.random.seeds)
        : undefined;
    return {
      policy: seeds?.[0] ?? baselinePolicy(name, context),
      kind: 'baseline',
      name: ref,
      ...(broker === undefined ? {} : { broker }),
      ...(seeds === undefined ? {} : { seeds }),
    };
  }
  if (/\.(m|c)?js$/.test(ref))
    return { policy: await loadPolicyModule(ref, context), kind: 'module', name: ref };
  const run = policyRun(ref, context.config, context.cwd);
  if (run !== null) {
    const loader = runLoaders.get(run.info.kind);
    if (loader === undefined)
      throw new CheckpointError(
        run.dir,
        `runs of kind ${run.info.kind} hold no policy to backtest`,
        {
          hint: `policies load from runs of kind ${[...runLoaders.keys()].join(', ') || '(none registered)'}`,
        },
      );
    return {
      policy: validatePolicy(await loader(run, context), run.dir),
      kind: 'run',
      name: run.info.id,
      run,
    };
  }
  throw new UsageError(`unknown policy ${ref}`, { hint: POLICY_HINT });
}

/**
 * What `runBacktest` needs from a `--policy` reference: the features and windows a trained policy
 * was trained on (read from its run's config, so that it reads what it was trained on), and the
 * resolution itself, done once the evaluation's features exist.
 */
export function policySource(ref: string, config: Config, cwd?: string): PolicySource {
  const trained = policyRun(ref, config, cwd);
  return {
    trainedOn:
      trained === null
        ? undefined
        : { features: trained.info.config.features, windows: trained.info.config.windows },
    resolve: (context) => resolvePolicy(ref, { ...context, cwd }),
  };
}
