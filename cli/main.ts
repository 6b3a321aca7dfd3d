#!/usr/bin/env node
/**
 * The `kakuin` command. Every command reads the same configuration (docs/configuration.md).
 *
 *   kakuin serve [--role ca,ocsp,...]             run the service, or some of its roles (cli/roles.ts)
 *   kakuin init [--keys pkcs11:token=...]         create the CA hierarchy in the data directory
 *   kakuin issue --device ID --csr FILE [--out F] issue a device certificate from a PKCS#10 file
 *   kakuin ca show                                list the CAs
 *   kakuin token create --name NAME [--role R] [--manufacturer ID] [--expires T]   a named token with a role (printed once)
 *   kakuin token list | token revoke --name NAME  the tokens (created, last used, expiry); revoke one for good
 *   kakuin user create|list|disable|enable|reset-password|reset-totp   people's logins (password + TOTP)
 *   kakuin audit verify [--since T] [--checkpoints FILE]   check the audit trail's hash chains and signed checkpoints
 *   kakuin acme eab create --names P,... | list | revoke --kid KID   ACME external account binding keys
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { adminTokenJson, createAdminToken, revokeAdminToken } from '../management-api/admin-tokens.js';
import { pemChain } from '../management-api/representations.js';
import { hierarchyExists } from '../ca/hierarchy.js';
import { nameToString, parseCertificate } from '../pkix/index.js';
import { isKakuinError, KakuinError } from '../errors/index.js';
import { loadConfig, publicHttpUrlValue, type KakuinConfig } from './config.js';
import { recordedPublicUrl, recordPublicUrl } from './public-url.js';
import { createLogger, type Logger } from './logger.js';
import { rolesBanner, startBanner, startRoles, startService } from './serve.js';
import { hasEveryRole, parseRoles } from './roles.js';
import { backupCommand, restoreCommand } from './backup.js';
import { ensurePrivateDir, keyPassphrase } from './secrets.js';
import { SoftwareKeyStore } from '../hsm-adapters/software/index.js';
import { newPkcs11KeyUri, tokenOfKeysUri, tokenOfKeyUri } from '../hsm-adapters/pkcs11/index.js';
import { reissueIntermediates } from '../ca/reissue.js';
import { rollOverDeviceCaAs } from './ca-rollover.js';
import { RevocationService } from '../ca/revocation.js';
import { ceremonyCombine, ceremonySplit, CEREMONY_USAGE } from './ceremony.js';
import { caCsr, caImport, caImportRootPublications } from './offline-root.js';
import { caBackdateSeconds, caFiles, openKakuin, openRegistry, preInitKeyRing } from './wiring.js';
import { ENROLL_USAGE, enrollCommand } from './enroll.js';
import { userCommand } from './users.js';
import { expectedFailure } from './expected-failures.js';
import { AUDIT_USAGE_LINES, auditCommand } from './audit.js';
import { acmeCommand } from './acme.js';

const USAGE = `usage: kakuin <command> [options]

commands:
  serve [--role ROLE[,ROLE...]]              run the service; creates a development CA on first start (ca role);
                                             roles: ca, enrollment, ocsp, gateway, legacy, all (default all)
  init [--keys pkcs11:token=LABEL]           create the CA hierarchy (root, device issuing CA, infrastructure CA);
                                             --keys puts the CA and OCSP responder keys in a PKCS#11 token
  issue --device ID --csr FILE [--out FILE]  issue a device certificate for a registered device (PEM chain out)
  ca show                                    show the CAs: subject, serial, validity, fingerprint, key
  ca csr --out-dir DIR [--keys URI]          offline root: make the device, infrastructure and station CA keys,
                                             and the root's OCSP responder key; write their CSRs (on an existing
                                             hierarchy: the station CA's only; --root-responder: the responder's)
  ca import --root F --device F --infrastructure F [--station F]
                                             offline root: record the root and the CA certificates it signed
                                             (later: --root F --station F adds the station CA)
  ca import-root-publications [--responder F] [--crl F]
                                             offline root: record the OCSP responder certificate and CRL it
                                             signed at a ceremony (ca csr --root-responder makes a new request)
  ca rollover                                a new device issuing CA takes over issuance; the old one stays in service
  ca reissue-intermediates                   new certificates (same keys, names, validity) naming the OCSP URL for
                                             the CAs under the root whose certificate has none (root online)
  ca rewrap-keys                             re-encrypt the software key files written by an earlier kakuin
                                             (PBKDF2, 2,048 iterations) under scrypt at keys.kdfCost; keys unchanged
  ca set-public-url URL --confirm            change the base URL written into certificates issued from now on
                                             (OCSP, CRL, caIssuers); certificates issued before keep the old one
  token create --name NAME [--role R] [--manufacturer ID] [--expires ISO]
                                             create a named token (role admin, operator, auditor or
                                             manufacturer with --manufacturer; default admin); printed once
  token list                                 admin tokens: role, status, created, last used, expiry
  token revoke --name NAME                   revoke a token for good: it fails at once in every process
  user create --name NAME --role R [--manufacturer ID] [--totp] [--password-stdin]
                                             a person's login (the first admin comes from here); prints a generated
                                             password and, for admins (or --totp), an otpauth:// TOTP URI once
  user list | user disable|enable --name NAME   users: role, status, TOTP, last login; disabling ends its sessions
  user reset-password --name NAME [--password-stdin] | user reset-totp --name NAME
                                             a new password or TOTP secret (printed once); the user's sessions end
  acme eab create --names PATTERN[,PATTERN...]
                                             an ACME external account binding key for servers whose names match
                                             (broker-*.example.internal): prints its key id and HMAC key once
  acme eab list                              the EAB keys: names, created, revoked, the account each bound
  acme eab revoke --kid KID                  revoke an EAB key: it binds no account, its account orders nothing
${AUDIT_USAGE_LINES}  backup --out DIR                           online backup: registry (consistent while serving), encrypted keys,
                                             CA/TLS certificates, pepper, config, manifest with SHA-256 of each file
  restore --from DIR [--force]               restore a backup into an empty data directory (checks every hash first)
  ceremony split --shares N --threshold M --out-dir DIR [--in FILE]
                                             split the key store passphrase (or FILE) into N shares, M to rebuild
  ceremony combine --out FILE SHARE_FILE...  rebuild a split secret from M shares into FILE
  enroll batch --in FILE --out DIR --url URL --cacert ROOT.pem
                                             factory station: enroll the devices of an NDJSON file against a
                                             remote kakuin, one certificate or PKCS#12 file per device; resumable
  revocation sync --url URL --trust ROOT.pem --issuer ID (--pem-out FILE | --hashed-dir DIR) [--with-chain] [--exec CMD] ...
                                             relying-party sidecar: follows kakuin's full CRLs, verifies them, writes
                                             a PEM bundle and reloads nginx/HAProxy/Mosquitto/FreeRADIUS (README)
  help                                       this text

configuration: KAKUIN_DATA_DIR (default ./data), KAKUIN_CONFIG, and the options in docs/configuration.md
`;

/** The USAGE lines of one command (its line and the continuation lines under it), or undefined. */
function commandUsage(command: string): string | undefined {
  if (command === 'enroll') return ENROLL_USAGE;
  const lines = USAGE.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith(`  ${command} `) && lines[i] !== `  ${command}`) continue;
    out.push(`kakuin ${lines[i].slice(2)}`);
    while (i + 1 < lines.length && /^ {20,}\S/.test(lines[i + 1])) out.push(lines[++i]);
  }
  return out.length > 0 ? `usage:\n${out.join('\n')}\n` : undefined;
}

/** The configuration of this run, once loaded (names the listener of a busy port). */
let loadedConfig: KakuinConfig | undefined;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  // Every subcommand answers --help / -h with its usage, before it reads any configuration.
  if (rest.includes('--help') || rest.includes('-h')) {
    const usage = commandUsage(command);
    if (usage !== undefined) {
      process.stdout.write(usage.endsWith('\n') ? usage : `${usage}\n`);
      return 0;
    }
  }
  // A factory station's client command: it talks to a remote kakuin and needs no local configuration.
  if (command === 'enroll') return enrollCommand(rest);
  // The relying-party sidecar (cli/entry.ts reaches it without loading this file's imports).
  if (command === 'revocation' && rest[0] === 'sync') return (await import('../revocation-sync/command.js')).revocationSyncCommand(rest.slice(1));
  const config = loadConfig();
  loadedConfig = config;
  const logger = createLogger(config.log.level);
  for (const d of config.deprecations) logger.warn(d);
  switch (command) {
    case 'serve': return serve(config, logger, rest);
    case 'init': return init(config, logger, rest);
    case 'issue': return issue(config, logger, rest);
    case 'ca': return caCommand(config, logger, rest);
    case 'token': return tokenCommand(config, logger, rest);
    case 'user': return userCommand(config, logger, rest);
    case 'acme': return acmeCommand(config, rest);
    case 'ceremony': return ceremonyCommand(config, rest);
    case 'audit': return auditCommand(config, logger, rest);
    case 'backup': return backup(config, rest);
    case 'restore': return restore(config, rest);
    default:
      throw new KakuinError('KAKUIN_E_USAGE', `unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  }
}

/** Parse `--name value` options (strings only) and positionals; unknown options are usage errors. */
function args(rest: string[], names: string[] = []): { values: Record<string, string | undefined>; positionals: string[] } {
  try {
    const options = Object.fromEntries(names.map((n) => [n, { type: 'string' as const }]));
    const parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
    return { values: parsed.values as Record<string, string | undefined>, positionals: parsed.positionals };
  } catch (e) {
    throw new KakuinError('KAKUIN_E_USAGE', (e as Error).message);
  }
}

async function serve(config: KakuinConfig, logger: Logger, rest: string[]): Promise<number> {
  let roleValues: string[];
  try {
    roleValues = (parseArgs({ args: rest, options: { role: { type: 'string', multiple: true } }, strict: true }).values.role ?? []) as string[];
  } catch (e) {
    throw new KakuinError('KAKUIN_E_USAGE', (e as Error).message);
  }
  const roles = parseRoles(roleValues);
  // Signal handlers go in before anything is printed: a supervisor may send SIGTERM the moment it
  // sees the banner.
  let stopRequested: (signal: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => { stopRequested = resolve; });
  process.once('SIGINT', () => stopRequested('SIGINT'));
  process.once('SIGTERM', () => stopRequested('SIGTERM'));
  if (hasEveryRole(roles)) {
    const service = await startService(config, logger);
    process.stdout.write(startBanner(service));
    logger.info('stopping', { signal: await stopped });
    await service.close();
  } else {
    const service = await startRoles(config, logger, roles);
    process.stdout.write(rolesBanner(service));
    logger.info('stopping', { signal: await stopped });
    await service.close();
  }
  return 0;
}

async function backup(config: KakuinConfig, rest: string[]): Promise<number> {
  const { values } = args(rest, ['out']);
  await backupCommand(config, process.env, values.out, (line) => process.stdout.write(`${line}\n`));
  return 0;
}

async function restore(config: KakuinConfig, rest: string[]): Promise<number> {
  let values: { from?: string; force?: boolean };
  try {
    values = parseArgs({ args: rest, options: { from: { type: 'string' }, force: { type: 'boolean' } }, strict: true }).values;
  } catch (e) {
    throw new KakuinError('KAKUIN_E_USAGE', (e as Error).message);
  }
  await restoreCommand(config, (env) => loadConfig(env), process.env, { from: values.from, force: values.force === true },
    (line) => process.stdout.write(`${line}\n`));
  return 0;
}

async function init(config: KakuinConfig, logger: Logger, rest: string[]): Promise<number> {
  const { values } = args(rest, ['keys']);
  // Checked before anything is written: a bad --keys must not leave a half-made data directory.
  if (values.keys !== undefined && values.keys !== 'file:') tokenOfKeysUri(values.keys);
  // The registry file goes into the data directory: on a first `init` it does not exist yet.
  ensurePrivateDir(config.dataDir);
  const registry = await openRegistry(config);
  const exists = await hierarchyExists(registry).finally(() => registry.close());
  if (exists) throw new KakuinError('KAKUIN_E_CA_EXISTS', `a CA hierarchy exists already in ${config.dataDir}; it is never overwritten`);
  const kakuin = await openKakuin(config, logger, { bootstrap: true, actor: 'cli', ...(values.keys ? { keys: values.keys } : {}) });
  try {
    const files = caFiles(config);
    process.stdout.write(`CA hierarchy created in ${config.dataDir}\n  root certificate  ${files.root}\n  device chain      ${files.chain}\n`);
    if (!config.configFile) {
      // Start the operator off with an editable file holding the choices made at init.
      const file = `${config.dataDir}/kakuin.json`;
      writeFileSync(file, `${JSON.stringify({ publicHttpUrl: config.publicHttpUrl, ca: { organization: config.ca.organization } }, null, 2)}\n`);
      process.stdout.write(`  config file       ${file}\n`);
    }
  } finally {
    await kakuin.close();
  }
  return 0;
}

async function issue(config: KakuinConfig, logger: Logger, rest: string[]): Promise<number> {
  const { values } = args(rest, ['device', 'csr', 'out']);
  if (!values.device || !values.csr) throw new KakuinError('KAKUIN_E_USAGE', 'kakuin issue --device ID --csr FILE [--out FILE]');
  const csr = readFileSync(values.csr);
  const kakuin = await openKakuin(config, logger, { bootstrap: false, actor: 'cli' });
  try {
    // Other processes follow the revocation of a superseded certificate through the feed.
    const issued = await kakuin.deviceIssuer.issueSuperseding({ deviceId: values.device, csr, actor: 'cli' }, new RevocationService(kakuin.registry));
    const pem = pemChain([issued.der, ...issued.chain]);
    if (issued.existing) process.stderr.write(`the device already has certificate ${issued.record.serialHex} for this key; it is returned (nothing issued)\n`);
    if (values.out) {
      writeFileSync(values.out, pem);
      process.stdout.write(`certificate ${issued.record.serialHex} written to ${values.out}\n`);
    } else {
      process.stdout.write(pem);
    }
  } finally {
    await kakuin.close();
  }
  return 0;
}

async function caCommand(config: KakuinConfig, logger: Logger, rest: string[]): Promise<number> {
  if (rest[0] === 'set-public-url') return setPublicUrlCommand(config, rest.slice(1));
  if (rest[0] === 'rewrap-keys') return rewrapKeysCommand(config, rest.slice(1));
  if (rest[0] === 'import-root-publications') return importRootPublicationsCommand(config, rest.slice(1));
  // `ca csr --root-responder`: the only flag without a value here.
  const rootResponderOnly = rest[0] === 'csr' && rest.includes('--root-responder');
  const { positionals, values } = args(rest.filter((a) => !(rootResponderOnly && a === '--root-responder')), ['out-dir', 'keys', 'root', 'device', 'infrastructure', 'station']);
  if (positionals[0] === 'csr' || positionals[0] === 'import') return offlineRootCommand(config, positionals[0], values, rootResponderOnly);
  if (positionals[0] === 'rollover') return rolloverCommand(config, logger);
  if (positionals[0] === 'reissue-intermediates') return reissueCommand(config, logger);
  if (positionals[0] !== 'show') throw new KakuinError('KAKUIN_E_USAGE', 'kakuin ca show | ca csr --out-dir DIR [--keys URI] [--root-responder] | ca import --root F --device F --infrastructure F [--station F] | ca import-root-publications [--responder F] [--crl F] | ca rollover | ca reissue-intermediates | ca rewrap-keys | ca set-public-url URL --confirm');
  const kakuin = await openKakuin(config, logger, { bootstrap: false, actor: 'cli' });
  try {
    for (const issuer of await kakuin.registry.listIssuers()) {
      const c = parseCertificate(issuer.certificateDer);
      const fp = createHash('sha256').update(issuer.certificateDer).digest('hex').toUpperCase();
      process.stdout.write([
        `${issuer.id} (${issuer.kind})`,
        `  subject      ${nameToString(c.subject)}`,
        `  issuer       ${nameToString(c.issuer)}`,
        `  serial       ${c.serialHex}`,
        `  valid        ${c.notBefore.toISOString()} .. ${c.notAfter.toISOString()}`,
        `  sha256       ${fp.match(/../g)!.join(':')}`,
        `  key          ${issuer.keyUri} (${c.spki.keyType}${c.spki.curve ? ` ${c.spki.curve}` : ''})`,
        '',
      ].join('\n'));
    }
  } finally {
    await kakuin.close();
  }
  return 0;
}

async function rewrapKeysCommand(config: KakuinConfig, rest: string[]): Promise<number> {
  if (rest.length > 0) throw new KakuinError('KAKUIN_E_USAGE', 'kakuin ca rewrap-keys (no arguments: every file: key of keys.directory)');
  const { passphrase } = keyPassphrase(process.env, config.keys.passphraseFile, false);
  const store = new SoftwareKeyStore({ directory: config.keys.directory, passphrase, kdfCost: config.keys.kdfCost });
  try {
    const { rewritten, kept } = await store.rewrap();
    for (const name of rewritten) process.stdout.write(`rewrapped  file:${name}\n`);
    process.stdout.write(`${rewritten.length} key file(s) rewritten under scrypt (N = 2^${config.keys.kdfCost}), ${kept.length} already at that cost or above, in ${config.keys.directory}\n`);
  } finally {
    await store.close();
  }
  return 0;
}

async function setPublicUrlCommand(config: KakuinConfig, rest: string[]): Promise<number> {
  const usage = 'kakuin ca set-public-url URL --confirm';
  let parsed: { values: { confirm?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: { confirm: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new KakuinError('KAKUIN_E_USAGE', `${(e as Error).message}\n${usage}`);
  }
  if (parsed.positionals.length !== 1) throw new KakuinError('KAKUIN_E_USAGE', usage);
  const url = publicHttpUrlValue(parsed.positionals[0]);
  const registry = await openRegistry(config);
  try {
    if (!(await hierarchyExists(registry))) throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED', `no CA in ${config.dataDir}; \`kakuin init\` records publicHttpUrl`);
    const before = await recordedPublicUrl(registry);
    if (before === url) {
      process.stdout.write(`the public HTTP URL is ${url} already (nothing changed)\n`);
      return 0;
    }
    if (parsed.values.confirm !== true) {
      throw new KakuinError('KAKUIN_E_USAGE', `this changes the OCSP, CRL and caIssuers URLs of every certificate issued from now on`
        + ` (${before ?? 'none recorded'} → ${url}); certificates issued before keep the old URLs, so keep serving those too. Add --confirm`);
    }
    await recordPublicUrl(registry, url, 'cli', { previous: before ?? null, recordedAt: 'kakuin ca set-public-url' });
    process.stdout.write(`public HTTP URL is now ${url} (was ${before ?? 'not recorded'}); `
      + `set publicHttpUrl to it in the config file or KAKUIN_PUBLIC_HTTP_URL, or leave it unset, and restart\n`);
  } finally {
    await registry.close();
  }
  return 0;
}

async function rolloverCommand(config: KakuinConfig, logger: Logger): Promise<number> {
  const kakuin = await openKakuin(config, logger, { bootstrap: false, actor: 'cli' });
  try {
    // On the CA host: no second person (whoever runs this holds the CA keys), audited as `cli`.
    const ca = await rollOverDeviceCaAs(kakuin, config, 'cli');
    process.stdout.write(`device CA ${ca.id} created; it issues from the next start, ${kakuin.hierarchy.device.id} stays in service until it expires\n`);
  } finally {
    await kakuin.close();
  }
  return 0;
}

async function reissueCommand(config: KakuinConfig, logger: Logger): Promise<number> {
  const kakuin = await openKakuin(config, logger, { bootstrap: false, actor: 'cli' });
  try {
    const { reissued, unchanged } = await reissueIntermediates(kakuin.registry, kakuin.keys, kakuin.hierarchy.root, kakuin.urls, 'cli');
    for (const r of reissued) process.stdout.write(`${r.id} CA: new certificate ${r.serialHex} (was ${r.oldSerialHex}), OCSP ${kakuin.urls.ocsp}\n`);
    for (const id of unchanged) process.stdout.write(`${id} CA: unchanged (its certificate names ${kakuin.urls.ocsp})\n`);
    if (reissued.length > 0) process.stdout.write('restart kakuin to serve the new certificates; give relying parties the new CA file\n');
  } finally {
    await kakuin.close();
  }
  return 0;
}

async function importRootPublicationsCommand(config: KakuinConfig, rest: string[]): Promise<number> {
  const { values, positionals } = args(rest, ['responder', 'crl']);
  if (positionals.length > 0 || (!values.responder && !values.crl)) throw new KakuinError('KAKUIN_E_USAGE', 'kakuin ca import-root-publications [--responder RESPONDER.pem] [--crl ROOT.crl]');
  const keys = preInitKeyRing(config, process.env);
  try {
    const { responder, crl } = await caImportRootPublications(config, keys, { responder: values.responder, crl: values.crl });
    if (responder) process.stdout.write(`root OCSP responder ${responder.serialHex} recorded, valid until ${responder.notAfter.toISOString()}: renew it at a ceremony before then (kakuin ca csr --root-responder)\n`);
    if (crl) process.stdout.write(`root CRL number ${crl.number} recorded, served at /crl/root.crl until its nextUpdate ${crl.nextUpdate?.toISOString()}\n`);
  } finally {
    await keys.close();
  }
  return 0;
}

async function offlineRootCommand(config: KakuinConfig, command: 'csr' | 'import', values: Record<string, string | undefined>, rootResponderOnly = false): Promise<number> {
  const keys = preInitKeyRing(config, process.env);
  try {
    if (command === 'csr') {
      if (!values['out-dir']) throw new KakuinError('KAKUIN_E_USAGE', 'kakuin ca csr --out-dir DIR [--keys pkcs11:token=...] [--root-responder]');
      const files = await caCsr(config, keys, values.keys, values['out-dir'], { rootResponderOnly });
      for (const file of files) process.stdout.write(`${file}\n`);
      if (files.some((f) => !f.endsWith('root-ocsp-responder.csr'))) process.stdout.write('have the offline root sign the CA requests (CA:TRUE, pathlen:0, keyCertSign + cRLSign), then run `kakuin ca import`\n');
      if (files.some((f) => f.endsWith('root-ocsp-responder.csr'))) {
        process.stdout.write(`have it sign root-ocsp-responder.csr (extendedKeyUsage OCSPSigning, noCheck, at most ${config.ca.rootResponderValidityDays} days) and its CRL, then run \`kakuin ca import-root-publications\`\n`);
      }
    } else {
      if (!values.root || (!values.station && (!values.device || !values.infrastructure))) {
        throw new KakuinError('KAKUIN_E_USAGE', 'kakuin ca import --root ROOT.pem --device DEVICE-CA.pem --infrastructure INFRA-CA.pem [--station STATION-CA.pem]');
      }
      const { recorded } = await caImport(config, keys, { root: values.root, device: values.device, infrastructure: values.infrastructure, station: values.station });
      process.stdout.write(`recorded in ${config.dataDir}: ${recorded.map((id) => `${id} CA`).join(', ')}${recorded.includes('device') ? ' and the offline root' : ''}; \`kakuin serve\` now issues under them\n`);
      if (!recorded.includes('station')) process.stdout.write('no station CA: stations authenticate by API key (add one later with `kakuin ca import --root F --station F`)\n');
    }
  } finally {
    await keys.close();
  }
  return 0;
}

async function tokenCommand(config: KakuinConfig, logger: Logger, rest: string[]): Promise<number> {
  const { values, positionals } = args(rest, ['name', 'expires', 'role', 'manufacturer']);
  const usage = 'kakuin token create --name NAME [--role admin|operator|auditor|manufacturer [--manufacturer ID]] [--expires ISO-TIME] | token list | token revoke --name NAME';
  const action = positionals[0];
  if (!(action === 'create' || action === 'revoke' || action === 'list') || (action !== 'list' && !values.name)) throw new KakuinError('KAKUIN_E_USAGE', usage);
  if ((values.role !== undefined || values.manufacturer !== undefined) && action !== 'create') throw new KakuinError('KAKUIN_E_USAGE', usage);
  let expiresAt: Date | undefined;
  if (values.expires !== undefined) {
    if (action !== 'create') throw new KakuinError('KAKUIN_E_USAGE', usage);
    expiresAt = new Date(values.expires);
    if (Number.isNaN(expiresAt.getTime())) throw new KakuinError('KAKUIN_E_USAGE', '--expires takes an ISO 8601 time (2027-01-31T00:00:00Z)');
  }
  const kakuin = await openKakuin(config, logger, { bootstrap: false, actor: 'cli' });
  try {
    if (action === 'create') {
      const { token, record } = await createAdminToken(kakuin.registry, kakuin.pepper, values.name!, 'cli', { expiresAt, role: values.role, manufacturerId: values.manufacturer });
      const until = record.expiresAt ? `, expires ${record.expiresAt.toISOString()}` : '';
      const of = record.manufacturerId !== undefined ? ` of manufacturer ${record.manufacturerId}` : '';
      process.stdout.write(`admin token ${values.name} (role ${record.role}${of}${until}; shown once, store it now):\n${token}\n`);
    } else if (action === 'revoke') {
      const t = await revokeAdminToken(kakuin.registry, values.name!, 'cli');
      process.stdout.write(`admin token ${t.name} revoked at ${t.disabledAt!.toISOString()}\n`);
    } else {
      const rows = (await kakuin.registry.listAdminTokens()).map((t) => adminTokenJson(t));
      const cells = [['NAME', 'ROLE', 'STATUS', 'CREATED', 'LAST USED', 'EXPIRES', 'MANUFACTURER'],
        ...rows.map((t) => [t.name, t.role, t.status, t.createdAt, t.lastUsedAt ?? '-', t.expiresAt ?? '-', t.manufacturerId ?? '-'])];
      const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
      for (const r of cells) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
    }
  } finally {
    await kakuin.close();
  }
  return 0;
}

async function ceremonyCommand(config: KakuinConfig, rest: string[]): Promise<number> {
  const { values, positionals } = args(rest, ['shares', 'threshold', 'out-dir', 'in', 'out']);
  const print = (line: string) => process.stdout.write(`${line}\n`);
  switch (positionals[0]) {
    case 'split':
      await ceremonySplit(config, process.env, { shares: values.shares, threshold: values.threshold, outDir: values['out-dir'], in: values.in }, print);
      return 0;
    case 'combine':
      await ceremonyCombine({ out: values.out }, positionals.slice(1), print);
      return 0;
    default:
      throw new KakuinError('KAKUIN_E_USAGE', CEREMONY_USAGE);
  }
}

// `kakuin ca show | head`: a reader that stops early is no error, as for any filter (no stack trace).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(process.exitCode ?? 0);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const expected = isKakuinError(e) ? e : expectedFailure(e, loadedConfig);
    if (expected !== undefined) {
      process.stderr.write(`kakuin: ${expected.code}: ${expected.message}\n`);
      process.exitCode = expected.code === 'KAKUIN_E_USAGE' ? 2 : 1;
    } else if (isKakuinError(e)) {
      process.stderr.write(`kakuin: ${e.code}: ${e.message}\n`);
      process.exitCode = e.code === 'KAKUIN_E_USAGE' ? 2 : 1;
    } else {
      process.stderr.write(`kakuin: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
