// Spaces: membership (dtype, shape, bounds, NaN), seeded sampling inside the space, masks.

import { describe, expect, it } from 'vitest';
import { Box, Dict, Discrete } from '../../../src/models/reinforcement/spaces.js';
import { Rng } from '../../../src/utils/random.js';

describe('Box', () => {
  it('contains typed arrays of its dtype and size inside the bounds, never NaN', () => {
    const b = new Box([0, -1], [1, 1], [2]);
    expect(b.contains(Float32Array.of(0.5, -1))).toBe(true);
    expect(b.contains(Float32Array.of(1.5, 0))).toBe(false);
    expect(b.contains(Float32Array.of(NaN, 0))).toBe(false);
    expect(b.contains(Float64Array.of(0.5, 0))).toBe(false); // wrong dtype
    expect(b.contains(Float32Array.of(0.5))).toBe(false); // wrong size
    expect(b.contains([0.5, 0])).toBe(false);
    expect(b.firstViolation(Float32Array.of(0.5, 2))).toBe(1);
    expect(new Box(-1, 1, [1]).contains(0.3)).toBe(true);
    expect(new Box(-Infinity, Infinity, [3]).contains(Float32Array.of(-Infinity, 0, 1e30))).toBe(
      true,
    );
  });

  it('samples inside the space with a seeded rng, reproducibly, for bounded and unbounded dimensions', () => {
    const b = new Box([-1, 0, -Infinity, -Infinity], [1, Infinity, 5, Infinity], [2, 2]);
    const rng = new Rng(3);
    for (let i = 0; i < 1000; i++) expect(b.contains(b.sample(rng))).toBe(true);
    expect(Array.from(b.sample(new Rng(9)))).toEqual(Array.from(b.sample(new Rng(9))));
    expect(b.bounded).toBe(false);
    expect(new Box(0, 1, [4]).bounded).toBe(true);
  });

  it('rejects bad shapes and bounds', () => {
    expect(() => new Box(0, 1, [-1])).toThrow(RangeError);
    expect(() => new Box(1, 0, [1])).toThrow(RangeError);
    expect(() => new Box([0, 0], 1, [3])).toThrow(RangeError);
    expect(() => new Box(NaN, 1, [1])).toThrow(RangeError);
  });
});

describe('Discrete', () => {
  it('contains integers in [start, start + n) and samples uniformly among them', () => {
    const d = new Discrete(3);
    expect(d.contains(0)).toBe(true);
    expect(d.contains(2)).toBe(true);
    expect(d.contains(3)).toBe(false);
    expect(d.contains(1.5)).toBe(false);
    expect(d.contains('1')).toBe(false);
    expect(new Discrete(2, -1).contains(-1)).toBe(true);
    const rng = new Rng(1);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[d.sample(rng)]++;
    for (const c of counts) expect(c).toBeGreaterThan(900);
  });

  it('samples only allowed actions under a mask, and refuses an empty mask', () => {
    const d = new Discrete(4);
    const rng = new Rng(2);
    const mask = Uint8Array.of(0, 1, 0, 1);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(d.sample(rng, mask));
    expect([...seen].sort()).toEqual([1, 3]);
    expect(() => d.sample(rng, new Uint8Array(4))).toThrow(RangeError);
    expect(() => d.sample(rng, new Uint8Array(3))).toThrow(RangeError);
  });
});

describe('Dict', () => {
  it('contains objects with exactly its keys, each inside its sub-space', () => {
    const s = new Dict({ a: new Box(0, 1, [2]), b: new Discrete(2) });
    expect(s.keys).toEqual(['a', 'b']);
    expect(s.contains({ a: Float32Array.of(0, 1), b: 1 })).toBe(true);
    expect(s.contains({ a: Float32Array.of(0, 2), b: 1 })).toBe(false);
    expect(s.contains({ a: Float32Array.of(0, 1) })).toBe(false);
    expect(s.contains({ a: Float32Array.of(0, 1), b: 1, c: 0 })).toBe(false);
    const rng = new Rng(4);
    for (let i = 0; i < 50; i++) expect(s.contains(s.sample(rng))).toBe(true);
  });
});
