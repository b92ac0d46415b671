import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** Readers for the deployment files at the repository root, shared by the config tests. */

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function readRepoFile(name: string): string {
  return readFileSync(path.join(repoRoot, name), 'utf8');
}

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number; published?: number | string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
}

export function readCompose(): ComposeFile {
  return parse(readRepoFile('docker-compose.yml')) as ComposeFile;
}

/** A service's environment as written (before interpolation), list or map form. */
export function rawEnvironment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  const out: Record<string, string> = {};
  if (Array.isArray(env)) {
    for (const item of env) {
      const i = item.indexOf('=');
      out[i < 0 ? item : item.slice(0, i)] = i < 0 ? '' : item.slice(i + 1);
    }
  } else {
    for (const [k, v] of Object.entries(env)) out[k] = v === null ? '' : String(v);
  }
  return out;
}

/**
 * Compose interpolation (`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}`, `${VAR?message}`) against `vars`. A required variable missing from `vars`
 * throws, as `docker compose` would refuse to start.
 */
export function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, name, colon, op, arg, bare) => {
    if (m === '$$') return '$';
    if (bare !== undefined) return vars[bare] ?? '';
    const value = vars[name as string];
    const missing = colon === ':' ? value === undefined || value === '' : value === undefined;
    if (op === undefined) return value ?? '';
    if (!missing) return value!;
    if (op === '-') return arg as string;
    throw new Error(`required variable ${name} is not set: ${arg}`);
  });
}

/** Every variable a text interpolates, and whether compose requires it (`?`). */
export function interpolatedVariables(text: string): { name: string; required: boolean }[] {
  return [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?]))?[^}]*\}/g)].map((m) => ({ name: m[1]!, required: m[2] === '?' }));
}

/** Container ports a service publishes. */
export function containerPorts(service: ComposeService): number[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p === 'number') return p;
    if (typeof p === 'object') return p.target;
    const spec = p.split('/')[0]!;
    return Number(spec.slice(spec.lastIndexOf(':') + 1));
  });
}

export interface EnvExampleLine {
  name: string;
  value: string;
  commented: boolean;
  line: number;
}

/** `NAME=value` and `# NAME=value` lines of an env file; prose comments are skipped. */
export function parseEnvExample(text: string): EnvExampleLine[] {
  const out: EnvExampleLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const m = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(raw.trim());
    if (m) out.push({ name: m[2]!, value: m[3]!.trim(), commented: m[1] !== undefined, line: i + 1 });
  });
  return out;
}

/** Instructions of a Dockerfile, continuation lines joined. */
export function dockerfileInstructions(text: string): { op: string; args: string }[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map((l) => {
      const i = l.search(/\s/);
      return { op: (i < 0 ? l : l.slice(0, i)).toUpperCase(), args: i < 0 ? '' : l.slice(i + 1).trim() };
    });
}
