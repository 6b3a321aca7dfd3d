/**
 * The audit trail as NDJSON for a third party (GET /api/v1/audit-events/export, docs/audit-trail.md):
 * a header line, then one line per event, oldest first:
 *
 *   {"record":"event","event":{id, at, type, actor, deviceId?, serialHex?, details?, chain, seq, prev},"hash":"<hex>"}
 *
 * `event` is exactly the object whose RFC 8785 encoding is hashed, so checking a line is
 * `sha256(jcs(event)) == hash` and `event.prev` == the hash of the chain's previous line. Checkpoints
 * are events of type `audit.checkpoint` whose details carry the signed statement, the signature and
 * the certificates: with kakuin's root certificate a reader checks everything from this file alone.
 * Events written before chaining (the virtual chain `legacy`) come with their computed links.
 */
import { GENESIS_PREV, LEGACY_CHAIN, hashOfHashedEvent, hashedAuditEvent } from '../../registry/records/index.js';
import type { AuditTrailSource } from './verify.js';

export const AUDIT_EXPORT_FORMAT = 'kakuin-audit-export';

export async function* auditExportLines(source: AuditTrailSource, now = new Date(), pageSize = 1000): AsyncGenerator<string> {
  yield `${JSON.stringify({
    record: 'header', format: AUDIT_EXPORT_FORMAT, version: 1, exportedAt: now.toISOString(),
    hash: 'sha256 over the RFC 8785 (JCS) encoding of each line\'s event', genesisPrev: GENESIS_PREV, legacyChain: LEGACY_CHAIN,
  })}\n`;
  let legacy: { seq: number; hash: string } | undefined;
  let after = 0;
  for (;;) {
    const page = await source.listAuditEvents({ afterId: after, limit: pageSize });
    let out = '';
    for (const e of page) {
      let link = e.chain;
      if (link === undefined) {
        const seq = (legacy?.seq ?? 0) + 1;
        const prev = legacy?.hash ?? GENESIS_PREV;
        link = { chain: LEGACY_CHAIN, seq, prev, hash: hashOfHashedEvent(hashedAuditEvent(e, { chain: LEGACY_CHAIN, seq, prev })) };
        legacy = { seq, hash: link.hash };
      }
      out += `${JSON.stringify({ record: 'event', event: hashedAuditEvent(e, link), hash: link.hash })}\n`;
    }
    if (out !== '') yield out;
    if (page.length < pageSize) return;
    after = page[page.length - 1].id;
  }
}
