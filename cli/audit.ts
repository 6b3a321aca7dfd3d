/**
 * The tamper-evident audit trail's wiring (docs/audit-trail.md): the audit signer (key in the key
 * store where the infrastructure CA's key is — a PKCS#11 token keeps it there too; certificate from
 * the infrastructure CA under `<dataDir>/audit/signer.pem`), the checkpointer of the writing process,
 * and `kakuin audit verify` / `kakuin audit checkpoint`.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { auditSignerNeedsRenewal, issueAuditSignerCertificate } from '../ca/audit-signer.js';
import { KakuinError } from '../errors/index.js';
import { newPkcs11KeyUri, tokenOfKeyUri } from '../hsm-adapters/pkcs11/index.js';
import { AuditCheckpointer, type AuditSigningIdentity, type CheckpointCopy, verifyAuditTrail, type AuditVerification } from '../operations/audit/index.js';
import { fromPem, toPem } from '../pkix/index.js';
import { CHECKPOINT_EVENT_TYPE } from '../registry/records/index.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';
import { writePrivateFile } from './secrets.js';
import { caFiles, openKakuin, openRegistry, type Kakuin } from './wiring.js';

const RENEW_WITHIN_DAYS = 30;

export function auditSignerFile(config: Readonly<KakuinConfig>): string {
  return path.join(config.dataDir, 'audit', 'signer.pem');
}

/** The audit signer key and certificate, issued (or renewed) by the infrastructure CA when due. */
export async function auditSigningIdentity(kakuin: Kakuin, logger: Logger): Promise<AuditSigningIdentity> {
  const { config, keys, hierarchy } = kakuin;
  const issuer = hierarchy.infrastructure;
  const token = tokenOfKeyUri(issuer.record.keyUri);
  const uri = token === undefined ? 'file:audit-signer' : newPkcs11KeyUri(token, 'audit-signer');
  const key = (await keys.exists(uri)) ? await keys.load(uri) : await keys.generate(uri, 'ecdsa-p256');
  const file = auditSignerFile(config);
  let leaf: Buffer | undefined;
  if (existsSync(file)) {
    try {
      leaf = fromPem(readFileSync(file, 'utf8'), 'CERTIFICATE')[0];
    } catch {
      leaf = undefined;
    }
  }
  if (auditSignerNeedsRenewal(leaf, key, issuer, RENEW_WITHIN_DAYS)) {
    leaf = await issueAuditSignerCertificate(kakuin.registry, issuer, key, {
      organization: config.ca.organization, validityDays: config.audit.signerValidityDays, actor: 'system',
    });
    writePrivateFile(file, toPem('CERTIFICATE', leaf) + toPem('CERTIFICATE', issuer.record.certificateDer));
    logger.info('audit signer certificate issued', { file, key: uri });
  }
  return { signer: key, certificates: [leaf!, issuer.record.certificateDer] };
}

/** The checkpointer of the process that writes the registry (`serve`, or its ca role). */
export function startAuditCheckpoints(kakuin: Kakuin, logger: Logger): AuditCheckpointer {
  const checkpointer = new AuditCheckpointer({
    registry: kakuin.registry,
    identity: () => auditSigningIdentity(kakuin, logger),
    every: kakuin.config.audit.checkpointEvery,
    minutes: kakuin.config.audit.checkpointMinutes,
    onError: (e) => logger.error('writing an audit checkpoint failed; retried at the next poll', { cause: String(e) }),
  });
  checkpointer.start();
  return checkpointer;
}

export const AUDIT_USAGE_LINES = `  audit verify [--since ISO] [--checkpoints FILE] [--roots FILE] [--json]
                                             check every audit hash chain and checkpoint signature; name the first
                                             bad event (exit 3); FILE: checkpoints collected off-host (NDJSON)
  audit checkpoint                           sign the heads of every audit chain now (an audit.checkpoint event)
`;

/** Exit status of `kakuin audit verify` when the trail does not verify (0: it does; 1, 2: other errors). */
export const AUDIT_TAMPERED_EXIT = 3;

/**
 * Checkpoints from an NDJSON file as events out delivers them (webhook bodies, one per line: `{id,
 * type: "audit.checkpoint", details}`), or as the export writes them (`{record: "event", event}`),
 * or bare checkpoint details. Other lines are skipped; a line that is not JSON is an error.
 */
export function readCheckpointFile(file: string): CheckpointCopy[] {
  const text = readFileSync(file, 'utf8');
  const copies: CheckpointCopy[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new KakuinError('KAKUIN_E_VALIDATION', `${file} line ${i + 1} is not JSON`);
    }
    const source = `${path.basename(file)} line ${i + 1}`;
    if (v.type === CHECKPOINT_EVENT_TYPE) copies.push({ details: v.details, source });
    else if (v.record === 'event' && (v.event as { type?: string } | undefined)?.type === CHECKPOINT_EVENT_TYPE) {
      copies.push({ details: (v.event as { details: unknown }).details, source });
    } else if (v.statement !== undefined && v.signature !== undefined) copies.push({ details: v, source });
  });
  return copies;
}

function readRoots(file: string): X509Certificate[] {
  let ders: Buffer[];
  try {
    ders = fromPem(readFileSync(file, 'utf8'), 'CERTIFICATE');
  } catch (e) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `cannot read root certificates from ${file}: ${(e as Error).message}`);
  }
  return ders.map((d) => new X509Certificate(d));
}

export async function auditCommand(config: KakuinConfig, logger: Logger, rest: string[]): Promise<number> {
  const [sub, ...more] = rest;
  if (sub === 'verify') {
    let values: { since?: string; checkpoints?: string; roots?: string; json?: boolean };
    try {
      values = parseArgs({ args: more, options: { since: { type: 'string' }, checkpoints: { type: 'string' }, roots: { type: 'string' }, json: { type: 'boolean' } }, strict: true }).values;
    } catch (e) {
      throw new KakuinError('KAKUIN_E_USAGE', (e as Error).message);
    }
    const since = values.since === undefined ? undefined : new Date(values.since);
    if (since !== undefined && Number.isNaN(since.getTime())) throw new KakuinError('KAKUIN_E_USAGE', '--since must be an ISO 8601 time');
    // The trust anchor: kakuin's root as published (or the auditor's own copy), never the registry's record.
    const roots = readRoots(values.roots ?? caFiles(config).root);
    const offHost = values.checkpoints === undefined ? [] : readCheckpointFile(values.checkpoints);
    const registry = await openRegistry(config, { readonly: true });
    let result: AuditVerification;
    try {
      result = await verifyAuditTrail(registry, { roots, offHost, ...(since !== undefined && { since }) });
    } finally {
      await registry.close();
    }
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else if (result.ok) {
      process.stdout.write(`audit trail verified: ${result.events} events, ${result.chains} chains, ${result.checkpoints} checkpoints\n`);
    } else {
      const p = result.problem!;
      process.stdout.write(`${p.code}: ${p.message}\n`);
    }
    return result.ok ? 0 : AUDIT_TAMPERED_EXIT;
  }
  if (sub === 'checkpoint' && more.length === 0) {
    const kakuin = await openKakuin(config, logger, { bootstrap: false, actor: 'cli' });
    try {
      const checkpointer = new AuditCheckpointer({
        registry: kakuin.registry, identity: () => auditSigningIdentity(kakuin, logger), every: 1, minutes: 1, actor: 'cli',
      });
      const event = await checkpointer.checkpoint();
      process.stdout.write(`audit checkpoint written: event ${event.id}\n`);
      return 0;
    } finally {
      await kakuin.close();
    }
  }
  throw new KakuinError('KAKUIN_E_USAGE', `usage:\n${AUDIT_USAGE_LINES.replace(/^ {2}audit/gm, 'kakuin audit')}`);
}
