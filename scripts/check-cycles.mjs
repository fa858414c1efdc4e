#!/usr/bin/env node
// Fails when runtime imports between files under src/ form a cycle (type-only imports are
// erased and do not count). Part of `npm run lint`.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? 'src');
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (path.endsWith('.ts') && !path.endsWith('.d.ts')) files.push(path);
  }
};
walk(root);

const IMPORT = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm;
const graph = new Map();
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const deps = [];
  for (const match of text.matchAll(IMPORT)) {
    // `import { type A, type B } from` is type-only too.
    const clause = match[0];
    const braces = /\{([^}]*)\}/.exec(clause)?.[1];
    if (braces && !/^import\s+\w/.test(clause.trim()) && braces.split(',').every((part) => /^\s*type\s/.test(part) || part.trim() === '')) continue;
    deps.push(resolve(dirname(file), match[1].replace(/\.js$/, '.ts')));
  }
  graph.set(file, deps);
}

const state = new Map();
const cycles = [];
const visit = (file, stack) => {
  state.set(file, 'open');
  for (const dep of graph.get(file) ?? []) {
    if (!graph.has(dep)) continue;
    if (state.get(dep) === 'open') cycles.push([...stack.slice(stack.indexOf(dep)), dep]);
    else if (!state.has(dep)) visit(dep, [...stack, dep]);
  }
  state.set(file, 'done');
};
for (const file of files) if (!state.has(file)) visit(file, [file]);

if (cycles.length > 0) {
  for (const cycle of cycles) console.error(`import cycle: ${cycle.map((f) => relative(process.cwd(), f)).join(' -> ')}`);
  process.exit(1);
}
console.log(`no import cycles in ${files.length} files under ${relative(process.cwd(), root) || '.'}`);
