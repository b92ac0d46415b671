import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { configSchema, configVariableNames, mailerConfigSchema, mailerConfigVariableNames } from '../../src/shared/config.js';
import {
  containerPorts,
  dockerfileInstructions,
  interpolate,
  interpolatedVariables,
  parseEnvExample,
  rawEnvironment,
  readCompose,
  readRepoFile,
  type ComposeService,
} from './compose-file.js';

/**
 * docker-compose.yml, the Dockerfile and .env.example must agree with the config schema: a
 * variable added to src/shared/config.ts without documentation, or a compose variable the service
 * does not read, fails here.
 */

/** Every variable either process reads: the identity service's schema and the mailer's. */
const names = [...new Set([...configVariableNames(), ...mailerConfigVariableNames()])];

/** dist/identity/main.js is what `npm run build` (tsconfig.build.json: src -> dist) makes of src/identity/main.ts. */
const COMPILED_COMMAND = ['node', 'dist/identity/main.js'];
type Field = (typeof configSchema.shape)[keyof typeof configSchema.shape];
const field = (name: string): Field =>
  (configSchema.shape as Record<string, Field>)[name] ?? (mailerConfigSchema.shape as unknown as Record<string, Field>)[name]!;
const schemaDefaults = configSchema.parse({});

/** What an operator would put in .env for the required `${VAR:?}` interpolations. */
const placeholders: Record<string, string> = {
  SECRET_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  INTROSPECTION_CLIENTS: `orders:${randomBytes(30).toString('base64url')}`,
};

function service(name: string): ComposeService {
  const s = readCompose().services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
}

function identityEnvironment(): Record<string, string> {
  const raw = rawEnvironment(service('identity'));
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, interpolate(v, placeholders)]));
}

function commandText(s: ComposeService): string {
  return Array.isArray(s.command) ? s.command.join(' ') : (s.command ?? '');
}

describe('interpolation helper', () => {
  it('substitutes defaults, values and refuses a missing required variable', () => {
    expect(interpolate('a${X:-d}b', {})).toBe('adb');
    expect(interpolate('a${X:-d}b', { X: 'v' })).toBe('avb');
    expect(interpolate('$${X}', {})).toBe('${X}');
    expect(() => interpolate('${X:?set X}', {})).toThrow(/X is not set/);
    expect(() => interpolate('${X:?set X}', { X: '' })).toThrow(/X is not set/);
    expect(interpolate('${X?set X}', { X: '' })).toBe('');
  });
});

describe('docker-compose.yml', () => {
  it('has postgres, redis, nats with JetStream, an SMTP catcher and identity', () => {
    const { services } = readCompose();
    expect(services.postgres?.image).toMatch(/^postgres:15/);
    expect(services.redis?.image).toMatch(/^redis:7/);
    expect(services.nats?.image).toMatch(/^nats:2\.10/);
    expect(commandText(service('nats')).split(/\s+/)).toContain('-js');
    const smtp = Object.values(services).find((s) => containerPorts(s).includes(1025));
    expect(smtp?.image).toMatch(/mailpit|mailhog/);
    expect(services.identity?.build).toBeDefined();
  });

  it('runs the compiled service with node as the image does (no TypeScript loader, no npm)', () => {
    expect(service('identity').command).toEqual(COMPILED_COMMAND);
  });

  it('gives identity only variables of the config schema', () => {
    const unknown = Object.keys(rawEnvironment(service('identity'))).filter((k) => !configVariableNames().includes(k));
    expect(unknown).toEqual([]);
  });

  it('requires the secrets from .env and fills nothing else the operator must set', () => {
    const text = Object.values(rawEnvironment(service('identity'))).join('\n');
    const required = interpolatedVariables(text)
      .filter((v) => v.required)
      .map((v) => v.name)
      .sort();
    expect(required).toEqual(['INTROSPECTION_CLIENTS', 'SECRET_ENCRYPTION_KEY']);
    expect(() => interpolate(text, {})).toThrow(/is not set/);
  });

  it('gives identity an environment that passes the schema, production rules included', () => {
    const env = identityEnvironment();
    expect(env.NODE_ENV).toBe('production');
    expect(env.BIND_ADDRESS).toBe('0.0.0.0');
    const parsed = configSchema.safeParse(env);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    // The secrets must come from .env: with them unset the production rules would stop start-up.
    const { SECRET_ENCRYPTION_KEY: _k, INTROSPECTION_CLIENTS: _c, ...withoutSecrets } = env;
    expect(configSchema.safeParse(withoutSecrets).success).toBe(false);
  });

  it('points identity at the compose services', () => {
    const env = identityEnvironment();
    expect(new URL(env.DATABASE_URL!).hostname).toBe('postgres');
    expect(new URL(env.REDIS_URL!).hostname).toBe('redis');
    expect(new URL(env.NATS_URL!).hostname).toBe('nats');
  });

  it('publishes the gRPC and HTTP ports identity listens on', () => {
    const config = configSchema.parse(identityEnvironment());
    expect(config.GRPC_PORT).toBe(schemaDefaults.GRPC_PORT);
    expect(config.HTTP_PORT).toBe(schemaDefaults.HTTP_PORT);
    expect(containerPorts(service('identity')).sort()).toEqual([config.GRPC_PORT, config.HTTP_PORT].sort());
  });

  it('starts identity after healthy backends and checks /readyz', () => {
    const identity = service('identity');
    const deps = identity.depends_on;
    expect(deps && !Array.isArray(deps)).toBe(true);
    for (const name of ['postgres', 'redis', 'nats']) {
      expect((deps as Record<string, { condition?: string }>)[name]?.condition).toBe('service_healthy');
      expect(service(name).healthcheck?.test).toBeDefined();
    }
    const test = [identity.healthcheck?.test ?? []].flat().join(' ');
    expect(test).toContain(`:${schemaDefaults.HTTP_PORT}/readyz`);
  });
});

describe('docker-compose.yml: mailer', () => {
  it('runs the compiled mailer from the same build, with mailer variables only, valid in production', () => {
    const mailer = service('mailer');
    expect(mailer.build).toEqual(service('identity').build);
    expect(mailer.command).toEqual(['node', 'dist/mailer/main.js']);
    const env = Object.fromEntries(Object.entries(rawEnvironment(mailer)).map(([k, v]) => [k, interpolate(v, {})]));
    expect(Object.keys(env).filter((k) => !mailerConfigVariableNames().includes(k))).toEqual([]);
    expect(env.NODE_ENV).toBe('production');
    const parsed = mailerConfigSchema.safeParse(env);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    expect(new URL(env.NATS_URL!).hostname).toBe('nats');
    const smtp = new URL(env.SMTP_URL!);
    expect(containerPorts(service(smtp.hostname))).toContain(Number(smtp.port));
    expect((mailer.depends_on as Record<string, { condition?: string }>).nats?.condition).toBe('service_healthy');
    const mailerDefaults = mailerConfigSchema.parse({ NATS_URL: 'nats://x' });
    expect([mailer.healthcheck?.test ?? []].flat().join(' ')).toContain(`:${mailerDefaults.MAILER_HTTP_PORT}/readyz`);
  });
});

describe('Dockerfile', () => {
  const instructions = dockerfileInstructions(readRepoFile('Dockerfile'));

  it('exposes the default gRPC and HTTP ports', () => {
    const exposed = instructions
      .filter((i) => i.op === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/))
      .map((p) => Number(p.split('/')[0]));
    expect(exposed.sort()).toEqual([schemaDefaults.GRPC_PORT, schemaDefaults.HTTP_PORT].sort());
  });

  it('sets only config variables, runs as a non-root user and checks /readyz', () => {
    const env = instructions
      .filter((i) => i.op === 'ENV')
      .flatMap((i) => [...i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S*)/g)].map((m) => [m[1]!, m[2]!] as const));
    expect(env.length).toBeGreaterThan(0);
    expect(env.map(([k]) => k).filter((k) => !names.includes(k))).toEqual([]);
    for (const [k, v] of env) expect(field(k).safeParse(v).success, `ENV ${k}=${v}`).toBe(true);
    const users = instructions.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    expect(instructions.filter((i) => i.op === 'FROM').every((i) => i.args.startsWith('node:20-bookworm-slim'))).toBe(true);
    expect(instructions.find((i) => i.op === 'HEALTHCHECK')?.args).toContain('/readyz');
  });

  it('runs the compiled service: built in one stage, run without dev dependencies in the last', () => {
    expect(JSON.parse(instructions.filter((i) => i.op === 'CMD').at(-1)!.args)).toEqual(COMPILED_COMMAND);
    const stages = instructions.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/).at(-1));
    expect(stages).toEqual(['build', 'deps', 'runtime']);
    const runs = instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs).toContain('npm run build');
    expect(runs.some((r) => r.startsWith('npm ci --omit=dev'))).toBe(true);
    const lastFrom = instructions.map((i) => i.op).lastIndexOf('FROM');
    const runtime = instructions.slice(lastFrom);
    const copies = runtime.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies).toContain('--from=build /app/dist ./dist');
    expect(copies.some((c) => /\bsrc\b/.test(c))).toBe(false);
  });

  it('needs no TypeScript tooling at run time', () => {
    const pkg = JSON.parse(readRepoFile('package.json')) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies).filter((d) => /^(tsx|typescript|esbuild|ts-node)$/.test(d))).toEqual([]);
    const build = JSON.parse(readRepoFile('tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect([build.compilerOptions.rootDir, build.compilerOptions.outDir]).toEqual(['src', 'dist']);
    expect(readRepoFile('src/identity/main.ts').length).toBeGreaterThan(0);
  });
});

describe('docs/operations.md', () => {
  it('documents every variable of the schema', () => {
    const text = readRepoFile('docs/operations.md');
    expect(names.filter((n) => !text.includes(`\`${n}\``))).toEqual([]);
  });
});

describe('.env.example', () => {
  const lines = parseEnvExample(readRepoFile('.env.example'));
  const documented = lines.map((l) => l.name);

  it('documents every variable of the schema', () => {
    expect(names.length).toBeGreaterThan(30);
    expect(names.filter((n) => !documented.includes(n))).toEqual([]);
  });

  it('mentions nothing the schema does not read, each variable once', () => {
    expect(documented.filter((n) => !names.includes(n))).toEqual([]);
    expect(documented.filter((n, i) => documented.indexOf(n) !== i)).toEqual([]);
  });

  it('gives each variable a comment above it', () => {
    const text = readRepoFile('.env.example').split('\n');
    for (const l of lines) {
      const above = text.slice(0, l.line - 1).reverse();
      const prose = above.find((t) => !/^#?\s*[A-Z][A-Z0-9_]*=/.test(t.trim()));
      expect(prose?.trim().startsWith('#'), `${l.name} (line ${l.line}) has no comment`).toBe(true);
    }
  });

  it('shows values that parse, and the schema default wherever there is one', () => {
    for (const l of lines.filter((x) => x.value !== '')) {
      const parsed = field(l.name).safeParse(l.value);
      expect(parsed.success, `${l.name}=${l.value} (line ${l.line})`).toBe(true);
      const fallback = field(l.name).safeParse(undefined);
      const hasDefault = fallback.success && fallback.data !== undefined && !(Array.isArray(fallback.data) && fallback.data.length === 0);
      if (hasDefault && parsed.success) expect(parsed.data, `${l.name} default (line ${l.line})`).toEqual(fallback.data);
    }
    const urlsAndPorts = lines.filter((l) => /_URL$|_PORT$/.test(l.name));
    expect(urlsAndPorts.map((l) => l.name).sort()).toEqual(names.filter((n) => /_URL$|_PORT$/.test(n)).sort());
    expect(urlsAndPorts.every((l) => l.value !== '')).toBe(true);
  });

  it('leaves only the production secrets to fill in, and parses once they are', () => {
    const active = lines.filter((l) => !l.commented);
    expect(active.map((l) => l.name).sort()).toEqual(['INTROSPECTION_CLIENTS', 'SECRET_ENCRYPTION_KEY']);
    expect(active.every((l) => l.value === '')).toBe(true);
    const all = Object.fromEntries(lines.filter((l) => l.value !== '').map((l) => [l.name, l.value]));
    const parsed = configSchema.safeParse({ ...all, ...placeholders, ADMIN_PASSWORD: 'a-long-enough-admin-passphrase', NODE_ENV: 'production' });
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    const mailer = mailerConfigSchema.safeParse({ ...all, NODE_ENV: 'production' });
    expect(mailer.success ? [] : mailer.error.issues).toEqual([]);
  });
});
