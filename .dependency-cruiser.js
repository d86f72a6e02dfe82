// The architecture of docs/architecture.md, enforced: `npm test` runs `depcruise` over src/,
// experiments/, bench/ and scripts/ with these rules, and test/architecture.test.ts shows that they catch a
// planted violation. Paths are relative to the directory depcruise runs in (the repo root).

/** Project code that sits above data-processing/ (it may import data-processing, not the reverse). */
const ABOVE_DATA =
  '^src/(synthetic-data|models|evaluation|live|scale|cli)/|^src/(main|index|pipeline|policies)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-folder-cycles',
      severity: 'error',
      comment: 'Folders depend on each other one way only (docs/architecture.md, the module map).',
      scope: 'folder',
      from: { path: '^src/.+' },
      to: { path: '^src/.+', circular: true },
    },
    {
      name: 'no-module-cycles',
      severity: 'error',
      comment: 'No two modules import each other, directly or through others.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'utils-imports-only-errors',
      severity: 'error',
      comment:
        'utils/ is the bottom layer: it imports other utils and src/errors.ts, nothing else.',
      from: { path: '^src/utils/' },
      to: { path: '^src/', pathNot: '^src/(utils/|errors\\.ts$)' },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      comment:
        'The CLI is the top layer: only src/main.ts imports it (not experiments/ or bench/), and scripts/docs.ts, which writes the CLI reference from its commands.',
      from: {
        path: '^(src|experiments|bench|scripts)/',
        pathNot: '^src/(main\\.ts$|cli/)|^scripts/docs\\.ts$',
      },
      to: { path: '^src/cli/' },
    },
    {
      name: 'data-processing-below-everything',
      severity: 'error',
      comment: 'data-processing/ imports no synthetic-data, model, evaluation or higher code.',
      from: { path: '^src/data-processing/' },
      to: { path: ABOVE_DATA },
    },
    {
      name: 'no-models-in-synthetic-data-or-evaluation',
      severity: 'error',
      comment:
        'synthetic-data/ and evaluation/ know no model: policies reach the evaluator through the registry above it (src/policies.ts).',
      from: { path: '^src/(synthetic-data|evaluation)/' },
      to: { path: '^src/(models|live|scale|cli)/|^src/(main|index|pipeline|policies)\\.ts$' },
    },
    {
      name: 'dataset-worker-without-tensorflow',
      severity: 'error',
      comment:
        'A dataset worker thread generates markets and features: it must never load TensorFlow.js (start-up time, memory).',
      from: { path: '^src/synthetic-data/dataset-worker\\.ts$' },
      to: { path: '@tensorflow', reachable: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^dist/' },
  },
};
