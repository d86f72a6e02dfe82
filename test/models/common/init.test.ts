// The initialisers every network shares: orthogonal matrices (rows or columns orthonormal, scaled by
// the gain), Glorot limits, determinism under a seed.

import { describe, expect, it } from 'vitest';
import { glorotUniform, orthogonal } from '../../../src/models/common/init.js';
import { Rng } from '../../../src/utils/random.js';

describe('orthogonal initialiser', () => {
  it('gives orthonormal rows (wide) or columns (tall)', () => {
    for (const [r, c] of [
      [4, 4],
      [3, 7],
      [7, 3],
    ]) {
      const q = orthogonal(new Rng(r * 10 + c), r, c);
      const byRows = r <= c;
      const k = Math.min(r, c);
      const n = Math.max(r, c);
      for (let i = 0; i < k; i++)
        for (let j = 0; j < k; j++) {
          let dot = 0;
          for (let m = 0; m < n; m++)
            dot += byRows ? q[i * c + m] * q[j * c + m] : q[m * c + i] * q[m * c + j];
          expect(dot).toBeCloseTo(i === j ? 1 : 0, 5);
        }
    }
  });
});

describe('gains and limits', () => {
  it('scales an orthogonal matrix by its gain and keeps its directions', () => {
    const a = orthogonal(new Rng(9), 5, 8);
    const b = orthogonal(new Rng(9), 5, 8, 0.01);
    for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i] * 0.01, 7);
    expect(orthogonal(new Rng(9), 5, 8)).toEqual(a);
  });

  it('draws Glorot-uniform weights inside ±sqrt(6 / (fanIn + fanOut))', () => {
    const w = glorotUniform(new Rng(2), 30, 10);
    const limit = Math.sqrt(6 / 40);
    expect(Math.max(...w)).toBeLessThanOrEqual(limit);
    expect(Math.min(...w)).toBeGreaterThanOrEqual(-limit);
    expect(Math.max(...w)).toBeGreaterThan(0.9 * limit);
  });
});
