import { knex } from '@mikro-orm/postgresql';

/**
 * Index and sequential scans PostgreSQL counted on one table: how many times the service really
 * read it. Backends publish their counters lazily (at most once a second while busy, and at the
 * latest when they exit), so read this after the service has closed its pool; the value is polled
 * until it stops moving.
 */
export async function tableScans(databaseUrl: string, table: string, settleMs = 3000): Promise<number> {
  const db = knex({ client: 'pg', connection: { connectionString: databaseUrl, connectionTimeoutMillis: 3000 }, pool: { min: 0, max: 1 } });
  try {
    const read = async () => {
      const res = (await db.raw(`select coalesce(idx_scan, 0) + coalesce(seq_scan, 0) as n from pg_stat_user_tables where relname = ?`, [table])) as {
        rows: { n: string }[];
      };
      return Number(res.rows[0]?.n ?? 0);
    };
    const deadline = Date.now() + settleMs;
    let last = await read();
    for (;;) {
      await new Promise((r) => setTimeout(r, 300));
      const now = await read();
      if (now === last || Date.now() > deadline) return now;
      last = now;
    }
  } finally {
    await db.destroy();
  }
}
