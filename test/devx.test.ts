import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ConfigError, loadConfig } from '../src/config.js';
import { projectRoot } from '../src/infra/paths.js';
import {
  childEnv,
  eventually,
  isListening,
  killLeftovers,
  launch,
  runToExit,
  type LogLine,
} from './support/spawn.js';

const run = promisify(execFile);
const root = projectRoot();
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/;

/** Polls a synchronous condition (output seen so far) until it holds. */
const until = (condition: () => boolean, timeoutMs: number) =>
  eventually(() => Promise.resolve(condition()), timeoutMs);

/** A server holding a port on all interfaces, as another program would. */
function holdPort(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => resolve(server));
  });
}

const portOf = (server: net.Server) => (server.address() as net.AddressInfo).port;

/** Collects a child's output and kills its whole process group at the end of the test. */
function watch(child: ChildProcess): { output: () => string; kill: () => Promise<void> } {
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    output: () => output,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await exited;
    },
  };
}

describe('developer experience', function () {
  // Each test starts a real process: slow on a loaded machine, so the waits are generous.
  this.timeout(120_000);
  afterEach(() => killLeftovers());

  describe('a port already in use', () => {
    it('when PORT is taken, then the API prints one line naming it and exits 1 without a stack trace', async () => {
      const holder = await holdPort();
      try {
        const port = portOf(holder);
        const result = await runToExit({ PORT: String(port) });
        assert.equal(result.code, 1, result.stderr);
        assert.equal(result.stderr, `PORT ${port} is in use\n`);
        assert.deepEqual(result.stdout, []);
      } finally {
        holder.close();
      }
    });

    it('when a second API starts on the port of a running one, then the second exits 1 with one line and the first keeps serving', async () => {
      const first = launch({ PORT: '0' });
      const listening = await first.waitForLog(isListening, 45_000);
      const port = listening.port as number;
      const second = await runToExit({ PORT: String(port) });
      assert.equal(second.code, 1, second.stderr);
      assert.equal(second.stderr, `PORT ${port} is in use\n`);
      const ping = await fetch(`http://127.0.0.1:${port}/ping`);
      assert.equal(ping.status, 200);
      assert.equal(await first.stop(), 0);
      // LOG_FORMAT unset and stdout a pipe: JSON lines only.
      for (const line of first.lines) assert.doesNotThrow(() => JSON.parse(line) as LogLine, line);
    });
  });

  describe('log format', () => {
    it('when LOG_FORMAT is not one of auto, json, pretty, then the configuration is refused naming it', () => {
      assert.throws(
        () => loadConfig({ LOG_FORMAT: 'xml' }),
        (error: unknown) =>
          error instanceof ConfigError && /^LOG_FORMAT must be one of auto, json, pretty/.test(error.message),
      );
      assert.equal(loadConfig({}).logFormat, 'auto');
      assert.equal(loadConfig({ LOG_FORMAT: 'Pretty' }).logFormat, 'pretty');
    });

    it('when LOG_FORMAT=pretty, then log lines are human-readable (no colour on a pipe)', async () => {
      const app = launch({ PORT: '0', LOG_FORMAT: 'pretty' });
      await until(
        () => app.lines.some((line) => / INFO: listening on http:\/\/localhost:\d+$/.test(line)),
        45_000,
      );
      await app.stop();
      assert.ok(
        app.lines.every((line) => !line.startsWith('{')),
        app.lines.join('\n'),
      );
      assert.ok(
        app.lines.every((line) => !ANSI.test(line)),
        app.lines.join('\n'),
      );
    });

    it('when stdout is a terminal, then log lines are human-readable and coloured', async function () {
      // util-linux `script` gives the process a pseudo-terminal as stdout.
      const script = await run('script', ['--version']).catch(() => undefined);
      if (!script?.stdout.includes('util-linux')) this.skip();
      const child = spawn(
        'script',
        ['-qec', `${process.execPath} --import tsx src/main.ts api`, '/dev/null'],
        {
          cwd: root,
          env: childEnv({ PORT: '0' }),
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        },
      );
      const term = watch(child);
      try {
        await until(() => /INFO.*listening on http:\/\/localhost:\d+/.test(term.output()), 45_000);
        assert.match(term.output(), ANSI);
        assert.doesNotMatch(term.output(), /"level":/);
      } finally {
        await term.kill();
      }
    });
  });

  describe('.env', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'messenger-dotenv-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('when the working directory has a .env, then its settings are used and real environment variables win', async () => {
      fs.writeFileSync(path.join(dir, '.env'), '# local settings\nAPPS=health\nPORT=1\n');
      const tsx = pathToFileURL(createRequire(path.join(root, 'package.json')).resolve('tsx')).href;
      const child = spawn(process.execPath, ['--import', tsx, path.join(root, 'src/main.ts'), 'api'], {
        cwd: dir,
        env: childEnv({ PORT: '0', ENV_FILE: undefined }),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const app = watch(child);
      try {
        await until(() => /listening on/.test(app.output()), 45_000);
        const logs = app
          .output()
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as LogLine);
        assert.ok(
          logs.some(
            (line) => line.msg === 'settings read from a file (the environment wins)' && line.file === '.env',
          ),
        );
        const listening = logs.find(isListening)!;
        assert.deepEqual(listening.modules, ['health']);
        assert.notEqual(listening.port, 1);
      } finally {
        await app.kill();
      }
    });
  });

  describe('ENV_FILE', () => {
    it('when ENV_FILE names a file that does not exist, then the process stops with one line naming it', async () => {
      const missing = path.join(os.tmpdir(), `messenger-no-such-${process.pid}.env`);
      const result = await runToExit({ ENV_FILE: missing });
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `configuration error: ENV_FILE ${missing}: no such file\n`);
    });
  });

  describe('make help', () => {
    it('when stdout is not a terminal, then it prints plain text listing the targets', async () => {
      const { stdout } = await run('make', ['--no-print-directory', 'help'], { cwd: root });
      assert.doesNotMatch(stdout, ANSI);
      assert.match(stdout, /^ {2}dev +Run the API on embedded defaults/m);
      assert.match(stdout, /^ {2}test +/m);
    });
  });

  describe('swagger.yml', () => {
    const spec = YAML.parse(fs.readFileSync(path.join(root, 'swagger.yml'), 'utf8')) as {
      info: { version: string };
      servers: { url: string; description: string }[];
      security: Record<string, string[]>[];
      components: { securitySchemes: Record<string, { type: string; scheme?: string }> };
    };

    it('when the docs are read, then their version is the package version', () => {
      const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
      assert.equal(spec.info.version, pkg.version);
    });

    it('when Swagger UI offers Authorize, then an http bearer scheme takes the bare token (session_id still documented)', () => {
      assert.deepEqual(spec.components.securitySchemes.bearer, {
        ...spec.components.securitySchemes.bearer,
        type: 'http',
        scheme: 'bearer',
      });
      assert.equal(spec.components.securitySchemes.session?.type, 'apiKey');
      assert.deepEqual(spec.security, [{ bearer: [] }, { session: [] }]);
    });

    it('when the server list is shown, then it is this server, with no markup or fixed port in its label', () => {
      assert.deepEqual(
        spec.servers.map((server) => server.url),
        ['/'],
      );
      for (const server of spec.servers) assert.doesNotMatch(server.description, /`|:\d{2,5}/);
    });
  });
});
