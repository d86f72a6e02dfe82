// kill -9 in the middle of `ctm train model`, then `--resume RUN`: the continuation must end where
// an uninterrupted run with the same seed ends (same weights, same per-epoch metrics, no duplicate
// history lines). Real child processes, a real SIGKILL, the real CLI on tiny random candles.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCtm, type CtmProcess } from '../../helpers/ctm.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomCandles } from '../../../src/data-processing/lookahead.js';
import { initTensorflow } from '../../../src/models/common/backend.js';
import { MultiTimeframeModel } from '../../../src/models/time-series/model.js';
import { tinyTrainingConfig, writeCandleDir } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let dir: string;
let runs: string;
let args: string[];

function start(extra: string[]): CtmProcess {
  return startCtm(['train', 'model', ...extra], {
    cwd: ROOT,
    env: { ...process.env, CTM_LOG_LEVEL: 'warn' },
  });
}

function runId(stdout: string): string {
  const m = /^run (\S+)/m.exec(stdout);
  if (m === null) throw new Error(`no run id in output: ${stdout}`);
  return m[1].replace(/:$/, '');
}

interface HistoryLine {
  step: number;
  [k: string]: number | string | null;
}

function history(runDir: string): HistoryLine[] {
  return readFileSync(join(runDir, 'history.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as HistoryLine);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-resume-'));
  runs = join(dir, 'runs');
  writeCandleDir(
    join(dir, 'data'),
    'SYN/USDT',
    randomCandles({ seed: 5, rows: 96 * 32, higher: ['4h'] }),
  );
  writeFileSync(join(dir, 'config.yaml'), tinyTrainingConfig(runs));
  args = [
    '--config',
    join(dir, 'config.yaml'),
    '--data-dir',
    join(dir, 'data'),
    '--symbol',
    'SYN/USDT',
    '--seed',
    '11',
  ];
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('ctm train model: kill -9 and --resume', () => {
  it('continues from the last checkpoint and ends exactly where an uninterrupted run ends', async () => {
    // Uninterrupted reference run.
    const a = await start(args).done;
    expect(a.code, a.stderr).toBe(0);
    const runA = join(runs, runId(a.stdout));

    // Same run, killed with SIGKILL once a mid-training checkpoint exists.
    const before = new Set(readdirSync(runs));
    const b = start(args);
    let runB = '';
    let killedAt = -1;
    for (let i = 0; i < 3000 && killedAt < 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      if (runB === '') {
        const fresh = readdirSync(runs).filter((d) => !before.has(d));
        if (fresh.length > 0) runB = join(runs, fresh[0]);
        continue;
      }
      const ptr = join(runB, 'checkpoint', 'checkpoint.json');
      if (!existsSync(ptr)) continue;
      let step: number;
      try {
        step = (JSON.parse(readFileSync(ptr, 'utf8')) as { state: { globalStep: number } }).state
          .globalStep;
      } catch {
        continue; // renamed into place between our exists and read: try again
      }
      if (step >= 10) {
        b.child.kill('SIGKILL');
        killedAt = step;
      }
    }
    const killed = await b.done;
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(join(runB, 'model'))).toBe(false);
    const ckpt = JSON.parse(readFileSync(join(runB, 'checkpoint', 'checkpoint.json'), 'utf8')) as {
      state: { globalStep: number; epoch: number };
    };
    const totalSteps = (history(runA).at(-1) as HistoryLine).step;
    expect(ckpt.state.globalStep).toBeGreaterThanOrEqual(10);
    expect(ckpt.state.globalStep).toBeLessThan(totalSteps);

    // Resume.
    const c = await start(['--config', join(dir, 'config.yaml'), '--resume', runB]).done;
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain(`resumed at step ${ckpt.state.globalStep}`);

    // Same final weights (float32 tolerance 1e-6; the run is deterministic, so they are equal).
    await initTensorflow();
    const ma = MultiTimeframeModel.load(join(runA, 'model'));
    const mb = MultiTimeframeModel.load(join(runB, 'model'));
    const wa = ma.getWeights();
    const wb = mb.getWeights();
    expect([...wb.keys()]).toEqual([...wa.keys()]);
    let maxDiff = 0;
    for (const [name, va] of wa) {
      const vb = wb.get(name)!;
      for (let i = 0; i < va.length; i++) maxDiff = Math.max(maxDiff, Math.abs(va[i] - vb[i]));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-6);
    ma.dispose();
    mb.dispose();

    // Same history: the same steps once each, the same metrics.
    const ha = history(runA);
    const hb = history(runB);
    expect(hb.map((l) => l.step)).toEqual(ha.map((l) => l.step));
    for (let i = 0; i < ha.length; i++)
      for (const key of ['trainLoss', 'valLoss', 'valAccuracy']) {
        if (ha[i][key] === undefined) continue;
        expect(hb[i][key] as number).toBeCloseTo(ha[i][key] as number, 6);
      }
    const ea = JSON.parse(readFileSync(join(runA, 'metrics.json'), 'utf8')) as {
      test: { accuracy: number };
    };
    const eb = JSON.parse(readFileSync(join(runB, 'metrics.json'), 'utf8')) as {
      test: { accuracy: number };
    };
    expect(eb.test.accuracy).toBe(ea.test.accuracy);
  });
});
