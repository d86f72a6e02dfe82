// The generated references (docs/cli.md, docs/config.md) say what the code does: regenerated in
// memory from the command definitions and the config schema, they equal the committed files, and
// they hold every command, option and config key.

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { renderReferenceDocs, ROOT } from '../../scripts/docs.js';
import { buildProgram } from '../../src/cli/program.js';
import { escapeMarkdown, REFERENCE_COMMAND, REFERENCE_FILES } from '../../src/cli/reference.js';
import { z } from 'zod';
import { configSchema } from '../../src/utils/config.js';

const docs = renderReferenceDocs();

function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...allCommands(c)]);
}

interface Node {
  properties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
}

/** Every key path of the schema: keys of fixed objects, `<name>.<field>` for a record's entries. */
function schemaKeys(node: Node, path: string[] = []): string[] {
  const entry = node.additionalProperties;
  if (node.properties === undefined && typeof entry === 'object' && entry.properties !== undefined)
    return [
      path.join('.'),
      ...Object.keys(entry.properties).map((k) => [...path, '<name>', k].join('.')),
    ];
  if (node.properties === undefined) return [path.join('.')];
  return Object.entries(node.properties).flatMap(([k, v]) => schemaKeys(v, [...path, k]));
}

describe('generated references', () => {
  it.each(REFERENCE_FILES)('%s is in sync with the code', (file) => {
    const committed = readFileSync(`${ROOT}/${file}`, 'utf8');
    if (committed !== docs[file]) expect.fail(`${file} is out of date: run ${REFERENCE_COMMAND}`);
  });

  it('generates the same text twice (deterministic)', () => {
    expect(renderReferenceDocs()).toEqual(docs);
  });

  it('lists every command with its usage and every option with its flags', () => {
    const commands = allCommands(buildProgram());
    expect(commands.length).toBeGreaterThan(20);
    for (const cmd of commands) {
      const names: string[] = [];
      for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name());
      expect(docs['docs/cli.md'], names.join(' ')).toContain(
        `\n${'#'.repeat(Math.min(names.length, 4))} ${names.join(' ')}\n`,
      );
      for (const option of cmd.options)
        expect(docs['docs/cli.md'], `${names.join(' ')} ${option.flags}`).toContain(
          `\`${option.flags.replace(/\|/g, '\\|')}\``,
        );
    }
  });

  it('documents every key of the default config', () => {
    const keys = schemaKeys(z.toJSONSchema(configSchema, { io: 'input' }) as Node).filter(
      (k) => k !== 'live',
    );
    expect(keys.length).toBeGreaterThan(300);
    expect(keys).toContain('scenarios.synthetic.<name>.seeds');
    for (const key of keys) expect(docs['docs/config.md'], key).toContain(`| \`${key}\` |`);
  });

  it('names the type and default of a key', () => {
    expect(docs['docs/config.md']).toContain(
      '| `broker.takerFeeRate` | number in [0, 0.1] | `0.001` |',
    );
  });

  it('escapes markdown outside code spans, and pipes inside them', () => {
    expect(escapeMarkdown('runs/<id>/ macd_* csv | json `a|b` `<x>`')).toBe(
      'runs/\\<id>/ macd_\\* csv \\| json `a\\|b` `<x>`',
    );
  });
});
