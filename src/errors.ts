// The project's error hierarchy. Library code throws these; only the CLI catches them, prints one
// line (plus a hint) and exits with the code each class names. Each error carries the fields a
// user needs to find the problem (source file, line, field, key path, url).

/** Process exit codes used by the CLI, one per error family. */
export const ExitCode = {
  /** Anything unexpected. */
  Failure: 1,
  /** Bad command-line usage or bad configuration. */
  Usage: 2,
  /** Bad input data (malformed file, invalid candles). */
  Data: 3,
  /** Network or exchange failure. */
  Network: 4,
} as const;

/** Base class of every error this package throws on purpose. */
export class CtmError extends Error {
  /** The process exit code the CLI uses for this error. */
  readonly exitCode: number = ExitCode.Failure;
  /** A one-line hint on how to fix the problem, printed by the CLI after the message. */
  readonly hint: string | undefined;

  /**
   * @param message - one line saying what went wrong (the CLI prints it as is).
   * @param options - `hint`: how to fix it; `cause`: the underlying error, kept as `cause`.
   */
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

/** The fields that locate a data problem. Every field is optional except the reason. */
export interface DataErrorLocation {
  /** Where the data came from: a file path, `store:<exchange>/<symbol>/<tf>`, a URL, ... */
  source?: string;
  /** 1-based line number in the source file (header line included), when the source is a file. */
  line?: number;
  /** 0-based row index in the parsed series, when there is no file line. */
  row?: number;
  /** The candle's open time (UTC epoch ms) when it could be parsed. */
  openTime?: number;
  /** The offending column: `open_time`, `open`, `high`, `low`, `close`, `volume`, ... */
  field?: string;
  /** What is wrong, in words. */
  reason: string;
}

function describeLocation(loc: DataErrorLocation): string {
  const parts: string[] = [];
  if (loc.source !== undefined) parts.push(loc.source);
  if (loc.line !== undefined) parts.push(`line ${loc.line}`);
  else if (loc.row !== undefined) parts.push(`row ${loc.row}`);
  if (loc.field !== undefined) parts.push(`field ${loc.field}`);
  if (loc.openTime !== undefined && Number.isFinite(loc.openTime)) {
    const d = new Date(loc.openTime);
    parts.push(`open_time ${Number.isNaN(d.getTime()) ? loc.openTime : d.toISOString()}`);
  }
  return parts.length > 0 ? `${parts.join(', ')}: ${loc.reason}` : loc.reason;
}

/**
 * Invalid market data: malformed numbers, NaN/Infinity, OHLC inconsistency, negative volume,
 * unsorted, duplicate or off-grid timestamps, unknown timeframe.
 */
export class DataValidationError extends CtmError {
  /** Process exit code: `ExitCode.Data` (3). */
  override readonly exitCode: number = ExitCode.Data;
  /** See {@link DataErrorLocation.source}. */
  readonly source: string | undefined;
  /** See {@link DataErrorLocation.line} (1-based). */
  readonly line: number | undefined;
  /** See {@link DataErrorLocation.row} (0-based). */
  readonly row: number | undefined;
  /** See {@link DataErrorLocation.openTime} (UTC epoch ms). */
  readonly openTime: number | undefined;
  /** See {@link DataErrorLocation.field}. */
  readonly field: string | undefined;
  /** What is wrong, in words (the message without the location). */
  readonly reason: string;

  /** The message is the location (source, line or row, field, open time) followed by the reason. */
  constructor(loc: DataErrorLocation, options?: { hint?: string; cause?: unknown }) {
    super(describeLocation(loc), options);
    this.source = loc.source;
    this.line = loc.line;
    this.row = loc.row;
    this.openTime = loc.openTime;
    this.field = loc.field;
    this.reason = loc.reason;
  }
}

/** A configuration value is missing, unknown or of the wrong type; `keyPath` names it. */
export class ConfigError extends CtmError {
  /** Process exit code: `ExitCode.Usage` (2). */
  override readonly exitCode: number = ExitCode.Usage;
  /** Dotted key path, e.g. `broker.takerFeeRate`; empty for whole-file problems. */
  readonly keyPath: string;
  /** The config file involved, when there is one. */
  readonly file: string | undefined;

  /** The message is prefixed with the file and key path when they are known. */
  constructor(keyPath: string, message: string, options?: { file?: string; hint?: string }) {
    const where = [options?.file, keyPath === '' ? undefined : keyPath].filter(Boolean).join(': ');
    super(where === '' ? message : `${where}: ${message}`, options);
    this.keyPath = keyPath;
    this.file = options?.file;
  }
}

/** Bad command-line usage (missing argument, conflicting flags). */
export class UsageError extends CtmError {
  /** Process exit code: `ExitCode.Usage` (2). */
  override readonly exitCode: number = ExitCode.Usage;
}

/** A network or exchange failure that survived the retries. */
export class ExchangeError extends CtmError {
  /** Process exit code: `ExitCode.Network` (4). */
  override readonly exitCode: number = ExitCode.Network;
  /** The URL or endpoint involved, when known. */
  readonly url: string | undefined;

  /** @param options - `url`: the endpoint involved; `hint`, `cause` as {@link CtmError}. */
  constructor(message: string, options?: { url?: string; hint?: string; cause?: unknown }) {
    super(message, options);
    this.url = options?.url;
  }
}

/** A checkpoint, model directory or run directory is missing, corrupt or does not match. */
export class CheckpointError extends CtmError {
  /** The path involved. */
  readonly path: string;

  /** The message is `<path>: <message>`. */
  constructor(path: string, message: string, options?: { hint?: string; cause?: unknown }) {
    super(`${path}: ${message}`, options);
    this.path = path;
  }
}

/**
 * Something the look-ahead analysis found (a leak) or a split guard refused (reading the holdout
 * without `--open-holdout`). Exit code 1.
 */
export class LookAheadError extends CtmError {}

/** The job queue (Redis behind BullMQ) cannot be reached or refused a command. Exit code 4. */
export class QueueError extends CtmError {
  /** Process exit code: `ExitCode.Network` (4). */
  override readonly exitCode: number = ExitCode.Network;
  /** The queue URL involved (`redis://host:port`, credentials removed). */
  readonly url: string;

  /** @param url - the queue URL; `hint`, `cause` as {@link CtmError}. */
  constructor(url: string, message: string, options?: { hint?: string; cause?: unknown }) {
    super(`${url}: ${message}`, options);
    this.url = url;
  }
}

/**
 * Live trading refused: an order that only `--live` may send, a live run without its confirmation
 * key or API keys, or the kill switch. Exit code 2 (a usage or configuration matter).
 */
export class LiveTradingError extends CtmError {
  /** Process exit code: `ExitCode.Usage` (2). */
  override readonly exitCode: number = ExitCode.Usage;
  /** The config key or flag that governs it (e.g. `live.confirm`, `--live`). */
  readonly keyPath: string;

  /** The message is `<keyPath>: <message>`. */
  constructor(keyPath: string, message: string, options?: { hint?: string; cause?: unknown }) {
    super(`${keyPath}: ${message}`, options);
    this.keyPath = keyPath;
  }
}
