/**
 * `kakuin backup --out DIR` and `kakuin restore --from DIR [--force]`.
 *
 * A backup is a directory: an online SQLite copy of the registry (consistent while the service
 * runs and writes, registry/sqlite/backup.ts), the key store files exactly as they are on disk
 * (encrypted PKCS#8: never decrypted here), the CA and TLS certificate files, the pepper (without
 * it no admin token, station API key or legacy secret verifies), the config file if there is one,
 * and `manifest.json` (versions, latest feed seq, time, SHA-256 of every file). The registry is
 * copied first and the key files after: keys are only ever added, so every key the copied
 * registry names is in the backup.
 *
 * What is deliberately not in it is printed: the key store passphrase when it lives outside the
 * data directory (KAKUIN_KEY_PASSPHRASE or a file elsewhere), keys in a PKCS#11 token, an offline root.
 *
 * The manifest's hashes detect a damaged or altered file; they do not authenticate the backup
 * (whoever can rewrite files can rewrite the manifest): keep backups where only operators write.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { KakuinError } from '../errors/index.js';
import { backupSqliteRegistry, checkRegistryCopy, openSqliteRegistry } from '../registry/sqlite/index.js';
import type { KakuinConfig } from './config.js';
import { OFFLINE_ROOT_KEY_URI } from './offline-root.js';
import { ensurePrivateDir, writePrivateFile } from './secrets.js';

export const BACKUP_FORMAT = 'kakuin-backup';
export const BACKUP_VERSION = 1;
const MANIFEST = 'manifest.json';

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  version: number;
  kakuinVersion: string;
  createdAt: string;
  storage: 'sqlite';
  schemaVersion: number;
  latestFeedSeq: number;
  /** Whether `config/kakuin.json` is the data directory's own config file (restored there). */
  configFile?: { originalPath: string; inDataDir: boolean };
  files: { path: string; bytes: number; sha256: string }[];
  /** What the backup does not hold and the operator must keep elsewhere. */
  keptSeparately: string[];
}

function kakuinVersion(): string {
  try {
    return String(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
  } catch {
    return 'unknown';
  }
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Regular files under `dir`, as paths relative to it ('/'-separated), sorted. */
function listFiles(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    // Files being written atomically (`<name>.<pid>.tmp`, `.<name>.<hex>.tmp`) are not state yet.
    if (entry.name.endsWith('.tmp')) continue;
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listFiles(path.join(dir, entry.name), rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out.sort();
}

function isEmptyOrMissing(dir: string): boolean {
  return !existsSync(dir) || (statSync(dir).isDirectory() && readdirSync(dir).length === 0);
}

/** The locations a backup's folders come from and go back to. */
function layout(config: Readonly<KakuinConfig>) {
  return {
    registry: config.storage.path,
    keys: config.keys.directory,
    ca: path.join(config.dataDir, 'ca'),
    tls: path.join(config.dataDir, 'tls'),
    pepper: path.join(config.secrets.directory, 'pepper'),
    adminToken: path.join(config.secrets.directory, 'admin-token'),
    passphraseFile: config.keys.passphraseFile,
  };
}

export async function backupCommand(
  config: Readonly<KakuinConfig>, env: Record<string, string | undefined>, out: string | undefined, print: (line: string) => void,
): Promise<BackupManifest> {
  if (!out) throw new KakuinError('KAKUIN_E_USAGE', 'kakuin backup --out DIR');
  const outDir = path.resolve(out);
  if (!isEmptyOrMissing(outDir)) throw new KakuinError('KAKUIN_E_USAGE', `the backup directory ${outDir} must be new or empty`);
  if (isInside(config.dataDir, outDir)) throw new KakuinError('KAKUIN_E_USAGE', 'the backup directory must be outside the data directory');
  if ((config.storage.type as string) !== 'sqlite') {
    throw new KakuinError('KAKUIN_E_USAGE', `kakuin backup copies the SQLite registry; the ${config.storage.type} registry is backed up with its own tools (README "Backup and restore")`);
  }
  const where = layout(config);
  if (!existsSync(where.registry)) throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED', `no registry at ${where.registry}: nothing to back up`);
  ensurePrivateDir(outDir);

  // 1. The registry, online. Everything after it is a superset of what it names.
  ensurePrivateDir(path.join(outDir, 'registry'));
  const db = await backupSqliteRegistry(where.registry, path.join(outDir, 'registry', 'kakuin.db'));
  const copyInto = (from: string, to: string) => {
    ensurePrivateDir(path.dirname(to));
    copyFileSync(from, to);
  };
  // 2. Keys (encrypted as they are), CA and TLS certificates, secrets, config.
  for (const f of listFiles(where.keys)) copyInto(path.join(where.keys, f), path.join(outDir, 'keys', f));
  for (const f of listFiles(where.ca)) copyInto(path.join(where.ca, f), path.join(outDir, 'ca', f));
  for (const f of listFiles(where.tls)) copyInto(path.join(where.tls, f), path.join(outDir, 'tls', f));
  if (existsSync(where.pepper)) copyInto(where.pepper, path.join(outDir, 'secrets', 'pepper'));
  if (existsSync(where.adminToken)) copyInto(where.adminToken, path.join(outDir, 'secrets', 'admin-token'));
  const keptSeparately: string[] = [];
  const passphraseInDataDir = existsSync(where.passphraseFile) && isInside(config.dataDir, where.passphraseFile);
  if (env.KAKUIN_KEY_PASSPHRASE) {
    keptSeparately.push('the key store passphrase (KAKUIN_KEY_PASSPHRASE): the keys in this backup are encrypted under it');
  } else if (passphraseInDataDir) {
    copyInto(where.passphraseFile, path.join(outDir, 'secrets', 'key-passphrase'));
  } else {
    keptSeparately.push(`the key store passphrase file ${where.passphraseFile}: the keys in this backup are encrypted under it`);
  }
  let configFile: BackupManifest['configFile'];
  if (config.configFile && existsSync(config.configFile)) {
    copyInto(config.configFile, path.join(outDir, 'config', 'kakuin.json'));
    configFile = { originalPath: config.configFile, inDataDir: config.configFile === path.join(config.dataDir, 'kakuin.json') };
  }
  if (env.KAKUIN_ADMIN_TOKEN) keptSeparately.push('KAKUIN_ADMIN_TOKEN (the bootstrap admin token comes from the environment)');
  // Keys that are not files: read from the copy, so that the list matches what was backed up.
  const copy = await openSqliteRegistry({ path: path.join(outDir, 'registry', 'kakuin.db'), readonly: true });
  try {
    const uris = (await copy.listIssuers()).map((i) => i.keyUri);
    const tokens = [...new Set(uris.filter((u) => u.startsWith('pkcs11:')).map((u) => /token=([^;]*)/.exec(u)?.[1] ?? u))];
    if (tokens.length > 0) keptSeparately.push(`PKCS#11 token(s) ${tokens.join(', ')} and their PIN: those keys never leave the token and are not in this backup`);
    if (uris.includes(OFFLINE_ROOT_KEY_URI)) keptSeparately.push('the offline root key (kept offline by you)');
  } finally {
    await copy.close();
  }

  // 3. The manifest, last: a backup without one is incomplete and is never restored.
  const files = listFiles(outDir).map((f) => ({ path: f, bytes: statSync(path.join(outDir, f)).size, sha256: sha256File(path.join(outDir, f)) }));
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT, version: BACKUP_VERSION, kakuinVersion: kakuinVersion(), createdAt: new Date().toISOString(),
    storage: 'sqlite', schemaVersion: db.schemaVersion, latestFeedSeq: db.latestFeedSeq,
    ...(configFile ? { configFile } : {}), files, keptSeparately,
  };
  writePrivateFile(path.join(outDir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);

  print(`backup written to ${outDir}`);
  print(`  registry          schema ${db.schemaVersion}, revocation feed up to seq ${db.latestFeedSeq}, ${db.pages} pages`);
  print(`  files             ${files.length} (keys encrypted as stored), manifest ${path.join(outDir, MANIFEST)}`);
  if (passphraseInDataDir && !env.KAKUIN_KEY_PASSPHRASE) {
    print('  WARNING           the key passphrase file is in the data directory, so this backup holds it beside the keys:');
    print('                    encrypt the backup, or move the passphrase out (KAKUIN_KEY_PASSPHRASE or keys.passphraseFile on another volume)');
  }
  if (keptSeparately.length > 0) {
    print('  not in the backup: keep these separately, or the backup cannot be used:');
    for (const k of keptSeparately) print(`    - ${k}`);
  }
  return manifest;
}

/** Read and check the manifest and every file's hash; KAKUIN_E_BACKUP_INTEGRITY on any difference. */
export function verifyBackup(fromDir: string): BackupManifest {
  const manifestFile = path.join(fromDir, MANIFEST);
  if (!existsSync(manifestFile)) throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `${fromDir} has no ${MANIFEST}: not a (complete) kakuin backup`);
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as BackupManifest;
  } catch (e) {
    throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `${manifestFile} is not valid JSON`, { cause: e });
  }
  if (manifest?.format !== BACKUP_FORMAT || !Array.isArray(manifest.files)) {
    throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `${manifestFile} is not a kakuin backup manifest`);
  }
  if (manifest.version !== BACKUP_VERSION) {
    throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `backup format version ${String(manifest.version)} is not one this kakuin reads (${BACKUP_VERSION})`);
  }
  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  const present = listFiles(fromDir).filter((f) => f !== MANIFEST);
  for (const f of present) {
    if (!listed.has(f)) throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `${f} is in the backup but not in its manifest`);
  }
  for (const f of manifest.files) {
    const file = path.join(fromDir, f.path);
    if (typeof f.path !== 'string' || f.path.split('/').includes('..') || path.isAbsolute(f.path)) {
      throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `the manifest names a path outside the backup: ${JSON.stringify(f.path)}`);
    }
    if (!existsSync(file)) throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `${f.path} is in the manifest but missing from the backup`);
    if (sha256File(file) !== f.sha256) throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `${f.path} does not match its SHA-256 in the manifest: damaged or altered`);
  }
  if (!listed.has('registry/kakuin.db')) throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', 'the backup holds no registry (registry/kakuin.db)');
  return manifest;
}

export async function restoreCommand(
  initial: Readonly<KakuinConfig>, reload: (env: Record<string, string | undefined>) => Readonly<KakuinConfig>, env: Record<string, string | undefined>,
  options: { from?: string; force: boolean }, print: (line: string) => void,
): Promise<void> {
  if (!options.from) throw new KakuinError('KAKUIN_E_USAGE', 'kakuin restore --from DIR [--force]');
  const fromDir = path.resolve(options.from);
  // Everything is checked before the first byte is written: a bad backup changes nothing.
  const manifest = verifyBackup(fromDir);
  checkRegistryCopy(path.join(fromDir, 'registry', 'kakuin.db'));
  const has = (f: string) => manifest.files.some((m) => m.path === f);
  const restoreConfigHere = has('config/kakuin.json') && !env.KAKUIN_CONFIG;
  if (!options.force) {
    if (!isEmptyOrMissing(initial.dataDir)) {
      throw new KakuinError('KAKUIN_E_RESTORE_TARGET_NOT_EMPTY', `the data directory ${initial.dataDir} is not empty; restore into an empty one, or give --force`);
    }
  }
  // The paths come from the configuration in force after the restore (the restored file, env overrides).
  const backedUpConfig = path.join(fromDir, 'config', 'kakuin.json');
  const config = restoreConfigHere ? reload({ ...env, KAKUIN_CONFIG: backedUpConfig }) : initial;
  const where = layout(config);
  if (!options.force) {
    // Paths the configuration may put outside the data directory.
    const targets: [string, string][] = [['registry/kakuin.db', where.registry], ['secrets/pepper', where.pepper], ['secrets/key-passphrase', where.passphraseFile]];
    for (const [rel, target] of targets) {
      if (has(rel) && existsSync(target)) throw new KakuinError('KAKUIN_E_RESTORE_TARGET_NOT_EMPTY', `${target} exists; give --force to overwrite it`);
    }
    if (!isEmptyOrMissing(where.keys)) throw new KakuinError('KAKUIN_E_RESTORE_TARGET_NOT_EMPTY', `the key directory ${where.keys} is not empty; give --force`);
  }

  ensurePrivateDir(config.dataDir);
  if (restoreConfigHere) writePrivateFile(path.join(config.dataDir, 'kakuin.json'), readFileSync(backedUpConfig));
  const copyOut = (rel: string, to: string) => writePrivateFile(to, readFileSync(path.join(fromDir, rel)));
  // A stale WAL beside an overwritten database would be replayed onto the restored one.
  for (const suffix of ['-wal', '-shm', '-journal']) rmSync(`${where.registry}${suffix}`, { force: true });
  copyOut('registry/kakuin.db', where.registry);
  for (const f of manifest.files) {
    const [top, ...rest] = f.path.split('/');
    const rel = rest.join('/');
    if (top === 'keys') copyOut(f.path, path.join(where.keys, rel));
    else if (top === 'ca') copyOut(f.path, path.join(where.ca, rel));
    else if (top === 'tls') copyOut(f.path, path.join(where.tls, rel));
  }
  if (has('secrets/pepper')) copyOut('secrets/pepper', where.pepper);
  if (has('secrets/admin-token')) copyOut('secrets/admin-token', where.adminToken);
  if (has('secrets/key-passphrase')) copyOut('secrets/key-passphrase', where.passphraseFile);

  const restored = checkRegistryCopy(where.registry);
  if (restored.latestFeedSeq !== manifest.latestFeedSeq) {
    throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `the restored registry ends at feed seq ${restored.latestFeedSeq}, the manifest says ${manifest.latestFeedSeq}`);
  }
  print(`restored the backup of ${manifest.createdAt} into ${config.dataDir}`);
  print(`  registry          ${where.registry} (schema ${restored.schemaVersion}, revocation feed up to seq ${restored.latestFeedSeq})`);
  if (has('config/kakuin.json') && !restoreConfigHere) {
    print(`  config            not restored (KAKUIN_CONFIG is set); the backed-up file is ${path.join(fromDir, 'config', 'kakuin.json')}`);
  }
  if (manifest.keptSeparately.length > 0) {
    print('  before `kakuin serve`, provide what the backup does not hold:');
    for (const k of manifest.keptSeparately) print(`    - ${k}`);
  }
}
