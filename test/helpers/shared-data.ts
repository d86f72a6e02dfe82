// The one way tests reach the real candles in ../shared/data/ (never copied into the repo).
// `hasSharedData` is false only when the folder is absent; suites then skip, saying why.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Absolute path of ../shared/data relative to the repository root (overridable with CTM_SHARED_DATA). */
export const SHARED_DATA_DIR =
  process.env.CTM_SHARED_DATA ?? fileURLToPath(new URL('../../../shared/data/', import.meta.url));

/** True when the real data folder exists. */
export const hasSharedData = existsSync(join(SHARED_DATA_DIR, 'binance-BTCUSDT-15m.csv.gz'));

/** Why real-data suites are skipped (used as the describe title suffix). */
export const SKIP_REASON = hasSharedData
  ? ''
  : ` (skipped: real data folder ${SHARED_DATA_DIR} is absent)`;

/** Path of a file in the real data folder, e.g. `sharedFile('binance-BTCUSDT-15m.csv.gz')`. */
export function sharedFile(name: string): string {
  return join(SHARED_DATA_DIR, name);
}
