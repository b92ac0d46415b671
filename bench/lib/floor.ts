import { fileURLToPath } from 'node:url';
import { startChildServer, type ChildServer } from './child-server.js';

/** A floor server (bench/floors/*) in a process of its own, started the way the service is. */
export type FloorProcess = ChildServer;

const FLOORS = {
  grpc: fileURLToPath(new URL('../floors/introspect-grpc-floor.ts', import.meta.url)),
  connect: fileURLToPath(new URL('../floors/introspect-connect-floor.ts', import.meta.url)),
} as const;

export function startFloor(kind: keyof typeof FLOORS, introspectResponse: Uint8Array): Promise<FloorProcess> {
  return startChildServer(`${kind} floor`, FLOORS[kind], [Buffer.from(introspectResponse).toString('hex')]);
}
