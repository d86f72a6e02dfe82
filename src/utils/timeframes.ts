// The timeframe table: the supported candle timeframes, their lengths in ms and parsing of their
// names. Plain data with no project imports but errors.ts, so that config, reports and every
// layer above can name a timeframe. Never holds candles or knows a data source.

import { DataValidationError } from '../errors.js';

/** Supported candle timeframes. */
export type Timeframe = '1m' | '5m' | '15m' | '30m' | '1h' | '2h' | '4h' | '12h' | '1d';

/** Length of each timeframe in milliseconds. */
export const TIMEFRAME_MS: Readonly<Record<Timeframe, number>> = Object.freeze({
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '30m': 1_800_000,
  '1h': 3_600_000,
  '2h': 7_200_000,
  '4h': 14_400_000,
  '12h': 43_200_000,
  '1d': 86_400_000,
});

/** Every supported timeframe, finest first. */
export const TIMEFRAMES: readonly Timeframe[] = Object.freeze(
  (Object.keys(TIMEFRAME_MS) as Timeframe[]).sort((a, b) => TIMEFRAME_MS[a] - TIMEFRAME_MS[b]),
);

/** True when `value` names a supported timeframe. */
export function isTimeframe(value: string): value is Timeframe {
  return Object.prototype.hasOwnProperty.call(TIMEFRAME_MS, value);
}

/**
 * Parses a timeframe name.
 * @throws {DataValidationError} naming `source` and field `timeframe` when it is not supported.
 */
export function parseTimeframe(value: string, source?: string): Timeframe {
  if (!isTimeframe(value)) {
    throw new DataValidationError({
      source,
      field: 'timeframe',
      reason: `unknown timeframe "${value}" (supported: ${TIMEFRAMES.join(', ')})`,
    });
  }
  return value;
}

/** Length of `tf` in milliseconds. */
export function timeframeMs(tf: Timeframe): number {
  return TIMEFRAME_MS[tf];
}
