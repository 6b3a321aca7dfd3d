/** JSON shapes of the management API: the contract clients and test harnesses rely on. */
import { toPem } from '../pkix/index.js';
import type { AuditEvent, CertificateRecord, Device, Manufacturer } from '../registry/port.js';

export function deviceJson(d: Device) {
  return {
    id: d.id,
    manufacturerId: d.manufacturerId,
    serialNumber: d.serialNumber,
    identifiers: d.identifiers,
    model: d.model,
    hardwareModuleName: d.hardwareModuleName,
    status: d.status,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
    // A retired device's disposal record (README "Bulk actions"): why, the ticket, the evidence.
    ...(d.decommission !== undefined && { decommission: { ...d.decommission, at: d.decommission.at.toISOString() } }),
  };
}

export function manufacturerJson(m: Manufacturer) {
  return { id: m.id, name: m.name, createdAt: m.createdAt.toISOString() };
}

/** RFC 5280's 99991231235959Z is shown as it is written in the certificate. */
function timeJson(d: Date): string {
  return d.toISOString();
}

export function certificateJson(c: CertificateRecord) {
  return {
    serialHex: c.serialHex,
    issuerId: c.issuerId,
    status: c.status,
    deviceId: c.deviceId,
    profile: c.profile,
    notBefore: timeJson(c.notBefore),
    notAfter: timeJson(c.notAfter),
    fingerprintSha256: c.fingerprintSha256,
    reason: c.reason,
    revokedAt: c.revokedAt?.toISOString(),
    invalidityDate: c.invalidityDate?.toISOString(),
    certificate: toPem('CERTIFICATE', c.der),
  };
}

export function certificateSummaryJson(c: CertificateRecord) {
  return { serialHex: c.serialHex, status: c.status, notBefore: timeJson(c.notBefore), notAfter: timeJson(c.notAfter) };
}

export function auditEventJson(e: AuditEvent) {
  return { id: e.id, at: e.at.toISOString(), type: e.type, actor: e.actor, deviceId: e.deviceId, serialHex: e.serialHex, details: e.details };
}

export function pemChain(ders: Buffer[]): string {
  return ders.map((d) => toPem('CERTIFICATE', d)).join('');
}
