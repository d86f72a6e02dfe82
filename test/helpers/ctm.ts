// The built command line as a user runs it: `node dist/main.js ...` (built by `npm run build`,
// which `npm test` runs first) in a child process, with its output collected. Never builds.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Path of the built CLI. */
export const CTM_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** How a `ctm` process ended. */
export interface CtmRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `ctm` process. */
export interface CtmProcess {
  readonly child: ChildProcess;
  /** Resolves when it has exited and its output is closed. */
  readonly done: Promise<CtmRun>;
  /** stdout so far. */
  stdout(): string;
}

/** Throws unless the CLI is built. */
export function assertBuilt(): void {
  if (!existsSync(CTM_MAIN)) throw new Error(`${CTM_MAIN} is missing: run \`npm run build\` first`);
}

/** Starts `ctm ...args`. */
export function startCtm(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): CtmProcess {
  const child = spawn(process.execPath, [CTM_MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: options.cwd,
    env: options.env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CtmRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, stdout: () => stdout };
}

/** Runs `ctm ...args` to the end; `onSpawn` gets the child (to kill it). */
export function ctm(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; onSpawn?: (child: ChildProcess) => void } = {},
): Promise<CtmRun> {
  const p = startCtm(args, options);
  options.onSpawn?.(p.child);
  return p.done;
}
