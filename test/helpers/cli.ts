// Runs the built `ctm` (dist/main.js, built by `npm run build`, which `npm test` runs first) in a
// child process, as a user would, and collects its exit code and output.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Path of the built command line. */
export const CTM_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** What a `ctm` run printed and how it ended. */
export interface CtmRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ctm ...args` in `cwd` and resolves when it exits. */
export function runCtm(args: string[], cwd: string): Promise<CtmRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CTM_MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
