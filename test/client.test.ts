import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { projectRoot } from '../src/infra/paths.js';
import { startApp, type TestApp } from './support/app.js';
import { baseUrl } from './support/events.js';
import { join, registerAndLogin, send, unique } from './support/fixtures.js';

/** The terminal client as a user runs it (`npm run client -- ...`), driven through its pipes. */
class Terminal {
  readonly lines: string[] = [];
  private readonly child: ChildProcess;
  private waiters: (() => void)[] = [];

  constructor(url: string, user: string) {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/client.ts', '--url', url, '--user', user],
      {
        cwd: projectRoot(),
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const waiter of this.waiters.splice(0)) waiter();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.lines.push(`stderr: ${chunk.toString()}`));
  }

  type(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** The first line matching `pattern`, waiting up to `ms`. */
  async see(pattern: RegExp, ms = 30_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.lines.find((line) => pattern.test(line));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line matching ${pattern}; saw:\n${this.lines.join('\n')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async quit(): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.type('/quit');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

describe('terminal client (npm run client)', function () {
  this.timeout(90_000);
  let app: TestApp;
  let url: string;

  before(async () => {
    app = await startApp({ PORT: '0', HOST: '127.0.0.1' });
    url = baseUrl(await app.service.listen());
  });

  after(async () => {
    await app.close();
  });

  it('when another user posts in a chat the client joined, then the client shows the message; /history, /search and /quit work', async () => {
    const name = unique('term');
    const terminal = new Terminal(url, name);
    try {
      await terminal.see(/logged in as/);
      await terminal.see(/connected to events/);
      terminal.type('/new team room');
      const joined = await terminal.see(/in chat team room: /);
      const chatId = /: ([0-9a-f-]{36})/.exec(joined)![1]!;
      terminal.type('hello from the terminal');

      const bob = await registerAndLogin(app.api);
      const bobMember = await join(app.api, bob, chatId, 'Bob');
      await terminal.see(/\[team room\] Bob joined/);
      await send(app.api, bob, chatId, bobMember, 'hi terminal, from bob');
      await terminal.see(/\[team room\] Bob: hi terminal, from bob/);

      terminal.type('/history');
      await terminal.see(new RegExp(`^  ${name}: hello from the terminal$`));
      terminal.type('/chats');
      await terminal.see(/^\* 1\. team room/);
      // Search waits for its task with long polls, then prints the matches.
      terminal.type('/search terminal from bob');
      await terminal.see(/^ {2}\[team room\] hi terminal, from bob$/);
      assert.equal(await terminal.quit(), 0);
    } finally {
      await terminal.quit();
    }
  });
});
