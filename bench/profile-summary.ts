/**
 * Sums up a V8 CPU profile (`node --cpu-prof`, or a bench run with BENCH_CPU_PROF=<dir>): where the
 * process spent its samples, by function (self time) and by origin (a package, Node's internals,
 * the project's own code, idle, garbage collection).
 *
 *   npm run profile-summary -- <file.cpuprofile> [--top N]
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code comes from. */
function originOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(garbage collector)') return '(garbage collector)';
  if (functionName === '(program)') return '(program: V8 and native code)';
  if (!url) return `(native: ${functionName || 'anonymous'})`;
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const project = /\/(dist\/)?(src\/[^/]+(?:\/[^/]+)?)/.exec(url);
  if (project) return `project ${project[2]!.replace(/\.js$/, '')}`;
  return path.basename(url);
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${url.replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

function summarize(file: string, top: number): string {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  // Self time per node from the samples and their time deltas (µs).
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfUs.entries()]
    .filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)')
    .reduce((a, [, us]) => a + us, 0);
  const busy = total - idle;
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    add(byFunction, frameName(node), us);
    add(byOrigin, originOf(node), us);
  }
  const share = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  const rows = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => `  ${share(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`);
  return [
    file,
    `  ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${((100 * busy) / total).toFixed(0)}%); shares are of busy time`,
    'by origin (self time):',
    ...rows(byOrigin),
    'by function (self time):',
    ...rows(byFunction),
  ].join('\n');
}

function main(): void {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 15;
  if (args.length === 0 || args.includes('--help') || !Number.isInteger(top) || top < 1) {
    process.stdout.write('npm run profile-summary -- <file.cpuprofile> [more files] [--top N]\n');
    process.exit(args.includes('--help') ? 0 : 2);
  }
  for (const file of args) process.stdout.write(`${summarize(file, top)}\n\n`);
}

main();
