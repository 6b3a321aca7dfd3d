/**
 * One paging convention for every list route: `?limit=&after=<cursor>` in, `{<items>, next}` out.
 * `next` is the cursor to pass as `after` for the following page and is absent on the last page,
 * so a client that follows `next` sees every item once and knows when it has seen them all.
 */
import { z } from 'zod';

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

/** The query members of a list route; spread into its strict query schema. */
export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional().describe(`items per page, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})`),
  after: z.string().min(1).max(256).optional().describe('the `next` of the previous page'),
};

export interface Page<T> {
  items: T[];
  next?: string;
}

/**
 * One page from a store that answers "at most n items after cursor c" in a stable order. It asks
 * for one item more than the page holds to know whether another page follows (a second small read
 * only where the store's own limit stops at MAX_PAGE).
 */
export async function readPage<T>(
  fetch: (after: string | undefined, limit: number) => Promise<T[]>, cursorOf: (item: T) => string,
  query: { limit?: number; after?: string },
): Promise<Page<T>> {
  const limit = query.limit ?? DEFAULT_PAGE;
  const rows = await fetch(query.after, Math.min(limit + 1, MAX_PAGE));
  if (rows.length > limit) return { items: rows.slice(0, limit), next: cursorOf(rows[limit - 1]) };
  if (rows.length === limit && limit === MAX_PAGE) {
    const more = await fetch(cursorOf(rows[limit - 1]), 1);
    if (more.length > 0) return { items: rows, next: cursorOf(rows[limit - 1]) };
  }
  return { items: rows };
}

/** `{<name>: items, next?}` as the routes answer. */
export function pageJson<T, J>(name: string, page: Page<T>, toJson: (item: T) => J): Record<string, unknown> {
  return { [name]: page.items.map(toJson), ...(page.next !== undefined && { next: page.next }) };
}
