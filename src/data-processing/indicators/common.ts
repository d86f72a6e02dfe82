// Argument checks and output-buffer handling shared by every indicator. Owns the rules that a
// period is a positive integer, that parallel input columns have one length, and that a caller's
// preallocated `out` buffer has exactly the input's length. Never computes an indicator.

/**
 * Throws unless `period` is an integer >= `min`.
 * @param name - indicator and parameter, for the message (e.g. `rsi period`).
 * @throws {RangeError} when `period` is not an integer or is below `min`.
 */
export function checkPeriod(name: string, period: number, min = 1): void {
  if (!Number.isInteger(period) || period < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${period}`);
  }
}

/**
 * Throws unless `value` is a finite number (e.g. a band multiplier).
 * @throws {RangeError} when `value` is NaN or infinite.
 */
export function checkFinite(name: string, value: number): void {
  if (!Number.isFinite(value))
    throw new RangeError(`${name} must be a finite number, got ${value}`);
}

/**
 * Returns the common length of parallel input columns.
 * @param name - indicator name, for the message.
 * @throws {RangeError} when the columns differ in length.
 */
export function commonLength(name: string, ...columns: Float64Array[]): number {
  const n = columns[0].length;
  for (let k = 1; k < columns.length; k++) {
    if (columns[k].length !== n) {
      throw new RangeError(
        `${name}: input columns differ in length (${n} vs ${columns[k].length} for input ${k})`,
      );
    }
  }
  return n;
}

/**
 * Returns `out` when given (after checking its length), otherwise a new `Float64Array(n)`.
 * @param name - indicator and output, for the message.
 * @throws {RangeError} when `out.length !== n`.
 */
export function outputArray(name: string, out: Float64Array | undefined, n: number): Float64Array {
  if (out === undefined) return new Float64Array(n);
  if (out.length !== n) {
    throw new RangeError(`${name}: out has length ${out.length}, expected ${n}`);
  }
  return out;
}

/**
 * Output buffers of a multi-output indicator. Without `out`, every output is allocated. With
 * `out`, only the buffers it holds are filled (the others are neither computed into nor
 * allocated), each checked for length `n`; the same object is returned, so a caller that passes
 * its buffers allocates nothing and pays only for the outputs it asks for.
 * @throws {RangeError} when a given buffer's length is not `n`.
 */
export function outputRecord<K extends string>(
  name: string,
  keys: readonly K[],
  out: Partial<Record<K, Float64Array>> | undefined,
  n: number,
): Partial<Record<K, Float64Array>> {
  if (out === undefined) {
    const record: Partial<Record<K, Float64Array>> = {};
    for (const key of keys) record[key] = new Float64Array(n);
    return record;
  }
  for (const key of keys) {
    const buffer = out[key];
    if (buffer !== undefined) outputArray(`${name}.${key}`, buffer, n);
  }
  return out;
}
