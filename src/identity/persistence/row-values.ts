/**
 * Raw queries (em.execute) return timestamps as strings: MikroORM installs its own pg type
 * parsers. Everything that reads a timestamp from a raw row goes through here.
 */
export function msOf(value: Date | string | number): number {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`unparseable timestamp from the database: ${value}`);
  return ms;
}

export function msOfNullable(value: Date | string | number | null | undefined): number | null {
  return value === null || value === undefined ? null : msOf(value);
}
