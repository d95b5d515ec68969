import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import readline from 'node:readline';
import { projectRoot } from '../../src/infra/paths.js';
import { apiFor, type Api } from './app.js';
import { profile, testDefaults } from './profile.js';

/** One pino JSON line of the child's stdout. */
export interface LogLine {
  level: number;
  msg?: string;
  [field: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The API running as a real process (`node --import tsx src/main.ts api`). */
export interface Launched {
  readonly child: ChildProcess;
  /** Raw stdout lines, in order, as they arrive. */
  readonly lines: string[];
  /** Everything written on stderr so far. */
  stderr(): string;
  /** The stdout lines that are JSON log lines. */
  logs(): LogLine[];
  /** Resolves with the first log line (already seen or still to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Settles once the process has exited and its output has been read. */
  readonly exited: Promise<Exit>;
  /** Sends `signal` and resolves the exit code (SIGKILL after `timeoutMs`, then the code is null). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export interface SpawnedApi extends Launched {
  /** The port from the "listening" log line. */
  readonly port: number;
  readonly url: string;
  /** A supertest client on the process: every response is checked against swagger.yml. */
  readonly api: Api;
}

/** Settings a test run may have in its own environment that must not leak into the child. */
const INHERITED_SETTINGS = [
  'PORT',
  'HOST',
  'DATA_DIR',
  'DATABASE_URL',
  'POSTGRES_HOSTS',
  'POSTGRES_HOST',
  'POSTGRES_DB',
  'POSTGRES_USER',
  'POSTGRES_PWD',
  'POSTGRES_PASSWORD',
  'POSTGRES_PORT',
  'REDIS_URL',
  'AMQP_URL',
  'APPS',
  'AUTH_DISABLED',
  'LOG_LEVEL',
  'LOG_FORMAT',
  'ENV_FILE',
  'BCRYPT_COST',
  'MIGRATE_ON_START',
];

const live = new Set<ChildProcess>();

// Safety net: a crashed test run must not leave API processes behind.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** The child's environment: PATH and friends, the profile's backends, test defaults, then `env`. */
export function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const merged = new Map(Object.entries(process.env));
  for (const name of INHERITED_SETTINGS) merged.delete(name);
  const layers: Record<string, string | undefined>[] = [
    // A developer's own .env in the project root must not reach the processes under test.
    { LOG_LEVEL: 'info', PORT: '0', ENV_FILE: 'none', ...testDefaults },
    profile.env,
    env,
  ];
  for (const layer of layers) {
    for (const [name, value] of Object.entries(layer)) {
      if (value === undefined) merged.delete(name);
      else merged.set(name, value);
    }
  }
  return Object.fromEntries(merged);
}

/** Starts the process and returns at once (use `spawnApi` to wait until it listens). */
export function launch(env: Record<string, string | undefined> = {}, role = 'api'): Launched {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', role], {
    cwd: projectRoot(),
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const lines: string[] = [];
  const parsed: LogLine[] = [];
  const events = new EventEmitter();
  let stderr = '';

  const stdoutDone = new Promise<void>((resolve) => {
    const reader = readline.createInterface({ input: child.stdout });
    reader.on('line', (line) => {
      lines.push(line);
      try {
        const value: unknown = JSON.parse(line);
        if (value && typeof value === 'object' && 'level' in value) {
          parsed.push(value as LogLine);
          events.emit('log', value);
        }
      } catch {
        // Not a log line: kept in `lines` only.
      }
    });
    reader.once('close', resolve);
  });
  const stderrDone = new Promise<void>((resolve) => {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.stderr.once('close', resolve);
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      void Promise.all([stdoutDone, stderrDone]).then(() => {
        events.emit('exit');
        resolve({ code, signal });
      });
    });
  });

  const launched: Launched = {
    child,
    lines,
    stderr: () => stderr,
    logs: () => [...parsed],
    exited,
    waitForLog(match, timeoutMs = 15_000) {
      const seen = parsed.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise<LogLine>((resolve, reject) => {
        const cleanup = () => {
          clearTimeout(timer);
          events.off('log', onLog);
          events.off('exit', onExit);
        };
        const onLog = (line: LogLine) => {
          if (!match(line)) return;
          cleanup();
          resolve(line);
        };
        const onExit = () => {
          cleanup();
          reject(new Error(`the API exited before the expected log line; stderr:\n${stderr}`));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no expected log line within ${timeoutMs} ms; stdout:\n${lines.join('\n')}`));
        }, timeoutMs);
        events.on('log', onLog);
        events.once('exit', onExit);
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const { code } = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return launched;
}

export const isListening = (line: LogLine) =>
  typeof line.msg === 'string' && line.msg.startsWith('listening on ') && typeof line.port === 'number';

/** Starts the API and resolves once it has logged "listening on …" (with the real port). */
export async function spawnApi(
  env: Record<string, string | undefined> = {},
  timeoutMs = 45_000,
): Promise<SpawnedApi> {
  const launched = launch(env);
  let listening: LogLine;
  try {
    listening = await launched.waitForLog(isListening, timeoutMs);
  } catch (error) {
    await launched.stop('SIGKILL');
    throw error;
  }
  const port = listening.port as number;
  const url = `http://127.0.0.1:${port}`;
  return { ...launched, port, url, api: apiFor(url) };
}

/** Runs the process to its end (for settings that must stop it); SIGKILL after `timeoutMs`. */
export async function runToExit(
  env: Record<string, string | undefined>,
  timeoutMs = 15_000,
): Promise<Exit & { stdout: string[]; stderr: string }> {
  const launched = launch(env);
  const timer = setTimeout(() => launched.child.kill('SIGKILL'), timeoutMs);
  const exit = await launched.exited;
  clearTimeout(timer);
  return { ...exit, stdout: launched.lines, stderr: launched.stderr() };
}

/** Kills every API process still running (for `after`/`afterEach` hooks). */
export async function killLeftovers(): Promise<void> {
  const children = [...live];
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            resolve();
            return;
          }
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `attempt` until it resolves true (or throws the last error after `timeoutMs`). */
export async function eventually(
  attempt: () => Promise<boolean>,
  timeoutMs = 5_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      if (await attempt()) return;
    } catch (error) {
      failure = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms`, { cause: failure });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export const isMigrated = (line: LogLine) =>
  line.msg === 'database migrated' || line.msg === 'database schema up to date';

/** Waits until the schema is in place (until then /v1 answers 503 by design). */
export async function migrated(app: Launched): Promise<void> {
  await app.waitForLog(isMigrated, 30_000);
}
