// `ctm dataset build|info` and `ctm synth gallery` as a user runs them: the built CLI
// (`node dist/main.js`, built by `npm run build`, which `npm test` runs first) in a child process,
// with its worker threads running the compiled JavaScript.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CTM_MAIN, runCtm, type CtmRun } from '../helpers/cli.js';

function ctm(args: string[]): Promise<CtmRun> {
  return runCtm(args, dir);
}

let dir: string;
beforeAll(() => {
  if (!existsSync(CTM_MAIN)) throw new Error(`${CTM_MAIN} is missing: run \`npm run build\` first`);
  dir = mkdtempSync(join(tmpdir(), 'ctm-cli-dataset-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ctm dataset', () => {
  it('builds a dataset with worker threads, describes it, and refuses to overwrite it', async () => {
    const out = join(dir, 'ds');
    const r = await ctm([
      'dataset',
      'build',
      '--out',
      out,
      '--samples',
      '60',
      '--workers',
      '2',
      '--set',
      'dataset.seriesDays=150',
    ]);
    expect(
      r.stderr
        .split('\n')
        .filter((l) => l.startsWith('error'))
        .join('\n'),
    ).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote 60 samples/);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.samples).toBe(60);
    expect(readdirSync(dir).some((f) => f.startsWith('runs'))).toBe(true);
    const info = await ctm(['dataset', 'info', out]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/60 samples/);
    expect(info.stdout).toMatch(/15m 64 bars/);
    const again = await ctm(['dataset', 'build', '--out', out, '--samples', '10']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists/);
    expect(again.stderr).toMatch(/--force/);
  });

  it('rejects an unknown pattern in --distribution with a usage error', async () => {
    const r = await ctm(['dataset', 'build', '--out', join(dir, 'x'), '--distribution', 'cup=1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown pattern "cup"/);
  });
});

describe('ctm synth gallery', () => {
  it('renders one PNG chart per pattern type asked for, and an index', async () => {
    const out = join(dir, 'gallery');
    const r = await ctm(['synth', 'gallery', '--out', out, '--types', 'double_top,bull_flag']);
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['bull_flag.png', 'double_top.png', 'index.html']);
    const png = readFileSync(join(out, 'double_top.png'));
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.byteLength).toBeGreaterThan(20_000);
  });
});
