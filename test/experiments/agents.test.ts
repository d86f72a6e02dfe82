// The agent experiments at their tiny scale (what CI runs): each produces its tables with numbers
// (DQN: the ablation chosen on validation, the curriculum and its control on every scenario; PPO:
// the recipes, the test table, the share of the pattern oracle and the difference to DQN; transfer:
// the three arms' curves, the reach of random init, the figures written).

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDqnExperiment } from '../../experiments/dqn.js';
import { runPpoExperiment } from '../../experiments/ppo.js';
import { runTransferExperiment } from '../../experiments/transfer.js';

const dir = mkdtempSync(join(tmpdir(), 'ctm-agent-experiments-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('agent experiments (tiny)', () => {
  it('dqn: the decision interval and the vanilla ablation on validation, then the curriculum and its control on every scenario', async () => {
    const body = await runDqnExperiment({ tiny: true, runsDir: join(dir, 'dqn') });
    expect(body).toMatch(/Kept: \*\*[a-z -]+, (decision )?every \d+( bars)?\*\*/);
    for (const recipe of [
      'rainbow, decision every 1 bars',
      'rainbow, decision every 16 bars',
      'vanilla, every',
    ])
      expect(body).toMatch(new RegExp(`\\| ${recipe}[^|]* \\| [+-]\\d+\\.\\d% ± `));
    for (const scenario of ['trend', 'pullback', 'patterns', 'mix'])
      expect(body).toContain(`**${scenario}**`);
    expect(body).toMatch(/\| dqn-curriculum \| 2×1 \| [+-]\d+\.\d%/);
    expect(body).toMatch(/\| dqn-mix-only \| 2×1 \| [+-]\d+\.\d%/);
    expect(body).toMatch(/\| pattern-oracle \| 1×1 \|/);
  }, 600_000);

  it('ppo: recipes on validation, the test table, the share of the pattern oracle and the difference to DQN', async () => {
    const body = await runPpoExperiment({ tiny: true, runsDir: join(dir, 'ppo') });
    expect(body).toMatch(/\| sequence-model encoders, every 16 bars \| [+-]\d+\.\d% ± /);
    expect(body).toMatch(/\| ppo \| 2×1 \|/);
    expect(body).toMatch(/\| dqn \| 2×1 \|/);
    expect(body).toMatch(/PPO's share of the pattern oracle's mean total return/);
    expect(body).toMatch(/PPO − DQN, paired per market and seed: [+-]\d+\.\d%/);
  }, 600_000);

  it('transfer: three arms on one step budget, the reach of random init, the curves as PNG and HTML', async () => {
    const figures = join(dir, 'figures');
    const body = await runTransferExperiment({
      tiny: true,
      runsDir: join(dir, 'transfer'),
      figuresDir: figures,
    });
    expect(body).toMatch(/\| env steps \| transfer \| frozen-only \| random init \|/);
    expect(body).toMatch(
      /\| 256 \| [+-]\d+\.\d% ± \d+\.\d% \| [+-]\d+\.\d% ± \d+\.\d% \| [+-]\d+\.\d% ± \d+\.\d% \|/,
    );
    expect(body).toMatch(/Random init's final validation return/);
    expect(existsSync(join(figures, 'transfer-curves.png'))).toBe(true);
    expect(existsSync(join(figures, 'transfer-curves.html'))).toBe(true);
  }, 600_000);
});
