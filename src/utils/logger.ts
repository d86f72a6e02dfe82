// The one logger. Everything logs through `logger` (or a child of it) with structured fields;
// library code never uses console. Logs go to stderr so that stdout stays free for command output:
// pretty and coloured on a TTY, one JSON object per line otherwise. Level from CTM_LOG_LEVEL.

import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

function createLogger(): Logger {
  const level = process.env.CTM_LOG_LEVEL ?? (process.env.VITEST === undefined ? 'info' : 'warn');
  if (process.stderr.isTTY) {
    return pino(
      { level },
      pretty({
        destination: 2,
        sync: true,
        colorize: true,
        translateTime: 'SYS:HH:MM:ss',
        ignore: 'pid,hostname',
      }),
    );
  }
  return pino({ level, base: undefined }, pino.destination({ dest: 2, sync: true }));
}

/** The process-wide logger (pino). Use `logger.child({ module: 'store' })` for a module's logger. */
export const logger: Logger = createLogger();

/** Sets the minimum level logged (`trace` ... `fatal`, or `silent`). */
export function setLogLevel(level: string): void {
  logger.level = level;
}
