#!/usr/bin/env node
// The `ctm` command line. A thin layer: each command parses its options, resolves the config,
// calls one library function and prints. Command groups live in src/cli/, assembled by
// src/cli/program.ts.

import { buildProgram } from './cli/program.js';

await buildProgram().parseAsync(process.argv);
