/**
 * A keyset page from up to `limit + 1` rows read after a position: the extra row only says that more
 * follow, and `next` is then the cursor after the last row shown.
 */
export function keysetPage<T>(
  rows: T[],
  limit: number,
  cursorAfter: (last: T) => string,
): { shown: T[]; next?: { iterator: string } } {
  if (rows.length <= limit) return { shown: rows };
  const shown = rows.slice(0, limit);
  return { shown, next: { iterator: cursorAfter(shown[limit - 1]!) } };
}
