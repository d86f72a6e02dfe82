// Feature matrices: stationary per-timeframe features and cross-timeframe features, built from the
// aligned frames with the one indicators module. A feature at row r uses only candles that closed
// at or before row r's decision time. Windows for the model, the dataset builder and the env are cut
// from these matrices through `copyWindow`, the one place that maps a base row to the rows of each
// timeframe known at its decision time. The feature registry (which features, which periods) is the
// config section `features`, read here and nowhere else.

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createGzip } from 'node:zlib';
import { ConfigError, DataValidationError } from '../errors.js';
import { defaultConfig, type Config } from '../utils/config.js';
import {
  allocateCandles,
  sliceCandles,
  TIMEFRAME_MS,
  type Candles,
  type Timeframe,
} from './candles.js';
import {
  alignTimeframes,
  type AlignedFrames,
  type AlignedTimeframe,
  type AlignmentMode,
  type CandlesByTimeframe,
} from './data-alignment.js';
import {
  AdxStream,
  AnchoredVwapStream,
  AtrStream,
  BollingerStream,
  CciStream,
  DonchianStream,
  EmaStream,
  KeltnerStream,
  MacdStream,
  MfiStream,
  ObvStream,
  RealizedVolatilityStream,
  RocStream,
  RollingSum,
  RsiStream,
  SmaStream,
  StochasticStream,
  SupportResistanceStream,
  VolumeZScoreStream,
  VwapStream,
  WilliamsRStream,
} from './indicators.js';
import {
  checkLookAhead,
  type LookAheadMatrix,
  type LookAheadOptions,
  type LookAheadReport,
} from './lookahead.js';

/** The feature registry: the resolved config section `features`. */
export type FeatureSpec = Config['features'];

/**
 * A matrix of features on one timeframe's rows. `values` is row-major (`rows` x `names.length`);
 * `time[r]` is row r's decision time (its candle's close time, UTC ms). Warm-up rows hold NaN.
 */
export interface FeatureMatrix {
  /** Timeframe of the rows. */
  readonly timeframe: Timeframe;
  /** Column (feature) names, in column order. */
  readonly names: readonly string[];
  /** Decision time of each row: its candle's close time, UTC ms. */
  readonly time: Float64Array;
  /** Row-major values, `rows x cols` (NaN in warm-up rows). */
  readonly values: Float32Array;
  /** Number of rows (one per candle). */
  readonly rows: number;
  /** Number of columns (`names.length`). */
  readonly cols: number;
}

/** Output of `createMultiTimeframeFeatures`. */
export interface MultiTimeframeFeatures {
  /** The finest timeframe: decisions are made on its rows. */
  readonly base: Timeframe;
  /** All timeframes, base first. */
  readonly timeframes: readonly Timeframe[];
  /**
   * One feature matrix per timeframe, each on its own rows. The base matrix also holds the
   * cross-timeframe features (columns named `x.*`).
   */
  readonly perTimeframe: ReadonlyMap<Timeframe, FeatureMatrix>;
  /**
   * Per timeframe, per base row i: the row of that timeframe's matrix known at i's decision time
   * (identity for the base; `lastClosed` for higher timeframes), or -1 when none is known yet. In
   * forming mode, higher timeframes map to the last row closed before the candle in progress
   * (`formingPrev`), and the window's newest row comes from `formingRows`.
   */
  readonly rowIndex: ReadonlyMap<Timeframe, Int32Array>;
  /** The alignment the features were built on. */
  readonly aligned: AlignedFrames;
  /**
   * Flat view on the base rows: current values of every timeframe's features (and the
   * cross-timeframe ones) joined per decision time; names are prefixed `15m.`, `4h.`, `x.`.
   * Built on first access.
   */
  readonly decisionRows: FeatureMatrix;
  /**
   * The first base row at which every window of the configured sizes is free of NaN. Nothing
   * (env episodes, dataset samples, backtests) starts before it.
   */
  readonly firstValidRow: number;
  /** Window sizes (bars per timeframe) `firstValidRow` was computed for. */
  readonly windows: Readonly<Partial<Record<Timeframe, number>>>;
  /** The feature spec the matrices were built with (`alignment` = the alignment's mode). */
  readonly spec?: FeatureSpec;
  /**
   * Forming mode only: per higher timeframe, a matrix on the base rows whose row i holds the
   * features of the higher candle in progress at base row i (computed from the closed candles
   * before it plus that candle). On the row where a higher candle closes it equals, bit for bit,
   * that candle's row of `perTimeframe`.
   */
  readonly formingRows?: ReadonlyMap<Timeframe, FeatureMatrix>;
}

/**
 * Copies the `length`-row window of timeframe `tf` known at base row `baseRow` into `out` starting
 * at `offset`, oldest row first, `length * cols` floats. Rows before the start of the matrix are
 * written as NaN. In forming mode the newest row of a higher timeframe's window is the candle in
 * progress (`formingRows`), preceded by the `length - 1` closed rows before it. Allocates nothing.
 * @throws {RangeError} when `baseRow` is outside the base rows or `tf` is not in the features.
 */
export function copyWindow(
  features: MultiTimeframeFeatures,
  tf: Timeframe,
  baseRow: number,
  length: number,
  out: Float32Array,
  offset: number,
): void {
  const matrix = features.perTimeframe.get(tf);
  const index = features.rowIndex.get(tf);
  if (matrix === undefined || index === undefined)
    throw new RangeError(`copyWindow: no features for timeframe ${tf}`);
  if (baseRow < 0 || baseRow >= index.length)
    throw new RangeError(`copyWindow: base row ${baseRow} outside [0, ${index.length})`);
  if (length <= 0) return;
  const cols = matrix.cols;
  const forming = features.formingRows?.get(tf);
  // In forming mode the last slot is the forming row; the closed rows fill the slots before it.
  const closedLength = forming === undefined ? length : length - 1;
  const values = matrix.values;
  const last = index[baseRow];
  const first = last - closedLength + 1;
  // Rows before the matrix start (or no known row at all) are NaN.
  const missingRows = last < 0 ? closedLength : Math.max(0, -first);
  const nanEnd = offset + missingRows * cols;
  for (let k = offset; k < nanEnd; k++) out[k] = NaN;
  // The known rows are contiguous in `values`: copy them as one block, element by element.
  const src = (first + missingRows) * cols;
  const count = (closedLength - missingRows) * cols;
  for (let k = 0; k < count; k++) out[nanEnd + k] = values[src + k];
  if (forming !== undefined) {
    const fv = forming.values;
    const fsrc = baseRow * cols;
    const dst = offset + closedLength * cols;
    for (let k = 0; k < cols; k++) out[dst + k] = fv[fsrc + k];
  }
}

// ---------------------------------------------------------------------------------------------
// The registry: feature families, each a set of streaming indicators plus the transform that
// turns their output into stationary features. A family processes candle rows [from, to) of any
// candle columns: all rows of a timeframe at once (batch), or one forming candle at a time.

/** Raw per-row values the cross-timeframe features read (Float64, `AUX` per row). */
const AUX_CLOSE = 0;
const AUX_ATR = 1;
const AUX_TREND = 2;
const AUX_RSI = 3;
const AUX_VOL = 4;
const AUX_SUPPORT = 5;
const AUX_RESISTANCE = 6;
const AUX = 7;

/** Where a family writes: feature values (Float32, `cols` per row from column `col0`) and aux. */
interface Sink {
  values: Float32Array;
  cols: number;
  col0: number;
  aux: Float64Array;
}

interface Family {
  readonly names: readonly string[];
  create(): object;
  run(state: object, c: Candles, from: number, to: number, sink: Sink): void;
}

function family<S extends object>(
  names: readonly string[],
  create: () => S,
  run: (state: S, c: Candles, from: number, to: number, sink: Sink) => void,
): Family {
  return {
    names,
    create,
    run: run as (state: object, c: Candles, f: number, t: number, s: Sink) => void,
  };
}

/** Divides, giving 0 when the denominator is 0 (a flat window) instead of ±Infinity or NaN. */
function ratio(num: number, den: number): number {
  return den !== 0 ? num / den : num === num && den === den ? 0 : NaN;
}

function coreFamily(spec: FeatureSpec): Family {
  return family(
    [],
    () => ({
      atr: new AtrStream(spec.atrPeriod),
      trend: new SmaStream(spec.cross.trendPeriod),
      rsi: new RsiStream(spec.cross.rsiPeriod),
      vol: new RealizedVolatilityStream({ period: spec.cross.volPeriod }),
    }),
    (s, c, from, to, { aux }) => {
      const { high, low, close } = c;
      for (let i = from; i < to; i++) {
        const a = i * AUX;
        const cl = close[i];
        aux[a + AUX_CLOSE] = cl;
        aux[a + AUX_ATR] = s.atr.update(high[i], low[i], cl);
        aux[a + AUX_TREND] = cl / s.trend.update(cl) - 1;
        aux[a + AUX_RSI] = s.rsi.update(cl);
        aux[a + AUX_VOL] = s.vol.update(cl);
      }
    },
  );
}

function returnsFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `ret_${n}`),
    () => periods.map((n) => new RocStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const close = c.close;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        // ROC is 100 (close / close n bars ago - 1): the log return is log1p(ROC / 100).
        for (let k = 0; k < s.length; k++) values[o + k] = Math.log1p(s[k].update(close[i]) / 100);
      }
    },
  );
}

function smaFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `close_sma_${n}`),
    () => periods.map((n) => new SmaStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const close = c.close;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) values[o + k] = close[i] / s[k].update(close[i]) - 1;
      }
    },
  );
}

function emaFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `close_ema_${n}`),
    () => periods.map((n) => new EmaStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const close = c.close;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) values[o + k] = close[i] / s[k].update(close[i]) - 1;
      }
    },
  );
}

function rsiFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `rsi_${n}`),
    () => periods.map((n) => new RsiStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const close = c.close;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) values[o + k] = (s[k].update(close[i]) - 50) / 50;
      }
    },
  );
}

function macdFamily(list: FeatureSpec['macd']): Family {
  const tag = (m: FeatureSpec['macd'][number]) => `${m.fast}_${m.slow}_${m.signal}`;
  return family(
    list.flatMap((m) => [`macd_${tag(m)}`, `macd_signal_${tag(m)}`, `macd_hist_${tag(m)}`]),
    () =>
      list.map(
        (m) => new MacdStream({ fastPeriod: m.fast, slowPeriod: m.slow, signalPeriod: m.signal }),
      ),
    (s, c, from, to, { values, cols, col0 }) => {
      const close = c.close;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        const cl = close[i];
        for (let k = 0; k < s.length; k++) {
          const m = s[k];
          const line = m.update(cl);
          values[o + 3 * k] = line / cl;
          values[o + 3 * k + 1] = line === line ? m.signal / cl : NaN;
          values[o + 3 * k + 2] = line === line ? m.histogram / cl : NaN;
        }
      }
    },
  );
}

function bollingerFamily(list: FeatureSpec['bollinger']): Family {
  const tag = (b: FeatureSpec['bollinger'][number]) => `${b.period}_${b.stdDev}`;
  return family(
    list.flatMap((b) => [`bb_pctb_${tag(b)}`, `bb_width_${tag(b)}`]),
    () =>
      list.map(
        (b) => new BollingerStream({ period: b.period, stdDevUp: b.stdDev, stdDevDown: b.stdDev }),
      ),
    (s, c, from, to, { values, cols, col0 }) => {
      const close = c.close;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) {
          const b = s[k];
          const middle = b.update(close[i]);
          values[o + 2 * k] = middle === middle ? b.percentB : NaN;
          values[o + 2 * k + 1] = middle === middle ? b.bandwidth : NaN;
        }
      }
    },
  );
}

function atrFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `atr_${n}`),
    () => periods.map((n) => new AtrStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const { high, low, close } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++)
          values[o + k] = s[k].update(high[i], low[i], close[i]) / close[i];
      }
    },
  );
}

function adxFamily(periods: readonly number[]): Family {
  return family(
    periods.flatMap((n) => [`adx_${n}`, `di_${n}`]),
    () => periods.map((n) => new AdxStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const { high, low, close } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) {
          const a = s[k];
          values[o + 2 * k] = a.update(high[i], low[i], close[i]) / 100;
          values[o + 2 * k + 1] = (a.plusDi - a.minusDi) / 100;
        }
      }
    },
  );
}

function stochasticFamily(list: FeatureSpec['stochastic']): Family {
  const tag = (x: FeatureSpec['stochastic'][number]) => `${x.k}_${x.smoothK}_${x.d}`;
  return family(
    list.flatMap((x) => [`stoch_k_${tag(x)}`, `stoch_d_${tag(x)}`]),
    () =>
      list.map(
        (x) => new StochasticStream({ fastKPeriod: x.k, slowKPeriod: x.smoothK, slowDPeriod: x.d }),
      ),
    (s, c, from, to, { values, cols, col0 }) => {
      const { high, low, close } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) {
          const st = s[k];
          const kv = st.update(high[i], low[i], close[i]);
          values[o + 2 * k] = kv / 100;
          values[o + 2 * k + 1] = kv === kv ? st.d / 100 : NaN;
        }
      }
    },
  );
}

function williamsFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `willr_${n}`),
    () => periods.map((n) => new WilliamsRStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const { high, low, close } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++)
          values[o + k] = s[k].update(high[i], low[i], close[i]) / 100;
      }
    },
  );
}

function cciFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `cci_${n}`),
    () => periods.map((n) => new CciStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const { high, low, close } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++)
          values[o + k] = s[k].update(high[i], low[i], close[i]) / 100;
      }
    },
  );
}

function rocFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `roc_${n}`),
    () => periods.map((n) => new RocStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const close = c.close;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) values[o + k] = s[k].update(close[i]) / 100;
      }
    },
  );
}

function obvFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `obv_${n}`),
    () => ({
      obv: new ObvStream(),
      last: { level: NaN },
      flow: periods.map((n) => new RollingSum(n)),
      volume: periods.map((n) => new RollingSum(n)),
    }),
    (s, c, from, to, { values, cols, col0 }) => {
      const { close, volume } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        const level = s.obv.update(close[i], volume[i]);
        const prev = s.last.level;
        s.last.level = level;
        if (prev !== prev) {
          // First bar: OBV has no change yet.
          for (let k = 0; k < s.flow.length; k++) values[o + k] = NaN;
          continue;
        }
        // The OBV change of this bar: +volume, -volume or 0.
        const change = level - prev;
        for (let k = 0; k < s.flow.length; k++) {
          const f = s.flow[k];
          const flow = f.push(change);
          const traded = s.volume[k].push(volume[i]);
          values[o + k] = f.count < f.size ? NaN : ratio(flow, traded);
        }
      }
    },
  );
}

function mfiFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `mfi_${n}`),
    () => periods.map((n) => new MfiStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const { high, low, close, volume } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++)
          values[o + k] = (s[k].update(high[i], low[i], close[i], volume[i]) - 50) / 50;
      }
    },
  );
}

function vwapFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `vwap_${n}`),
    () => periods.map((n) => new VwapStream(n)),
    (s, c, from, to, { values, cols, col0 }) => {
      const { high, low, close, volume } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++)
          values[o + k] = close[i] / s[k].update(high[i], low[i], close[i], volume[i]) - 1;
      }
    },
  );
}

function vwapDailyFamily(): Family {
  return family(
    ['vwap_day'],
    () => new AnchoredVwapStream(),
    (s, c, from, to, { values, cols, col0 }) => {
      const { openTime, high, low, close, volume } = c;
      for (let i = from; i < to; i++)
        values[i * cols + col0] =
          close[i] / s.update(openTime[i], high[i], low[i], close[i], volume[i]) - 1;
    },
  );
}

function donchianFamily(periods: readonly number[]): Family {
  return family(
    periods.flatMap((n) => [`donchian_pos_${n}`, `donchian_width_${n}`]),
    () => periods.map((n) => new DonchianStream(n)),
    (s, c, from, to, { values, cols, col0, aux }) => {
      const { high, low, close } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        const atrValue = aux[i * AUX + AUX_ATR];
        for (let k = 0; k < s.length; k++) {
          const d = s[k];
          const mid = d.update(high[i], low[i]);
          const width = d.upper - d.lower;
          values[o + 2 * k] =
            mid === mid ? (width !== 0 ? (close[i] - d.lower) / width : 0.5) : NaN;
          values[o + 2 * k + 1] = mid === mid ? ratio(width, atrValue) : NaN;
        }
      }
    },
  );
}

function keltnerFamily(list: FeatureSpec['keltner']): Family {
  return family(
    list.map((x) => `keltner_${x.period}_${x.atrPeriod}_${x.multiplier}`),
    () =>
      list.map(
        (x) =>
          new KeltnerStream({
            emaPeriod: x.period,
            atrPeriod: x.atrPeriod,
            multiplier: x.multiplier,
          }),
      ),
    (s, c, from, to, { values, cols, col0 }) => {
      const { high, low, close } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) {
          const kc = s[k];
          const middle = kc.update(high[i], low[i], close[i]);
          values[o + k] = middle === middle ? ratio(close[i] - middle, kc.upper - middle) : NaN;
        }
      }
    },
  );
}

function realizedVolFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `rv_${n}`),
    () => periods.map((n) => new RealizedVolatilityStream({ period: n })),
    (s, c, from, to, { values, cols, col0 }) => {
      const close = c.close;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) values[o + k] = s[k].update(close[i]);
      }
    },
  );
}

function volumeZFamily(periods: readonly number[]): Family {
  return family(
    periods.map((n) => `volz_${n}`),
    () => periods.map((n) => new VolumeZScoreStream({ period: n, log: true })),
    (s, c, from, to, { values, cols, col0 }) => {
      const volume = c.volume;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        for (let k = 0; k < s.length; k++) values[o + k] = s[k].update(volume[i]);
      }
    },
  );
}

function candleShapeFamily(): Family {
  return family(
    ['body_atr', 'upper_wick_atr', 'lower_wick_atr'],
    () => ({}),
    (_s, c, from, to, { values, cols, col0, aux }) => {
      const { open, high, low, close } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        const a = aux[i * AUX + AUX_ATR];
        const top = open[i] > close[i] ? open[i] : close[i];
        const bottom = open[i] < close[i] ? open[i] : close[i];
        values[o] = a === a ? ratio(close[i] - open[i], a) : NaN;
        values[o + 1] = a === a ? ratio(high[i] - top, a) : NaN;
        values[o + 2] = a === a ? ratio(bottom - low[i], a) : NaN;
      }
    },
  );
}

function supportResistanceFamily(spec: FeatureSpec): Family {
  const sr = spec.supportResistance;
  return family(
    ['sr_res_atr', 'sr_sup_atr', 'sr_res_touches', 'sr_sup_touches'],
    () =>
      new SupportResistanceStream({
        leftBars: sr.left,
        rightBars: sr.right,
        lookback: sr.lookback,
        atrPeriod: spec.atrPeriod,
        touchTolerance: sr.tolerance,
        distanceUnit: 'atr',
        maxDistance: sr.maxDistanceAtr,
        roleReversal: sr.roleReversal,
      }),
    (s, c, from, to, { values, cols, col0, aux }) => {
      const { high, low, close } = c;
      for (let i = from; i < to; i++) {
        const o = i * cols + col0;
        const res = s.update(high[i], low[i], close[i]);
        const warm = res === res;
        values[o] = res;
        values[o + 1] = warm ? s.supportDistance : NaN;
        values[o + 2] = warm ? s.resistanceTouches : NaN;
        values[o + 3] = warm ? s.supportTouches : NaN;
        aux[i * AUX + AUX_SUPPORT] = s.support;
        aux[i * AUX + AUX_RESISTANCE] = s.resistance;
      }
    },
  );
}

/** The families of timeframe `tf`, core first (it fills the aux columns others read). */
function familiesFor(spec: FeatureSpec, tf: Timeframe): Family[] {
  const f: Family[] = [coreFamily(spec)];
  if (spec.returns.length > 0) f.push(returnsFamily(spec.returns));
  if (spec.sma.length > 0) f.push(smaFamily(spec.sma));
  if (spec.ema.length > 0) f.push(emaFamily(spec.ema));
  if (spec.rsi.length > 0) f.push(rsiFamily(spec.rsi));
  if (spec.macd.length > 0) f.push(macdFamily(spec.macd));
  if (spec.bollinger.length > 0) f.push(bollingerFamily(spec.bollinger));
  if (spec.atr.length > 0) f.push(atrFamily(spec.atr));
  if (spec.adx.length > 0) f.push(adxFamily(spec.adx));
  if (spec.stochastic.length > 0) f.push(stochasticFamily(spec.stochastic));
  if (spec.williamsR.length > 0) f.push(williamsFamily(spec.williamsR));
  if (spec.cci.length > 0) f.push(cciFamily(spec.cci));
  if (spec.roc.length > 0) f.push(rocFamily(spec.roc));
  if (spec.obv.length > 0) f.push(obvFamily(spec.obv));
  if (spec.mfi.length > 0) f.push(mfiFamily(spec.mfi));
  if (spec.vwap.length > 0) f.push(vwapFamily(spec.vwap));
  if (spec.vwapDaily && TIMEFRAME_MS[tf] < TIMEFRAME_MS['1d']) f.push(vwapDailyFamily());
  if (spec.donchian.length > 0) f.push(donchianFamily(spec.donchian));
  if (spec.keltner.length > 0) f.push(keltnerFamily(spec.keltner));
  if (spec.realizedVol.length > 0) f.push(realizedVolFamily(spec.realizedVol));
  if (spec.volumeZ.length > 0) f.push(volumeZFamily(spec.volumeZ));
  if (spec.candleShape) f.push(candleShapeFamily());
  if (spec.supportResistance.enabled) f.push(supportResistanceFamily(spec));
  return f;
}

/** Per-timeframe feature names of `tf` under `spec`, in column order. */
export function timeframeFeatureNames(spec: FeatureSpec, tf: Timeframe): string[] {
  return familiesFor(spec, tf).flatMap((f) => [...f.names]);
}

/** The shipped feature spec (config/default.yaml, section `features`). */
export function defaultFeatureSpec(): FeatureSpec {
  return defaultConfig().features;
}

// ---------------------------------------------------------------------------------------------
// Running the families: batch over a timeframe's candles, and the forming pass (state copies).

interface Plan {
  readonly families: Family[];
  readonly col0: number[];
  /** Per-timeframe feature names (the families' names, in column order). */
  readonly names: string[];
}

function makePlan(spec: FeatureSpec, tf: Timeframe): Plan {
  const families = familiesFor(spec, tf);
  const col0: number[] = [];
  const names: string[] = [];
  for (const f of families) {
    col0.push(names.length);
    names.push(...f.names);
  }
  return { families, col0, names };
}

function closeTimes(c: Candles): Float64Array {
  const ms = TIMEFRAME_MS[c.timeframe];
  const t = new Float64Array(c.openTime.length);
  for (let i = 0; i < t.length; i++) t[i] = c.openTime[i] + ms;
  return t;
}

/**
 * Rows per block of the batch pass: every family runs over one block before the next block, so
 * the block's rows of the row-major matrix stay in cache instead of being streamed from memory
 * once per family. The families' streaming states carry over from block to block.
 */
const BLOCK_ROWS = 1024;

/** Runs every family over all candles; `values` has `cols` columns (>= the plan's). */
function runBatch(
  plan: Plan,
  c: Candles,
  values: Float32Array,
  cols: number,
  aux: Float64Array,
  afterBlock?: (from: number, to: number) => void,
): void {
  const n = c.openTime.length;
  const fams = plan.families;
  const states = fams.map((f) => f.create());
  const sinks = fams.map((_, k) => ({ values, cols, col0: plan.col0[k], aux }));
  for (let from = 0; from < n; from += BLOCK_ROWS) {
    const to = Math.min(n, from + BLOCK_ROWS);
    for (let k = 0; k < fams.length; k++) fams[k].run(states[k], c, from, to, sinks[k]);
    afterBlock?.(from, to);
  }
}

/**
 * Builds a function that copies the state of a streaming object into its twin built by the same
 * factory (same classes, same fixed-size buffers): every plain field by value, every typed array
 * element-wise. The pair is walked once and the copy is compiled into straight-line property
 * accesses (`d.atr.value = s.atr.value; d.buf.set(s.buf); ...`), so each copy in the forming
 * pass enumerates nothing, allocates nothing and makes no polymorphic lookups. Keys are emitted as
 * JSON string literals, never as code.
 * @throws {TypeError} when the two objects are not built alike.
 */
function stateCopier(dst: object, src: object): (dst: object, src: object) => void {
  const lines: string[] = [];
  const walk = (d: Record<string, unknown>, s: Record<string, unknown>, path: string): void => {
    for (const key in s) {
      const v = s[key];
      const access = `${path}[${Array.isArray(s) ? String(Number(key)) : JSON.stringify(key)}]`;
      if (typeof v !== 'object' || v === null) {
        lines.push(`d${access} = s${access};`);
        continue;
      }
      const t = d[key];
      if (
        typeof t !== 'object' ||
        t === null ||
        Object.getPrototypeOf(t) !== Object.getPrototypeOf(v) ||
        (ArrayBuffer.isView(v) && (t as Float64Array).length !== (v as Float64Array).length)
      )
        throw new TypeError(`forming state: field ${access} differs between twins`);
      if (ArrayBuffer.isView(v)) lines.push(`d${access}.set(s${access});`);
      else walk(t as Record<string, unknown>, v as Record<string, unknown>, access);
    }
  };
  walk(dst as Record<string, unknown>, src as Record<string, unknown>, '');
  return new Function('d', 's', lines.join('\n')) as (dst: object, src: object) => void;
}

/**
 * Forming pass of one higher timeframe: the closed candles are fed one by one to `committed`
 * states (their rows of `values`/`aux`); for each base row i, the states after the last candle
 * closed before i's bucket are copied and fed the forming candle (row i of `fValues`/`fAux`).
 */
function runForming(
  plan: Plan,
  closed: Candles,
  forming: Candles,
  formingPrev: Int32Array,
  out: { values: Float32Array; aux: Float64Array; fValues: Float32Array; fAux: Float64Array },
): void {
  const cols = plan.names.length;
  const fams = plan.families;
  const committed = fams.map((f) => f.create());
  const scratch = fams.map((f) => f.create());
  const copiers = fams.map((_, k) => stateCopier(scratch[k], committed[k]));
  const closedSinks = fams.map((_, k) => ({
    values: out.values,
    cols,
    col0: plan.col0[k],
    aux: out.aux,
  }));
  const formingSinks = fams.map((_, k) => ({
    values: out.fValues,
    cols,
    col0: plan.col0[k],
    aux: out.fAux,
  }));
  const m = closed.openTime.length;
  let next = 0;
  const commitThrough = (last: number): void => {
    for (; next <= last; next++)
      for (let k = 0; k < fams.length; k++)
        fams[k].run(committed[k], closed, next, next + 1, closedSinks[k]);
  };
  for (let i = 0; i < formingPrev.length; i++) {
    commitThrough(formingPrev[i]);
    for (let k = 0; k < fams.length; k++) {
      copiers[k](scratch[k], committed[k]);
      fams[k].run(scratch[k], forming, i, i + 1, formingSinks[k]);
    }
  }
  commitThrough(m - 1);
}

function nanArray(n: number): Float64Array {
  return new Float64Array(n).fill(NaN);
}

/**
 * Per-timeframe features of one candle series: the spec's families over every row, as a
 * `FeatureMatrix` on the candles' rows (decision time = close time). Warm-up rows hold NaN.
 * Candles are not validated here (validate them at the edge).
 * @example
 * const m = calculateTechnicalIndicators(candles); // m.names: ['ret_1', ..., 'close_sma_10', ...]
 */
export function calculateTechnicalIndicators(
  candles: Candles,
  spec: FeatureSpec = defaultFeatureSpec(),
): FeatureMatrix {
  const plan = makePlan(spec, candles.timeframe);
  const n = candles.openTime.length;
  const cols = plan.names.length;
  const values = new Float32Array(n * cols);
  runBatch(plan, candles, values, cols, nanArray(n * AUX));
  return matrix(candles.timeframe, plan.names, closeTimes(candles), values);
}

function matrix(
  timeframe: Timeframe,
  names: readonly string[],
  time: Float64Array,
  values: Float32Array,
): FeatureMatrix {
  return Object.freeze({
    timeframe,
    names: Object.freeze([...names]),
    time,
    values,
    rows: time.length,
    cols: names.length,
  });
}

// ---------------------------------------------------------------------------------------------
// Cross-timeframe features, on the base rows.

/** How a higher timeframe is read from base row i: aux row `index[i]` (-1 = none yet). */
interface HigherView {
  readonly tf: Timeframe;
  readonly tfMs: number;
  readonly aux: Float64Array;
  readonly index: Int32Array;
  readonly staleness: Int32Array;
}

interface CrossContext {
  readonly base: Candles;
  readonly baseMs: number;
  readonly baseAux: Float64Array;
  readonly higher: readonly HigherView[];
  readonly values: Float32Array;
  readonly cols: number;
}

interface CrossGroup {
  readonly names: string[];
  /** Writes the group's columns for base rows [from, to) (called block by block, in order). */
  write(ctx: CrossContext, col0: number, from: number, to: number): void;
}

const TWO_PI = 2 * Math.PI;
const DAY_MS = 86_400_000;

function crossGroups(
  spec: FeatureSpec,
  baseTf: Timeframe,
  higher: readonly Timeframe[],
): CrossGroup[] {
  const x = spec.cross;
  const groups: CrossGroup[] = [];
  if (x.trend && higher.length > 0)
    groups.push({
      names: [...[baseTf, ...higher].map((tf) => `x.trend_${tf}`), 'x.trend_agree'],
      write({ baseAux, higher: hs, values, cols }, col0, from, to) {
        for (let i = from; i < to; i++) {
          const o = i * cols + col0;
          let sum = Math.sign(baseAux[i * AUX + AUX_TREND]);
          values[o] = sum;
          for (let h = 0; h < hs.length; h++) {
            const r = hs[h].index[i];
            const sg = r < 0 ? NaN : Math.sign(hs[h].aux[r * AUX + AUX_TREND]);
            values[o + 1 + h] = sg;
            sum += sg;
          }
          values[o + 1 + hs.length] = sum / (hs.length + 1);
        }
      },
    });
  if (x.rangePosition && higher.length > 0) {
    // Per higher timeframe: the bucket in progress and its high and low so far (kept across blocks).
    const bucketOf = new Float64Array(higher.length).fill(NaN);
    const highOf = new Float64Array(higher.length);
    const lowOf = new Float64Array(higher.length);
    groups.push({
      names: higher.map((tf) => `x.pos_${tf}`),
      write({ base, higher: hs, values, cols }, col0, from, to) {
        const { openTime, high, low, close } = base;
        for (let h = 0; h < hs.length; h++) {
          const tfMs = hs[h].tfMs;
          let bucket = bucketOf[h];
          let hi = highOf[h];
          let lo = lowOf[h];
          for (let i = from; i < to; i++) {
            const b = openTime[i] - (openTime[i] % tfMs);
            if (b !== bucket) {
              bucket = b;
              hi = high[i];
              lo = low[i];
            } else {
              if (high[i] > hi) hi = high[i];
              if (low[i] < lo) lo = low[i];
            }
            const width = hi - lo;
            values[i * cols + col0 + h] = width !== 0 ? (close[i] - lo) / width : 0.5;
          }
          bucketOf[h] = bucket;
          highOf[h] = hi;
          lowOf[h] = lo;
        }
      },
    });
  }
  if (x.supportResistance && spec.supportResistance.enabled)
    groups.push({
      names: higher.flatMap((tf) => [`x.res_${tf}`, `x.sup_${tf}`]),
      write({ baseAux, higher: hs, values, cols }, col0, from, to) {
        const cap = spec.supportResistance.maxDistanceAtr;
        const clamp = (d: number): number => (d > cap ? cap : d < -cap ? -cap : d);
        for (let h = 0; h < hs.length; h++) {
          const { index, aux } = hs[h];
          for (let i = from; i < to; i++) {
            const o = i * cols + col0 + 2 * h;
            const r = index[i];
            const a = r < 0 ? NaN : aux[r * AUX + AUX_ATR];
            if (a !== a) {
              values[o] = NaN;
              values[o + 1] = NaN;
              continue;
            }
            // Signed distances of the base close to the higher timeframe's levels, in its ATRs:
            // negative once the base close has crossed the level. No level known: the cap.
            const close = baseAux[i * AUX + AUX_CLOSE];
            const res = aux[r * AUX + AUX_RESISTANCE];
            const sup = aux[r * AUX + AUX_SUPPORT];
            values[o] = res === res ? clamp(ratio(res - close, a)) : cap;
            values[o + 1] = sup === sup ? clamp(ratio(close - sup, a)) : cap;
          }
        }
      },
    });
  if (x.rsi)
    groups.push({
      names: higher.map((tf) => `x.rsi_${tf}`),
      write({ higher: hs, values, cols }, col0, from, to) {
        for (let h = 0; h < hs.length; h++) {
          const { index, aux } = hs[h];
          for (let i = from; i < to; i++) {
            const r = index[i];
            values[i * cols + col0 + h] = r < 0 ? NaN : (aux[r * AUX + AUX_RSI] - 50) / 50;
          }
        }
      },
    });
  if (x.volatilityRatio)
    groups.push({
      names: higher.map((tf) => `x.vol_ratio_${tf}`),
      write({ baseAux, baseMs, higher: hs, values, cols }, col0, from, to) {
        for (let h = 0; h < hs.length; h++) {
          const { index, aux, tfMs } = hs[h];
          // Per-bar volatility grows with the square root of the bar length.
          const scale = Math.sqrt(tfMs / baseMs);
          for (let i = from; i < to; i++) {
            const r = index[i];
            const vb = baseAux[i * AUX + AUX_VOL] * scale;
            const vh = r < 0 ? NaN : aux[r * AUX + AUX_VOL];
            values[i * cols + col0 + h] =
              vb !== vb || vh !== vh ? NaN : vb > 0 && vh > 0 ? Math.log(vb / vh) : 0;
          }
        }
      },
    });
  if (x.timeOfDay)
    groups.push({
      names: ['x.tod_sin', 'x.tod_cos'],
      write({ base, baseMs, values, cols }, col0, from, to) {
        const t = base.openTime;
        for (let i = from; i < to; i++) {
          const a = (TWO_PI * ((t[i] + baseMs) % DAY_MS)) / DAY_MS;
          values[i * cols + col0] = Math.sin(a);
          values[i * cols + col0 + 1] = Math.cos(a);
        }
      },
    });
  if (x.dayOfWeek)
    groups.push({
      names: ['x.dow_sin', 'x.dow_cos'],
      write({ base, baseMs, values, cols }, col0, from, to) {
        const t = base.openTime;
        for (let i = from; i < to; i++) {
          // Day 0 (1970-01-01) was a Thursday: Monday = 0 ... Sunday = 6.
          const dow = (Math.floor((t[i] + baseMs) / DAY_MS) + 3) % 7;
          const a = (TWO_PI * dow) / 7;
          values[i * cols + col0] = Math.sin(a);
          values[i * cols + col0 + 1] = Math.cos(a);
        }
      },
    });
  if (x.staleness)
    groups.push({
      names: higher.map((tf) => `x.stale_${tf}`),
      write({ baseMs, higher: hs, values, cols }, col0, from, to) {
        for (let h = 0; h < hs.length; h++) {
          const { staleness, tfMs } = hs[h];
          const perBar = baseMs / tfMs;
          for (let i = from; i < to; i++)
            values[i * cols + col0 + h] = staleness[i] < 0 ? NaN : staleness[i] * perBar;
        }
      },
    });
  return groups.filter((g) => g.names.length > 0);
}

// ---------------------------------------------------------------------------------------------
// Assembly: per-timeframe matrices, cross features, firstValidRow, the decision-row view.

/** Options of `createMultiTimeframeFeatures`. */
export interface MultiTimeframeOptions {
  /** The feature registry (default: config/default.yaml's `features`). */
  spec?: FeatureSpec;
  /** Window sizes in bars per timeframe for `firstValidRow` (default: config `windows`; 1 for a timeframe without one). */
  windows?: Partial<Record<Timeframe, number>>;
}

/**
 * Last row <= r holding a NaN (-1 when none), scanning rows only as far as asked: a window ending
 * at r is NaN-free iff that row is before the window's first row.
 */
class NanScan {
  private scanned = 0;
  private last = -1;
  private readonly lastAt: Int32Array;

  constructor(
    private readonly values: Float32Array,
    private readonly cols: number,
    rows: number,
  ) {
    this.lastAt = new Int32Array(rows);
  }

  lastNanAtOrBefore(r: number): number {
    const { values, cols, lastAt } = this;
    for (; this.scanned <= r; this.scanned++) {
      const o = this.scanned * cols;
      for (let j = 0; j < cols; j++) {
        const v = values[o + j];
        if (v !== v) {
          this.last = this.scanned;
          break;
        }
      }
      lastAt[this.scanned] = this.last;
    }
    return lastAt[r];
  }
}

/** Window length per timeframe (default `config.windows`, 1 for a timeframe it lacks). */
function resolveWindows(
  timeframes: readonly Timeframe[],
  windowsIn: Partial<Record<Timeframe, number>> | undefined,
): Partial<Record<Timeframe, number>> {
  const given = windowsIn ?? defaultConfig().windows;
  const windows: Partial<Record<Timeframe, number>> = {};
  for (const tf of timeframes) {
    const w = given[tf] ?? 1;
    if (!Number.isInteger(w) || w < 1)
      throw new DataValidationError({
        field: `windows.${tf}`,
        reason: `window ${w} is not a positive integer`,
      });
    windows[tf] = w;
  }
  return windows;
}

/**
 * Builds the feature matrices of every timeframe of `aligned` plus the cross-timeframe features,
 * the decision-row view and `firstValidRow` (docs/architecture.md, core types). Higher timeframes
 * enter the base rows only through `lastClosed` (or, in forming mode, the candle in progress built
 * from base rows up to the decision time). Deterministic: the same candles give the same bits.
 * @throws {DataValidationError} when a window size is not a positive integer.
 * @example
 * const aligned = alignTimeframes(data.get('BTC/USDT')!);
 * const f = createMultiTimeframeFeatures(aligned, { windows: { '15m': 64, '4h': 32, '1d': 16 } });
 * copyWindow(f, '4h', f.firstValidRow, 32, out, 0);
 */
export function createMultiTimeframeFeatures(
  aligned: AlignedFrames,
  options: MultiTimeframeOptions = {},
): MultiTimeframeFeatures {
  const mode: AlignmentMode = aligned.mode;
  const baseSpec = options.spec ?? defaultFeatureSpec();
  const spec: FeatureSpec =
    baseSpec.alignment === mode ? baseSpec : { ...baseSpec, alignment: mode };
  const base = aligned.base;
  const baseTf = base.timeframe;
  const baseMs = TIMEFRAME_MS[baseTf];
  const n = base.openTime.length;
  const timeframes: Timeframe[] = [baseTf, ...aligned.higher.map((h) => h.timeframe)];
  const windows = resolveWindows(timeframes, options.windows);

  // Higher timeframes: closed matrices (and forming rows in forming mode).
  const perTimeframe = new Map<Timeframe, FeatureMatrix>();
  const rowIndex = new Map<Timeframe, Int32Array>();
  const formingRows = new Map<Timeframe, FeatureMatrix>();
  const views: HigherView[] = [];
  const baseTimes = closeTimes(base);
  for (const h of aligned.higher) {
    const plan = makePlan(spec, h.timeframe);
    const m = h.candles.openTime.length;
    const cols = plan.names.length;
    const values = new Float32Array(m * cols);
    const aux = nanArray(m * AUX);
    if (mode === 'forming' && h.forming !== undefined && h.formingPrev !== undefined) {
      const fValues = new Float32Array(n * cols);
      const fAux = nanArray(n * AUX);
      runForming(plan, h.candles, h.forming, h.formingPrev, { values, aux, fValues, fAux });
      formingRows.set(h.timeframe, matrix(h.timeframe, plan.names, baseTimes, fValues));
      rowIndex.set(h.timeframe, h.formingPrev);
      views.push({
        tf: h.timeframe,
        tfMs: TIMEFRAME_MS[h.timeframe],
        aux: fAux,
        index: identity(n),
        staleness: h.staleness,
      });
    } else {
      runBatch(plan, h.candles, values, cols, aux);
      rowIndex.set(h.timeframe, h.lastClosed);
      views.push({
        tf: h.timeframe,
        tfMs: TIMEFRAME_MS[h.timeframe],
        aux,
        index: h.lastClosed,
        staleness: h.staleness,
      });
    }
    perTimeframe.set(h.timeframe, matrix(h.timeframe, plan.names, closeTimes(h.candles), values));
  }

  // Base: per-timeframe features, then the cross-timeframe ones in the same matrix.
  const plan = makePlan(spec, baseTf);
  const groups = crossGroups(
    spec,
    baseTf,
    views.map((v) => v.tf),
  );
  const names = [...plan.names, ...groups.flatMap((g) => g.names)];
  const cols = names.length;
  const values = new Float32Array(n * cols);
  const baseAux = nanArray(n * AUX);
  const ctx: CrossContext = { base, baseMs, baseAux, higher: views, values, cols };
  const groupCol0: number[] = [];
  for (let g = 0, c0 = plan.names.length; g < groups.length; c0 += groups[g].names.length, g++)
    groupCol0.push(c0);
  // The cross features of each block right after its per-timeframe features (the block is in cache).
  runBatch(plan, base, values, cols, baseAux, (from, to) => {
    for (let g = 0; g < groups.length; g++) groups[g].write(ctx, groupCol0[g], from, to);
  });
  perTimeframe.set(baseTf, matrix(baseTf, names, baseTimes, values));
  rowIndex.set(baseTf, identity(n));

  const ordered = new Map<Timeframe, FeatureMatrix>(
    timeframes.map((tf) => [tf, perTimeframe.get(tf)!]),
  );
  const firstValidRow = findFirstValidRow(timeframes, ordered, rowIndex, formingRows, windows, n);
  let decision: FeatureMatrix | undefined;
  const result: MultiTimeframeFeatures = {
    base: baseTf,
    timeframes,
    perTimeframe: ordered,
    rowIndex,
    aligned,
    get decisionRows(): FeatureMatrix {
      decision ??= buildDecisionRows(baseTf, timeframes, ordered, rowIndex, formingRows, baseTimes);
      return decision;
    },
    firstValidRow,
    windows,
    spec,
    ...(mode === 'forming' ? { formingRows } : {}),
  };
  return result;
}

function identity(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

function findFirstValidRow(
  timeframes: readonly Timeframe[],
  matrices: ReadonlyMap<Timeframe, FeatureMatrix>,
  rowIndex: ReadonlyMap<Timeframe, Int32Array>,
  formingRows: ReadonlyMap<Timeframe, FeatureMatrix>,
  windows: Partial<Record<Timeframe, number>>,
  n: number,
): number {
  const checks = timeframes.map((tf) => {
    const m = matrices.get(tf)!;
    const f = formingRows.get(tf);
    return {
      lastNan: new NanScan(m.values, m.cols, m.rows),
      index: rowIndex.get(tf)!,
      formingNan: f === undefined ? null : new NanScan(f.values, f.cols, f.rows),
      closedLength: (windows[tf] ?? 1) - (f === undefined ? 0 : 1),
    };
  });
  for (let i = 0; i < n; i++) {
    let ok = true;
    for (const c of checks) {
      if (c.formingNan !== null && c.formingNan.lastNanAtOrBefore(i) === i) {
        ok = false;
        break;
      }
      if (c.closedLength === 0) continue;
      const last = c.index[i];
      const first = last - c.closedLength + 1;
      if (last < 0 || first < 0 || c.lastNan.lastNanAtOrBefore(last) >= first) {
        ok = false;
        break;
      }
    }
    if (ok) return i;
  }
  return n;
}

function buildDecisionRows(
  baseTf: Timeframe,
  timeframes: readonly Timeframe[],
  matrices: ReadonlyMap<Timeframe, FeatureMatrix>,
  rowIndex: ReadonlyMap<Timeframe, Int32Array>,
  formingRows: ReadonlyMap<Timeframe, FeatureMatrix>,
  time: Float64Array,
): FeatureMatrix {
  const names: string[] = [];
  for (const tf of timeframes)
    for (const name of matrices.get(tf)!.names)
      names.push(name.startsWith('x.') ? name : `${tf}.${name}`);
  const cols = names.length;
  const n = time.length;
  const out = new Float32Array(n * cols);
  let col0 = 0;
  for (const tf of timeframes) {
    const forming = formingRows.get(tf);
    const m = forming ?? matrices.get(tf)!;
    const index = forming === undefined ? rowIndex.get(tf)! : identity(n);
    const mc = m.cols;
    const src = m.values;
    for (let i = 0; i < n; i++) {
      const r = index[i];
      const o = i * cols + col0;
      if (r < 0) for (let j = 0; j < mc; j++) out[o + j] = NaN;
      else for (let j = 0; j < mc; j++) out[o + j] = src[r * mc + j];
    }
    col0 += mc;
  }
  return matrix(baseTf, names, time, out);
}

/** Options of `buildFeatures`. */
export interface BuildFeaturesOptions extends MultiTimeframeOptions {
  /** Alignment mode (default: the spec's `alignment`). */
  mode?: AlignmentMode;
}

/**
 * Aligns candles per timeframe (with the spec's alignment mode) and builds their features: the
 * one path `ctm features`, the env, the dataset builder and the look-ahead check share.
 * @throws {DataValidationError} as `alignTimeframes` and `createMultiTimeframeFeatures` do.
 */
export function buildFeatures(
  candlesByTf: CandlesByTimeframe,
  options: BuildFeaturesOptions = {},
): MultiTimeframeFeatures {
  const spec = options.spec ?? defaultFeatureSpec();
  const aligned = alignTimeframes(candlesByTf, { mode: options.mode ?? spec.alignment });
  return createMultiTimeframeFeatures(aligned, { ...options, spec });
}

/**
 * The matrices the look-ahead check compares for a feature build: every timeframe's matrix (named
 * by the timeframe), the forming rows (`forming.<tf>`) in forming mode, and the decision rows
 * (`decision`).
 */
export function featureMatrices(features: MultiTimeframeFeatures): Map<string, LookAheadMatrix> {
  const out = new Map<string, LookAheadMatrix>();
  for (const [tf, m] of features.perTimeframe) out.set(tf, m);
  for (const [tf, m] of features.formingRows ?? []) out.set(`forming.${tf}`, m);
  out.set('decision', features.decisionRows);
  return out;
}

/** Options of `checkFeatureLookAhead`. */
export interface FeatureLookAheadOptions extends LookAheadOptions, BuildFeaturesOptions {}

/**
 * The look-ahead analysis of the feature pipeline exactly as `ctm features` runs it: for each cut,
 * every timeframe's matrix, the forming rows and the decision rows must not change at or before
 * the cut when the future is truncated or poisoned. `ctm lookahead-check` calls this.
 * @throws {DataValidationError} as `checkLookAhead` does.
 */
export function checkFeatureLookAhead(
  candlesByTf: CandlesByTimeframe,
  options: FeatureLookAheadOptions = {},
): LookAheadReport {
  const build: BuildFeaturesOptions = {
    spec: options.spec ?? defaultFeatureSpec(),
    windows: options.windows,
    mode: options.mode,
  };
  return checkLookAhead(candlesByTf, (c) => featureMatrices(buildFeatures(c, build)), {
    label: 'lookahead',
    ...options,
  });
}

// ---------------------------------------------------------------------------------------------
// Writing the decision-row view (`ctm features --out`).

/** Options of `writeFeatureTable`. */
export interface WriteFeatureTableOptions {
  /** First row written (default 0). */
  fromRow?: number;
  /** Row after the last written (default: all rows). */
  toRow?: number;
}

/**
 * Shortest decimal text that reads back as the same float32 (at most 9 significant digits); empty
 * for NaN (a missing value in CSV).
 */
export function formatFloat32(v: number): string {
  if (v !== v) return '';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  if (!Number.isFinite(v)) return String(v);
  for (let p = 6; p < 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return String(Number(v.toPrecision(9)));
}

/**
 * Writes rows of a feature matrix to `path`, format by extension (`.csv`, `.csv.gz`, `.parquet`):
 * first column `decision_time` (UTC ms, integer), then one column per feature (float32; NaN is an
 * empty CSV field or a Parquet null). Atomic: written to a temporary file in the same directory,
 * synced, then renamed over `path`.
 * @throws {UsageError} when the extension is not one of those.
 */
export async function writeFeatureTable(
  m: FeatureMatrix,
  path: string,
  options: WriteFeatureTableOptions = {},
): Promise<{ rows: number; cols: number; format: string }> {
  const { exportFormatOf } = await import('./store.js');
  const format = exportFormatOf(path);
  const from = Math.max(0, options.fromRow ?? 0);
  const to = Math.min(m.rows, options.toRow ?? m.rows);
  const rows = Math.max(0, to - from);
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    if (format === 'parquet') await writeParquet(m, tmp, from, to);
    else await writeCsv(m, tmp, from, to, format === 'csv.gz');
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { rows, cols: m.cols + 1, format };
}

async function writeCsv(
  m: FeatureMatrix,
  path: string,
  from: number,
  to: number,
  gzip: boolean,
): Promise<void> {
  const file = createWriteStream(path);
  const sink = gzip ? createGzip() : file;
  if (gzip) sink.pipe(file);
  const done = once(file, 'close');
  const write = async (text: string): Promise<void> => {
    if (!sink.write(text)) await once(sink, 'drain');
  };
  const quote = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  await write(['decision_time', ...m.names.map(quote)].join(',') + '\n');
  const cols = m.cols;
  const parts: string[] = new Array<string>(cols + 1);
  let chunk = '';
  for (let r = from; r < to; r++) {
    parts[0] = String(m.time[r]);
    const o = r * cols;
    for (let j = 0; j < cols; j++) parts[j + 1] = formatFloat32(m.values[o + j]);
    chunk += parts.join(',') + '\n';
    if (chunk.length > 1 << 20) {
      await write(chunk);
      chunk = '';
    }
  }
  if (chunk.length > 0) await write(chunk);
  sink.end();
  await done;
}

async function writeParquet(
  m: FeatureMatrix,
  path: string,
  from: number,
  to: number,
): Promise<void> {
  const duck = await import('@duckdb/node-api');
  const instance = await duck.DuckDBInstance.create(':memory:');
  const con = await instance.connect();
  try {
    const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
    const columns = ['decision_time BIGINT', ...m.names.map((n) => `${ident(n)} FLOAT`)];
    await con.run(`CREATE TABLE features (${columns.join(', ')})`);
    const appender = await con.createAppender('features');
    try {
      const chunk = duck.DuckDBDataChunk.create([duck.BIGINT, ...m.names.map(() => duck.FLOAT)]);
      const size = 2048;
      const cols = m.cols;
      for (let start = from; start < to; start += size) {
        const len = Math.min(size, to - start);
        chunk.rowCount = len;
        const time = chunk.getColumnVector(0) as InstanceType<typeof duck.DuckDBBigIntVector>;
        for (let i = 0; i < len; i++) time.setItem(i, BigInt(m.time[start + i]));
        time.flush();
        for (let j = 0; j < cols; j++) {
          const vec = chunk.getColumnVector(j + 1) as InstanceType<typeof duck.DuckDBFloatVector>;
          for (let i = 0; i < len; i++) {
            const v = m.values[(start + i) * cols + j];
            vec.setItem(i, v === v ? v : null);
          }
          vec.flush();
        }
        appender.appendDataChunk(chunk);
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
    const literal = path.replace(/'/g, "''");
    await con.run(`COPY features TO '${literal}' (FORMAT parquet, COMPRESSION zstd)`);
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

// ---------------------------------------------------------------------------------------------
// Streaming: the same families and cross groups, fed one closed candle at a time (paper and live
// trading). The families carry their state from row to row exactly as they do from block to block
// in the batch pass, so a streamed row equals the batch row bit for bit by construction.

/** A growable timeframe: candle columns, feature values and aux rows, with room to spare. */
interface StreamTf {
  readonly tf: Timeframe;
  readonly tfMs: number;
  readonly plan: Plan;
  readonly states: object[];
  readonly cols: number;
  rows: number;
  capacity: number;
  candles: Candles;
  values: Float32Array;
  aux: Float64Array;
  /** Per row: the last row at or before it holding a NaN feature (-1 when none). */
  lastNanAt: Int32Array;
}

function grownCandles(c: Candles, capacity: number): Candles {
  const grow = (a: Float64Array): Float64Array => {
    const b = new Float64Array(capacity);
    b.set(a);
    return b;
  };
  return {
    symbol: c.symbol,
    timeframe: c.timeframe,
    openTime: grow(c.openTime),
    open: grow(c.open),
    high: grow(c.high),
    low: grow(c.low),
    close: grow(c.close),
    volume: grow(c.volume),
  };
}

function growTf(s: StreamTf, capacity: number): void {
  s.candles = grownCandles(s.candles, capacity);
  const values = new Float32Array(capacity * s.cols);
  values.set(s.values);
  s.values = values;
  const aux = nanArray(capacity * AUX);
  aux.set(s.aux);
  s.aux = aux;
  const lastNanAt = new Int32Array(capacity);
  lastNanAt.set(s.lastNanAt);
  s.lastNanAt = lastNanAt;
  s.capacity = capacity;
}

function growInt(a: Int32Array, capacity: number): Int32Array {
  const b = new Int32Array(capacity);
  b.set(a);
  return b;
}

/** One closed candle: open time (UTC ms) and prices/volume. */
export interface StreamCandle {
  /** Open time, UTC epoch ms, on the timeframe's grid. */
  readonly openTime: number;
  /** Open price, quote currency. */
  readonly open: number;
  /** High price, quote currency. */
  readonly high: number;
  /** Low price, quote currency. */
  readonly low: number;
  /** Close price, quote currency. */
  readonly close: number;
  /** Volume, base currency. */
  readonly volume: number;
}

/** Options of `StreamingFeatures`. */
export interface StreamingFeaturesOptions {
  /** The feature registry (default: config/default.yaml's `features`); alignment must be `last-closed`. */
  spec?: FeatureSpec;
  /** Window sizes in bars per timeframe for `firstValidRow` (default: config `windows`). */
  windows?: Partial<Record<Timeframe, number>>;
  /** Rows to allocate up front per timeframe (grows by doubling). Default 1024. */
  initialCapacity?: number;
}

/**
 * The multi-timeframe features of `createMultiTimeframeFeatures`, updated one closed candle at a
 * time: `pushHigher` each higher-timeframe candle as it closes, then `pushBase` each base candle
 * (a higher candle that closes at a base candle's close must be pushed before that base candle,
 * the closed-candle rule of `alignTimeframes`). `view()` returns the features of every row so far
 * as a `MultiTimeframeFeatures`, equal bit for bit to the batch features of the same candles.
 * @example
 * const sf = new StreamingFeatures('BTC/USDT', '15m', ['4h', '1d']);
 * sf.pushHigher('4h', candle4h); sf.pushBase(candle15m);
 * const obs = new ObservationBuilder(sf.view(), spec); // build at sf.rows - 1
 */
export class StreamingFeatures {
  /** Base (decision) timeframe. */
  readonly base: Timeframe;
  /** All timeframes, base first. */
  readonly timeframes: readonly Timeframe[];
  /** Window sizes `firstValidRow` is computed for. */
  readonly windows: Readonly<Partial<Record<Timeframe, number>>>;
  /** The feature spec in use. */
  readonly spec: FeatureSpec;
  private readonly baseTf: StreamTf;
  private readonly higherTf: StreamTf[];
  private readonly groups: CrossGroup[];
  private readonly groupCol0: number[];
  private readonly baseMs: number;
  /** Per higher timeframe: lastClosed and staleness per base row. */
  private lastClosed: Int32Array[];
  private staleness: Int32Array[];
  private validRow = -1;

  /**
   * @throws {ConfigError} naming `features.alignment` when it is not `last-closed`.
   * @throws {DataValidationError} when a window size is not a positive integer, or the higher
   *   timeframes are not coarser than the base.
   */
  constructor(
    symbol: string,
    base: Timeframe,
    higher: readonly Timeframe[],
    options: StreamingFeaturesOptions = {},
  ) {
    const spec = options.spec ?? defaultFeatureSpec();
    if (spec.alignment !== 'last-closed')
      throw new ConfigError(
        'features.alignment',
        `streaming features support last-closed alignment only, got ${spec.alignment}`,
      );
    this.spec = spec;
    this.base = base;
    this.baseMs = TIMEFRAME_MS[base];
    const sorted = [...higher].sort((a, b) => TIMEFRAME_MS[a] - TIMEFRAME_MS[b]);
    for (const tf of sorted)
      if (!(TIMEFRAME_MS[tf] > this.baseMs))
        throw new DataValidationError({
          field: 'timeframe',
          reason: `higher timeframe ${tf} is not coarser than the base ${base}`,
        });
    this.timeframes = [base, ...sorted];
    const windows = resolveWindows(this.timeframes, options.windows);
    this.windows = windows;
    const capacity = Math.max(16, options.initialCapacity ?? 1024);
    const make = (tf: Timeframe, extraNames: readonly string[]): StreamTf => {
      const plan = makePlan(spec, tf);
      const cols = plan.names.length + extraNames.length;
      return {
        tf,
        tfMs: TIMEFRAME_MS[tf],
        plan,
        states: plan.families.map((f) => f.create()),
        cols,
        rows: 0,
        capacity,
        candles: allocateCandles(symbol, tf, capacity),
        values: new Float32Array(capacity * cols),
        aux: nanArray(capacity * AUX),
        lastNanAt: new Int32Array(capacity),
      };
    };
    this.higherTf = sorted.map((tf) => make(tf, []));
    this.groups = crossGroups(spec, base, sorted);
    this.groupCol0 = [];
    const basePlanCols = makePlan(spec, base).names.length;
    for (
      let g = 0, c0 = basePlanCols;
      g < this.groups.length;
      c0 += this.groups[g].names.length, g++
    )
      this.groupCol0.push(c0);
    this.baseTf = make(
      base,
      this.groups.flatMap((g) => g.names),
    );
    this.lastClosed = sorted.map(() => new Int32Array(capacity));
    this.staleness = sorted.map(() => new Int32Array(capacity));
  }

  /** Number of base rows pushed. */
  get rows(): number {
    return this.baseTf.rows;
  }

  /** Open time of the last base candle pushed (NaN before the first). */
  get lastBaseOpenTime(): number {
    const s = this.baseTf;
    return s.rows === 0 ? NaN : s.candles.openTime[s.rows - 1];
  }

  /** Open time of the last candle of higher timeframe `tf` pushed (NaN before the first). */
  lastHigherOpenTime(tf: Timeframe): number {
    const s = this.higherTf.find((h) => h.tf === tf);
    return s === undefined || s.rows === 0 ? NaN : s.candles.openTime[s.rows - 1];
  }

  /** The first base row whose windows are all free of NaN (`rows` while there is none yet). */
  get firstValidRow(): number {
    return this.validRow < 0 ? this.baseTf.rows : this.validRow;
  }

  /**
   * Adds a closed candle of higher timeframe `tf`.
   * @throws {DataValidationError} when `tf` is not followed, the candle is not after the last one,
   *   or a base row already pushed closed after it (it arrived too late for the closed-candle rule).
   */
  pushHigher(tf: Timeframe, candle: StreamCandle): void {
    const s = this.higherTf.find((h) => h.tf === tf);
    if (s === undefined)
      throw new DataValidationError({ field: 'timeframe', reason: `${tf} is not followed` });
    if (s.rows > 0 && !(candle.openTime > s.candles.openTime[s.rows - 1]))
      throw new DataValidationError({
        field: 'openTime',
        row: s.rows,
        reason: `${tf} candle ${candle.openTime} is not after the last one`,
      });
    const lastBase = this.lastBaseOpenTime;
    if (lastBase === lastBase && candle.openTime + s.tfMs < lastBase + this.baseMs)
      throw new DataValidationError({
        field: 'openTime',
        row: s.rows,
        reason: `${tf} candle ${candle.openTime} closed before base rows already pushed`,
      });
    this.append(s, candle);
    this.runFamilies(s);
  }

  /**
   * Adds a closed base candle and computes its row (per-timeframe and cross features).
   * @throws {DataValidationError} when the candle is not after the last one.
   */
  pushBase(candle: StreamCandle): void {
    const s = this.baseTf;
    if (s.rows > 0 && !(candle.openTime > s.candles.openTime[s.rows - 1]))
      throw new DataValidationError({
        field: 'openTime',
        row: s.rows,
        reason: `base candle ${candle.openTime} is not after the last one`,
      });
    const grew = s.rows === s.capacity;
    this.append(s, candle);
    if (grew) {
      this.lastClosed = this.lastClosed.map((a) => growInt(a, s.capacity));
      this.staleness = this.staleness.map((a) => growInt(a, s.capacity));
    }
    const i = s.rows - 1;
    const closeTime = candle.openTime + this.baseMs;
    for (let h = 0; h < this.higherTf.length; h++) {
      const ht = this.higherTf[h];
      // Higher candles arrive in order and only once closed: the last one closed by this close.
      let k = ht.rows - 1;
      while (k >= 0 && ht.candles.openTime[k] + ht.tfMs > closeTime) k--;
      this.lastClosed[h][i] = k;
      this.staleness[h][i] =
        k < 0 ? -1 : Math.round((closeTime - (ht.candles.openTime[k] + ht.tfMs)) / this.baseMs);
    }
    const views = this.higherViews();
    const ctx: CrossContext = {
      base: s.candles,
      baseMs: this.baseMs,
      baseAux: s.aux,
      higher: views,
      values: s.values,
      cols: s.cols,
    };
    this.runFamilyRow(s, i);
    for (let g = 0; g < this.groups.length; g++)
      this.groups[g].write(ctx, this.groupCol0[g], i, i + 1);
    this.scanNan(s, i);
    if (this.validRow < 0 && this.windowsValidAt(i)) this.validRow = i;
  }

  /**
   * The features of every base row pushed so far, as `createMultiTimeframeFeatures` returns them
   * for the same candles. Views onto the internal buffers: valid until the next push.
   */
  view(): MultiTimeframeFeatures {
    const n = this.baseTf.rows;
    const viewOf = (s: StreamTf, names: readonly string[]): FeatureMatrix =>
      matrix(
        s.tf,
        names,
        closeTimes(sliceCandles(s.candles, 0, s.rows)),
        s.values.subarray(0, s.rows * s.cols),
      );
    const perTimeframe = new Map<Timeframe, FeatureMatrix>();
    const rowIndex = new Map<Timeframe, Int32Array>();
    const baseNames = [...this.baseTf.plan.names, ...this.groups.flatMap((g) => g.names)];
    perTimeframe.set(this.base, viewOf(this.baseTf, baseNames));
    rowIndex.set(this.base, identity(n));
    const higher: AlignedTimeframe[] = [];
    this.higherTf.forEach((h, k) => {
      perTimeframe.set(h.tf, viewOf(h, h.plan.names));
      const lastClosed = this.lastClosed[k].subarray(0, n);
      rowIndex.set(h.tf, lastClosed);
      higher.push({
        timeframe: h.tf,
        candles: sliceCandles(h.candles, 0, h.rows),
        lastClosed,
        staleness: this.staleness[k].subarray(0, n),
      });
    });
    const aligned: AlignedFrames = {
      mode: 'last-closed',
      base: sliceCandles(this.baseTf.candles, 0, n),
      higher,
    };
    const timeframes = this.timeframes;
    const baseTimes = perTimeframe.get(this.base)!.time;
    let decision: FeatureMatrix | undefined;
    return {
      base: this.base,
      timeframes,
      perTimeframe,
      rowIndex,
      aligned,
      get decisionRows(): FeatureMatrix {
        decision ??= buildDecisionRows(
          timeframes[0],
          timeframes,
          perTimeframe,
          rowIndex,
          new Map(),
          baseTimes,
        );
        return decision;
      },
      firstValidRow: this.firstValidRow,
      windows: this.windows,
      spec: this.spec,
    };
  }

  private higherViews(): HigherView[] {
    return this.higherTf.map((h, k) => ({
      tf: h.tf,
      tfMs: h.tfMs,
      aux: h.aux,
      index: this.lastClosed[k],
      staleness: this.staleness[k],
    }));
  }

  private append(s: StreamTf, c: StreamCandle): void {
    if (s.rows === s.capacity) growTf(s, s.capacity * 2);
    const i = s.rows;
    const k = s.candles;
    k.openTime[i] = c.openTime;
    k.open[i] = c.open;
    k.high[i] = c.high;
    k.low[i] = c.low;
    k.close[i] = c.close;
    k.volume[i] = c.volume;
    s.rows = i + 1;
  }

  private runFamilies(s: StreamTf): void {
    const i = s.rows - 1;
    this.runFamilyRow(s, i);
    this.scanNan(s, i);
  }

  /** Runs every indicator family of timeframe `s` on its row `i` (their streaming states). */
  private runFamilyRow(s: StreamTf, i: number): void {
    const fams = s.plan.families;
    for (let k = 0; k < fams.length; k++)
      fams[k].run(s.states[k], s.candles, i, i + 1, {
        values: s.values,
        cols: s.cols,
        col0: s.plan.col0[k],
        aux: s.aux,
      });
  }

  private scanNan(s: StreamTf, i: number): void {
    let last = i > 0 ? s.lastNanAt[i - 1] : -1;
    const o = i * s.cols;
    for (let j = 0; j < s.cols; j++) {
      const v = s.values[o + j];
      if (v !== v) {
        last = i;
        break;
      }
    }
    s.lastNanAt[i] = last;
  }

  /** The batch `firstValidRow` test for base row i (last-closed mode). */
  private windowsValidAt(i: number): boolean {
    const check = (s: StreamTf, last: number): boolean => {
      const first = last - (this.windows[s.tf] ?? 1) + 1;
      return !(last < 0 || first < 0 || s.lastNanAt[last] >= first);
    };
    if (!check(this.baseTf, i)) return false;
    for (let h = 0; h < this.higherTf.length; h++)
      if (!check(this.higherTf[h], this.lastClosed[h][i])) return false;
    return true;
  }
}
