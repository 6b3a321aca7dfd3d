/**
 * Registry contract, what CRLs and OCSP responses are made from and stored in (issue 3):
 * forEachCrlEntry (full and delta), forEachCertificateStatus, CRL numbers, stored CRLs and
 * pre-signed OCSP responses. Run by runRegistryContract inside its describe.
 *
 * Conventions this suite fixes beyond port.ts:
 * - a delta row released from hold comes as status `good` with no reason or dates (the CRL builder
 *   writes it as removeFromCRL);
 * - an exception thrown by a `forEach*` callback ends the walk and rejects with that same exception;
 * - CRL numbers, stored CRLs and OCSP responses belong to a recorded issuer (KAKUIN_E_ISSUER_NOT_FOUND);
 * - putCrl keeps the CRL with the higher number: storing an older one changes nothing;
 * - CRL numbers are bigint from 0 to 2^159 - 1 (RFC 5280 §5.2.3: at most 20 octets), a delta has a
 *   baseNumber and a full CRL none, nextUpdate is after thisUpdate (else KAKUIN_E_VALIDATION);
 * - putOcspResponses checks every response before storing any, and stores all or none.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { CertificateRecord, CertificateStatus, CrlReason, CrlRecord, Registry, StoredOcspResponse } from '../../registry/port.js';
import { contractSteps, expectKakuinError, fakeCertificate, issuance, ISSUER_ID, randomSerialHex } from './registry-fixtures.js';

const STATION = 'station';
const at = (s: number) => new Date(Date.UTC(2030, 0, 1) + s * 1000);

interface Row {
  serialHex: string;
  status: CertificateStatus;
  revokedAtMs?: number;
  reason?: CrlReason;
  invalidityDateMs?: number;
  notAfterMs: number;
}

export function runCrlOcspContract(get: () => Registry): void {
  describe('CRLs and OCSP responses (with a second issuer, station)', function () {
    defineCrlOcspTests(get);
  });
}

function defineCrlOcspTests(get: () => Registry): void {
  const steps = contractSteps(get);

  beforeEach(async function () {
    await get().putIssuer({ id: STATION, kind: 'station', certificateDer: randomBytes(300), keyUri: 'file:station.key', parentId: 'root' });
  });

  function collect(into: Row[]) {
    return (serialHex: string, status: CertificateStatus, revokedAtMs: number | undefined, reason: CrlReason | undefined,
      invalidityDateMs: number | undefined, notAfterMs: number) => {
      const row: Row = { serialHex, status, notAfterMs };
      if (revokedAtMs !== undefined) row.revokedAtMs = revokedAtMs;
      if (reason !== undefined) row.reason = reason;
      if (invalidityDateMs !== undefined) row.invalidityDateMs = invalidityDateMs;
      into.push(row);
    };
  }

  async function crlRows(issuerId: string, changedAfterSeq?: number): Promise<Row[]> {
    const rows: Row[] = [];
    await get().forEachCrlEntry(issuerId, changedAfterSeq === undefined ? {} : { changedAfterSeq }, collect(rows));
    return rows.sort((a, b) => a.serialHex.localeCompare(b.serialHex));
  }

  async function statusRows(issuerId: string): Promise<Row[]> {
    const rows: Row[] = [];
    await get().forEachCertificateStatus(issuerId, collect(rows));
    return rows.sort((a, b) => a.serialHex.localeCompare(b.serialHex));
  }

  const bySerial = (rows: Row[]) => [...rows].sort((a, b) => a.serialHex.localeCompare(b.serialHex));
  const revokedRow = (c: CertificateRecord, reason: CrlReason, s = 100, invalidity?: number): Row => ({
    serialHex: c.serialHex, status: 'revoked', revokedAtMs: at(s).getTime(), reason, notAfterMs: c.notAfter.getTime(),
    ...(invalidity !== undefined && { invalidityDateMs: at(invalidity).getTime() }),
  });
  const heldRow = (c: CertificateRecord): Row => ({
    serialHex: c.serialHex, status: 'held', revokedAtMs: at(50).getTime(), reason: 'certificateHold', notAfterMs: c.notAfter.getTime(),
  });
  const goodRow = (c: CertificateRecord): Row => ({ serialHex: c.serialHex, status: 'good', notAfterMs: c.notAfter.getTime() });

  async function change(serialHex: string, to: CertificateStatus, reason?: CrlReason, from: CertificateStatus[] = ['good', 'held'], invalidity?: number) {
    await get().applyStatusChange({
      certificates: [{
        serialHex, from, to,
        ...(to !== 'good' && { reason, revokedAt: at(to === 'held' ? 50 : 100) }),
        ...(invalidity !== undefined && { invalidityDate: at(invalidity) }),
      }],
      audit: [],
    });
  }

  describe('CRL entries and certificate statuses', function () {
    it('full CRL: every revoked or held certificate of the issuer; delta: what changed after the base seq', async function () {
      const d = await steps.device(await steps.manufacturer());
      const issue = (issuerId = ISSUER_ID) => steps.issue({ issuerId, deviceId: d.id });
      const [a, b, c, dd, e, f] = [await issue(), await issue(), await issue(), await issue(), await issue(), await issue()];
      const s = await issue(STATION);
      await change(a.serialHex, 'revoked', 'keyCompromise', ['good'], 90);
      await change(b.serialHex, 'held', 'certificateHold', ['good']);
      await change(dd.serialHex, 'held', 'certificateHold', ['good']);
      await change(f.serialHex, 'held', 'certificateHold', ['good']);
      await change(s.serialHex, 'revoked', 'superseded');
      const base = await get().latestFeedSeq();
      expect(await crlRows(ISSUER_ID, base)).to.deep.equal([]);

      await change(c.serialHex, 'revoked', 'superseded');
      await change(dd.serialHex, 'good', undefined, ['held']);
      await change(f.serialHex, 'revoked', 'affiliationChanged', ['held']);
      const g = await issue();
      await change(g.serialHex, 'held', 'certificateHold', ['good']);

      expect(await crlRows(ISSUER_ID)).to.deep.equal(bySerial([
        revokedRow(a, 'keyCompromise', 100, 90), heldRow(b), revokedRow(c, 'superseded'), revokedRow(f, 'affiliationChanged'), heldRow(g),
      ]));
      expect(await crlRows(ISSUER_ID, base)).to.deep.equal(bySerial([
        revokedRow(c, 'superseded'), goodRow(dd), revokedRow(f, 'affiliationChanged'), heldRow(g),
      ]));
      expect(await crlRows(ISSUER_ID, await get().latestFeedSeq())).to.deep.equal([]);
      expect(await crlRows(STATION)).to.deep.equal([revokedRow(s, 'superseded')]);
      expect(await crlRows(STATION, base)).to.deep.equal([]);
      expect(await crlRows('no-such-issuer')).to.deep.equal([]);

      expect(await statusRows(ISSUER_ID)).to.deep.equal(bySerial([
        revokedRow(a, 'keyCompromise', 100, 90), heldRow(b), revokedRow(c, 'superseded'), goodRow(dd), goodRow(e),
        revokedRow(f, 'affiliationChanged'), heldRow(g),
      ]));
      expect(await statusRows(STATION)).to.deep.equal([revokedRow(s, 'superseded')]);
    });

    it('a delta lists a certificate released after its base even when it is good again', async function () {
      const { serialHex } = await steps.issue();
      await change(serialHex, 'held', 'certificateHold', ['good']);
      const base = await get().latestFeedSeq();
      await change(serialHex, 'good', undefined, ['held']);
      expect((await crlRows(ISSUER_ID, base)).map((r) => [r.serialHex, r.status])).to.deep.equal([[serialHex, 'good']]);
      expect(await crlRows(ISSUER_ID)).to.deep.equal([]);
      expect(await crlRows(ISSUER_ID, await get().latestFeedSeq())).to.deep.equal([]);
    });

    it('an exception thrown by the callback ends the walk and rejects with that exception', async function () {
      for (let i = 0; i < 3; i++) await change((await steps.issue()).serialHex, 'revoked', 'unspecified');
      const mine = new Error('stop here');
      let calls = 0;
      let caught: unknown;
      try {
        await get().forEachCrlEntry(ISSUER_ID, {}, () => {
          calls++;
          throw mine;
        });
      } catch (e) {
        caught = e;
      }
      expect(caught).to.equal(mine);
      expect(calls).to.equal(1);
      caught = undefined;
      await get().forEachCertificateStatus(ISSUER_ID, () => { throw mine; }).catch((e: unknown) => { caught = e; });
      expect(caught).to.equal(mine);
      expect((await crlRows(ISSUER_ID)).length).to.equal(3);
    });

    it('refuses a negative changedAfterSeq with KAKUIN_E_VALIDATION', async function () {
      await expectKakuinError(get().forEachCrlEntry(ISSUER_ID, { changedAfterSeq: -1 }, () => undefined), 'KAKUIN_E_VALIDATION');
    });
  });

  describe('CRL numbers and stored CRLs', function () {
    function crl(fields: Partial<CrlRecord> & Pick<CrlRecord, 'kind' | 'number'>): CrlRecord {
      return {
        issuerId: ISSUER_ID, thisUpdate: at(0), nextUpdate: at(86_400), feedSeq: 0, der: randomBytes(200),
        ...(fields.kind === 'delta' && { baseNumber: 1n }), ...fields,
      };
    }

    it('reserves 1, 2, 3 ... per issuer, one sequence for full and delta CRLs', async function () {
      expect(await get().nextCrlNumber(ISSUER_ID)).to.equal(1n);
      expect(await get().nextCrlNumber(ISSUER_ID)).to.equal(2n);
      expect(await get().nextCrlNumber(STATION)).to.equal(1n);
      const full = await get().nextCrlNumber(ISSUER_ID);
      await get().putCrl(crl({ kind: 'full', number: full, feedSeq: 5 }));
      const delta = await get().nextCrlNumber(ISSUER_ID);
      await get().putCrl(crl({ kind: 'delta', number: delta, baseNumber: full, feedSeq: 7 }));
      expect([full, delta]).to.deep.equal([3n, 4n]);
      expect((await get().getLatestCrl(ISSUER_ID, 'full'))?.number).to.equal(3n);
      const storedDelta = await get().getLatestCrl(ISSUER_ID, 'delta');
      expect(storedDelta?.number).to.equal(4n);
      expect(storedDelta?.baseNumber).to.equal(3n);
      const many = await Promise.all(Array.from({ length: 20 }, () => get().nextCrlNumber(ISSUER_ID)));
      expect([...many].sort((x, y) => (x < y ? -1 : 1))).to.deep.equal(Array.from({ length: 20 }, (_, i) => BigInt(i + 5)));
      expect(await get().nextCrlNumber(STATION)).to.equal(2n);
    });

    it('refuses an unknown issuer with KAKUIN_E_ISSUER_NOT_FOUND', async function () {
      await expectKakuinError(get().nextCrlNumber('no-such-issuer'), 'KAKUIN_E_ISSUER_NOT_FOUND');
      await expectKakuinError(get().putCrl(crl({ kind: 'full', number: 1n, issuerId: 'no-such-issuer' })), 'KAKUIN_E_ISSUER_NOT_FOUND');
    });

    it('stores and reads back a CRL exactly, numbers beyond 64 bits included', async function () {
      expect(await get().getLatestCrl(ISSUER_ID, 'full')).to.equal(undefined);
      const full = crl({ kind: 'full', number: 2n ** 100n + 7n, feedSeq: 42, thisUpdate: at(10), nextUpdate: at(3600) });
      await get().putCrl(full);
      expect(await get().getLatestCrl(ISSUER_ID, 'full')).to.deep.equal(full);
      const delta = crl({ kind: 'delta', number: 2n ** 100n + 8n, baseNumber: 2n ** 100n + 7n, feedSeq: 43 });
      await get().putCrl(delta);
      expect(await get().getLatestCrl(ISSUER_ID, 'delta')).to.deep.equal(delta);
      expect(await get().getLatestCrl(ISSUER_ID, 'full')).to.deep.equal(full);
      expect(await get().getLatestCrl(STATION, 'full')).to.equal(undefined);
      const largest = crl({ kind: 'full', number: 2n ** 159n - 1n });
      await get().putCrl(largest);
      expect((await get().getLatestCrl(ISSUER_ID, 'full'))?.number).to.equal(2n ** 159n - 1n);
    });

    it('keeps the CRL with the higher number: an older one stored late changes nothing', async function () {
      const ten = crl({ kind: 'full', number: 10n });
      await get().putCrl(ten);
      await get().putCrl(crl({ kind: 'full', number: 9n }));
      expect(await get().getLatestCrl(ISSUER_ID, 'full')).to.deep.equal(ten);
      const again = crl({ kind: 'full', number: 10n, feedSeq: 3 });
      await get().putCrl(again);
      expect(await get().getLatestCrl(ISSUER_ID, 'full')).to.deep.equal(again);
      const hundred = crl({ kind: 'full', number: 100n });
      await get().putCrl(hundred);
      await get().putCrl(crl({ kind: 'full', number: 99n }));
      expect(await get().getLatestCrl(ISSUER_ID, 'full')).to.deep.equal(hundred);
    });

    it('refuses malformed CRL records with KAKUIN_E_VALIDATION', async function () {
      const bad: CrlRecord[] = [
        crl({ kind: 'delta', number: 2n, baseNumber: undefined }),
        crl({ kind: 'full', number: 2n, baseNumber: 1n }),
        crl({ kind: 'full', number: -1n }),
        crl({ kind: 'full', number: 2n ** 159n }),
        crl({ kind: 'full', number: 5 as unknown as bigint }),
        crl({ kind: 'full', number: 1n, thisUpdate: at(10), nextUpdate: at(10) }),
        crl({ kind: 'full', number: 1n, feedSeq: -1 }),
        crl({ kind: 'full', number: 1n, der: Buffer.alloc(0) }),
        crl({ kind: 'weekly' as 'full', number: 1n }),
      ];
      for (const record of bad) await expectKakuinError(get().putCrl(record), 'KAKUIN_E_VALIDATION');
      expect(await get().getLatestCrl(ISSUER_ID, 'full')).to.equal(undefined);
      expect(await get().getLatestCrl(ISSUER_ID, 'delta')).to.equal(undefined);
    });
  });

  describe('pre-signed OCSP responses', function () {
    const response = (issuerId: string, serialHex: string, s = 0): StoredOcspResponse => ({
      issuerId, serialHex, der: randomBytes(120), thisUpdate: at(s), nextUpdate: at(s + 3600),
    });

    it('inserts, replaces and reads back responses, by issuer or all', async function () {
      const [x, y, z] = [randomSerialHex(), randomSerialHex(), randomSerialHex()];
      const first = [response(ISSUER_ID, x), response(ISSUER_ID, y), response(STATION, z)];
      await get().putOcspResponses(first);
      expect(await get().getOcspResponse(ISSUER_ID, x)).to.deep.equal(first[0]);
      expect(await get().getOcspResponse(ISSUER_ID, x.toLowerCase())).to.deep.equal(first[0]);
      expect(await get().getOcspResponse(STATION, x)).to.equal(undefined);
      expect(await get().getOcspResponse(ISSUER_ID, randomSerialHex())).to.equal(undefined);

      const newer = response(ISSUER_ID, x.toLowerCase(), 600);
      await get().putOcspResponses([newer]);
      expect(await get().getOcspResponse(ISSUER_ID, x)).to.deep.equal({ ...newer, serialHex: x });

      const seen = (issuerId?: string) => {
        const out: StoredOcspResponse[] = [];
        return get().forEachOcspResponse(issuerId, (r) => out.push(r)).then(() => out.sort((a, b) => a.serialHex.localeCompare(b.serialHex)));
      };
      const sorted = (rs: StoredOcspResponse[]) => [...rs].sort((a, b) => a.serialHex.localeCompare(b.serialHex));
      expect(await seen(ISSUER_ID)).to.deep.equal(sorted([{ ...newer, serialHex: x }, first[1]]));
      expect(await seen(STATION)).to.deep.equal([first[2]]);
      expect(await seen()).to.deep.equal(sorted([{ ...newer, serialHex: x }, first[1], first[2]]));
      await get().putOcspResponses([]);
      expect(await seen()).to.have.length(3);
    });

    it('stores all or none: a malformed response or an unknown issuer refuses the whole call', async function () {
      const good = response(ISSUER_ID, randomSerialHex());
      await expectKakuinError(get().putOcspResponses([good, { ...response(ISSUER_ID, randomSerialHex()), der: Buffer.alloc(0) }]), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(get().putOcspResponses([good, response(ISSUER_ID, 'not hex')]), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(get().putOcspResponses([good, { ...response(ISSUER_ID, randomSerialHex()), nextUpdate: at(-1) }]), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(get().putOcspResponses([good, response('no-such-issuer', randomSerialHex())]), 'KAKUIN_E_ISSUER_NOT_FOUND');
      expect(await get().getOcspResponse(ISSUER_ID, good.serialHex)).to.equal(undefined);
    });

    it('keeps responses of a certificate whatever happens to it later (the responder re-signs them)', async function () {
      const cert = await get().recordIssuance(issuance(fakeCertificate({ issuerId: ISSUER_ID })));
      const r = response(ISSUER_ID, cert.serialHex);
      await get().putOcspResponses([r]);
      await change(cert.serialHex, 'revoked', 'keyCompromise');
      expect(await get().getOcspResponse(ISSUER_ID, cert.serialHex)).to.deep.equal(r);
    });
  });
}
