// The module graph's rules (.dependency-cruiser.js, run over the tree by `npm test`) catch what
// they are meant to: every rule fires on the planted violations of test/fixtures/architecture/.
// And a dataset worker thread's module graph holds no TensorFlow.js, checked on the real tree
// independently of the rule that forbids it.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.js');

interface Cruise {
  modules: Array<{ source: string; dependencies: Array<{ resolved: string }> }>;
  summary: {
    violations: Array<{ rule: { name: string }; from: string; to: string }>;
  };
}

/** Runs depcruise with the project's rules in `cwd` and returns its JSON result. */
function cruise(cwd: string, paths: string[]): Cruise {
  const out = spawnSync(
    DEPCRUISE,
    [...paths, '--config', CONFIG, '--output-type', 'json', '--no-progress'],
    { cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
  );
  expect(out.error).toBeUndefined();
  return JSON.parse(out.stdout) as Cruise;
}

describe('architecture rules', () => {
  it('fail on a planted folder cycle and on every other planted violation, naming both ends', () => {
    const fixture = join(ROOT, 'test', 'fixtures', 'architecture');
    const found = cruise(fixture, ['src', 'experiments']).summary.violations.map(
      (v) => `${v.rule.name}: ${v.from} -> ${v.to.replace(/^.*node_modules\//, '')}`,
    );
    expect(found.sort()).toEqual(
      [
        'no-folder-cycles: src/data-processing -> src/utils',
        'no-folder-cycles: src/utils -> src/data-processing',
        'utils-imports-only-errors: src/utils/clock.ts -> src/data-processing/bars.ts',
        'data-processing-below-everything: src/data-processing/bars.ts -> src/evaluation/score.ts',
        'no-models-in-synthetic-data-or-evaluation: src/evaluation/score.ts -> src/models/net.ts',
        'no-module-cycles: src/evaluation/ring-a.ts -> src/evaluation/ring-b.ts',
        'nothing-imports-the-cli: experiments/run.ts -> src/cli/command.ts',
        'dataset-worker-without-tensorflow: src/synthetic-data/dataset-worker.ts -> @tensorflow/tfjs/dist/tf.node.js',
      ].sort(),
    );
  });

  it('leave the dataset worker thread a module graph without TensorFlow.js', () => {
    const { modules } = cruise(ROOT, ['src/synthetic-data/dataset-worker.ts']);
    const bySource = new Map(modules.map((m) => [m.source, m]));
    const seen = new Set<string>();
    const stack = ['src/synthetic-data/dataset-worker.ts'];
    while (stack.length > 0) {
      const s = stack.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      for (const d of bySource.get(s)?.dependencies ?? []) stack.push(d.resolved);
    }
    // The worker really reaches the feature pipeline (so the walk is not vacuous) ...
    expect(seen).toContain('src/data-processing/feature-engineering.ts');
    // ... and nothing of TensorFlow.js.
    expect([...seen].filter((m) => m.includes('@tensorflow'))).toEqual([]);
  });
});
