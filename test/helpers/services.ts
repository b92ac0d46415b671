import { describe, inject } from 'vitest';

export interface ServiceUrls {
  /** A superuser URL on a server where tests may create and drop databases. */
  postgresAdminUrl: string;
  /** Undefined when Redis was unreachable at the start of the run (outside CI). */
  redisUrl?: string;
  /** Undefined when NATS with JetStream was unreachable at the start of the run (outside CI). */
  natsUrl?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceUrls;
  }
}

/** The backing services test/helpers/global-setup.ts found for this run. */
export function services(): ServiceUrls {
  return inject('services');
}

type SuiteFn = () => void;

function describeWhen(missing: string[], name: string, fn: SuiteFn): void {
  if (missing.length === 0) describe(name, fn);
  else describe.skip(`${name} [skipped: ${missing.join(' and ')} unreachable]`, fn);
}

export function describeWithRedis(name: string, fn: SuiteFn): void {
  describeWhen(services().redisUrl === undefined ? ['Redis'] : [], name, fn);
}

export function describeWithNats(name: string, fn: SuiteFn): void {
  describeWhen(services().natsUrl === undefined ? ['NATS'] : [], name, fn);
}

export function describeWithRedisAndNats(name: string, fn: SuiteFn): void {
  const s = services();
  const missing = [...(s.redisUrl === undefined ? ['Redis'] : []), ...(s.natsUrl === undefined ? ['NATS'] : [])];
  describeWhen(missing, name, fn);
}
