// Calibration of the base process: estimates its parameters from real candles and loads the
// shipped calibrations (config/calibrations/<name>.json, fitted on real data up to 2021-12-31).
// It never writes candles and never looks at data outside the range it is given.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DataValidationError } from '../errors.js';
import { checkBaseProcessParams, type BaseProcessParams } from './base-process.js';

/** Names of the shipped calibrations. */
export const SHIPPED_CALIBRATIONS = ['btc', 'eth'] as const;

/** Directory of the shipped calibrations (config/calibrations at the package root). */
export const CALIBRATIONS_DIR = fileURLToPath(
  new URL('../../config/calibrations/', import.meta.url),
);

/**
 * Loads base-process parameters: a shipped calibration by name (`btc`, `eth`) or a JSON file
 * written by `ctm synth calibrate`.
 * @throws {DataValidationError} when the file is missing, not JSON, or not valid parameters.
 */
export function loadCalibration(ref: string): BaseProcessParams {
  const lower = ref.toLowerCase();
  const file = (SHIPPED_CALIBRATIONS as readonly string[]).includes(lower)
    ? `${CALIBRATIONS_DIR}${lower}.json`
    : ref;
  if (!existsSync(file))
    throw new DataValidationError(
      { source: file, reason: 'calibration file not found' },
      {
        hint: `use one of ${SHIPPED_CALIBRATIONS.join(', ')} or a file from \`ctm synth calibrate\``,
      },
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataValidationError(
      { source: file, reason: `not valid JSON (${(err as Error).message})` },
      { cause: err },
    );
  }
  const params = parsed as BaseProcessParams;
  if (typeof parsed !== 'object' || parsed === null || params.version !== 1)
    throw new DataValidationError({
      source: file,
      field: 'version',
      reason: 'expected version 1 parameters',
    });
  try {
    checkBaseProcessParams(params);
  } catch (err) {
    if (err instanceof DataValidationError)
      throw new DataValidationError(
        { source: file, field: err.field, reason: err.reason },
        { cause: err },
      );
    throw new DataValidationError(
      { source: file, reason: `malformed parameters (${(err as Error).message})` },
      { cause: err },
    );
  }
  return params;
}
