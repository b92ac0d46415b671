import type { ImportEdge, SourceGraph } from './source-graph.js';

/** Files directly in src/identity (app.ts, main.ts, ...) are the composition root. */
export const COMPOSITION_ROOT = '(composition root)';

/** Where a file of src/ sits: its area, and for src/identity the first folder under it. */
export type Place =
  | { area: 'identity'; folder: string }
  | { area: 'shared' | 'gen' | 'mailer' | 'sdk' | 'elsewhere' };

/** The far end of an import, as the rules see it. */
export type Endpoint =
  | { kind: 'module'; path: string; place: Place; speaksProtobuf: boolean }
  | { kind: 'package'; name: string };

export interface ImportRule {
  id: string;
  name: string;
  /** Why the arrow is forbidden and where the code should go instead. */
  message: string;
  appliesTo: (importer: Place) => boolean;
  forbids: (target: Endpoint, importer: Place) => boolean;
}

export interface ImportViolation {
  rule: string;
  from: string;
  to: string;
  specifier: string;
  message: string;
}

export const DOMAIN_FOLDERS = ['account', 'signin', 'session', 'token', 'mfa', 'admin', 'introspection', 'password', 'abuse', 'recovery', 'verification'];

/**
 * Folders that sit on the ground: they import shared/, each other and libraries only (the
 * embedded database keeps its generated password with the other local secrets). Cycles among
 * them are L6's to catch.
 */
export const GROUND_FOLDERS = ['persistence', 'secrets', 'process'];

/**
 * The events modules a domain folder may call to enqueue an event. Their builders hand back
 * encoded bytes, so no protobuf type crosses into the domain; every other events module that
 * touches protobuf (local decoding, the revocation bus, ...) is an encoding internal.
 */
export const EVENTS_ENTRY_POINTS = [
  'src/identity/events/outbox-store.ts',
  'src/identity/events/security-alert.ts',
  'src/identity/events/event-messages.ts',
];

/** The one mailer module the identity composition root may import: the in-process mailer. */
export const MAILER_ENTRY_POINT = 'src/mailer/in-process.ts';

const TRANSPORT_PACKAGES = ['@grpc/', '@connectrpc/', '@bufbuild/'];

export function placeOf(file: string): Place {
  const identity = /^src\/identity\/(.+)$/.exec(file);
  if (identity) {
    const rest = identity[1]!;
    return { area: 'identity', folder: rest.includes('/') ? rest.slice(0, rest.indexOf('/')) : COMPOSITION_ROOT };
  }
  const area = /^src\/(shared|gen|mailer|sdk)\//.exec(file)?.[1] as 'shared' | 'gen' | 'mailer' | 'sdk' | undefined;
  return { area: area ?? 'elsewhere' };
}

const inIdentity = (p: Place, ...folders: string[]) => p.area === 'identity' && folders.includes(p.folder);
const moduleIn = (t: Endpoint, test: (p: Place) => boolean) => t.kind === 'module' && test(t.place);
const isPackage = (t: Endpoint, prefixes: string[]) => t.kind === 'package' && prefixes.some((p) => t.name.startsWith(p));
const isDomain = (p: Place) => inIdentity(p, ...DOMAIN_FOLDERS);
const isRpc = (p: Place) => inIdentity(p, 'rpc');
const isRoot = (p: Place) => inIdentity(p, COMPOSITION_ROOT);
const isEventsEncodingInternal = (t: Endpoint) =>
  t.kind === 'module' && inIdentity(t.place, 'events') && t.speaksProtobuf && !EVENTS_ENTRY_POINTS.includes(t.path);
const sameFolder = (a: Place, b: Place) =>
  a.area === b.area && (a.area !== 'identity' || (b.area === 'identity' && a.folder === b.folder));

export const IMPORT_RULES: ImportRule[] = [
  {
    id: 'L1',
    name: 'domain folders know nothing of transports, generated code or the composition root',
    message:
      'domain code speaks in domain types: protobuf conversion belongs in rpc/handlers/convert, wiring in app.ts; ' +
      `from events/ import only ${EVENTS_ENTRY_POINTS.map((p) => p.slice('src/identity/'.length)).join(', ')}`,
    appliesTo: isDomain,
    forbids: (t) =>
      moduleIn(t, (p) => p.area === 'gen' || isRpc(p) || isRoot(p)) || isEventsEncodingInternal(t) || isPackage(t, TRANSPORT_PACKAGES),
  },
  {
    id: 'L2',
    name: `${GROUND_FOLDERS.join('/, ')}/ import only shared/, each other and libraries`,
    message: 'the ground level is handed what it needs (app.ts passes persistence its entity list) instead of reaching up',
    appliesTo: (p) => inIdentity(p, ...GROUND_FOLDERS),
    forbids: (t, importer) => moduleIn(t, (p) => p.area !== 'shared' && !sameFolder(p, importer) && !inIdentity(p, ...GROUND_FOLDERS)),
  },
  {
    id: 'L3',
    name: 'events/ imports no domain folder and not rpc/',
    message: 'events carry what the domain hands them; the domain calls events, never the other way round',
    appliesTo: (p) => inIdentity(p, 'events'),
    forbids: (t) => moduleIn(t, (p) => isDomain(p) || isRpc(p)),
  },
  {
    id: 'L4',
    name: 'shared/ imports nothing from src/identity or src/gen',
    message: 'shared/ is the base every area stands on; move the needed piece into shared/ or pass it in',
    appliesTo: (p) => p.area === 'shared',
    forbids: (t) => moduleIn(t, (p) => p.area === 'identity' || p.area === 'gen'),
  },
  {
    id: 'L5',
    name: 'only the composition root imports rpc/',
    message: 'rpc/ is the outermost layer: app.ts/main.ts wire it, nothing else depends on it',
    appliesTo: (p) => !isRoot(p) && !isRpc(p),
    forbids: (t) => moduleIn(t, isRpc),
  },
  {
    id: 'L8',
    name: 'src/mailer never imports src/identity',
    message: 'the mailer is its own service: it learns about identity through src/gen messages',
    appliesTo: (p) => p.area === 'mailer',
    forbids: (t) => moduleIn(t, (p) => p.area === 'identity'),
  },
  {
    id: 'L9',
    name: `only the composition root imports src/mailer, and only ${MAILER_ENTRY_POINT}`,
    message:
      'the mailer is its own service; without NATS app.ts runs it in-process through its one entry point and hands it to events/ as a mail sink',
    appliesTo: (p) => p.area !== 'mailer',
    forbids: (t, importer) => moduleIn(t, (p) => p.area === 'mailer') && !(isRoot(importer) && t.kind === 'module' && t.path === MAILER_ENTRY_POINT),
  },
  {
    id: 'L8',
    name: 'src/sdk imports only src/gen and libraries',
    message: 'the SDK ships to other services: it may depend on the contract (src/gen), not on the service internals',
    appliesTo: (p) => p.area === 'sdk',
    forbids: (t) => moduleIn(t, (p) => p.area !== 'gen' && p.area !== 'sdk'),
  },
  {
    id: 'gen',
    name: 'src/gen imports nothing else from src/',
    message: 'generated code is regenerated by `npm run generate`; it must stand alone',
    appliesTo: (p) => p.area === 'gen',
    forbids: (t) => moduleIn(t, (p) => p.area !== 'gen'),
  },
];

/** The module files that import generated protobuf code or the protobuf runtime themselves. */
function protobufSpeakers(graph: SourceGraph): Set<string> {
  const speakers = new Set<string>();
  for (const e of graph.edges) {
    const t = e.target;
    if ((t.kind === 'module' && placeOf(t.path).area === 'gen') || (t.kind === 'package' && t.name.startsWith('@bufbuild/'))) {
      speakers.add(e.from);
    }
  }
  return speakers;
}

export function endpointOf(edge: ImportEdge, speakers: Set<string>): Endpoint | undefined {
  const t = edge.target;
  if (t.kind === 'package') return { kind: 'package', name: t.name };
  if (t.kind === 'module') return { kind: 'module', path: t.path, place: placeOf(t.path), speaksProtobuf: speakers.has(t.path) };
  return undefined;
}

export function checkImportRules(graph: SourceGraph, rules: ImportRule[] = IMPORT_RULES): ImportViolation[] {
  const speakers = protobufSpeakers(graph);
  const violations: ImportViolation[] = [];
  for (const edge of graph.edges) {
    const target = endpointOf(edge, speakers);
    if (!target) continue;
    const importer = placeOf(edge.from);
    for (const rule of rules) {
      if (rule.appliesTo(importer) && rule.forbids(target, importer)) {
        violations.push({
          rule: `${rule.id} ${rule.name}`,
          from: edge.from,
          to: target.kind === 'module' ? target.path : target.name,
          specifier: edge.specifier,
          message: rule.message,
        });
      }
    }
  }
  return violations;
}

export function unresolvedImports(graph: SourceGraph): string[] {
  return graph.edges.filter((e) => e.target.kind === 'unresolved').map((e) => `${e.from}: '${e.specifier}' resolves to no file`);
}

export function describeViolation(v: ImportViolation): string {
  return `[${v.rule}] ${v.from} imports ${v.to} ('${v.specifier}'): ${v.message}`;
}
