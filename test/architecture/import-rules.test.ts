import { describe, expect, it } from 'vitest';
import { folderCycles } from './folder-cycles.js';
import { checkImportRules, COMPOSITION_ROOT, placeOf } from './import-rules.js';
import { importSpecifiers, repoRoot, resolveImport, type SourceGraph } from './source-graph.js';

/** An in-memory graph: `to` starting with `src/` is a file of the repository, anything else a package. */
function graphOf(...imports: [from: string, to: string][]): SourceGraph {
  const files = [...new Set(imports.flatMap(([from, to]) => (to.startsWith('src/') ? [from, to] : [from])))];
  return {
    files,
    edges: imports.map(([from, to]) => ({
      from,
      specifier: to,
      target: to.startsWith('src/') ? { kind: 'module' as const, path: to } : { kind: 'package' as const, name: to },
    })),
  };
}

const id = (folder: string, file: string) => `src/identity/${folder}/${file}`;
const GEN = 'src/gen/identity/v1/identity_pb.ts';
// An events module that decodes protobuf itself, and one that does not.
const EVENTS_DECODER = id('events', 'local-publisher.ts');
const EVENTS_SUBJECTS = id('events', 'subjects.ts');
const protobufInEvents: [string, string][] = [
  [EVENTS_DECODER, GEN],
  [id('events', 'security-alert.ts'), '@bufbuild/protobuf'],
  [id('events', 'outbox-store.ts'), '@mikro-orm/core'],
];

/** Rule ids that flag the one import `from -> to`. */
function flaggedBy(from: string, to: string): string[] {
  const graph = graphOf(...protobufInEvents, [from, to]);
  return checkImportRules(graph)
    .filter((v) => v.from === from && (v.to === to || v.specifier === to))
    .map((v) => v.rule.split(' ')[0]!);
}

describe('import rules flag the forbidden arrow and pass the allowed one', () => {
  it.each([
    // L1: domain folders
    ['L1 domain -> src/gen', id('account', 'user-view.ts'), GEN, ['L1']],
    ['L1 domain -> rpc/', id('mfa', 'mfa-service.ts'), id('rpc', 'handlers/convert.ts'), ['L1', 'L5']],
    ['L1 domain -> app.ts', id('session', 'session-service.ts'), 'src/identity/app.ts', ['L1']],
    ['L1 domain -> main.ts', id('abuse', 'limits.ts'), 'src/identity/main.ts', ['L1']],
    ['L1 domain -> @grpc/*', id('token', 'access-token.ts'), '@grpc/grpc-js', ['L1']],
    ['L1 domain -> @connectrpc/*', id('admin', 'admin-service.ts'), '@connectrpc/connect', ['L1']],
    ['L1 domain -> @bufbuild/*', id('introspection', 'x.ts'), '@bufbuild/protobuf', ['L1']],
    ['L1 domain -> events protobuf internal', id('signin', 'login.ts'), EVENTS_DECODER, ['L1']],
    ['L1 allows domain -> events entry point', id('account', 'password-attempts.ts'), id('events', 'security-alert.ts'), []],
    ['L1 allows domain -> events/outbox-store', id('session', 'session-service.ts'), id('events', 'outbox-store.ts'), []],
    ['L1 allows domain -> events module without protobuf', id('password', 'x.ts'), EVENTS_SUBJECTS, []],
    ['L1 allows domain -> persistence/', id('account', 'user-store.ts'), id('persistence', 'row-values.ts'), []],
    ['L1 allows domain -> shared/', id('mfa', 'totp.ts'), 'src/shared/clock.ts', []],
    ['L1 allows domain -> other domain', id('signin', 'login.ts'), id('account', 'user-store.ts'), []],
    ['L1 allows domain -> library', id('account', 'user.entity.ts'), '@mikro-orm/core', []],
    // L2: ground level
    ['L2 persistence -> domain entity', id('persistence', 'database.ts'), id('account', 'user.entity.ts'), ['L2']],
    ['L2 persistence -> events', id('persistence', 'database.ts'), id('events', 'outbox.entity.ts'), ['L2']],
    ['L2 persistence -> src/gen', id('persistence', 'embedded/x.ts'), GEN, ['L2']],
    ['L2 persistence -> composition root', id('persistence', 'migrate-cli.ts'), 'src/identity/app.ts', ['L2']],
    ['L2 allows persistence -> secrets (ground to ground)', id('persistence', 'embedded/embedded-postgres.ts'), id('secrets', 'local-secrets.ts'), []],
    ['L2 process -> domain', id('process', 'listen-ports.ts'), id('account', 'user-store.ts'), ['L2']],
    ['L2 secrets -> events', id('secrets', 'local-secrets.ts'), id('events', 'relay.ts'), ['L2']],
    ['L2 allows persistence -> persistence', id('persistence', 'database.ts'), id('persistence', 'embedded/embedded-postgres.ts'), []],
    ['L2 allows persistence -> shared', id('persistence', 'database.ts'), 'src/shared/config.ts', []],
    ['L2 allows secrets -> library', id('secrets', 'local-secrets.ts'), 'node:fs', []],
    // L3: events
    ['L3 events -> domain', id('events', 'relay.ts'), id('session', 'session-store.ts'), ['L3']],
    ['L3 events -> rpc', id('events', 'security-alert.ts'), id('rpc', 'handlers/convert.ts'), ['L3', 'L5']],
    ['L3 allows events -> src/gen', id('events', 'event-messages.ts'), GEN, []],
    ['L3 allows events -> persistence', id('events', 'outbox-store.ts'), id('persistence', 'row-values.ts'), []],
    // L4: shared
    ['L4 shared -> identity', 'src/shared/config.ts', id('token', 'key-store.ts'), ['L4']],
    ['L4 shared -> composition root', 'src/shared/logger.ts', 'src/identity/app.ts', ['L4']],
    ['L4 shared -> src/gen', 'src/shared/errors.ts', GEN, ['L4']],
    ['L4 allows shared -> shared', 'src/shared/errors.ts', 'src/shared/error-catalogue.ts', []],
    ['L4 allows shared -> library', 'src/shared/logger.ts', 'pino', []],
    // L5: rpc
    ['L5 events -> rpc', id('events', 'relay.ts'), id('rpc', 'pipeline/error-map.ts'), ['L3', 'L5']],
    ['L5 persistence -> rpc', id('persistence', 'database.ts'), id('rpc', 'x.ts'), ['L2', 'L5']],
    ['L5 process -> rpc', id('process', 'listen-ports.ts'), id('rpc', 'transports/grpc-server.ts'), ['L2', 'L5']],
    ['L5 allows app.ts -> rpc', 'src/identity/app.ts', id('rpc', 'transports/grpc-server.ts'), []],
    ['L5 allows main.ts -> rpc', 'src/identity/main.ts', id('rpc', 'transports/ops-server.ts'), []],
    ['L5 allows rpc -> rpc', id('rpc', 'handlers/auth-handlers.ts'), id('rpc', 'pipeline/error-map.ts'), []],
    ['L5 allows rpc -> domain', id('rpc', 'handlers/auth-handlers.ts'), id('signin', 'login.ts'), []],
    // L8: mailer and sdk
    ['L8 mailer -> identity', 'src/mailer/send.ts', id('account', 'email.ts'), ['L8']],
    ['L8 allows mailer -> src/gen', 'src/mailer/send.ts', GEN, []],
    ['L8 sdk -> shared', 'src/sdk/client.ts', 'src/shared/errors.ts', ['L8']],
    ['L8 sdk -> identity', 'src/sdk/client.ts', id('token', 'strict-jwt.ts'), ['L8']],
    ['L8 allows sdk -> src/gen', 'src/sdk/client.ts', GEN, []],
    ['L8 allows sdk -> library', 'src/sdk/client.ts', '@connectrpc/connect', []],
    // L9: the mailer's one entry point, for the composition root only
    ['L9 allows app.ts -> mailer entry point', 'src/identity/app.ts', 'src/mailer/in-process.ts', []],
    ['L9 app.ts -> other mailer module', 'src/identity/app.ts', 'src/mailer/transport.ts', ['L9']],
    ['L9 main.ts -> mailer process', 'src/identity/main.ts', 'src/mailer/mailer.ts', ['L9']],
    ['L9 events -> mailer entry point', id('events', 'local-publisher.ts'), 'src/mailer/in-process.ts', ['L9']],
    ['L9 domain -> mailer', id('recovery', 'password-reset.ts'), 'src/mailer/render/password-reset.ts', ['L9']],
    ['L9 shared -> mailer', 'src/shared/config.ts', 'src/mailer/in-process.ts', ['L9']],
    ['L9 sdk -> mailer', 'src/sdk/client.ts', 'src/mailer/in-process.ts', ['L8', 'L9']],
    ['L9 allows mailer -> mailer', 'src/mailer/in-process.ts', 'src/mailer/transport.ts', []],
    // src/gen stands alone
    ['gen -> shared', 'src/gen/identity/v1/x_pb.ts', 'src/shared/errors.ts', ['gen']],
    ['gen allows gen -> gen', 'src/gen/identity/v1/x_pb.ts', 'src/gen/google/rpc/status_pb.ts', []],
  ])('%s', (_name, from, to, expected) => {
    expect(flaggedBy(from, to).sort()).toEqual([...expected].sort());
  });

  it('names the rule, the importing file and the imported module', () => {
    const [v] = checkImportRules(graphOf([id('account', 'a.ts'), id('rpc', 'b.ts')]));
    expect(v).toMatchObject({ from: id('account', 'a.ts'), to: id('rpc', 'b.ts') });
    expect(v!.rule).toMatch(/^L1 /);
    expect(v!.message).not.toBe('');
  });
});

describe('L6: folder cycles', () => {
  it('flags two folders importing each other, with a file import for each arrow', () => {
    const cycles = folderCycles(
      graphOf([id('account', 'a.ts'), id('session', 's.ts')], [id('session', 's.ts'), id('account', 'b.ts')]),
    );
    expect(cycles).toEqual([
      {
        folders: ['account', 'session'],
        shortest: ['account', 'session', 'account'],
        arrows: [
          { from: 'account', to: 'session', example: `${id('account', 'a.ts')} imports ${id('session', 's.ts')}` },
          { from: 'session', to: 'account', example: `${id('session', 's.ts')} imports ${id('account', 'b.ts')}` },
        ],
      },
    ]);
  });

  it('flags a longer cycle and the composition root taking part in one', () => {
    const three = folderCycles(
      graphOf([id('signin', 'a.ts'), id('mfa', 'b.ts')], [id('mfa', 'b.ts'), id('session', 'c.ts')], [id('session', 'c.ts'), id('signin', 'd.ts')]),
    );
    expect(three.map((c) => [c.folders, c.shortest])).toEqual([[['mfa', 'session', 'signin'], ['mfa', 'session', 'signin', 'mfa']]]);
    const viaRoot = folderCycles(graphOf(['src/identity/app.ts', id('token', 'a.ts')], [id('token', 'a.ts'), 'src/identity/main.ts']));
    expect(viaRoot.map((c) => c.folders)).toEqual([[COMPOSITION_ROOT, 'token'].sort()]);
  });

  it('passes one-way arrows and imports inside one folder', () => {
    const graph = graphOf(
      [id('signin', 'a.ts'), id('account', 'b.ts')],
      [id('signin', 'a.ts'), id('session', 'c.ts')],
      [id('session', 'c.ts'), id('account', 'b.ts')],
      [id('account', 'b.ts'), id('account', 'sub/d.ts')],
      [id('account', 'sub/d.ts'), id('account', 'b.ts')],
      [id('account', 'b.ts'), 'src/shared/clock.ts'],
      ['src/shared/clock.ts', id('account', 'b.ts')],
    );
    expect(folderCycles(graph)).toEqual([]);
  });
});

describe('reading the import graph', () => {
  it('places files: first folder under src/identity, files directly in it are the composition root', () => {
    expect(placeOf('src/identity/rpc/handlers/convert.ts')).toEqual({ area: 'identity', folder: 'rpc' });
    expect(placeOf('src/identity/app.ts')).toEqual({ area: 'identity', folder: COMPOSITION_ROOT });
    expect(placeOf('src/shared/config.ts')).toEqual({ area: 'shared' });
    expect(placeOf('src/gen/identity/v1/x_pb.ts')).toEqual({ area: 'gen' });
  });

  it('counts type-only imports, re-exports and dynamic imports like value imports', () => {
    const text = [
      "import type { A } from './a.js';",
      "import { type B } from './b.js';",
      "export type { C } from './c.js';",
      "export * from './d.js';",
      "const e = await import('./e.js');",
    ].join('\n');
    expect(importSpecifiers(text)).toEqual(['./a.js', './b.js', './c.js', './d.js', './e.js']);
  });

  it('resolves `.js` specifiers to the `.ts` file and reports the ones that resolve to nothing', () => {
    expect(resolveImport(repoRoot, 'src/identity/app.ts', './main.js')).toEqual({ kind: 'module', path: 'src/identity/main.ts' });
    expect(resolveImport(repoRoot, 'src/identity/app.ts', './no-such-file.js')).toEqual({
      kind: 'unresolved',
      path: 'src/identity/no-such-file.js',
    });
    expect(resolveImport(repoRoot, 'src/identity/app.ts', '@bufbuild/protobuf/wkt')).toEqual({ kind: 'package', name: '@bufbuild/protobuf' });
  });
});
