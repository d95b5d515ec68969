import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { nodeFlags, type Role } from '../bench/lib/services.js';
import { projectRoot } from '../src/infra/paths.js';

const run = promisify(execFile);
const root = projectRoot();
const ROLES: Role[] = ['api', 'consumer', 'migrate'];

/** `node <flags> dist/src/main.js <role>` → { role: flags } for every such command in `text`. */
function commands(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const match of text.matchAll(/^\s*node\s+(.*?)\s*dist\/src\/main\.js (\w+)\s*$/gm)) {
    const flags = match[1]!.split(/\s+/).filter(Boolean);
    const seen = found.get(match[2]!);
    if (seen) assert.deepEqual(flags, seen, `two commands start ${match[2]} with different flags`);
    found.set(match[2]!, flags);
  }
  return found;
}

describe('node flags of each role', () => {
  const entrypoint = Object.fromEntries(ROLES.map((role) => [role, nodeFlags(role)]));

  it('when the image starts a role, then this node accepts its flags', () => {
    assert.ok(entrypoint.api!.length > 0, 'the API runs with V8 heap settings');
    for (const role of ROLES) {
      const probe = spawnSync(process.execPath, [...entrypoint[role]!, '-e', '0'], { encoding: 'utf8' });
      assert.equal(probe.status, 0, `${role}: ${probe.stderr}`);
    }
  });

  it('when npm scripts start a role, then they pass the flags the image does', () => {
    const { scripts } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const started = commands([scripts.start, scripts.consumer, scripts.migrate].join('\n'));
    assert.deepEqual(Object.fromEntries(started), entrypoint);
  });

  it('when make starts a role, then it passes the flags the image does', async () => {
    // A dry run prints the commands with the Makefile's variables expanded, and runs none of them.
    const { stdout } = await run(
      'make',
      ['-n', '--no-print-directory', 'dev', 'start', 'consumer', 'migrate'],
      {
        cwd: root,
      },
    );
    assert.deepEqual(Object.fromEntries(commands(stdout)), entrypoint);
  });

  it('when the entrypoint has no line for a role, then reading its flags fails clearly', () => {
    const file = path.join(root, 'deploy/docker-entrypoint.sh');
    const other = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'node-flags-')), 'entrypoint.sh');
    try {
      fs.writeFileSync(other, fs.readFileSync(file, 'utf8').replace(/^\s*migrate\).*$/m, ''));
      assert.throws(() => nodeFlags('migrate', other), /starts no "migrate" role/);
      assert.deepEqual(nodeFlags('api', other), entrypoint.api);
    } finally {
      fs.rmSync(path.dirname(other), { recursive: true, force: true });
    }
  });
});
