/**
 * Streaming certificate status for CRL building and bulk OCSP signing. Rows come straight from a
 * better-sqlite3 iterator in raw mode (one short-lived array per row, nothing kept), so a CRL of a
 * million entries costs no memory per entry here. The caller's callback runs inside the iteration:
 * it must not call back into the same connection (the CRL builder runs on its own connection in a
 * worker thread anyway).
 *
 * Full CRL and delta revoked/held rows come from the partial covering index `certificates_on_crl`,
 * released rows from `certificates_released` (schema.ts step 2): neither touches the table rows.
 * `forEachCertificateStatus` walks the table itself: it is for the rare re-signing of every OCSP
 * response, and an index over every certificate would slow every issuance down for it.
 */
import type Database from 'better-sqlite3';
import type { CertificateStatusRow } from '../port.js';

/** serial_hex, status, revoked_at, reason, invalidity_date, not_after */
type RawStatusRow = [string, string, number | null, string | null, number | null, number];

const COLUMNS = 'serial_hex, status, revoked_at, reason, invalidity_date, not_after';
// The partial indexes are used only when the query repeats their WHERE terms exactly.
const ON_CRL = `status IN ('revoked', 'held')`;
const RELEASED = `status = 'good' AND released_seq IS NOT NULL`;

/** The statements' SQL, exported so a test can check their query plans (covering index, no table scan). */
export const CRL_ENTRY_QUERIES = {
  full: `SELECT ${COLUMNS} FROM certificates WHERE issuer_id = ? AND ${ON_CRL}`,
  changedAfter: `SELECT ${COLUMNS} FROM certificates WHERE issuer_id = ? AND ${ON_CRL} AND status_seq > ?`,
  // A released certificate is good and carries no CRL-entry fields: constants keep the index covering.
  releasedAfter: `SELECT serial_hex, 'good', NULL, NULL, NULL, not_after FROM certificates
    WHERE issuer_id = ? AND ${RELEASED} AND released_seq > ?`,
  every: `SELECT ${COLUMNS} FROM certificates WHERE issuer_id = ?`,
} as const;

export class CertificateStatusReader {
  private readonly full: Database.Statement<[string]>;
  private readonly changedAfter: Database.Statement<[string, number]>;
  private readonly releasedAfter: Database.Statement<[string, number]>;
  private readonly all: Database.Statement<[string]>;
  private readonly deltaSnapshot: Database.Transaction<(issuerId: string, afterSeq: number, row: CertificateStatusRow) => void>;

  constructor(db: Database.Database) {
    this.full = db.prepare(CRL_ENTRY_QUERIES.full).raw(true);
    this.changedAfter = db.prepare(CRL_ENTRY_QUERIES.changedAfter).raw(true);
    this.releasedAfter = db.prepare(CRL_ENTRY_QUERIES.releasedAfter).raw(true);
    this.all = db.prepare(CRL_ENTRY_QUERIES.every).raw(true);
    // Both halves of a delta read one snapshot: a release committed between them cannot be missed.
    this.deltaSnapshot = db.transaction((issuerId: string, afterSeq: number, row: CertificateStatusRow) => {
      emit(this.changedAfter.iterate(issuerId, afterSeq), row);
      emit(this.releasedAfter.iterate(issuerId, afterSeq), row);
    });
  }

  crlEntries(issuerId: string, changedAfterSeq: number | undefined, row: CertificateStatusRow): void {
    if (changedAfterSeq === undefined) emit(this.full.iterate(issuerId), row);
    else this.deltaSnapshot(issuerId, changedAfterSeq, row);
  }

  everyCertificate(issuerId: string, row: CertificateStatusRow): void {
    emit(this.all.iterate(issuerId), row);
  }
}

function emit(rows: IterableIterator<unknown>, row: CertificateStatusRow): void {
  for (const r of rows as IterableIterator<RawStatusRow>) {
    row(r[0], r[1] as 'good', r[2] ?? undefined, (r[3] ?? undefined) as Parameters<CertificateStatusRow>[3], r[4] ?? undefined, r[5]);
  }
}
