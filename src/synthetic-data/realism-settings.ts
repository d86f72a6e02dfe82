// The realism measurement's settings from the config (`synthetic.realism`): the part of
// `runRealism`'s options that `ctm synth realism` and the experiments share. Plain mapping; never
// measures anything.

import type { Config } from '../utils/config.js';
import type { RunRealismOptions } from './realism.js';

/**
 * The config-derived part of `runRealism`'s options (`synthetic.realism`): real and score years,
 * window options and discriminator settings; the caller adds the checks, seed and progress.
 */
export function realismSettings(
  config: Config,
): Pick<
  RunRealismOptions,
  'realYears' | 'scoreYear' | 'controlYear' | 'windows' | 'discriminative'
> {
  const r = config.synthetic.realism;
  return {
    realYears: r.realYears,
    scoreYear: r.scoreYear,
    controlYear: r.controlYear,
    windows: realismWindows(config),
    discriminative: {
      folds: r.folds,
      bootstrap: r.bootstrap,
      clusterDays: r.clusterDays,
      gbt: r.gbt,
    },
  };
}

/** Window options of the realism measurement from the config. */
export function realismWindows(config: Config): {
  windowBars: number;
  strideBars: number;
  context4h: number;
  context1d: number;
  levels: boolean;
} {
  const r = config.synthetic.realism;
  return {
    windowBars: r.windowBars,
    strideBars: r.strideBars,
    context4h: r.context4h,
    context1d: r.context1d,
    levels: r.levels,
  };
}
