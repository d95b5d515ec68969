const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids are uuids; anything else names nothing, so callers answer 404 for it, never 400. */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}
