/**
 * Registry contract, revocation (issue 3): applyStatusChange, the revocation feed, and what
 * recordIssuance adds to both. Run by runRegistryContract inside its describe (same registry, same
 * issuer `device`, fresh for every test).
 *
 * Conventions this suite fixes beyond port.ts:
 * - the registry keeps the kill switch final whatever `from` says: a revoked certificate and a
 *   revoked or retired device never change again (KAKUIN_E_CERTIFICATE_STATE / KAKUIN_E_DEVICE_STATE);
 * - a transition to the current status is a no-op (no feed entry, reason and dates kept) when
 *   `from` admits the current status, and refused otherwise;
 * - input that can never apply is KAKUIN_E_VALIDATION before anything is read: a reason that does
 *   not fit `to`, a missing revokedAt, reason or dates on `to: good`, an empty `from`, a certificate
 *   named twice, a change naming neither a device nor a certificate;
 * - the audit events of a change are appended whenever the change is accepted, even when every
 *   row was already in its target status;
 * - feed order inside one change: the listed certificates as given, then the device, then the
 *   device's certificates oldest first; an issuance appends its certificate (good, no
 *   previousStatus), then, when the device moves registered → active, the device;
 * - recordIssuance refuses a device certificate for a suspended, revoked or retired device with
 *   KAKUIN_E_DEVICE_STATE and records nothing.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { KakuinError } from '../../errors/index.js';
import type {
  CertificateRecord, CertificateStatus, CertificateTransition, CrlReason, FeedEntry, Registry, StatusChange,
} from '../../registry/port.js';
import { contractSteps, expectKakuinError, fakeCertificate, issuance, ISSUER_ID, randomSerialHex } from './registry-fixtures.js';

/** Whole seconds, as CRLs and OCSP carry them. */
const at = (s: number) => new Date(Date.UTC(2030, 0, 1) + s * 1000);

function revoke(serialHex: string, reason: CrlReason = 'keyCompromise', from: CertificateStatus[] = ['good', 'held']): CertificateTransition {
  return { serialHex, from, to: 'revoked', reason, revokedAt: at(100) };
}

function hold(serialHex: string, from: CertificateStatus[] = ['good']): CertificateTransition {
  return { serialHex, from, to: 'held', reason: 'certificateHold', revokedAt: at(50) };
}

function release(serialHex: string, from: CertificateStatus[] = ['held']): CertificateTransition {
  return { serialHex, from, to: 'good' };
}

const audit = (type = 'certificate.revoked') => [{ type, actor: 'token:alice' }];

export function runRevocationContract(get: () => Registry): void {
  const steps = contractSteps(get);

  /** Everything a refused change must leave as it was. */
  async function state(serials: string[], deviceIds: string[]): Promise<unknown> {
    const registry = get();
    return {
      feed: await registry.latestFeedSeq(),
      audit: (await registry.listAuditEvents({ limit: 1000 })).length,
      certificates: await Promise.all(serials.map((s) => registry.getCertificate(s))),
      devices: await Promise.all(deviceIds.map((d) => registry.getDevice(d))),
    };
  }

  async function activeDeviceWith(n: number): Promise<{ deviceId: string; certs: CertificateRecord[] }> {
    const d = await steps.device(await steps.manufacturer());
    const certs: CertificateRecord[] = [];
    for (let i = 0; i < n; i++) certs.push(await steps.issue({ issuerId: ISSUER_ID, deviceId: d.id }));
    return { deviceId: d.id, certs };
  }

  describe('applyStatusChange: certificates', function () {
    it('revokes a certificate: row, feed entry and audit event in one change', async function () {
      const { deviceId, certs: [c] } = await activeDeviceWith(1);
      const before = await get().latestFeedSeq();
      const entries = await get().applyStatusChange({
        certificates: [{ ...revoke(c.serialHex, 'keyCompromise'), invalidityDate: at(90) }],
        audit: [{ type: 'certificate.revoked', actor: 'token:alice', serialHex: c.serialHex, details: { reason: 'keyCompromise' } }],
      });
      expect(entries).to.have.length(1);
      const [e] = entries;
      expect(e.seq).to.equal(before + 1);
      expect(e).to.deep.include({
        kind: 'certificate', serialHex: c.serialHex, issuerId: ISSUER_ID, deviceId, status: 'revoked', previousStatus: 'good', reason: 'keyCompromise',
      });
      expect(e.revokedAt?.getTime()).to.equal(at(100).getTime());
      expect(e.invalidityDate?.getTime()).to.equal(at(90).getTime());
      expect(e.at).to.be.instanceOf(Date);
      const got = await get().getCertificate(c.serialHex);
      expect(got).to.deep.include({ status: 'revoked', reason: 'keyCompromise' });
      expect(got.revokedAt?.getTime()).to.equal(at(100).getTime());
      expect(got.invalidityDate?.getTime()).to.equal(at(90).getTime());
      expect(await get().readFeed(before)).to.deep.equal(entries);
      expect(await get().latestFeedSeq()).to.equal(e.seq);
      const events = await get().listAuditEvents({ type: 'certificate.revoked' });
      expect(events.map((x) => x.serialHex)).to.deep.equal([c.serialHex]);
      expect((await get().getDevice(deviceId)).status).to.equal('active');
    });

    it('holds a certificate (certificateHold) and releases it: reason and dates cleared', async function () {
      const { certs: [c] } = await activeDeviceWith(1);
      const [held] = await get().applyStatusChange({ certificates: [hold(c.serialHex)], audit: audit('certificate.held') });
      expect(held).to.deep.include({ status: 'held', previousStatus: 'good', reason: 'certificateHold', serialHex: c.serialHex });
      expect(held.revokedAt?.getTime()).to.equal(at(50).getTime());
      expect(await get().getCertificate(c.serialHex)).to.deep.include({ status: 'held', reason: 'certificateHold' });

      const [released] = await get().applyStatusChange({ certificates: [release(c.serialHex)], audit: audit('certificate.released') });
      expect(released).to.deep.include({ status: 'good', previousStatus: 'held', serialHex: c.serialHex });
      expect(released.seq).to.be.greaterThan(held.seq);
      expect(released.reason).to.equal(undefined);
      expect(released.revokedAt).to.equal(undefined);
      const got = await get().getCertificate(c.serialHex);
      expect(got.status).to.equal('good');
      expect(got.reason).to.equal(undefined);
      expect(got.revokedAt).to.equal(undefined);
      expect(got.invalidityDate).to.equal(undefined);
    });

    it('revokes a held certificate (held → revoked)', async function () {
      const { certs: [c] } = await activeDeviceWith(1);
      await get().applyStatusChange({ certificates: [hold(c.serialHex)], audit: [] });
      const [e] = await get().applyStatusChange({ certificates: [revoke(c.serialHex, 'superseded', ['held'])], audit: audit() });
      expect(e).to.deep.include({ status: 'revoked', previousStatus: 'held', reason: 'superseded' });
      expect(await get().getCertificate(c.serialHex)).to.deep.include({ status: 'revoked', reason: 'superseded' });
    });

    it('refuses revoked → good and revoked → held with KAKUIN_E_CERTIFICATE_STATE, even when `from` names revoked', async function () {
      const { deviceId, certs: [c] } = await activeDeviceWith(1);
      await get().applyStatusChange({ certificates: [revoke(c.serialHex)], audit: audit() });
      const before = await state([c.serialHex], [deviceId]);
      await expectKakuinError(get().applyStatusChange({ certificates: [release(c.serialHex, ['held', 'revoked'])], audit: audit('x') }),
        'KAKUIN_E_CERTIFICATE_STATE');
      await expectKakuinError(get().applyStatusChange({ certificates: [hold(c.serialHex, ['good', 'revoked'])], audit: audit('x') }),
        'KAKUIN_E_CERTIFICATE_STATE');
      await expectKakuinError(get().applyStatusChange({ certificates: [release(c.serialHex)], audit: audit('x') }),
        'KAKUIN_E_CERTIFICATE_STATE');
      expect(await state([c.serialHex], [deviceId])).to.deep.equal(before);
      expect(await get().listAuditEvents({ type: 'x' })).to.deep.equal([]);
    });

    it('a transition to the current status is a no-op when `from` admits it, refused when it does not', async function () {
      const { certs: [c] } = await activeDeviceWith(1);
      await get().applyStatusChange({ certificates: [revoke(c.serialHex, 'keyCompromise')], audit: audit() });
      const revoked = await get().getCertificate(c.serialHex);
      const seq = await get().latestFeedSeq();
      await expectKakuinError(get().applyStatusChange({ certificates: [revoke(c.serialHex, 'unspecified')], audit: audit() }),
        'KAKUIN_E_CERTIFICATE_STATE');
      const again = await get().applyStatusChange({
        certificates: [{ ...revoke(c.serialHex, 'unspecified', ['good', 'held', 'revoked']), revokedAt: at(999) }],
        audit: audit('certificate.revoke-repeated'),
      });
      expect(again).to.deep.equal([]);
      expect(await get().latestFeedSeq()).to.equal(seq);
      expect(await get().getCertificate(c.serialHex)).to.deep.equal(revoked);
      expect(await get().listAuditEvents({ type: 'certificate.revoke-repeated' })).to.have.length(1);
    });

    it('refuses an unknown certificate with KAKUIN_E_CERTIFICATE_NOT_FOUND and changes nothing', async function () {
      const { deviceId, certs: [c] } = await activeDeviceWith(1);
      const before = await state([c.serialHex], [deviceId]);
      await expectKakuinError(get().applyStatusChange({ certificates: [revoke(c.serialHex), revoke(randomSerialHex())], audit: audit() }),
        'KAKUIN_E_CERTIFICATE_NOT_FOUND');
      expect(await state([c.serialHex], [deviceId])).to.deep.equal(before);
    });

    it('finds a listed certificate by serial in any case', async function () {
      const { certs: [c] } = await activeDeviceWith(1);
      const [e] = await get().applyStatusChange({ certificates: [revoke(c.serialHex.toLowerCase())], audit: [] });
      expect(e.serialHex).to.equal(c.serialHex);
    });

    it('revokes an infrastructure certificate (no device): its feed entry has no deviceId', async function () {
      const c = await get().recordIssuance(issuance(fakeCertificate({ issuerId: ISSUER_ID, profile: 'tls-server' }), 'cli'));
      const [e] = await get().applyStatusChange({ certificates: [revoke(c.serialHex, 'superseded')], audit: audit() });
      expect(e).to.deep.include({ kind: 'certificate', serialHex: c.serialHex, status: 'revoked' });
      expect(e.deviceId).to.equal(undefined);
    });

    describe('refuses input that can never apply with KAKUIN_E_VALIDATION, before reading anything', function () {
      const bad: [string, (serial: string) => StatusChange][] = [
        ['held with a reason other than certificateHold', (s) => ({ certificates: [{ ...hold(s), reason: 'keyCompromise' }], audit: [] })],
        ['held without revokedAt', (s) => ({ certificates: [{ ...hold(s), revokedAt: undefined }], audit: [] })],
        ['revoked with certificateHold', (s) => ({ certificates: [revoke(s, 'certificateHold')], audit: [] })],
        ['revoked with removeFromCRL', (s) => ({ certificates: [revoke(s, 'removeFromCRL')], audit: [] })],
        ['revoked without a reason', (s) => ({ certificates: [{ ...revoke(s), reason: undefined }], audit: [] })],
        ['revoked with an unknown reason', (s) => ({ certificates: [revoke(s, 'stolen' as CrlReason)], audit: [] })],
        ['revoked without revokedAt', (s) => ({ certificates: [{ ...revoke(s), revokedAt: undefined }], audit: [] })],
        ['revoked with an invalid date', (s) => ({ certificates: [{ ...revoke(s), revokedAt: new Date(NaN) }], audit: [] })],
        ['good with a reason', (s) => ({ certificates: [{ ...release(s), reason: 'removeFromCRL' }], audit: [] })],
        ['good with revokedAt', (s) => ({ certificates: [{ ...release(s), revokedAt: at(1) }], audit: [] })],
        ['an empty `from`', (s) => ({ certificates: [revoke(s, 'keyCompromise', [])], audit: [] })],
        ['an unknown status', (s) => ({ certificates: [{ ...revoke(s), to: 'lost' as CertificateStatus }], audit: [] })],
        ['a certificate named twice', (s) => ({ certificates: [revoke(s), revoke(s.toLowerCase())], audit: [] })],
        ['neither a device nor a certificate', () => ({ certificates: [], audit: audit() })],
        ['no certificates array', (s) => ({ device: { id: s, from: ['active'], to: 'revoked' }, audit: [] }) as unknown as StatusChange],
        ['a device sweep with a bad reason', () => ({
          device: { id: randomUUID(), from: ['active'], to: 'suspended', certificates: { from: ['good'], to: 'held', reason: 'unspecified', revokedAt: at(1) } },
          certificates: [], audit: [],
        })],
        ['a device with an unknown status', () => ({ device: { id: randomUUID(), from: ['active'], to: 'stolen' as 'revoked' }, certificates: [], audit: [] })],
        ['a malformed audit event', (s) => ({ certificates: [revoke(s)], audit: [{ type: '', actor: 'cli' }] })],
      ];
      for (const [name, change] of bad) {
        it(name, async function () {
          const { deviceId, certs: [c] } = await activeDeviceWith(1);
          const before = await state([c.serialHex], [deviceId]);
          await expectKakuinError(get().applyStatusChange(change(c.serialHex)), 'KAKUIN_E_VALIDATION');
          expect(await state([c.serialHex], [deviceId])).to.deep.equal(before);
        });
      }
    });
  });

  describe('applyStatusChange: devices', function () {
    it('suspends, resumes and revokes a device with its certificates; a certificate outside `from` is left alone', async function () {
      const { deviceId, certs: [a, b] } = await activeDeviceWith(2);
      await get().applyStatusChange({ certificates: [revoke(b.serialHex, 'keyCompromise')], audit: [] });
      const bRevoked = await get().getCertificate(b.serialHex);

      const suspended = await get().applyStatusChange({
        device: { id: deviceId, from: ['active'], to: 'suspended', certificates: { from: ['good'], to: 'held', reason: 'certificateHold', revokedAt: at(50) } },
        certificates: [], audit: audit('device.suspended'),
      });
      expect(suspended.map((e) => [e.kind, e.deviceId, e.serialHex, e.previousStatus, e.status])).to.deep.equal([
        ['device', deviceId, undefined, 'active', 'suspended'],
        ['certificate', deviceId, a.serialHex, 'good', 'held'],
      ]);
      expect((await get().getDevice(deviceId)).status).to.equal('suspended');
      expect((await get().getCertificate(a.serialHex)).status).to.equal('held');
      expect(await get().getCertificate(b.serialHex)).to.deep.equal(bRevoked);

      const resumed = await get().applyStatusChange({
        device: { id: deviceId, from: ['suspended'], to: 'active', certificates: { from: ['held'], to: 'good' } },
        certificates: [], audit: audit('device.resumed'),
      });
      expect(resumed.map((e) => [e.kind, e.serialHex, e.previousStatus, e.status])).to.deep.equal([
        ['device', undefined, 'suspended', 'active'],
        ['certificate', a.serialHex, 'held', 'good'],
      ]);
      expect(await get().getCertificate(b.serialHex)).to.deep.equal(bRevoked);

      const revoked = await get().applyStatusChange({
        device: { id: deviceId, from: ['registered', 'active', 'suspended'], to: 'revoked',
          certificates: { from: ['good', 'held'], to: 'revoked', reason: 'cessationOfOperation', revokedAt: at(100) } },
        certificates: [], audit: audit('device.revoked'),
      });
      expect(revoked.map((e) => [e.kind, e.serialHex, e.status, e.reason])).to.deep.equal([
        ['device', undefined, 'revoked', undefined],
        ['certificate', a.serialHex, 'revoked', 'cessationOfOperation'],
      ]);
      expect(await get().getCertificate(b.serialHex)).to.deep.equal(bRevoked);
      expect((await get().listCertificatesOfDevice(deviceId)).map((c) => c.status)).to.deep.equal(['revoked', 'revoked']);
      expect((await get().listAuditEvents({ type: 'device.revoked' }))).to.have.length(1);
      const device = await get().getDevice(deviceId);
      expect(device.status).to.equal('revoked');
      expect(device.updatedAt.getTime()).to.be.at.least(device.createdAt.getTime());
    });

    it('revokes a device that has no certificate: one device entry', async function () {
      const d = await steps.device(await steps.manufacturer());
      const entries = await get().applyStatusChange({
        device: { id: d.id, from: ['registered', 'active', 'suspended'], to: 'revoked',
          certificates: { from: ['good', 'held'], to: 'revoked', reason: 'unspecified', revokedAt: at(1) } },
        certificates: [], audit: audit('device.revoked'),
      });
      expect(entries.map((e) => [e.kind, e.deviceId, e.previousStatus, e.status])).to.deep.equal([['device', d.id, 'registered', 'revoked']]);
      expect((await get().getDevice(d.id)).status).to.equal('revoked');
    });

    it('leaves the certificates alone when the change has no sweep', async function () {
      const { deviceId, certs: [c] } = await activeDeviceWith(1);
      const entries = await get().applyStatusChange({ device: { id: deviceId, from: ['active'], to: 'suspended' }, certificates: [], audit: [] });
      expect(entries.map((e) => e.kind)).to.deep.equal(['device']);
      expect((await get().getCertificate(c.serialHex)).status).to.equal('good');
    });

    it('refuses a device whose status is not in `from` with KAKUIN_E_DEVICE_STATE and changes nothing', async function () {
      const { deviceId, certs: [c] } = await activeDeviceWith(1);
      const before = await state([c.serialHex], [deviceId]);
      await expectKakuinError(get().applyStatusChange({
        device: { id: deviceId, from: ['suspended'], to: 'active', certificates: { from: ['held', 'good'], to: 'good' } },
        certificates: [], audit: audit('x'),
      }), 'KAKUIN_E_DEVICE_STATE');
      expect(await state([c.serialHex], [deviceId])).to.deep.equal(before);
    });

    it('keeps revoked and retired devices final, whatever `from` says', async function () {
      const m = await steps.manufacturer();
      for (const terminal of ['revoked', 'retired'] as const) {
        const d = await steps.device(m);
        await get().applyStatusChange({ device: { id: d.id, from: ['registered'], to: terminal }, certificates: [], audit: [] });
        for (const to of ['active', 'registered', 'suspended', terminal === 'revoked' ? 'retired' : 'revoked'] as const) {
          await expectKakuinError(get().applyStatusChange({ device: { id: d.id, from: [terminal], to }, certificates: [], audit: [] }),
            'KAKUIN_E_DEVICE_STATE');
        }
        expect(await get().applyStatusChange({ device: { id: d.id, from: [terminal], to: terminal }, certificates: [], audit: [] })).to.deep.equal([]);
        expect((await get().getDevice(d.id)).status).to.equal(terminal);
      }
    });

    it('refuses an unknown device with KAKUIN_E_DEVICE_NOT_FOUND and changes nothing', async function () {
      const { deviceId, certs: [c] } = await activeDeviceWith(1);
      const before = await state([c.serialHex], [deviceId]);
      await expectKakuinError(get().applyStatusChange({
        device: { id: randomUUID(), from: ['active'], to: 'revoked' }, certificates: [revoke(c.serialHex)], audit: audit(),
      }), 'KAKUIN_E_DEVICE_NOT_FOUND');
      expect(await state([c.serialHex], [deviceId])).to.deep.equal(before);
    });

    it('is all or nothing: one listed certificate failing its guard undoes the device and the others', async function () {
      const { deviceId, certs: [a, b, c] } = await activeDeviceWith(3);
      await get().applyStatusChange({ certificates: [revoke(c.serialHex)], audit: [] });
      const before = await state([a.serialHex, b.serialHex, c.serialHex], [deviceId]);
      await expectKakuinError(get().applyStatusChange({
        device: { id: deviceId, from: ['active'], to: 'revoked', certificates: { from: ['good', 'held'], to: 'revoked', reason: 'unspecified', revokedAt: at(1) } },
        certificates: [revoke(a.serialHex), hold(b.serialHex), revoke(c.serialHex, 'keyCompromise', ['good'])],
        audit: audit('x'),
      }), 'KAKUIN_E_CERTIFICATE_STATE');
      expect(await state([a.serialHex, b.serialHex, c.serialHex], [deviceId])).to.deep.equal(before);
      expect(await get().readFeed(0, 10_000).then((f) => f.filter((e) => e.status !== 'good' && e.kind === 'certificate').length)).to.equal(1);
    });

    it('applies listed certificates first, so one can carry its own reason while the sweep takes the rest', async function () {
      const { deviceId, certs: [a, b] } = await activeDeviceWith(2);
      const entries = await get().applyStatusChange({
        device: { id: deviceId, from: ['active'], to: 'revoked',
          certificates: { from: ['good', 'held'], to: 'revoked', reason: 'cessationOfOperation', revokedAt: at(100) } },
        certificates: [revoke(b.serialHex, 'keyCompromise')],
        audit: audit('device.revoked'),
      });
      expect(entries.map((e) => [e.kind, e.serialHex, e.status, e.reason])).to.deep.equal([
        ['certificate', b.serialHex, 'revoked', 'keyCompromise'],
        ['device', undefined, 'revoked', undefined],
        ['certificate', a.serialHex, 'revoked', 'cessationOfOperation'],
      ]);
      const seqs = entries.map((e) => e.seq);
      expect(seqs).to.deep.equal([...seqs].sort((x, y) => x - y));
      expect((await get().getCertificate(b.serialHex)).reason).to.equal('keyCompromise');
    });
  });

  describe('revocation feed', function () {
    it('issuance appends the certificate (good) and the device moving to active; a renewal only its certificate', async function () {
      expect(await get().latestFeedSeq()).to.equal(0);
      expect(await get().readFeed(0)).to.deep.equal([]);
      const d = await steps.device(await steps.manufacturer());
      const first = await steps.issue({ issuerId: ISSUER_ID, deviceId: d.id });
      const renewal = await steps.issue({ issuerId: ISSUER_ID, deviceId: d.id });
      const infra = await get().recordIssuance(issuance(fakeCertificate({ issuerId: ISSUER_ID, profile: 'tls-server' }), 'cli'));
      const feed = await get().readFeed(0);
      expect(feed.map((e) => [e.kind, e.serialHex, e.deviceId, e.issuerId, e.previousStatus, e.status])).to.deep.equal([
        ['certificate', first.serialHex, d.id, ISSUER_ID, undefined, 'good'],
        ['device', undefined, d.id, undefined, 'registered', 'active'],
        ['certificate', renewal.serialHex, d.id, ISSUER_ID, undefined, 'good'],
        ['certificate', infra.serialHex, undefined, ISSUER_ID, undefined, 'good'],
      ]);
      for (let i = 1; i < feed.length; i++) expect(feed[i].seq).to.be.greaterThan(feed[i - 1].seq);
      expect(feed[0].seq).to.be.greaterThan(0);
      expect(await get().latestFeedSeq()).to.equal(feed[3].seq);
      for (const e of feed) {
        expect(e.reason).to.equal(undefined);
        expect(e.revokedAt).to.equal(undefined);
        expect(e.at).to.be.instanceOf(Date);
      }
    });

    it('readFeed pages: everything after N, ascending, at most `limit`, nothing skipped or repeated', async function () {
      const m = await steps.manufacturer();
      await Promise.all(Array.from({ length: 30 }, async () => steps.issue({ issuerId: ISSUER_ID, deviceId: (await steps.device(m)).id })));
      const all = await get().readFeed(0, 10_000);
      expect(all).to.have.length(60);
      const paged: FeedEntry[] = [];
      for (let after = 0; ;) {
        const page = await get().readFeed(after, 7);
        expect(page.length).to.be.at.most(7);
        if (page.length === 0) break;
        paged.push(...page);
        after = page[page.length - 1].seq;
      }
      expect(paged).to.deep.equal(all);
      expect(await get().readFeed(all[9].seq, 3)).to.deep.equal(all.slice(10, 13));
      expect(await get().readFeed(all[59].seq)).to.deep.equal([]);
      expect(await get().readFeed(0, 1_000_000)).to.have.length(60);
      await expectKakuinError(get().readFeed(-1), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(get().readFeed(0, 0), 'KAKUIN_E_VALIDATION');
    });

    it('a refused change appends nothing and its seq is not lost to the next one', async function () {
      const { certs: [c] } = await activeDeviceWith(1);
      const seq = await get().latestFeedSeq();
      await expectKakuinError(get().applyStatusChange({ certificates: [release(c.serialHex)], audit: [] }), 'KAKUIN_E_CERTIFICATE_STATE');
      expect(await get().latestFeedSeq()).to.equal(seq);
      const [e] = await get().applyStatusChange({ certificates: [revoke(c.serialHex)], audit: [] });
      expect(await get().readFeed(seq)).to.deep.equal([e]);
    });
  });

  describe('recordIssuance and device status', function () {
    for (const status of ['suspended', 'revoked', 'retired'] as const) {
      it(`refuses a certificate for a ${status} device with KAKUIN_E_DEVICE_STATE and records nothing`, async function () {
        const d = await steps.device(await steps.manufacturer());
        await get().applyStatusChange({ device: { id: d.id, from: ['registered'], to: status }, certificates: [], audit: [] });
        const seq = await get().latestFeedSeq();
        const cert = fakeCertificate({ issuerId: ISSUER_ID, deviceId: d.id });
        await expectKakuinError(get().recordIssuance(issuance(cert)), 'KAKUIN_E_DEVICE_STATE');
        await expectKakuinError(get().getCertificate(cert.serialHex), 'KAKUIN_E_CERTIFICATE_NOT_FOUND');
        expect(await get().findDeviceIdByPublicKey(cert.publicKeySha256)).to.equal(undefined);
        expect(await get().listAuditEvents({ type: 'certificate.issued' })).to.deep.equal([]);
        expect(await get().latestFeedSeq()).to.equal(seq);
        expect((await get().getDevice(d.id)).status).to.equal(status);
      });
    }

    it('a revocation racing issuances never leaves a good certificate on the revoked device', async function () {
      const m = await steps.manufacturer();
      for (let round = 0; round < 6; round++) {
        const d = await steps.device(m);
        if (round % 2 === 1) await steps.issue({ issuerId: ISSUER_ID, deviceId: d.id });
        const revokeDevice = () => get().applyStatusChange({
          device: { id: d.id, from: ['registered', 'active', 'suspended'], to: 'revoked',
            certificates: { from: ['good', 'held'], to: 'revoked', reason: 'keyCompromise', revokedAt: at(1) } },
          certificates: [], audit: [],
        });
        const issue = () => get().recordIssuance(issuance(fakeCertificate({ issuerId: ISSUER_ID, deviceId: d.id })));
        // Issuances submitted before, with and after the revocation, in the same turn of the event loop.
        const calls = round < 3
          ? [issue(), issue(), revokeDevice(), issue()]
          : [revokeDevice(), issue(), issue()];
        const outcomes = await Promise.allSettled(calls);
        for (const o of outcomes) {
          if (o.status === 'rejected') {
            expect(o.reason).to.be.instanceOf(KakuinError);
            expect((o.reason as KakuinError).code).to.equal('KAKUIN_E_DEVICE_STATE');
          }
        }
        expect((await get().getDevice(d.id)).status).to.equal('revoked');
        const certs = await get().listCertificatesOfDevice(d.id);
        expect(certs.filter((c) => c.status !== 'revoked'), `round ${round}`).to.deep.equal([]);
      }
    });
  });
}
