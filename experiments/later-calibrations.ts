// Calibrations that see more than the protocol allows (experiments/calibrations/<name>-*.json,
// fitted by `ctm synth calibrate --from ... --until ...` on years up to the control year). The
// realism and patterns experiments score them beside the protocol's calibrations, labelled as not
// the protocol: they show what the generator does given the information the control has.

import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { BaseProcessParams } from '../src/synthetic-data/base-process.js';
import { loadCalibration } from '../src/synthetic-data/calibration.js';

const DIR = fileURLToPath(new URL('calibrations', import.meta.url));

/** One calibration under experiments/calibrations/, with its file and fit range. */
export interface LaterCalibration {
  /** Path of the JSON file. */
  file: string;
  /** Repository-relative path, for reports. */
  shown: string;
  params: BaseProcessParams;
  /** "from..to" of the fit (dates, inclusive). */
  fittedOn: string;
}

/**
 * The calibrations of `name` (btc, eth) under experiments/calibrations/ whose fit reaches into
 * `throughYear` or later (the one-year fits of earlier years belong to the recent-year
 * experiment), oldest fit start first.
 * @throws {DataValidationError} when a file there is not a valid calibration.
 */
export function laterCalibrations(name: string, throughYear: number): LaterCalibration[] {
  if (!existsSync(DIR)) return [];
  return readdirSync(DIR)
    .filter((f) => f.startsWith(`${name}-`) && f.endsWith('.json'))
    .sort()
    .map((f) => {
      const params = loadCalibration(join(DIR, f));
      return {
        file: join(DIR, f),
        shown: `experiments/calibrations/${f}`,
        params,
        fittedOn: `${params.fittedOn.from}..${params.fittedOn.to}`,
      };
    })
    .filter((c) => Number(c.params.fittedOn.to.slice(0, 4)) >= throughYear);
}
