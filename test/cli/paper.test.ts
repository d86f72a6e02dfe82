import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CandleStore } from '../../src/data-processing/store.js';
import type { JournalBar, PaperState } from '../../src/live/journal.js';
import { launchChromium, openReport } from '../helpers/chromium.js';
import { assertBuilt, ctm, startCtm } from '../helpers/ctm.js';
import { BAR, paperBacktest, paperRig, START, TFS, type PaperRig } from '../helpers/paper.js';
import { hasSharedData, SKIP_REASON } from '../helpers/shared-data.js';

let rig: PaperRig;
let dir: string;
let configFile: string;

beforeAll(async () => {
  if (!hasSharedData) return;
  assertBuilt();
  rig = await paperRig({ days: 2 });
  dir = mkdtempSync(join(tmpdir(), 'ctm-paper-cli-'));
  const store = await CandleStore.open(join(dir, 'store.duckdb'));
  for (const tf of TFS)
    await store.upsert(
      { exchange: 'binance', symbol: 'BTC/USDT', timeframe: tf },
      rig.candles.get(tf)!,
    );
  store.close();
  configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    stringify({
      paths: { store: join(dir, 'store.duckdb'), runs: join(dir, 'runs') },
      data: { download: { baseUrl: rig.fake.url, timeoutMs: 2000 } },
      broker: { marketType: 'spot' },
      live: { ...rig.config.live, stallTimeoutMs: 3000 },
    }),
  );
});

afterAll(async () => {
  await rig?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** The page's global object, inside page.evaluate callbacks (tests have no DOM types). */
declare const window: unknown;

const env = { ...process.env, CTM_LOG_LEVEL: 'error' };

function journalOf(): { state: PaperState; bars: JournalBar[] } {
  const runDir = join(dir, 'runs', 'paper-binance-BTC-USDT');
  const state = JSON.parse(readFileSync(join(runDir, 'state.json'), 'utf8')) as PaperState;
  const lines = readFileSync(join(runDir, 'journal.jsonl'), 'utf8').split('\n').filter(Boolean);
  return { state, bars: lines.slice(0, state.bars).map((l) => JSON.parse(l) as JournalBar) };
}

describe.skipIf(!hasSharedData)(`ctm paper${SKIP_REASON}`, () => {
  it('killed with SIGKILL and restarted, resumes with no bar twice and none missed, and trades what the backtest trades', async () => {
    const args = ['paper', '--policy', 'sma-cross', '--symbol', 'BTC/USDT', '--config', configFile];
    const first = startCtm([...args, '--max-bars', '500'], { cwd: dir, env });
    const statePath = join(dir, 'runs', 'paper-binance-BTC-USDT', 'state.json');
    // Let it journal some bars, then pull the plug mid-run.
    for (let waited = 0; waited < 60_000; waited += 20) {
      if (existsSync(statePath) && journalOf().state.bars >= 40) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    const before = journalOf().state.bars;
    expect(before).toBeGreaterThanOrEqual(40);
    expect(before).toBeLessThan(150);

    const second = await ctm([...args, '--max-bars', String(150 - before + 1)], { cwd: dir, env });
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(
      /151 bars .*\(\d+ replayed from the journal\), shadow check ok \(0 differences\)/,
    );
    const { state, bars } = journalOf();
    expect(bars.length).toBe(151);
    expect(bars[1].decisionTimeMs).toBe(START + BAR);
    for (let k = 1; k < bars.length; k++)
      expect(bars[k].decisionTimeMs - bars[k - 1].decisionTimeMs).toBe(BAR);
    const bt = await paperBacktest(
      rig,
      state.warmupFromMs,
      state.startOpenTimeMs,
      state.lastOpenTimeMs,
    );
    expect(bars.map((b) => b.equity)).toEqual(Array.from(bt.equity));
    expect(bars.map((b) => Math.fround(b.decided))).toEqual(Array.from(bt.target));
    // The run folder's report draws the paper equity on the backtest of the same candles.
    const runDir = join(dir, 'runs', 'paper-binance-BTC-USDT');
    expect(second.stdout).toContain(`report: ${join(runDir, 'report.html')}`);
    expect(existsSync(join(runDir, 'report.html'))).toBe(true);
    const payload = JSON.parse(readFileSync(join(runDir, 'report-data.json'), 'utf8')) as {
      equity: { strategy: number[]; paper: number[] };
    };
    expect(payload.equity.paper.length).toBe(151);
    expect(payload.equity.paper).toEqual(payload.equity.strategy);
    expect(payload.equity.paper[150]).toBeCloseTo(bars[150].equity, 6);
    const context = await launchChromium();
    try {
      const { page, errors } = await openReport(context, join(runDir, 'report.html'));
      const drawn = await page.evaluate(
        () =>
          (
            window as unknown as {
              ctmReport: { series: { paper?: { data(): unknown[] } } };
            }
          ).ctmReport.series.paper?.data().length,
      );
      expect(errors).toEqual([]);
      expect(drawn).toBe(151);
    } finally {
      await context.close();
    }

    const status = await ctm(['paper', 'status', '--config', configFile], { cwd: dir, env });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('paper BTC/USDT on binance, policy sma-cross, 151 bars');
    expect(status.stdout).toMatch(/shadow check ok: 151 bars compared, 0 differences/);
    expect(status.stdout.split('\n').filter((l) => l.startsWith('  20')).length).toBe(10);
    // Paper trading sent nothing but market-data requests to the exchange.
    expect(new Set(rig.fake.calls)).toEqual(
      new Set(['GET /api/v3/exchangeInfo', 'GET /api/v3/klines']),
    );
  });

  it('refuses --live without the confirmation key, before touching the exchange', async () => {
    const calls = rig.fake.calls.length;
    const r = await ctm(
      [
        'paper',
        '--policy',
        'sma-cross',
        '--symbol',
        'BTC/USDT',
        '--config',
        configFile,
        '--live',
        '--run',
        join(dir, 'live-run'),
      ],
      { cwd: dir, env },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('live.confirm');
    expect(rig.fake.calls.length).toBe(calls);
  });

  it('refuses a perpetual broker (spot markets only so far) in one line naming the key', async () => {
    const calls = rig.fake.calls.length;
    const r = await ctm(
      [
        'paper',
        '--policy',
        'sma-cross',
        '--symbol',
        'BTC/USDT:USDT',
        '--config',
        configFile,
        '--set',
        'broker.marketType=perpetual',
        '--run',
        join(dir, 'perp-run'),
      ],
      { cwd: dir, env },
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')[0]).toContain('broker.marketType');
    expect(r.stderr).toContain('spot');
    expect(rig.fake.calls.length).toBe(calls);
  });
});
