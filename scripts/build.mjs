#!/usr/bin/env node
// `npm run build [-- --out-dir <dir>]`: compiles src/ with tsconfig.build.json into a fresh folder
// (default dist/, same layout as src/, tests left out) and copies the files the code reads next to
// itself at run time (readFileSync(new URL('./x', import.meta.url))), which tsc does not emit.
// Type-checking tests, bench and scripts stays with `npm run typecheck`.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');

const flag = process.argv.indexOf('--out-dir');
const outDir = path.resolve(root, flag >= 0 ? process.argv[flag + 1] ?? '' : 'dist');
if (flag >= 0 && !process.argv[flag + 1]) fail('usage: build.mjs [--out-dir <dir>]');

// A fresh folder: tsc never deletes the output of a source file that was moved or removed.
rmSync(outDir, { recursive: true, force: true });

const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json'), '--outDir', outDir], {
  cwd: root,
  stdio: 'inherit',
});
if (tsc.status !== 0) fail(`tsc failed (exit ${tsc.status ?? tsc.signal})`);

let copied = 0;
for (const file of runtimeAssets(src)) {
  const rel = path.relative(src, file);
  cpSync(file, path.join(outDir, rel));
  copied++;
}
process.stdout.write(`built ${path.relative(root, outDir) || outDir} (${copied} asset file${copied === 1 ? '' : 's'} copied)\n`);

/** Every file under src/ that tsc does not handle: data read by the code (word lists and the like). */
function* runtimeAssets(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* runtimeAssets(full);
    else if (!/\.(ts|tsx|mts|cts)$/.test(entry.name)) yield full;
  }
}

function fail(message) {
  process.stderr.write(`build: ${message}\n`);
  process.exit(1);
}
