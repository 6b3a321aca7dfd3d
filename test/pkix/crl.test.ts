/**
 * CRLs (RFC 5280 §5): what pkix writes, OpenSSL and pkijs must read back identically, and what
 * OpenSSL writes, pkix must read. `openssl` and pkijs are the independent peers.
 *
 * test/vectors/crl-openssl-p256.der was made by `openssl ca -gencrl` (OpenSSL 3.0) for the CA in
 * crl-ocsp-openssl-ca-p256-cert.der, from an index.txt with revoked serials 0A1B2C3D (keyTime →
 * keyCompromise + invalidity date 2024-12-31T12:00:00Z), 00FF (superseded), 7F000001 (no reason)
 * and 12 (certificateHold), and crlnumber 1000 (hex, so 4096).
 */
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import * as pkijs from 'pkijs';
import {
  authorityKeyIdentifierExt, crlDistributionPointsExt, derChildren, derExplicit, derGeneralizedTime, derInteger, derNull, derSequence,
  derTime, encodeExtension, encodeSignatureAlgorithm, parseCertificate, readDer, toPem,
} from '../../pkix/index.js';
import {
  CRL_REASON_CODES, crlReasonFromCode, type CrlReason, encodeCertificateList, encodeTbsCertList, RevokedEntriesWriter, type TbsCertListInput,
} from '../../pkix/crl.js';
import { forEachCrlEntry, parseCrl, type CrlEntry, verifyCrlSignature } from '../../pkix/crl-read.js';
import { makeTempDir, openssl, opensslOk, vectorPath } from '../support/index.js';
import { issue, makeCa, newSerial, prng, signWith, type TestCa, thrownCode, writeIn } from './crl-ocsp-fixtures.js';

const DAY = 86_400_000;
const REASONS = Object.keys(CRL_REASON_CODES) as CrlReason[];
const OPENSSL_REASON_TEXT: Record<CrlReason, string> = {
  unspecified: 'Unspecified', keyCompromise: 'Key Compromise', cACompromise: 'CA Compromise', affiliationChanged: 'Affiliation Changed',
  superseded: 'Superseded', cessationOfOperation: 'Cessation Of Operation', certificateHold: 'Certificate Hold',
  removeFromCRL: 'Remove From CRL', privilegeWithdrawn: 'Privilege Withdrawn', aACompromise: 'AA Compromise',
};

/** As OpenSSL prints an ASN1_TIME: "Nov  3 05:19:25 2026 GMT". */
function opensslTime(ms: number): string {
  const d = new Date(ms);
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()} GMT`;
}

interface EntryInput {
  serial: Buffer;
  revokedAt: number;
  reason?: CrlReason;
  invalidAt?: number;
}

/** The same entry through the generic DER encoder: an independent path to compare the writer with. */
function genericEntry(e: EntryInput): Buffer {
  const exts: Buffer[] = [];
  if (e.reason !== undefined && e.reason !== 'unspecified') {
    exts.push(encodeExtension('2.5.29.21', false, Buffer.from([0x0a, 0x01, CRL_REASON_CODES[e.reason]])));
  }
  if (e.invalidAt !== undefined) exts.push(encodeExtension('2.5.29.24', false, derGeneralizedTime(new Date(e.invalidAt))));
  const parts = [derInteger(e.serial), derTime(new Date(e.revokedAt))];
  if (exts.length > 0) parts.push(derSequence(...exts));
  return derSequence(...parts);
}

function buildCrl(ca: TestCa, entries: EntryInput[], extra: Partial<TbsCertListInput> = {}, thisUpdate = Date.now()): Buffer {
  const w = new RevokedEntriesWriter();
  for (const e of entries) w.add(e.serial, e.revokedAt, e.reason, e.invalidAt);
  const tbs = encodeTbsCertList({
    signatureAlgorithm: ca.alg, issuer: ca.nameDer, thisUpdate: new Date(thisUpdate), nextUpdate: new Date(thisUpdate + 7 * DAY),
    revokedEntries: w.finish(), crlNumber: 1n, authorityKeyId: ca.keyId, ...extra,
  });
  return encodeCertificateList(tbs, ca.alg, signWith(ca, tbs));
}

function collect(der: Buffer): CrlEntry[] {
  const out: CrlEntry[] = [];
  forEachCrlEntry(parseCrl(der), (e) => out.push(e));
  return out;
}

/** Blocks of `openssl crl -text` output, one per revoked entry, keyed by serial hex. */
function opensslEntries(text: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const body = text.split('Revoked Certificates:')[1] ?? '';
  for (const block of body.split(/\n\s*Serial Number: /).slice(1)) blocks.set(block.split('\n')[0].trim(), block);
  return blocks;
}

describe('pkix CRL (RFC 5280 §5)', function () {
  let tmp: { dir: string; cleanup: () => void };
  let p256: TestCa;
  let rsa: TestCa;

  before(function () {
    tmp = makeTempDir('kakuin-crl-');
    p256 = makeCa('p256', 'CRL Test CA P-256');
    rsa = makeCa('rsa', 'CRL Test CA RSA');
  });

  after(function () {
    tmp.cleanup();
  });

  describe('reason codes', function () {
    it('maps every CRLReason to its RFC 5280 §5.3.1 value and back, with 7 unused', function () {
      expect(CRL_REASON_CODES).to.deep.equal({
        unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4, cessationOfOperation: 5,
        certificateHold: 6, removeFromCRL: 8, privilegeWithdrawn: 9, aACompromise: 10,
      });
      for (const r of REASONS) expect(crlReasonFromCode(CRL_REASON_CODES[r])).to.equal(r);
      for (const code of [7, 11, -1, 1.5, NaN, 255]) expect(crlReasonFromCode(code)).to.equal(undefined);
    });
  });

  describe('RevokedEntriesWriter', function () {
    it('writes exactly what the generic DER encoder writes, for 3,000 random entries', function () {
      const rnd = prng(20240601);
      const inputs: EntryInput[] = [];
      for (let i = 0; i < 3000; i++) {
        const len = 1 + Math.floor(rnd() * 20);
        const serial = Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256)));
        serial[0] = serial[0] || 1;
        if (len === 20) serial[0] &= 0x7f; // 20 octets once encoded
        if (len === 20 && serial[0] === 0) serial[0] = 1;
        // 1900–2150: both sides of the UTCTime window (1950–2049, RFC 5280 §5.1.2.4).
        const revokedAt = Math.floor(Date.UTC(1900, 0, 1) + rnd() * (Date.UTC(2150, 0, 1) - Date.UTC(1900, 0, 1)));
        const e: EntryInput = { serial, revokedAt };
        if (rnd() < 0.7) e.reason = REASONS[Math.floor(rnd() * REASONS.length)];
        if (rnd() < 0.4) e.invalidAt = revokedAt - Math.floor(rnd() * 1000 * DAY);
        inputs.push(e);
      }
      const w = new RevokedEntriesWriter(1); // grows many times on the way
      for (const e of inputs) w.add(e.serial, e.revokedAt, e.reason, e.invalidAt);
      expect(w.count).to.equal(inputs.length);
      const written = w.finish();
      expect(w.byteLength).to.equal(written.length);
      const expected = Buffer.concat(inputs.map(genericEntry));
      expect(written.equals(expected), 'writer output differs from the generic encoder').to.equal(true);
    });

    it('switches from UTCTime to GeneralizedTime at 2050 and before 1950 (RFC 5280 §5.1.2.4)', function () {
      const cases: [number, number, string][] = [
        [Date.UTC(2049, 11, 31, 23, 59, 59, 999), 0x17, '491231235959Z'],
        [Date.UTC(2050, 0, 1, 0, 0, 0), 0x18, '20500101000000Z'],
        [Date.UTC(1950, 0, 1, 0, 0, 0), 0x17, '500101000000Z'],
        [Date.UTC(1949, 11, 31, 23, 59, 59), 0x18, '19491231235959Z'],
        [Date.UTC(2000, 1, 29, 12, 0, 0), 0x17, '000229120000Z'],
      ];
      for (const [ms, tag, text] of cases) {
        const w = new RevokedEntriesWriter();
        w.add(Buffer.from([1]), new Date(ms));
        const entry = derChildren(readDer(w.finish()));
        expect(entry[1].tag, text).to.equal(tag);
        expect(entry[1].buf.subarray(entry[1].contentStart, entry[1].end).toString('latin1')).to.equal(text);
      }
    });

    it('always writes invalidityDate as GeneralizedTime (RFC 5280 §5.3.2) and omits reason unspecified (§5.3.1)', function () {
      const w = new RevokedEntriesWriter();
      w.add(Buffer.from([5]), Date.UTC(2030, 0, 1), 'unspecified', Date.UTC(2029, 11, 31, 1, 2, 3));
      const der = w.finish();
      expect(der.includes(Buffer.from('20291231010203Z', 'latin1'))).to.equal(true);
      expect(der.includes(Buffer.from([0x55, 0x1d, 0x15])), 'no reasonCode extension').to.equal(false);
      const w2 = new RevokedEntriesWriter();
      w2.add(Buffer.from([5]), Date.UTC(2030, 0, 1), 'unspecified');
      expect(derChildren(readDer(w2.finish())).length, 'no crlEntryExtensions at all').to.equal(2);
    });

    it('takes serials as hex digits too, with the same bytes as the Buffer form', function () {
      const cases = ['01', '1', '7F', 'FF', '00FF', '0abc', 'FEEDFACE', '5A17C0DE00112233445566778899AABB', '7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF'];
      for (const hex of cases) {
        const a = new RevokedEntriesWriter();
        a.add(hex, 0);
        const b = new RevokedEntriesWriter();
        b.add(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'), 0);
        expect(a.finish().toString('hex'), hex).to.equal(b.finish().toString('hex'));
      }
    });

    it('refuses zero, over-long and non-hex serials, invalid dates, unknown reasons, and entries after finish()', function () {
      const bad: [string, (w: RevokedEntriesWriter) => void][] = [
        ['zero serial', (w) => w.add(Buffer.from([0, 0]), 0)],
        ['empty serial', (w) => w.add(Buffer.alloc(0), 0)],
        ['zero hex serial', (w) => w.add('000', 0)],
        ['21-octet serial', (w) => w.add(Buffer.alloc(21, 1), 0)],
        ['20 octets + sign octet', (w) => w.add(Buffer.alloc(20, 0x80), 0)],
        ['non-hex serial', (w) => w.add('12G4', 0)],
        ['invalid Date', (w) => w.add(Buffer.from([1]), new Date(NaN))],
        ['year 10000', (w) => w.add(Buffer.from([1]), Date.UTC(10000, 0, 1))],
        ['NaN invalidity', (w) => w.add(Buffer.from([1]), 0, 'keyCompromise', NaN)],
        ['unknown reason', (w) => w.add(Buffer.from([1]), 0, 'stolen' as CrlReason)],
        ['after finish', (w) => { w.finish(); w.add(Buffer.from([1]), 0); }],
      ];
      for (const [what, fn] of bad) {
        const w = new RevokedEntriesWriter();
        expect(thrownCode(() => fn(w)), what).to.equal('KAKUIN_E_ENCODING_INPUT');
      }
    });
  });

  describe('encodeTbsCertList', function () {
    const base = (): TbsCertListInput => ({
      signatureAlgorithm: p256.alg, issuer: p256.nameDer, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + DAY),
      revokedEntries: Buffer.alloc(0), crlNumber: 5n, authorityKeyId: p256.keyId,
    });

    it('writes v2 and leaves revokedCertificates out when there are none (RFC 5280 §5.1.2.6)', function () {
      const tbs = derChildren(readDer(encodeTbsCertList(base())));
      expect(tbs.map((n) => n.tag)).to.deep.equal([0x02, 0x30, 0x30, 0x17, 0x17, 0xa0]);
      expect(tbs[0].buf.subarray(tbs[0].start, tbs[0].end).toString('hex')).to.equal('020101');
    });

    it('refuses a delta not after its base, FreshestCRL on a delta, a bad window and over-long CRL numbers', function () {
      const cases: [string, Partial<TbsCertListInput>][] = [
        ['delta base equal to the CRL number', { deltaBaseCrlNumber: 5n }],
        ['delta base above the CRL number', { deltaBaseCrlNumber: 6n }],
        ['FreshestCRL in a delta CRL (§5.2.6)', { deltaBaseCrlNumber: 4n, freshestCrlUrls: ['http://x/d.crl'] }],
        ['nextUpdate equal to thisUpdate', { thisUpdate: new Date(1e12), nextUpdate: new Date(1e12) }],
        ['negative CRL number', { crlNumber: -1n }],
        ['21-octet CRL number (§5.2.3)', { crlNumber: 1n << 160n }],
        ['issuer not DER', { issuer: Buffer.from('CN=x') }],
        ['empty FreshestCRL', { freshestCrlUrls: [] }],
      ];
      for (const [what, patch] of cases) expect(thrownCode(() => encodeTbsCertList({ ...base(), ...patch })), what).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => encodeTbsCertList({ ...base(), crlNumber: (1n << 159n) - 1n })), '20 octets is fine').to.equal('no error');
    });
  });

  for (const kind of ['p256', 'rsa'] as const) {
    describe(`a ${kind === 'p256' ? 'P-256' : 'RSA'} CA's CRL read by OpenSSL and pkijs`, function () {
      let ca: TestCa;
      let entries: EntryInput[];
      let der: Buffer;
      const now = Date.now();

      before(function () {
        ca = kind === 'p256' ? p256 : rsa;
        entries = REASONS.map((reason, i) => ({
          serial: i === 0 ? Buffer.from('00FF', 'hex') : newSerial(), revokedAt: now - (i + 1) * 3600_000, reason,
          invalidAt: i % 3 === 0 ? now - (i + 2) * DAY : undefined,
        }));
        entries.push({ serial: Buffer.from('7F', 'hex'), revokedAt: Date.UTC(2051, 5, 6, 7, 8, 9) });
        der = buildCrl(ca, entries, { crlNumber: 4242n }, now);
      });

      it('openssl crl -text shows the CRL number and every serial with its reason code and invalidity date', function () {
        const text = opensslOk(['crl', '-inform', 'DER', '-text', '-noout'], der);
        expect(text).to.match(/Version 2 \(0x1\)/);
        expect(text).to.match(/X509v3 CRL Number: *\n\s+4242\n/);
        expect(text).to.match(/X509v3 Authority Key Identifier: *\n\s+([0-9A-F]{2}:){19}[0-9A-F]{2}/);
        const blocks = opensslEntries(text);
        expect(blocks.size).to.equal(entries.length);
        for (const e of entries) {
          const hex = e.serial.toString('hex').toUpperCase().replace(/^00/, '');
          const block = blocks.get(hex);
          expect(block, `entry ${hex}`).to.be.a('string');
          expect(block).to.contain(`Revocation Date: ${opensslTime(e.revokedAt)}`);
          if (e.reason !== undefined && e.reason !== 'unspecified') {
            expect(block).to.match(new RegExp(`X509v3 CRL Reason Code: *\\n\\s+${OPENSSL_REASON_TEXT[e.reason]}(\\n|$)`));
          } else {
            expect(block).not.to.contain('CRL Reason Code');
          }
          if (e.invalidAt !== undefined) expect(block).to.match(new RegExp(`Invalidity Date: *\\n\\s+${opensslTime(e.invalidAt)}`));
          else expect(block).not.to.contain('Invalidity Date');
        }
      });

      it('openssl crl -CAfile verifies the signature ("verify OK"), and refuses it after one entry byte changes', function () {
        const caFile = writeIn(tmp.dir, `${kind}-ca.pem`, ca.certPem);
        const ok = openssl(['crl', '-inform', 'DER', '-CAfile', caFile, '-noout'], der);
        expect(ok.status).to.equal(0);
        expect(ok.stdout + ok.stderr).to.contain('verify OK');
        const tampered = Buffer.from(der);
        const at = tampered.indexOf(entries[3].serial) + 5; // inside the serial: still well formed
        tampered[at] ^= 0x01;
        const bad = openssl(['crl', '-inform', 'DER', '-CAfile', caFile, '-noout'], tampered);
        expect(bad.stdout + bad.stderr).to.contain('verify failure');
      });

      it('pkijs reads the same entries and verifies the signature with the issuer certificate', async function () {
        pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as any }));
        const crl = pkijs.CertificateRevocationList.fromBER(new Uint8Array(der));
        expect(crl.version).to.equal(1);
        const revoked = crl.revokedCertificates ?? [];
        expect(revoked.length).to.equal(entries.length);
        revoked.forEach((r, i) => {
          const serial = Buffer.from(r.userCertificate.valueBlock.valueHexView);
          expect(serial.toString('hex').replace(/^00/, '')).to.equal(entries[i].serial.toString('hex').replace(/^00/, ''));
          expect(r.revocationDate.value.getTime()).to.equal(Math.floor(entries[i].revokedAt / 1000) * 1000);
        });
        const issuerCertificate = pkijs.Certificate.fromBER(new Uint8Array(ca.certDer));
        expect(await crl.verify({ issuerCertificate })).to.equal(true);
        const tampered = Buffer.from(der);
        tampered[tampered.indexOf(entries[2].serial) + 3] ^= 0x40;
        expect(await pkijs.CertificateRevocationList.fromBER(new Uint8Array(tampered)).verify({ issuerCertificate })).to.equal(false);
      });

      it('parseCrl and forEachCrlEntry give back every field, and the signature verifies', function () {
        const crl = parseCrl(der);
        expect(crl.version).to.equal(2);
        expect(crl.crlNumber).to.equal(4242n);
        expect(crl.deltaCrlIndicator).to.equal(undefined);
        expect(crl.entryCount).to.equal(entries.length);
        expect(crl.issuer.rawDer.equals(ca.nameDer)).to.equal(true);
        expect(crl.authorityKeyIdentifier?.equals(ca.keyId)).to.equal(true);
        expect(crl.thisUpdate.getTime()).to.equal(Math.floor(now / 1000) * 1000);
        expect(crl.nextUpdate?.getTime()).to.equal(Math.floor((now + 7 * DAY) / 1000) * 1000);
        expect(verifyCrlSignature(crl, parseCertificate(ca.certDer).spki)).to.equal(true);
        const got = collect(der);
        expect(got.length).to.equal(entries.length);
        got.forEach((e, i) => {
          const want = entries[i];
          expect(e.serial.toString('hex')).to.equal(want.serial.toString('hex').replace(/^00/, ''));
          expect(e.revocationDate.getTime()).to.equal(Math.floor(want.revokedAt / 1000) * 1000);
          expect(e.reason).to.equal(want.reason === 'unspecified' ? undefined : want.reason);
          expect(e.invalidityDate?.getTime()).to.equal(want.invalidAt === undefined ? undefined : Math.floor(want.invalidAt / 1000) * 1000);
        });
      });
    });
  }

  describe('revocation checking with openssl verify -crl_check', function () {
    it('refuses a revoked certificate ("certificate revoked") and accepts the others', function () {
      const revoked = issue(p256, 'device-revoked');
      const good = issue(p256, 'device-good');
      const crl = buildCrl(p256, [{ serial: revoked.serial, revokedAt: Date.now() - 1000, reason: 'keyCompromise' }]);
      const caFile = writeIn(tmp.dir, 'v-ca.pem', p256.certPem);
      const crlFile = writeIn(tmp.dir, 'v-crl.pem', toPem('X509 CRL', crl));
      const r = openssl(['verify', '-crl_check', '-CAfile', caFile, '-CRLfile', crlFile, writeIn(tmp.dir, 'v-revoked.pem', revoked.certPem)]);
      expect(r.status).not.to.equal(0);
      expect(r.stdout + r.stderr).to.contain('certificate revoked');
      expect(opensslOk(['verify', '-crl_check', '-CAfile', caFile, '-CRLfile', crlFile, writeIn(tmp.dir, 'v-good.pem', good.certPem)])).to.contain(': OK');
    });

    it('an empty CRL has no revokedCertificates field and lets every certificate through', function () {
      const crl = buildCrl(p256, []);
      expect(opensslOk(['crl', '-inform', 'DER', '-text', '-noout'], crl)).to.contain('No Revoked Certificates.');
      const parsed = parseCrl(crl);
      expect(parsed.entryCount).to.equal(0);
      expect(parsed.revokedEntriesDer.length).to.equal(0);
      expect(derChildren(readDer(parsed.tbsDer)).map((n) => n.tag)).to.deep.equal([0x02, 0x30, 0x30, 0x17, 0x17, 0xa0]);
      const caFile = writeIn(tmp.dir, 'e-ca.pem', p256.certPem);
      const crlFile = writeIn(tmp.dir, 'e-crl.pem', toPem('X509 CRL', crl));
      const leaf = writeIn(tmp.dir, 'e-leaf.pem', issue(p256, 'device-e').certPem);
      expect(opensslOk(['verify', '-crl_check', '-CAfile', caFile, '-CRLfile', crlFile, leaf])).to.contain(': OK');
      let n = 0;
      forEachCrlEntry(parsed, () => n++);
      expect(n).to.equal(0);
    });

    it('a full CRL with FreshestCRL and its delta (critical Delta CRL Indicator) work with -use_deltas', function () {
      const inFull = issue(p256, 'device-in-full');
      const inDelta = issue(p256, 'device-in-delta');
      const neither = issue(p256, 'device-neither');
      const t = Date.now();
      const full = buildCrl(p256, [{ serial: inFull.serial, revokedAt: t - DAY, reason: 'keyCompromise' }],
        { crlNumber: 10n, freshestCrlUrls: ['http://crl.example/device-delta.crl', 'http://backup.example/d.crl'] }, t - 3600_000);
      const delta = buildCrl(p256, [{ serial: inDelta.serial, revokedAt: t - 60_000, reason: 'superseded' }],
        { crlNumber: 11n, deltaBaseCrlNumber: 10n }, t - 1000);
      const fullText = opensslOk(['crl', '-inform', 'DER', '-text', '-noout'], full);
      expect(fullText).to.match(/X509v3 Freshest CRL: *\n\s+Full Name:\n\s+URI:http:\/\/crl\.example\/device-delta\.crl\n\s+URI:http:\/\/backup\.example\/d\.crl/);
      expect(fullText).not.to.contain('Delta CRL Indicator');
      const deltaText = opensslOk(['crl', '-inform', 'DER', '-text', '-noout'], delta);
      expect(deltaText).to.match(/X509v3 Delta CRL Indicator: critical\n\s+10\n/);
      expect(deltaText).to.match(/X509v3 CRL Number: *\n\s+11\n/);
      expect(deltaText).not.to.contain('Freshest CRL');
      expect(parseCrl(delta).deltaCrlIndicator).to.equal(10n);
      expect(parseCrl(full).freshestCrlUrls).to.deep.equal(['http://crl.example/device-delta.crl', 'http://backup.example/d.crl']);

      const caFile = writeIn(tmp.dir, 'd-ca.pem', p256.certPem);
      const crls = writeIn(tmp.dir, 'd-crls.pem', toPem('X509 CRL', full) + toPem('X509 CRL', delta));
      const verify = (cert: string, certPem: string, deltas: boolean) => {
        // -extended_crl: without it OpenSSL 3.0 can take the delta itself for the complete CRL (x509_vfy.c get_crl_score).
        const r = openssl(['verify', '-crl_check', '-extended_crl', ...(deltas ? ['-use_deltas'] : []), '-CAfile', caFile, '-CRLfile', crls,
          writeIn(tmp.dir, `d-${cert}.pem`, certPem)]);
        return r.status === 0 ? 'OK' : /certificate revoked/.test(r.stdout + r.stderr) ? 'revoked' : `failed: ${r.stdout}${r.stderr}`;
      };
      expect(verify('in-full', inFull.certPem, false)).to.equal('revoked');
      expect(verify('in-full', inFull.certPem, true)).to.equal('revoked');
      expect(verify('in-delta', inDelta.certPem, false), 'only in the delta: accepted without -use_deltas').to.equal('OK');
      expect(verify('in-delta', inDelta.certPem, true), 'only in the delta: refused with -use_deltas').to.equal('revoked');
      expect(verify('neither', neither.certPem, true)).to.equal('OK');
    });

    it('an Issuing Distribution Point matching the certificate\'s CRL distribution point is in scope for OpenSSL', function () {
      const url = 'http://crl.example/device.crl';
      const revoked = issue(p256, 'device-idp', 'leaf', newSerial(), [crlDistributionPointsExt([url])]);
      const crl = buildCrl(p256, [{ serial: revoked.serial, revokedAt: Date.now() - 1000, reason: 'cessationOfOperation' }], { issuingDistributionPointUrl: url });
      expect(opensslOk(['crl', '-inform', 'DER', '-text', '-noout'], crl)).to.match(/Issuing Distribution Point: critical\n\s+Full Name:\n\s+URI:http:\/\/crl\.example\/device\.crl/);
      expect(parseCrl(crl).issuingDistributionPoint).to.deep.include({ urls: [url], indirectCrl: false, onlySomeReasons: false });
      const r = openssl(['verify', '-crl_check', '-CAfile', writeIn(tmp.dir, 'i-ca.pem', p256.certPem),
        '-CRLfile', writeIn(tmp.dir, 'i-crl.pem', toPem('X509 CRL', crl)), writeIn(tmp.dir, 'i-leaf.pem', revoked.certPem)]);
      expect(r.stdout + r.stderr).to.contain('certificate revoked');
    });
  });

  describe('parseCrl', function () {
    it('reads the CRL openssl ca -gencrl wrote (test/vectors/crl-openssl-p256.der) and checks its signature', function () {
      const der = readFileSync(vectorPath('crl-openssl-p256.der'));
      const ca = parseCertificate(readFileSync(vectorPath('crl-ocsp-openssl-ca-p256-cert.der')));
      const crl = parseCrl(der);
      expect(crl.crlNumber).to.equal(4096n);
      expect(crl.entryCount).to.equal(4);
      expect(crl.issuer.rawDer.equals(ca.subject.rawDer)).to.equal(true);
      expect(crl.authorityKeyIdentifier?.equals(ca.subjectKeyIdentifier!)).to.equal(true);
      expect(verifyCrlSignature(crl, ca.spki)).to.equal(true);
      const byHex = new Map(collect(der).map((e) => [e.serial.toString('hex').toUpperCase(), e]));
      expect([...byHex.keys()].sort()).to.deep.equal(['0A1B2C3D', '12', '7F000001', 'FF']);
      expect(byHex.get('0A1B2C3D')).to.deep.include({ reason: 'keyCompromise' });
      expect(byHex.get('0A1B2C3D')!.invalidityDate!.toISOString()).to.equal('2024-12-31T12:00:00.000Z');
      expect(byHex.get('0A1B2C3D')!.revocationDate.toISOString()).to.equal('2025-01-02T03:04:05.000Z');
      expect(byHex.get('FF')!.reason).to.equal('superseded');
      expect(byHex.get('12')!.reason).to.equal('certificateHold');
      expect(byHex.get('7F000001')!.reason).to.equal(undefined);
      const tampered = Buffer.from(der);
      tampered[tampered.indexOf(Buffer.from('7f000001', 'hex'))] = 0x7e;
      expect(verifyCrlSignature(parseCrl(tampered), ca.spki)).to.equal(false);
    });

    it('refuses a CRL with a critical entry extension it cannot process (indirect CRL certificateIssuer, RFC 5280 §5.3)', function () {
      const certificateIssuer = encodeExtension('2.5.29.29', true, derSequence(derExplicit(4, p256.nameDer)));
      const entry = derSequence(derInteger(Buffer.from([9])), derTime(new Date()), derSequence(certificateIssuer));
      const crl = signedFromTbs(p256, tbsWith(p256, entry, []));
      expect(thrownCode(() => parseCrl(crl))).to.equal('KAKUIN_E_CRL_UNSUPPORTED');
      const nonCritical = derSequence(derInteger(Buffer.from([9])), derTime(new Date()), derSequence(encodeExtension('1.2.3.4', false, derNull())));
      expect(parseCrl(signedFromTbs(p256, tbsWith(p256, nonCritical, []))).entryCount).to.equal(1);
    });

    it('refuses a CRL with an unknown critical CRL extension (RFC 5280 §5.2)', function () {
      const crl = signedFromTbs(p256, tbsWith(p256, undefined, [encodeExtension('1.2.3.4.5', true, derNull())]));
      expect(thrownCode(() => parseCrl(crl))).to.equal('KAKUIN_E_CRL_UNSUPPORTED');
    });

    it('throws only KAKUIN_E_DER_MALFORMED for every truncation, trailing bytes and 2,000 random mutations', function () {
      const der = buildCrl(p256, [
        { serial: newSerial(), revokedAt: Date.now(), reason: 'keyCompromise', invalidAt: Date.now() - DAY },
        { serial: newSerial(), revokedAt: Date.UTC(2060, 0, 1) },
      ], { freshestCrlUrls: ['http://x/d.crl'], issuingDistributionPointUrl: 'http://x/f.crl' });
      for (let n = 0; n < der.length; n++) expect(thrownCode(() => parseCrl(der.subarray(0, n))), `truncated to ${n}`).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => parseCrl(Buffer.concat([der, Buffer.from([0])])))).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => parseCrl('not a buffer' as unknown as Buffer))).to.equal('KAKUIN_E_DER_MALFORMED');
      const seed = 7321;
      const rnd = prng(seed);
      const seen = new Set<string>();
      for (let i = 0; i < 2000; i++) {
        const m = Buffer.from(der);
        const flips = 1 + Math.floor(rnd() * 3);
        for (let k = 0; k < flips; k++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
        const code = thrownCode(() => {
          const crl = parseCrl(m);
          forEachCrlEntry(crl, () => undefined);
        });
        expect(['no error', 'KAKUIN_E_DER_MALFORMED', 'KAKUIN_E_CRL_UNSUPPORTED'], `seed ${seed} iteration ${i}`).to.include(code);
        seen.add(code);
      }
      expect(seen.has('KAKUIN_E_DER_MALFORMED')).to.equal(true);
    });

    it('refuses calendar nonsense in entry times (Feb 30, hour 24, missing Z)', function () {
      for (const t of ['250230000000Z', '250101240000Z', '2501010000000', '25010100000Z']) {
        const entry = derSequence(derInteger(Buffer.from([9])), Buffer.concat([Buffer.from([0x17, t.length]), Buffer.from(t, 'latin1')]));
        expect(thrownCode(() => parseCrl(signedFromTbs(p256, tbsWith(p256, entry, [])))), t).to.equal('KAKUIN_E_DER_MALFORMED');
      }
    });
  });

  describe('a CRL of 1,000,000 entries', function () {
    it('is built, signed and read back (count and spot checks), and OpenSSL verifies it', function () {
      this.timeout(120_000);
      const N = 1_000_000;
      const t0 = Date.UTC(2026, 0, 1);
      const serial = Buffer.alloc(16, 0x11);
      serial[0] = 0x42;
      const w = new RevokedEntriesWriter(N * 48);
      for (let i = 0; i < N; i++) {
        serial.writeUInt32BE(i, 12); // one Buffer reused: the writer copies
        w.add(serial, t0 + i * 1000, i % 5 === 0 ? 'keyCompromise' : undefined, i % 100 === 0 ? t0 - i : undefined);
      }
      expect(w.count).to.equal(N);
      const tbs = encodeTbsCertList({
        signatureAlgorithm: p256.alg, issuer: p256.nameDer, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + DAY),
        revokedEntries: w.finish(), crlNumber: 77n, authorityKeyId: p256.keyId,
      });
      const der = encodeCertificateList(tbs, p256.alg, signWith(p256, tbs));
      const crl = parseCrl(der);
      expect(crl.entryCount).to.equal(N);
      expect(verifyCrlSignature(crl, parseCertificate(p256.certDer).spki)).to.equal(true);
      const spots = new Map<number, CrlEntry>();
      let i = 0;
      forEachCrlEntry(crl, (e) => {
        if (i === 0 || i === 1 || i === 500_000 || i === N - 1) spots.set(i, { ...e, serial: Buffer.from(e.serial) });
        i++;
      });
      expect(i).to.equal(N);
      for (const [k, e] of spots) {
        expect(e.serial.readUInt32BE(12), `entry ${k}`).to.equal(k);
        expect(e.serial[0]).to.equal(0x42);
        expect(e.revocationDate.getTime()).to.equal(t0 + k * 1000);
        expect(e.reason).to.equal(k % 5 === 0 ? 'keyCompromise' : undefined);
        expect(e.invalidityDate?.getTime()).to.equal(k % 100 === 0 ? Math.floor((t0 - k) / 1000) * 1000 : undefined);
      }
      const r = openssl(['crl', '-inform', 'DER', '-CAfile', writeIn(tmp.dir, 'big-ca.pem', p256.certPem), '-noout'], der);
      expect(r.stdout + r.stderr).to.contain('verify OK');
    });
  });
});

/** A TBSCertList built by hand (generic encoder), for structures the encoder will not write. */
function tbsWith(ca: TestCa, entry: Buffer | undefined, crlExtensions: Buffer[]): Buffer {
  const parts = [derInteger(1), encodeSignatureAlgorithm(ca.alg), ca.nameDer, derTime(new Date()), derTime(new Date(Date.now() + DAY))];
  if (entry !== undefined) parts.push(derSequence(entry));
  parts.push(derExplicit(0, derSequence(
    authorityKeyIdentifierExt(ca.keyId),
    encodeExtension('2.5.29.20', false, derInteger(3)),
    ...crlExtensions,
  )));
  return derSequence(...parts);
}

function signedFromTbs(ca: TestCa, tbs: Buffer): Buffer {
  return encodeCertificateList(tbs, ca.alg, signWith(ca, tbs));
}
