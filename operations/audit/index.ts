/** The tamper-evident audit trail's checkpoints and verification (docs/audit-trail.md). */
export { signCheckpoint, checkpointProblem, CHECKPOINT_VERSION, type AuditSigningIdentity, type CheckpointDetails, type CheckpointStatement } from './checkpoint.js';
export { AuditCheckpointer, legacyChainHead, type AuditCheckpointerOptions, type CheckpointRegistry } from './checkpointer.js';
export { verifyAuditTrail, type AuditProblem, type AuditProblemCode, type AuditTrailSource, type AuditVerification, type CheckpointCopy, type VerifyOptions } from './verify.js';
export { auditExportLines, AUDIT_EXPORT_FORMAT } from './export.js';
