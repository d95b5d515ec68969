#!/usr/bin/env node
// Checks the layering of src/: no import cycle, and infra/ imports nothing from modules/ or http/.
// Type-only imports count too: a cycle of types is still a knot a reader has to untie.
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..', 'src');
const files = fs
  .readdirSync(root, { recursive: true })
  .filter((f) => f.endsWith('.ts'))
  .map((f) => path.join(root, f));
const IMPORT = /^\s*(?:import|export)\s[^'";]*?from\s+'(\.{1,2}\/[^']+)'/gm;

const graph = new Map();
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  const targets = [...text.matchAll(IMPORT)].map((m) =>
    path.resolve(path.dirname(file), m[1].replace(/\.js$/, '.ts')),
  );
  graph.set(
    file,
    targets.filter((target) => graph.has(target) || fs.existsSync(target)),
  );
}

const rel = (file) => path.relative(root, file);
const problems = [];
for (const [file, targets] of graph) {
  if (!rel(file).startsWith('infra/')) continue;
  for (const target of targets) {
    if (/^(modules|http)\//.test(rel(target)))
      problems.push(
        `src/${rel(file)} imports src/${rel(target)}: infra/ must not depend on modules/ or http/`,
      );
  }
}

// Depth-first search; a grey node met again closes a cycle.
const state = new Map();
const stack = [];
function visit(file) {
  state.set(file, 'grey');
  stack.push(file);
  for (const target of graph.get(file) ?? []) {
    if (state.get(target) === 'grey') {
      const cycle = stack
        .slice(stack.indexOf(target))
        .concat(target)
        .map((f) => `src/${rel(f)}`);
      problems.push(`import cycle: ${cycle.join(' -> ')}`);
    } else if (!state.has(target)) visit(target);
  }
  stack.pop();
  state.set(file, 'black');
}
for (const file of graph.keys()) if (!state.has(file)) visit(file);

if (problems.length) {
  for (const problem of problems) console.error(problem);
  process.exit(1);
}
console.log(`imports: ${graph.size} files in src/, no cycle, infra/ depends on neither modules/ nor http/`);
