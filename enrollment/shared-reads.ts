/**
 * Registry reads shared by the items of one request (a bulk batch): each is made once, by the
 * first item that needs it, and the others wait for the same answer. A change of what was read
 * applies from the next request on. A failed read is not kept: the next item reads again.
 */
import type { Station } from '../registry/port.js';

export class SharedReads {
  /** A manufacturer's allowed certificate profiles. */
  readonly profiles = new Map<string, Promise<string[] | undefined>>();
  /** The calling station's record (its quota setting). */
  readonly stations = new Map<string, Promise<Station>>();
}

/** `read()` once per key of `cache`; without a cache, every call reads. */
export function readOnce<V>(cache: Map<string, Promise<V>> | undefined, key: string, read: () => Promise<V>): Promise<V> {
  if (cache === undefined) return read();
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = read();
    cache.set(key, pending);
    pending.catch(() => cache.delete(key));
  }
  return pending;
}
