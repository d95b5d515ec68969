import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout. Credentials are redacted wherever they might end up in a log object. */
export function createLogger(level: string): Logger {
  return pino({
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
  });
}
