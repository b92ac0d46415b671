import net from 'node:net';

export interface ListenPort {
  /** The variable that set it, named in the error. */
  variable: string;
  host: string;
  /** 0 (any free port) is not checked. */
  port: number;
}

/** A listener cannot have its port (usually: taken); the message is the whole story, no stack needed. */
export class ListenPortError extends Error {
  constructor(
    readonly variable: string,
    readonly port: number,
    readonly host: string,
    reason: string,
  ) {
    super(`${variable} ${port} on ${host} ${reason}`);
    this.name = 'ListenPortError';
  }
}

/**
 * Binds every fixed port once, all at the same time, and lets go again. Run before anything
 * slow (the embedded database) starts, so a busy port is reported at once and by its variable,
 * not after start-up as a bare EADDRINUSE. Two variables sharing a port are caught as well.
 */
export async function assertPortsFree(ports: readonly ListenPort[]): Promise<void> {
  const held: net.Server[] = [];
  try {
    for (const p of ports) {
      if (p.port === 0) continue;
      held.push(await bind(p));
    }
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

function bind(p: ListenPort): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      const reason =
        err.code === 'EADDRINUSE'
          ? 'is already in use'
          : err.code === 'EACCES'
            ? 'needs privileges this process does not have'
            : err.code === 'EADDRNOTAVAIL'
              ? 'cannot be bound: the address is not one of this host'
              : `cannot be bound (${err.code ?? err.message})`;
      reject(new ListenPortError(p.variable, p.port, p.host, reason));
    });
    server.listen({ port: p.port, host: p.host, exclusive: true }, () => resolve(server));
  });
}
