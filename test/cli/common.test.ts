// The shared plumbing of every `ctm` command: the help's own example of --set must be a valid
// override (a user copies it), and options parse into a validated config.
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { listOption, resolveConfig, withCommonOptions } from '../../src/cli/common.js';

describe('common options', () => {
  it('the --set example printed in every help applies to the config', () => {
    const help = withCommonOptions(new Command('x')).helpInformation().replace(/\s+/g, ' ');
    const example = /e\.g\. --set (\S+)/.exec(help);
    expect(example).not.toBeNull();
    const [key, value] = example![1].split('=');
    const config = resolveConfig({ set: [example![1]] });
    const leaf = key
      .split('.')
      .reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], config);
    expect(leaf).toBe(Number(value));
  });
});

describe('listOption', () => {
  it('splits a comma-separated option into trimmed items, dropping empty ones', () => {
    expect(listOption(' BTC/USDT, ETH/USDT ,,')).toEqual(['BTC/USDT', 'ETH/USDT']);
    expect(listOption('')).toEqual([]);
  });
});
