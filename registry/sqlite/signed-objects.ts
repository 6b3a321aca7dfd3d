/**
 * What the CA publishes and the OCSP responder serves: the per-issuer CRL-number sequence, the
 * latest full and delta CRL of each issuer, and pre-signed OCSP responses.
 *
 * CRL numbers: RFC 5280 §5.2.3 — "a monotonically increasing sequence number for a given CRL scope
 * and CRL issuer", shared by the full and delta CRLs of the scope (§5.2.4), and at most 20 octets.
 * `nextCrlNumber` is one UPSERT statement, so two processes reserving at once get different numbers.
 * `putCrl` keeps the CRL with the higher number: a slow build that finishes after a newer one must
 * not put the older CRL back in front of relying parties.
 */
import type Database from 'better-sqlite3';
import type { CrlRecord, StoredOcspResponse } from '../port.js';
import type { CrlRow, OcspResponseRow } from '../records/prepared.js';
import { crlFromRow, ocspResponseFromRow } from './records.js';

/** The checks of a CRL and an OCSP response are every adapter's (registry/records/prepared.ts). */
export { crlRow, ocspResponseRow } from '../records/prepared.js';

const OCSP_COLUMNS = 'issuer_id, serial_hex, der, this_update, next_update';
/** A row of OCSP_COLUMNS in raw mode. */
type RawOcspRow = [string, string, Buffer, number, number];

/**
 * Keeps the row with the higher CRL number. Decimal TEXT without leading zeros: the longer number
 * is the larger, and equal lengths compare as text. Shared with large-crl-writer-worker.ts.
 */
export const UPSERT_CRL_SQL = `INSERT INTO crls (issuer_id, kind, number, base_number, this_update, next_update, feed_seq, der)
  VALUES (:issuer_id, :kind, :number, :base_number, :this_update, :next_update, :feed_seq, :der)
  ON CONFLICT (issuer_id, kind) DO UPDATE SET number = excluded.number, base_number = excluded.base_number,
    this_update = excluded.this_update, next_update = excluded.next_update, feed_seq = excluded.feed_seq, der = excluded.der
  WHERE length(excluded.number) > length(crls.number)
     OR (length(excluded.number) = length(crls.number) AND excluded.number >= crls.number)`;

export class SignedObjectStore {
  private readonly reserveCrlNumber: Database.Statement<[string]>;
  private readonly upsertCrl: Database.Statement<[CrlRow]>;
  private readonly latestCrl: Database.Statement<[string, string], CrlRow>;
  private readonly upsertOcsp: Database.Statement<[OcspResponseRow]>;
  private readonly ocspResponse: Database.Statement<[string, string], OcspResponseRow>;
  private readonly ocspOfIssuer: Database.Statement<[string]>;
  private readonly ocspAll: Database.Statement<[]>;
  private readonly putOcspBatch: Database.Transaction<(rows: OcspResponseRow[]) => void>;

  constructor(db: Database.Database) {
    this.reserveCrlNumber = db.prepare(`INSERT INTO crl_numbers (issuer_id, last_number) VALUES (?, 1)
      ON CONFLICT (issuer_id) DO UPDATE SET last_number = last_number + 1 RETURNING last_number`).safeIntegers(true);
    this.upsertCrl = db.prepare(UPSERT_CRL_SQL);
    this.latestCrl = db.prepare('SELECT * FROM crls WHERE issuer_id = ? AND kind = ?');
    this.upsertOcsp = db.prepare(`INSERT INTO ocsp_responses (issuer_id, serial_hex, der, this_update, next_update)
      VALUES (:issuer_id, :serial_hex, :der, :this_update, :next_update)
      ON CONFLICT (issuer_id, serial_hex) DO UPDATE SET der = excluded.der, this_update = excluded.this_update,
        next_update = excluded.next_update`);
    this.ocspResponse = db.prepare('SELECT * FROM ocsp_responses WHERE issuer_id = ? AND serial_hex = ?');
    // Raw rows (arrays) for the walks: a responder start reads every response (a million at fleet
    // scale), and named-column row objects cost a third more than building the records directly.
    this.ocspOfIssuer = db.prepare(`SELECT ${OCSP_COLUMNS} FROM ocsp_responses WHERE issuer_id = ?`).raw(true);
    this.ocspAll = db.prepare(`SELECT ${OCSP_COLUMNS} FROM ocsp_responses`).raw(true);
    this.putOcspBatch = db.transaction((rows: OcspResponseRow[]) => {
      for (const row of rows) this.upsertOcsp.run(row);
    });
  }

  nextCrlNumber(issuerId: string): bigint {
    return (this.reserveCrlNumber.get(issuerId) as { last_number: bigint }).last_number;
  }

  putCrl(row: CrlRow): void {
    this.upsertCrl.run(row);
  }

  getLatestCrl(issuerId: string, kind: 'full' | 'delta'): CrlRecord | undefined {
    const row = this.latestCrl.get(issuerId, kind);
    return row === undefined ? undefined : crlFromRow(row);
  }

  putOcspResponses(rows: OcspResponseRow[]): void {
    this.putOcspBatch.immediate(rows);
  }

  getOcspResponse(issuerId: string, serialHex: string): StoredOcspResponse | undefined {
    const row = this.ocspResponse.get(issuerId, serialHex);
    return row === undefined ? undefined : ocspResponseFromRow(row);
  }

  forEachOcspResponse(issuerId: string | undefined, row: (r: StoredOcspResponse) => void): void {
    const rows = (issuerId === undefined ? this.ocspAll.iterate() : this.ocspOfIssuer.iterate(issuerId)) as IterableIterator<RawOcspRow>;
    for (const r of rows) row({ issuerId: r[0], serialHex: r[1], der: r[2], thisUpdate: new Date(r[3]), nextUpdate: new Date(r[4]) });
  }
}
