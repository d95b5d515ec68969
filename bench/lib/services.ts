import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './db.js';

export type Role = 'api' | 'consumer' | 'migrate';

/**
 * The node flags the image's entrypoint (deploy/docker-entrypoint.sh) starts `role` with, read from
 * it: the bench runs each role as production does. Throws when the entrypoint has no line for it.
 */
export function nodeFlags(role: Role, entrypoint = path.join(ROOT, 'deploy/docker-entrypoint.sh')): string[] {
  for (const line of fs.readFileSync(entrypoint, 'utf8').split('\n')) {
    const match = /^\s*([\w |]+)\)\s*exec node\s+(.*?)\s*\/app\/dist\/src\/main\.js\b/.exec(line);
    if (match && match[1]!.split('|').some((name) => name.trim() === role)) {
      return match[2]!.split(/\s+/).filter(Boolean);
    }
  }
  throw new Error(`${entrypoint} starts no "${role}" role with \`exec node … /app/dist/src/main.js\``);
}

/** Where the processes the benchmark starts write their output. */
export const LOG_DIR = path.join(os.tmpdir(), 'messenger-bench');

const running = new Set<ChildProcess>();
// Whatever happens to the runner, the processes it started do not outlive it.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Service {
  name: string;
  pid: number;
  logFile: string;
  /** The last lines the process wrote (for error messages). */
  tail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `node <args>` with `env`, output to a log file under LOG_DIR. */
export function startService(name: string, args: string[], env: NodeJS.ProcessEnv): Service {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const logFile = path.join(LOG_DIR, `${name}.log`);
  const log = fs.openSync(logFile, 'w');
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => running.delete(child));
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  return {
    name,
    pid: child.pid,
    logFile,
    tail: () => fs.readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n'),
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `url` until it answers 200 (with `headers`), or fails after `timeoutMs`. */
export async function waitFor(
  service: Service,
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { headers });
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) return;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(100);
  }
  throw new Error(`${service.name} not ready at ${url} (last: ${last.slice(0, 200)})\n${service.tail()}`);
}

/** The resident set size of `pid` in MB (VmRSS), or undefined when it cannot be read. */
export function rssMb(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used, in seconds (from /proc; undefined when it is gone). */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc's times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

/** Samples the RSS of some processes every 100 ms; `stop` gives each one's peak in MB. */
export class RssSampler {
  private readonly peaks = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: number[]) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 100);
  }

  private sample(): void {
    for (const pid of this.pids) {
      const mb = rssMb(pid);
      if (mb !== undefined) this.peaks.set(pid, Math.max(mb, this.peaks.get(pid) ?? 0));
    }
  }

  stop(): Map<number, number> {
    clearInterval(this.timer);
    this.sample();
    return this.peaks;
  }
}
