/**
 * Incident response for a compromised station: revoke every certificate it had issued in a time
 * window. The audit trail says which those are: each certificate.issued event names its station as
 * actor and commits in the same transaction as the certificate, so none is missed.
 */
import type { Registry } from '../registry/port.js';
import { hasCode } from '../errors/index.js';
import { revocationReason, type RevocationService } from '../ca/revocation.js';

export interface RevokeIssuedResult {
  stationId: string;
  revoked: string[];
  alreadyRevoked: string[];
}

export async function revokeIssuedByStation(
  registry: Registry, revocation: RevocationService, stationId: string,
  window: { since: Date; until: Date; reason: unknown }, actor: string,
): Promise<RevokeIssuedResult> {
  await registry.getStation(stationId);
  const reason = revocationReason(window.reason ?? 'keyCompromise');
  const result: RevokeIssuedResult = { stationId, revoked: [], alreadyRevoked: [] };
  let afterId = 0;
  for (;;) {
    const events = await registry.listAuditEvents({
      type: 'certificate.issued', actor: `station:${stationId}`, since: window.since, until: window.until, afterId, limit: 1000,
    });
    for (const e of events) {
      if (!e.serialHex) continue;
      try {
        await revocation.revokeCertificate(e.serialHex, { reason }, actor);
        result.revoked.push(e.serialHex);
      } catch (err) {
        if (!hasCode(err, 'KAKUIN_E_CERTIFICATE_STATE')) throw err;
        result.alreadyRevoked.push(e.serialHex);
      }
    }
    if (events.length < 1000) break;
    afterId = events[events.length - 1].id;
  }
  await registry.appendAuditEvent({
    type: 'station.issued-revoked', actor,
    details: { stationId, since: window.since.toISOString(), until: window.until.toISOString(), reason, revoked: result.revoked.length },
  });
  return result;
}
