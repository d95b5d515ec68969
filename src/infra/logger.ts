import { createRequire } from 'node:module';
import tty from 'node:tty';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type { LogFormat } from '../config.js';

export type { Logger };

const require = createRequire(import.meta.url);

/**
 * JSON lines on stdout, or human-readable lines (pino-pretty) for `pretty`, and for `auto` when
 * stdout is a terminal. Credentials are redacted wherever they might end up in a log object.
 */
export function createLogger(level: string, format: LogFormat = 'json'): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'messenger-api' },
    redact: {
      paths: [
        'password',
        '*.password',
        'session_id',
        '*.session_id',
        'token',
        '*.token',
        'authorization',
        '*.authorization',
        '*.headers.authorization',
      ],
      censor: '[redacted]',
    },
  };
  const wantsPretty = format === 'pretty' || (format === 'auto' && tty.isatty(1));
  const stream = wantsPretty ? prettyStream(format === 'pretty') : undefined;
  return stream ? pino(options, stream) : pino(options);
}

type PrettyFactory = (options: Record<string, unknown>) => DestinationStream;

/**
 * pino-pretty is a dev dependency: production images do not have it, so it is loaded only when
 * asked for, and its absence falls back to JSON (with one warning when it was asked for by name).
 */
function prettyStream(explicit: boolean): DestinationStream | undefined {
  let pretty: PrettyFactory;
  try {
    pretty = require('pino-pretty') as PrettyFactory;
  } catch {
    if (explicit) {
      process.stderr.write('LOG_FORMAT=pretty needs pino-pretty (a dev dependency): logging JSON instead\n');
    }
    return undefined;
  }
  return pretty({
    colorize: tty.isatty(1),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    // Synchronous, like pino's own stdout: the last lines before process.exit are not lost.
    sync: true,
  });
}
