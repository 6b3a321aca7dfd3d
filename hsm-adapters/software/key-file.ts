/**
 * Writing a key file so that it is either absent or complete and never replaces another key:
 * temp file (0600, exclusive create) → fsync → hard link to the final name → fsync the directory.
 * `link` fails with EEXIST where `rename` would silently overwrite, so two processes running
 * `kakuin init` at once cannot both "win" and leave a CA key that differs from the one recorded.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

export type WriteOutcome = 'written' | 'exists';

/** File systems without hard links (FAT, some network mounts) answer one of these. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

export async function writeNewFileAtomically(file: string, contents: string): Promise<WriteOutcome> {
  const directory = path.dirname(file);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  // Starts with "." so it can never collide with a key name (those start with a letter or digit).
  const temp = path.join(directory, `.${path.basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(contents, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    const outcome = await linkNoClobber(temp, file);
    if (outcome === 'written') await syncDirectory(directory);
    return outcome;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * Replaces `file` (which must exist) by `contents` in one step: temp file → fsync → rename over it
 * → fsync the directory. For re-encrypting a key in place (`kakuin ca rewrap-keys`): a crash leaves
 * the old file or the new one, both holding the same key.
 */
export async function replaceFileAtomically(file: string, contents: string): Promise<void> {
  const directory = path.dirname(file);
  const temp = path.join(directory, `.${path.basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(contents, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    await syncDirectory(directory);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function linkNoClobber(temp: string, file: string): Promise<WriteOutcome> {
  try {
    await link(temp, file);
    return 'written';
  } catch (e) {
    const code = errorCode(e);
    if (code === 'EEXIST') return 'exists';
    if (code === undefined || !NO_HARD_LINKS.has(code)) throw e;
  }
  // Without hard links: check, then rename. Only a concurrent writer in the gap between the two
  // could be overwritten, which is as good as such a file system allows.
  if (await fileExists(file)) return 'exists';
  await rename(temp, file);
  return 'written';
}

/** Makes the new directory entry durable (POSIX: fsync of the file does not cover its name). */
async function syncDirectory(directory: string): Promise<void> {
  let handle;
  try {
    handle = await open(directory, 'r');
    await handle.sync();
  } catch {
    // Some platforms cannot open or fsync a directory; the file itself is already synced.
  } finally {
    await handle?.close();
  }
}

export async function fileExists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return false;
    throw e;
  }
}

export function errorCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string'
    ? (e as { code: string }).code
    : undefined;
}
