// An independent rule-based chart-pattern detector for the tests: textbook definitions over the
// closes of one timeframe's window (zigzag pivots in ATR units, then rules per pattern). It
// imports nothing from the generator; every threshold is a constant in this file. It sees only
// the bars it is given (the window ending at the decision time), never a label.

/** Pattern names the detector knows (the same strings as the dataset's labels). */
export const DETECTABLE = [
  'uptrend',
  'downtrend',
  'sideways',
  'double_top',
  'double_bottom',
  'head_shoulders',
  'inverse_head_shoulders',
  'triple_top',
  'triple_bottom',
  'v_top',
  'v_bottom',
  'rounding_top',
  'rounding_bottom',
  'bull_flag',
  'bear_flag',
  'ascending_triangle',
  'descending_triangle',
  'symmetric_triangle',
  'rising_wedge',
  'falling_wedge',
  'support_bounce',
  'resistance_bounce',
  'resistance_breakout',
  'support_breakout',
  'resistance_false_breakout',
  'support_false_breakout',
  'resistance_retest',
  'support_retest',
] as const;

export type Detectable = (typeof DETECTABLE)[number];

/** The bars of one timeframe's window, oldest first, the last one closing at the decision time. */
export interface Bars {
  high: ArrayLike<number>;
  low: ArrayLike<number>;
  close: ArrayLike<number>;
}

// ---- thresholds, in units A = median true range of the window's bars x sqrt(bars / 32) ----
const ZZ_SWING = 1.5; // zigzag reversal for reversal / trend / S-R structure
const ZZ_TIGHT = 1.0; // zigzag reversal inside consolidations (flags, triangles, wedges)
const EQUAL_PEAKS = 1.0; // two tops of a double top within this
const EQUAL_PEAKS_3 = 1.3; // three tops of a triple top within this
const MIN_DEPTH = 1.8; // tops stand at least this far above the neckline
const NECK_BREAK = 0.2; // the close beyond the neckline by at least this
const PRIOR_TREND = 2.0; // the move into a reversal pattern
const BREAK_RECENT = 3; // the neckline/level was first broken within the last bars
const HEAD_ABOVE = 0.7; // head above both shoulders
const SHOULDERS_EQUAL = 1.8;
const V_LEG = 4.0; // each side of a V at least this
const V_RETRACE = 0.45; // the fall retraces at least this share of the rise
const ROUND_R2 = 0.75;
const ROUND_AMPLITUDE = 1.8;
const POLE = 4.0;
const FLAG_MAX_RETRACE = 0.65;
const TRI_FLAT = 0.9; // flat side of a triangle within this
const TRI_STEP = 0.25; // each successive swing on the sloped side moves at least this
const LEVEL_TOL = 0.7; // touches of a support within this of its level
const BOUNCE = 0.7;
const BREAK_BEYOND = 0.4;

interface Pivot {
  i: number;
  y: number;
  high: boolean;
}

/** Median true range of the bars, in log units. */
export function medianTrueRange(b: Bars): number {
  const n = b.close.length;
  const tr: number[] = [];
  for (let i = 1; i < n; i++) {
    const h = Math.log(b.high[i]);
    const l = Math.log(b.low[i]);
    const pc = Math.log(b.close[i - 1]);
    tr.push(Math.max(h - l, Math.abs(h - pc), Math.abs(l - pc)));
  }
  tr.sort((a, c) => a - c);
  return tr.length === 0 ? 0 : tr[Math.floor(tr.length / 2)];
}

/** Zigzag pivots of y: an extreme is a pivot once y reverses from it by `swing`. */
function zigzag(y: number[], swing: number): Pivot[] {
  const out: Pivot[] = [];
  let dir = 0;
  let hiI = 0;
  let loI = 0;
  for (let i = 1; i < y.length; i++) {
    if (y[i] > y[hiI]) hiI = i;
    if (y[i] < y[loI]) loI = i;
    if (dir >= 0 && y[hiI] - y[i] >= swing && (dir === 1 || hiI > loI || dir === 0)) {
      if (dir !== 0 || hiI > 0) out.push({ i: hiI, y: y[hiI], high: true });
      dir = -1;
      loI = i;
    } else if (dir <= 0 && y[i] - y[loI] >= swing) {
      if (dir !== 0 || loI > 0) out.push({ i: loI, y: y[loI], high: false });
      dir = 1;
      hiI = i;
    }
  }
  // Keep pivots strictly alternating.
  const alt: Pivot[] = [];
  for (const p of out) {
    const last = alt[alt.length - 1];
    if (last !== undefined && last.high === p.high) {
      if ((p.high && p.y > last.y) || (!p.high && p.y < last.y)) alt[alt.length - 1] = p;
    } else alt.push(p);
  }
  return alt;
}

interface Ctx {
  y: number[];
  n: number;
  /** Bars that count as "just now" for tests, breaks and pokes: a tenth of the window, at least 3. */
  recent: number;
  a: number;
  c: number;
  swing: Pivot[];
  tight: Pivot[];
}

/**
 * The unit of every threshold: the median true range scaled by √(bars / 32), the size of the
 * typical move over the window, so a 64-bar window asks for larger swings than a 16-bar one.
 */
function unit(bars: Bars): number {
  return medianTrueRange(bars) * Math.sqrt(bars.close.length / 32);
}

function context(y: number[], a: number): Ctx {
  return {
    y,
    n: y.length,
    recent: Math.max(3, Math.round(y.length / 10)),
    a,
    c: y[y.length - 1],
    swing: zigzag(y, ZZ_SWING * a),
    tight: zigzag(y, ZZ_TIGHT * a),
  };
}

/** First bar (> from) whose close is below `level`, or -1. */
function firstBelow(y: number[], from: number, level: number): number {
  for (let i = from + 1; i < y.length; i++) if (y[i] < level) return i;
  return -1;
}

function maxOf(y: number[], from: number, to: number): number {
  let m = -Infinity;
  for (let i = Math.max(0, from); i <= to; i++) m = Math.max(m, y[i]);
  return m;
}

function minOf(y: number[], from: number, to: number): number {
  let m = Infinity;
  for (let i = Math.max(0, from); i <= to; i++) m = Math.min(m, y[i]);
  return m;
}

/** A rise of at least `size` into bar `j` from the lows before it (within `look` bars). */
function priorRise(x: Ctx, j: number, size: number, look = 12): boolean {
  return x.y[j] - minOf(x.y, j - look, j) >= size * x.a;
}

/** The last pivots of a kind sequence ending with the last high pivot. */
function lastSequence(piv: Pivot[], len: number, endsHigh: boolean): Pivot[] | null {
  let end = piv.length - 1;
  while (end >= 0 && piv[end].high !== endsHigh) end--;
  if (end + 1 < len) return null;
  return piv.slice(end - len + 1, end + 1);
}

function recentBreakBelow(x: Ctx, after: number, level: number): boolean {
  const first = firstBelow(x.y, after, level);
  return first >= 0 && first >= x.n - BREAK_RECENT && x.c < level;
}

function doubleTop(x: Ctx): boolean {
  const s = lastSequence(x.swing, 3, true);
  if (s === null) return false;
  const [h1, l, h2] = s;
  if (Math.abs(h1.y - h2.y) > EQUAL_PEAKS * x.a) return false;
  if (Math.min(h1.y, h2.y) - l.y < MIN_DEPTH * x.a) return false;
  if (maxOf(x.y, h2.i + 1, x.n - 1) > Math.max(h1.y, h2.y) + 0.3 * x.a) return false;
  if (!priorRise(x, h1.i, PRIOR_TREND)) return false;
  return recentBreakBelow(x, h2.i, l.y - NECK_BREAK * x.a);
}

function tripleTop(x: Ctx): boolean {
  const s = lastSequence(x.swing, 5, true);
  if (s === null) return false;
  const [h1, l1, h2, l2, h3] = s;
  const hs = [h1.y, h2.y, h3.y];
  if (Math.max(...hs) - Math.min(...hs) > EQUAL_PEAKS_3 * x.a) return false;
  if (Math.min(...hs) - Math.max(l1.y, l2.y) < MIN_DEPTH * x.a) return false;
  if (maxOf(x.y, h3.i + 1, x.n - 1) > Math.max(...hs) + 0.3 * x.a) return false;
  if (!priorRise(x, h1.i, PRIOR_TREND)) return false;
  return recentBreakBelow(x, h3.i, Math.min(l1.y, l2.y) - NECK_BREAK * x.a);
}

function headShoulders(x: Ctx): boolean {
  const s = lastSequence(x.swing, 5, true);
  if (s === null) return false;
  const [ls, n1, hd, n2, rs] = s;
  if (hd.y - Math.max(ls.y, rs.y) < HEAD_ABOVE * x.a) return false;
  if (Math.abs(ls.y - rs.y) > SHOULDERS_EQUAL * x.a) return false;
  if (Math.min(ls.y, rs.y) - Math.max(n1.y, n2.y) < 1.2 * x.a) return false;
  if (!priorRise(x, ls.i, PRIOR_TREND)) return false;
  const slope = (n2.y - n1.y) / (n2.i - n1.i);
  const neckAt = (i: number): number => n2.y + slope * (i - n2.i);
  if (maxOf(x.y, rs.i + 1, x.n - 1) > rs.y + 0.3 * x.a) return false;
  if (!(x.c < neckAt(x.n - 1) - NECK_BREAK * x.a)) return false;
  // First close below the neckline is recent.
  for (let i = rs.i + 1; i < x.n - BREAK_RECENT; i++) if (x.y[i] < neckAt(i)) return false;
  return true;
}

function vTop(x: Ctx): boolean {
  // The highest close of the window's last 80%, a steep rise into it and a steep fall from it.
  const from = Math.floor(0.2 * x.n);
  let pk = from;
  for (let i = from; i < x.n - 2; i++) if (x.y[i] > x.y[pk]) pk = i;
  const start = Math.max(0, pk - Math.round(0.6 * x.n));
  const lowBefore = minOf(x.y, start, pk);
  let l0 = start;
  for (let i = start; i < pk; i++) if (x.y[i] === lowBefore) l0 = i;
  const rise = x.y[pk] - lowBefore;
  if (rise < V_LEG * x.a) return false;
  if (x.y[pk] - x.c < V_RETRACE * rise) return false;
  // No pullback inside the rise and no rebound inside the fall larger than a swing.
  for (const p of x.swing) {
    if (p.i > l0 && p.i < pk) return false;
    if (p.i > pk && p.high && p.i < x.n - 1) return false;
  }
  // Sharp: a few bars (n/16) either side stand clearly below the peak, and no second top follows.
  const k = Math.max(2, Math.round(x.n / 16));
  for (let i = pk + k; i < x.n; i++) if (x.y[i] > x.y[pk] - 0.6 * x.a) return false;
  const side = (x.y[Math.max(0, pk - k)] + x.y[Math.min(x.n - 1, pk + k)]) / 2;
  return x.y[pk] - side >= 1.0 * x.a;
}

function roundingTop(x: Ctx): boolean {
  const e = x.n - 2;
  for (let s = Math.floor(0.05 * x.n); s <= Math.floor(0.5 * x.n); s++) {
    const m = e - s + 1;
    if (m < 8) break;
    // Least squares y = b0 + b1 t + b2 t^2 on t in [0, 1].
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0,
      s4 = 0,
      sy = 0,
      sty = 0,
      st2y = 0;
    for (let k = 0; k < m; k++) {
      const t = k / (m - 1);
      const v = x.y[s + k];
      s0 += 1;
      s1 += t;
      s2 += t * t;
      s3 += t * t * t;
      s4 += t * t * t * t;
      sy += v;
      sty += t * v;
      st2y += t * t * v;
    }
    const sol = solve3(
      [
        [s0, s1, s2],
        [s1, s2, s3],
        [s2, s3, s4],
      ],
      [sy, sty, st2y],
    );
    if (sol === null) continue;
    const [b0, b1, b2] = sol;
    if (!(b2 < 0)) continue;
    const tv = -b1 / (2 * b2);
    if (tv < 0.3 || tv > 0.7) continue;
    const f = (t: number): number => b0 + b1 * t + b2 * t * t;
    let ssr = 0;
    let sst = 0;
    const mean = sy / m;
    for (let k = 0; k < m; k++) {
      const v = x.y[s + k];
      ssr += (v - f(k / (m - 1))) ** 2;
      sst += (v - mean) ** 2;
    }
    if (sst <= 0 || 1 - ssr / sst < ROUND_R2) continue;
    const amp = f(tv) - Math.max(f(0), f(1));
    if (amp < ROUND_AMPLITUDE * x.a) continue;
    // A flat crown: the middle 40% of the arc spans less than 40% of its height.
    const mid =
      maxOf(x.y, s + Math.floor(0.3 * m), s + Math.floor(0.7 * m)) -
      minOf(x.y, s + Math.floor(0.3 * m), s + Math.floor(0.7 * m));
    if (mid > 0.65 * (f(tv) - Math.min(f(0), f(1)))) continue;
    if (x.c < Math.min(x.y[s], f(0)) - 0.2 * x.a && x.c <= minOf(x.y, e - 3, e) + 0.6 * x.a)
      return true;
  }
  return false;
}

/** Solves a 3x3 linear system by Gaussian elimination with partial pivoting (null if singular). */
function solve3(m: number[][], r: number[]): [number, number, number] | null {
  const a = m.map((row, i) => [...row, r[i]]);
  for (let c = 0; c < 3; c++) {
    let p = c;
    for (let i = c + 1; i < 3; i++) if (Math.abs(a[i][c]) > Math.abs(a[p][c])) p = i;
    if (Math.abs(a[p][c]) < 1e-12) return null;
    [a[c], a[p]] = [a[p], a[c]];
    for (let i = 0; i < 3; i++) {
      if (i === c) continue;
      const f = a[i][c] / a[c][c];
      for (let k = c; k < 4; k++) a[i][k] -= f * a[c][k];
    }
  }
  return [a[0][3] / a[0][0], a[1][3] / a[1][1], a[2][3] / a[2][2]];
}

function bullFlag(x: Ctx): boolean {
  // Pole: a clean rise of at least POLE into a swing high, from the low since the swing low
  // before it (no swing against it on the way), within 45% of the window.
  for (let t = 0; t < x.tight.length; t++) {
    const top = x.tight[t];
    if (!top.high || top.i > x.n - 5) continue;
    const from = Math.max(t > 0 ? x.tight[t - 1].i : 0, top.i - Math.ceil(0.45 * x.n), 0);
    const pole = top.y - minOf(x.y, from, top.i);
    if (pole < POLE * x.a) continue;
    // Flag: between the pole top and the last bar, inside the retracement bound, drifting flat or down.
    const f0 = top.i + 1;
    const f1 = x.n - 2;
    if (f1 - f0 < 3) continue;
    if (maxOf(x.y, f0, f1) > top.y + 0.3 * x.a) continue;
    if (top.y - minOf(x.y, f0, f1) > FLAG_MAX_RETRACE * pole) continue;
    if (slope(x.y, f0, f1) > 0.05 * x.a) continue;
    // Breakout above the flag's upper line (through its swing highs, or its top).
    const highs = x.tight.filter((p) => p.high && p.i >= top.i && p.i <= f1);
    const upper =
      highs.length >= 2
        ? lineAt(highs[highs.length - 2], highs[highs.length - 1], x.n - 1)
        : maxOf(x.y, f0 + Math.floor((f1 - f0) / 2), f1);
    if (x.c > upper + 0.2 * x.a && x.c >= maxOf(x.y, f1 - 2, f1) - 0.2 * x.a) return true;
  }
  return false;
}

function slope(y: number[], from: number, to: number): number {
  const m = to - from + 1;
  let st = 0;
  let sy = 0;
  let stt = 0;
  let sty = 0;
  for (let k = 0; k < m; k++) {
    st += k;
    sy += y[from + k];
    stt += k * k;
    sty += k * y[from + k];
  }
  const d = m * stt - st * st;
  return d === 0 ? 0 : (m * sty - st * sy) / d;
}

function lineAt(p: Pivot, q: Pivot, i: number): number {
  return q.y + ((q.y - p.y) / (q.i - p.i)) * (i - q.i);
}

/** Swing highs and lows of the consolidation before the last bar (the breakout). */
function consolidationPivots(x: Ctx): { hs: Pivot[]; ls: Pivot[] } {
  const piv = x.tight.filter((p) => p.i < x.n - 1).slice(-6);
  return { hs: piv.filter((p) => p.high), ls: piv.filter((p) => !p.high) };
}

function ascendingTriangle(x: Ctx): boolean {
  const { hs, ls } = consolidationPivots(x);
  if (hs.length < 2 || ls.length < 2) return false;
  const top = Math.max(...hs.map((p) => p.y));
  if (top - Math.min(...hs.map((p) => p.y)) > TRI_FLAT * x.a) return false;
  for (let k = 1; k < ls.length; k++) if (ls[k].y - ls[k - 1].y < TRI_STEP * x.a) return false;
  if (ls[ls.length - 1].y - ls[0].y < 0.8 * x.a) return false;
  if (!(x.c > top + 0.3 * x.a)) return false;
  return maxOf(x.y, x.n - 1 - BREAK_RECENT, x.n - 2) <= top + 0.3 * x.a;
}

function symmetricTriangle(x: Ctx): boolean {
  const { hs, ls } = consolidationPivots(x);
  if (hs.length < 2 || ls.length < 2) return false;
  for (let k = 1; k < hs.length; k++) if (hs[k - 1].y - hs[k].y < TRI_STEP * x.a) return false;
  for (let k = 1; k < ls.length; k++) if (ls[k].y - ls[k - 1].y < TRI_STEP * x.a) return false;
  if (hs[0].y - hs[hs.length - 1].y < 0.6 * x.a || ls[ls.length - 1].y - ls[0].y < 0.6 * x.a)
    return false;
  const up = lineAt(hs[hs.length - 2], hs[hs.length - 1], x.n - 1);
  const dn = lineAt(ls[ls.length - 2], ls[ls.length - 1], x.n - 1);
  return x.c > up + 0.2 * x.a || x.c < dn - 0.2 * x.a;
}

function risingWedge(x: Ctx): boolean {
  const { hs, ls } = consolidationPivots(x);
  if (hs.length < 2 || ls.length < 2) return false;
  const sh = (hs[hs.length - 1].y - hs[0].y) / (hs[hs.length - 1].i - hs[0].i);
  const sl = (ls[ls.length - 1].y - ls[0].y) / (ls[ls.length - 1].i - ls[0].i);
  if (!(sh > 0 && sl > 0 && sl > sh)) return false;
  if (Math.max(hs[hs.length - 1].y, ls[ls.length - 1].y) - Math.min(hs[0].y, ls[0].y) < 2 * x.a)
    return false;
  const lower = lineAt(ls[ls.length - 2], ls[ls.length - 1], x.n - 1);
  return x.c < lower - 0.2 * x.a;
}

function uptrend(x: Ctx): boolean {
  const piv = x.tight.slice(-5);
  const hs = piv.filter((p) => p.high);
  const ls = piv.filter((p) => !p.high);
  if (hs.length < 2 || ls.length < 2) return false;
  for (let k = 1; k < hs.length; k++) if (hs[k].y <= hs[k - 1].y) return false;
  for (let k = 1; k < ls.length; k++) if (ls[k].y <= ls[k - 1].y) return false;
  if (x.c - Math.min(...ls.map((p) => p.y)) < 3.0 * x.a) return false;
  return x.c >= hs[hs.length - 1].y - 1.0 * x.a;
}

function sideways(x: Ctx): boolean {
  const piv = x.swing.slice(-5);
  const hs = piv.filter((p) => p.high).map((p) => p.y);
  const ls = piv.filter((p) => !p.high).map((p) => p.y);
  if (hs.length < 2 || ls.length < 2) return false;
  if (Math.max(...hs) - Math.min(...hs) > 1.3 * x.a) return false;
  if (Math.max(...ls) - Math.min(...ls) > 1.3 * x.a) return false;
  const top = hs.reduce((s, v) => s + v, 0) / hs.length;
  const bottom = ls.reduce((s, v) => s + v, 0) / ls.length;
  if (top - bottom < 2.3 * x.a) return false;
  return x.c < top && x.c > bottom;
}

/** Support levels: clusters of >= 2 swing lows within LEVEL_TOL of each other. */
function supportLevels(
  x: Ctx,
  before: number,
): Array<{ level: number; last: number; first: number }> {
  const lows = x.swing.filter((p) => !p.high && p.i < before);
  const out: Array<{ level: number; last: number; first: number }> = [];
  for (let a = 0; a < lows.length; a++) {
    for (let b = a + 1; b < lows.length; b++) {
      if (Math.abs(lows[a].y - lows[b].y) > LEVEL_TOL * x.a) continue;
      // A real high between the touches.
      if (maxOf(x.y, lows[a].i, lows[b].i) - Math.max(lows[a].y, lows[b].y) < 1.5 * x.a) continue;
      out.push({ level: (lows[a].y + lows[b].y) / 2, last: lows[b].i, first: lows[a].i });
    }
  }
  return out;
}

function supportBounce(x: Ctx): boolean {
  const touchFrom = x.n - 2 - x.recent;
  const touch = minOf(x.y, touchFrom, x.n - 2);
  for (const s of supportLevels(x, touchFrom)) {
    if (Math.abs(touch - s.level) > LEVEL_TOL * x.a) continue;
    if (minOf(x.y, s.last + 1, touchFrom - 1) < s.level - LEVEL_TOL * x.a) continue;
    if (x.c - touch < BOUNCE * x.a) continue;
    const rangeTop = maxOf(x.y, s.first, x.n - 2);
    if (x.c < rangeTop) return true;
  }
  return false;
}

function supportBreakout(x: Ctx): boolean {
  for (const s of supportLevels(x, x.n - 2)) {
    if (!(x.c < s.level - BREAK_BEYOND * x.a)) continue;
    // Held above the level since its last touch until the break, which is recent.
    if (minOf(x.y, s.last + 1, x.n - 1 - x.recent) < s.level - 0.35 * x.a) continue;
    return true;
  }
  return false;
}

function supportFalseBreakout(x: Ctx): boolean {
  for (const s of supportLevels(x, x.n - 1 - x.recent)) {
    const poke = minOf(x.y, x.n - 2 - x.recent, x.n - 2);
    if (poke > s.level - BREAK_BEYOND * x.a) continue;
    if (minOf(x.y, s.last + 1, x.n - 3 - x.recent) < s.level - 0.35 * x.a) continue;
    if (x.c >= s.level + 0.2 * x.a) return true;
  }
  return false;
}

function supportRetest(x: Ctx): boolean {
  for (const s of supportLevels(x, x.n - 1 - x.recent)) {
    // Broken: a swing low well below the level after its touches.
    const broke = x.swing.some((p) => !p.high && p.i > s.last && p.y < s.level - 1.5 * x.a);
    if (!broke) continue;
    const retest = maxOf(x.y, x.n - 2 - x.recent, x.n - 2);
    if (retest < s.level - 0.9 * x.a || retest > s.level + 0.4 * x.a) continue;
    if (x.c <= retest - BOUNCE * x.a && x.c < s.level) return true;
  }
  return false;
}

const RULES: Record<string, (x: Ctx) => boolean> = {
  double_top: doubleTop,
  triple_top: tripleTop,
  head_shoulders: headShoulders,
  v_top: vTop,
  rounding_top: roundingTop,
  bull_flag: bullFlag,
  ascending_triangle: ascendingTriangle,
  symmetric_triangle: symmetricTriangle,
  rising_wedge: risingWedge,
  uptrend,
  sideways,
  support_bounce: supportBounce,
  support_breakout: supportBreakout,
  support_false_breakout: supportFalseBreakout,
  support_retest: supportRetest,
};

/** Each detectable pattern: the rule and whether it runs on the mirrored (negated) prices. */
const MAP: Record<Detectable, [string, boolean]> = {
  uptrend: ['uptrend', false],
  downtrend: ['uptrend', true],
  sideways: ['sideways', false],
  double_top: ['double_top', false],
  double_bottom: ['double_top', true],
  head_shoulders: ['head_shoulders', false],
  inverse_head_shoulders: ['head_shoulders', true],
  triple_top: ['triple_top', false],
  triple_bottom: ['triple_top', true],
  v_top: ['v_top', false],
  v_bottom: ['v_top', true],
  rounding_top: ['rounding_top', false],
  rounding_bottom: ['rounding_top', true],
  bull_flag: ['bull_flag', false],
  bear_flag: ['bull_flag', true],
  ascending_triangle: ['ascending_triangle', false],
  descending_triangle: ['ascending_triangle', true],
  symmetric_triangle: ['symmetric_triangle', false],
  rising_wedge: ['rising_wedge', false],
  falling_wedge: ['rising_wedge', true],
  support_bounce: ['support_bounce', false],
  resistance_bounce: ['support_bounce', true],
  support_breakout: ['support_breakout', false],
  resistance_breakout: ['support_breakout', true],
  support_false_breakout: ['support_false_breakout', false],
  resistance_false_breakout: ['support_false_breakout', true],
  support_retest: ['support_retest', false],
  resistance_retest: ['support_retest', true],
};

/** A prepared window: its contexts for both orientations. */
export interface Prepared {
  plain: Ctx;
  mirrored: Ctx;
}

/** Prepares a window for detection (log closes, ATR, pivots). */
export function prepare(bars: Bars): Prepared {
  const y = Array.from(bars.close, (v) => Math.log(v));
  const a = unit(bars);
  return {
    plain: context(y, a),
    mirrored: context(
      y.map((v) => -v),
      a,
    ),
  };
}

/** Whether `pattern` is present in the window, completed at its last bar. */
export function detect(pattern: Detectable, bars: Bars | Prepared): boolean {
  const p = 'plain' in bars ? bars : prepare(bars);
  const [rule, mirror] = MAP[pattern];
  return RULES[rule](mirror ? p.mirrored : p.plain);
}

/** Every pattern the detector finds in the window. */
export function detectAll(bars: Bars | Prepared): Detectable[] {
  const p = 'plain' in bars ? bars : prepare(bars);
  return DETECTABLE.filter((t) => detect(t, p));
}
