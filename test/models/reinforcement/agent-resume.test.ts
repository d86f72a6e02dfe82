// kill -9 in the middle of `ctm train dqn` / `ctm train ppo`, then `--resume RUN`: the
// continuation must end exactly where an uninterrupted run with the same seed ends (every weight,
// the optimizer's state, the replay buffer with its priorities, the RNG and the envs' episodes all
// come back from the checkpoint), with the same history and no duplicated lines. Real child
// processes, a real SIGKILL, the real CLI on a tiny trend scenario.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCtm, type CtmProcess } from '../../helpers/ctm.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointKind, readCheckpoint } from '../../../src/models/common/checkpoint.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let dir: string;
let runs: string;

function start(args: string[]): CtmProcess {
  return startCtm(args, { cwd: ROOT, env: { ...process.env, CTM_LOG_LEVEL: 'warn' } });
}

function runId(stdout: string): string {
  const m = /^run (\S+?):? /m.exec(stdout);
  if (m === null) throw new Error(`no run id in output: ${stdout}`);
  return m[1];
}

function historySteps(runDir: string): Array<Record<string, unknown>> {
  return readFileSync(join(runDir, 'history.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctm-agent-resume-'));
  runs = join(dir, 'runs');
  writeFileSync(
    join(dir, 'config.yaml'),
    `paths: { runs: ${JSON.stringify(runs)} }
windows: { 15m: 4, 4h: 2, 1d: 2 }
scenarios:
  synthetic:
    trend:
      days: 8
      episodeSteps: 64
      seeds:
        train: { from: 1100, count: 2 }
        validation: { from: 1200, count: 1 }
        test: { from: 1300, count: 1 }
dqn: { totalTimesteps: 1600, bufferSize: 5000, learningStarts: 100, checkpointEvery: 200, logEvery: 100, targetUpdateInterval: 200, numEnvs: 2 }
ppo: { totalTimesteps: 1536, nSteps: 64, numEnvs: 2, batchSize: 32, nEpochs: 2, checkpointEveryUpdates: 2, normalizeRewards: true }
`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const algo of ['dqn', 'ppo'] as const)
  describe(`ctm train ${algo}: kill -9 and --resume`, () => {
    it('ends with the same agent, bit for bit, and the same history as an uninterrupted run', async () => {
      const args = [
        'train',
        algo,
        '--scenario',
        'trend',
        '--config',
        join(dir, 'config.yaml'),
        '--seed',
        '5',
      ];
      const a = await start(args).done;
      expect(a.code, a.stderr).toBe(0);
      const runA = join(runs, runId(a.stdout));

      const before = new Set(readdirSync(runs));
      const b = start(args);
      let runB = '';
      let killedAt = -1;
      for (let i = 0; i < 6000 && killedAt < 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
        if (runB === '') {
          const fresh = readdirSync(runs).filter((d) => !before.has(d));
          if (fresh.length > 0) runB = join(runs, fresh[0]);
          continue;
        }
        const ptr = join(runB, 'checkpoint', 'stage-0', 'checkpoint.json');
        if (!existsSync(ptr)) continue;
        let step: number;
        try {
          step = (JSON.parse(readFileSync(ptr, 'utf8')) as { counters: { step: number } }).counters
            .step;
        } catch {
          continue; // renamed into place between our exists and read: try again
        }
        if (step >= 600) {
          b.child.kill('SIGKILL');
          killedAt = step;
        }
      }
      const killed = await b.done;
      expect(killed.signal).toBe('SIGKILL');
      expect(existsSync(join(runB, 'agent'))).toBe(false);
      const ck = JSON.parse(
        readFileSync(join(runB, 'checkpoint', 'stage-0', 'checkpoint.json'), 'utf8'),
      ) as { counters: { step: number } };
      expect(ck.counters.step).toBeGreaterThanOrEqual(600);
      expect(ck.counters.step).toBeLessThan(1536);

      const c = await start(['train', algo, '--config', join(dir, 'config.yaml'), '--resume', runB])
        .done;
      expect(c.code, c.stderr).toBe(0);
      expect(c.stdout).toContain(`resumed at step ${ck.counters.step}`);

      // The same agent, tensor for tensor, byte for byte.
      const kind = checkpointKind(join(runA, 'agent'))!;
      const ta = readCheckpoint(join(runA, 'agent'), { kind })!.tensors;
      const tb = readCheckpoint(join(runB, 'agent'), { kind })!.tensors;
      expect([...tb.keys()]).toEqual([...ta.keys()]);
      for (const [name, va] of ta) expect(Array.from(tb.get(name)!), name).toEqual(Array.from(va));
      // The same history, each step once (wall times aside).
      const noWall = (l: Record<string, unknown>): Record<string, unknown> => ({ ...l, wallMs: 0 });
      const ha = historySteps(runA);
      const hb = historySteps(runB);
      expect(hb.map((l) => l.step)).toEqual(ha.map((l) => l.step));
      expect(hb.map(noWall)).toEqual(ha.map(noWall));
    });
  });
