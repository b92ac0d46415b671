import type { MikroORM } from '@mikro-orm/postgresql';

/**
 * A statement run as a named prepared statement on a pooled connection: PostgreSQL parses and
 * plans it once per connection instead of on every call. For the statements of the hottest
 * paths (a refresh rotation, the batched user-state read), where parsing and planning a
 * several-CTE statement is a good part of the database's work per call. The text uses $1..$n and
 * must be the same for a given name every time.
 *
 * It goes through the same knex pool as every other query, so the pool's limits, timeouts and
 * retirement of timed-out connections apply; errors are pg's own (databaseOutage() reads them).
 */
export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
}

interface PgConnection {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

interface KnexClient {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(conn: PgConnection): Promise<unknown>;
}

export function prepared(name: string, text: string): PreparedStatement {
  return { name, text };
}

export async function runPrepared<T>(orm: MikroORM, statement: PreparedStatement, values: unknown[]): Promise<T[]> {
  const client = orm.em.getConnection().getKnex().client as unknown as KnexClient;
  const conn = await client.acquireConnection();
  try {
    const result = await conn.query({ name: statement.name, text: statement.text, values });
    return result.rows as T[];
  } finally {
    await client.releaseConnection(conn);
  }
}
