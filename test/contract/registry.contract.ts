/**
 * The registry port's contract: one mocha suite every adapter must pass (as smallstep/nosql's
 * `dbtest/suite.go` does for its drivers). An adapter's test file calls
 *
 *   runRegistryContract('sqlite', async () => ({ registry, cleanup }));
 *
 * `open` must return an empty registry each time (a fresh file, database or collection prefix);
 * `cleanup` closes it (it may already be closed) and removes what `open` created.
 *
 * Conventions the suite fixes beyond port.ts: listAuditEvents returns events oldest first
 * (increasing id) and `since` is inclusive; recordIssuance refuses an unknown issuer with
 * KAKUIN_E_ISSUER_NOT_FOUND; a closed registry refuses calls with KAKUIN_E_REGISTRY_UNAVAILABLE.
 * Revocation, the feed, CRLs and OCSP responses (issue 3) are in registry-revocation.contract.ts
 * and registry-crl-ocsp.contract.ts, run from here; their headers list the conventions they fix.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { KakuinError, type ErrorCode } from '../../errors/index.js';
import type { CertificateRecord, Device, NewDevice, Registry } from '../../registry/port.js';
import { GENESIS_PREV, hashOfHashedEvent, hashedAuditEvent } from '../../registry/records/index.js';
import { runCrlOcspContract } from './registry-crl-ocsp.contract.js';
import {
  expectKakuinError, fakeCertificate, issuance, ISSUER_ID, randomKeyHash, randomSerialHex, type OpenRegistry,
} from './registry-fixtures.js';
import { runRevocationContract } from './registry-revocation.contract.js';
import { runLegacyContract } from './registry-legacy.contract.js';
import { runEnrollmentContract } from './registry-enrollment.contract.js';
import { runPagingContract } from './registry-paging.contract.js';

export {
  expectKakuinError, fakeCertificate, issuance, randomKeyHash, randomSerialHex, type OpenRegistry,
} from './registry-fixtures.js';

export function runRegistryContract(adapterName: string, open: OpenRegistry): void {
  describe(`registry contract: ${adapterName}`, function () {
    let registry: Registry;
    let cleanup: () => Promise<void>;
    let issuerDer: Buffer;

    beforeEach(async function () {
      ({ registry, cleanup } = await open());
      issuerDer = randomBytes(400);
      await registry.putIssuer({ id: ISSUER_ID, kind: 'device', certificateDer: issuerDer, keyUri: 'file:device.key', parentId: 'root' });
    });

    afterEach(async function () {
      await cleanup();
    });

    async function manufacturer(name = `acme-${randomUUID()}`): Promise<string> {
      return (await registry.createManufacturer({ name })).id;
    }

    async function device(manufacturerId: string, extra: Partial<NewDevice> = {}): Promise<Device> {
      return registry.createDevice({ manufacturerId, serialNumber: `SN-${randomUUID()}`, ...extra });
    }

    async function issue(fields: Parameters<typeof fakeCertificate>[0] = { issuerId: ISSUER_ID }): Promise<CertificateRecord> {
      return registry.recordIssuance(issuance(fakeCertificate(fields)));
    }

    it('reports the schema version it runs', async function () {
      const version = await registry.schemaVersion();
      expect(Number.isInteger(version) && version >= 1, String(version)).to.equal(true);
    });

    describe('issuers', function () {
      it('stores an issuer and reads it back byte for byte', async function () {
        const got = await registry.getIssuer(ISSUER_ID);
        expect(got).to.include({ id: ISSUER_ID, kind: 'device', keyUri: 'file:device.key', parentId: 'root' });
        expect(Buffer.compare(got.certificateDer, issuerDer)).to.equal(0);
        expect(got.createdAt).to.be.instanceOf(Date);
      });

      it('replaces an issuer with the same id and keeps a given createdAt', async function () {
        const createdAt = new Date('2030-01-02T03:04:05.678Z');
        const root = await registry.putIssuer({ id: 'root', kind: 'root', certificateDer: Buffer.from([1, 2, 3]), keyUri: 'file:root.key', createdAt });
        expect(root.parentId).to.equal(undefined);
        expect(root.createdAt.getTime()).to.equal(createdAt.getTime());
        await registry.putIssuer({ id: 'root', kind: 'root', certificateDer: Buffer.from([4, 5]), keyUri: 'pkcs11:token=offline;object=root' });
        const got = await registry.getIssuer('root');
        expect(got.keyUri).to.equal('pkcs11:token=offline;object=root');
        expect([...got.certificateDer]).to.deep.equal([4, 5]);
        expect((await registry.listIssuers()).map((i) => i.id).sort()).to.deep.equal(['device', 'root']);
      });

      it('refuses an unknown issuer id with KAKUIN_E_ISSUER_NOT_FOUND', async function () {
        await expectKakuinError(registry.getIssuer('nope'), 'KAKUIN_E_ISSUER_NOT_FOUND');
      });
    });

    describe('manufacturers', function () {
      it('creates, reads and lists manufacturers', async function () {
        const a = await registry.createManufacturer({ name: 'Acme' });
        const b = await registry.createManufacturer({ name: 'Globex' });
        expect(a.id).to.not.equal(b.id);
        expect(await registry.getManufacturer(a.id)).to.deep.equal(a);
        expect((await registry.listManufacturers()).map((m) => m.name).sort()).to.deep.equal(['Acme', 'Globex']);
      });

      it('refuses a duplicate name with KAKUIN_E_MANUFACTURER_EXISTS and keeps one', async function () {
        await registry.createManufacturer({ name: 'Acme' });
        await expectKakuinError(registry.createManufacturer({ name: 'Acme' }), 'KAKUIN_E_MANUFACTURER_EXISTS');
        expect(await registry.listManufacturers()).to.have.length(1);
      });

      it('refuses an unknown id with KAKUIN_E_MANUFACTURER_NOT_FOUND', async function () {
        await expectKakuinError(registry.getManufacturer(randomUUID()), 'KAKUIN_E_MANUFACTURER_NOT_FOUND');
      });
    });

    describe('devices', function () {
      it('creates a device in status registered with every field readable', async function () {
        const m = await manufacturer();
        const created = await registry.createDevice({
          manufacturerId: m, serialNumber: 'SN-0001', model: 'Sensor X',
          identifiers: { mac: '00:11:22:33:44:55', imei: '490154203237518', hardwareId: 'HW-1' },
          hardwareModuleName: { hwType: '1.3.6.1.4.1.99999.1', hwSerialHex: '0a0b0c' },
        });
        expect(created.status).to.equal('registered');
        expect(created.createdAt.getTime()).to.equal(created.updatedAt.getTime());
        const got = await registry.getDevice(created.id);
        expect(got).to.deep.equal(created);
        expect(got.identifiers).to.deep.equal({ mac: '00:11:22:33:44:55', imei: '490154203237518', hardwareId: 'HW-1' });
        expect(got.hardwareModuleName).to.deep.equal({ hwType: '1.3.6.1.4.1.99999.1', hwSerialHex: '0a0b0c' });
      });

      it('reads a device without identifiers as empty identifiers and no optional fields', async function () {
        const d = await registry.getDevice((await device(await manufacturer())).id);
        expect(d.identifiers).to.deep.equal({});
        expect(d.model).to.equal(undefined);
        expect(d.hardwareModuleName).to.equal(undefined);
      });

      it('refuses an unknown manufacturer with KAKUIN_E_MANUFACTURER_NOT_FOUND', async function () {
        await expectKakuinError(registry.createDevice({ manufacturerId: randomUUID(), serialNumber: 'SN-1' }), 'KAKUIN_E_MANUFACTURER_NOT_FOUND');
      });

      it('refuses a serial number the manufacturer already has with KAKUIN_E_DEVICE_EXISTS', async function () {
        const m = await manufacturer();
        await registry.createDevice({ manufacturerId: m, serialNumber: 'SN-1' });
        await expectKakuinError(registry.createDevice({ manufacturerId: m, serialNumber: 'SN-1' }), 'KAKUIN_E_DEVICE_EXISTS');
        expect(await registry.findDevices({ manufacturerId: m })).to.have.length(1);
      });

      for (const [field, value] of [['mac', 'aa:bb:cc:dd:ee:ff'], ['imei', '490154203237518'], ['hardwareId', 'HW-42']] as const) {
        it(`refuses a ${field} the manufacturer already has with KAKUIN_E_DEVICE_EXISTS`, async function () {
          const m = await manufacturer();
          await device(m, { identifiers: { [field]: value } });
          await expectKakuinError(device(m, { identifiers: { [field]: value } }), 'KAKUIN_E_DEVICE_EXISTS');
          expect(await registry.findDevices({ manufacturerId: m })).to.have.length(1);
        });
      }

      it('finds devices by model, exactly, with the other filters', async function () {
        const m = await manufacturer();
        const a = await device(m, { model: 'Meter-X' });
        await device(m, { model: 'Meter-Y' });
        const c = await device(m, { model: 'Meter-X' });
        await device(m);
        expect((await registry.findDevices({ manufacturerId: m, model: 'Meter-X' })).map((d) => d.id)).to.deep.equal([a.id, c.id]);
        expect(await registry.findDevices({ manufacturerId: m, model: 'meter-x' })).to.deep.equal([]);
      });

      it('allows the same serial number and identifiers at another manufacturer', async function () {
        const input = { serialNumber: 'SN-1', identifiers: { mac: 'aa:bb:cc:dd:ee:ff', imei: '490154203237518', hardwareId: 'HW-1' } };
        const a = await registry.createDevice({ manufacturerId: await manufacturer(), ...input });
        const b = await registry.createDevice({ manufacturerId: await manufacturer(), ...input });
        expect(a.id).to.not.equal(b.id);
        expect(await registry.findDevices({ serialNumber: 'SN-1' })).to.have.length(2);
      });

      it('lets any number of devices of one manufacturer lack an identifier', async function () {
        const m = await manufacturer();
        await device(m);
        await device(m, { identifiers: { mac: 'aa:bb:cc:dd:ee:01' } });
        await device(m);
        expect(await registry.findDevices({ manufacturerId: m })).to.have.length(3);
      });

      it('appends the registration audit event with the device, in one transaction; a refused device appends none', async function () {
        const m = await manufacturer();
        const audit = { type: 'device.registered', actor: 'token:test', details: { serialNumber: 'SN-AUD' } };
        const created = await registry.createDevice({ manufacturerId: m, serialNumber: 'SN-AUD' }, audit);
        const events = await registry.listAuditEvents({ deviceId: created.id });
        expect(events.map((e) => [e.type, e.actor, e.deviceId, e.details])).to.deep.equal([['device.registered', 'token:test', created.id, { serialNumber: 'SN-AUD' }]]);
        const before = (await registry.listAuditEvents({ type: 'device.registered', limit: 1000 })).length;
        await expectKakuinError(registry.createDevice({ manufacturerId: m, serialNumber: 'SN-AUD' }, audit), 'KAKUIN_E_DEVICE_EXISTS');
        await expectKakuinError(registry.createDevice({ manufacturerId: randomUUID(), serialNumber: 'SN-AUD2' }, audit), 'KAKUIN_E_MANUFACTURER_NOT_FOUND');
        expect((await registry.listAuditEvents({ type: 'device.registered', limit: 1000 })).length, 'no event for a refused device').to.equal(before);
      });

      it('refuses an unknown device id with KAKUIN_E_DEVICE_NOT_FOUND', async function () {
        await expectKakuinError(registry.getDevice(randomUUID()), 'KAKUIN_E_DEVICE_NOT_FOUND');
      });

      it('finds devices by manufacturer, serial number, MAC, IMEI, hardware id and combinations', async function () {
        const m1 = await manufacturer();
        const m2 = await manufacturer();
        const d1 = await registry.createDevice({ manufacturerId: m1, serialNumber: 'A', identifiers: { mac: '02:00:00:00:00:01', imei: '490154203237518', hardwareId: 'H1' } });
        const d2 = await registry.createDevice({ manufacturerId: m1, serialNumber: 'B', identifiers: { mac: '02:00:00:00:00:02' } });
        const d3 = await registry.createDevice({ manufacturerId: m2, serialNumber: 'A' });
        const ids = async (q: Parameters<Registry['findDevices']>[0]) => (await registry.findDevices(q)).map((d) => d.id).sort();
        expect(await ids({ manufacturerId: m1 })).to.deep.equal([d1.id, d2.id].sort());
        expect(await ids({ serialNumber: 'A' })).to.deep.equal([d1.id, d3.id].sort());
        expect(await ids({ manufacturerId: m2, serialNumber: 'A' })).to.deep.equal([d3.id]);
        expect(await ids({ mac: '02:00:00:00:00:02' })).to.deep.equal([d2.id]);
        expect(await ids({ imei: '490154203237518' })).to.deep.equal([d1.id]);
        expect(await ids({ hardwareId: 'H1' })).to.deep.equal([d1.id]);
        expect(await ids({ manufacturerId: m2, mac: '02:00:00:00:00:01' })).to.deep.equal([]);
        const found = await registry.findDevices({ hardwareId: 'H1' });
        expect(found[0]).to.deep.equal(await registry.getDevice(d1.id));
      });

      it('finds devices by status', async function () {
        const m = await manufacturer();
        const [a, b] = [await device(m), await device(m)];
        await issue({ issuerId: ISSUER_ID, deviceId: a.id });
        expect((await registry.findDevices({ status: 'active' })).map((d) => d.id)).to.deep.equal([a.id]);
        expect((await registry.findDevices({ manufacturerId: m, status: 'registered' })).map((d) => d.id)).to.deep.equal([b.id]);
        expect(await registry.findDevices({ status: 'suspended' })).to.deep.equal([]);
      });

      it('returns at most `limit` devices, 100 when no limit is given', async function () {
        const m = await manufacturer();
        await Promise.all(Array.from({ length: 105 }, () => device(m)));
        expect(await registry.findDevices({ manufacturerId: m, limit: 3 })).to.have.length(3);
        expect(await registry.findDevices({ manufacturerId: m })).to.have.length(100);
        expect(await registry.findDevices({ manufacturerId: m, limit: 1000 })).to.have.length(105);
      });
    });

    describe('recordIssuance and certificates', function () {
      it('records a certificate, binds its key, moves the device to active and writes the audit event', async function () {
        const d = await device(await manufacturer());
        const cert = fakeCertificate({ issuerId: ISSUER_ID, deviceId: d.id });
        const record = await registry.recordIssuance(issuance(cert));
        expect(record).to.include({ serialHex: cert.serialHex, issuerId: ISSUER_ID, deviceId: d.id, status: 'good', profile: 'device' });
        expect(record.revokedAt).to.equal(undefined);
        expect(await registry.getCertificate(cert.serialHex)).to.deep.equal(record);
        expect(Buffer.compare(record.der, cert.der)).to.equal(0);
        expect(record.notBefore.getTime()).to.equal(cert.notBefore.getTime());
        expect(record.notAfter.getTime()).to.equal(cert.notAfter.getTime());
        const after = await registry.getDevice(d.id);
        expect(after.status).to.equal('active');
        expect(after.updatedAt.getTime()).to.be.at.least(d.updatedAt.getTime());
        expect(await registry.findDeviceIdByPublicKey(cert.publicKeySha256)).to.equal(d.id);
        expect(await registry.listCertificatesOfDevice(d.id)).to.deep.equal([record]);
        const events = await registry.listAuditEvents({ deviceId: d.id });
        expect(events).to.have.length(1);
        expect(events[0]).to.include({ type: 'certificate.issued', actor: 'token:station-1', serialHex: cert.serialHex, deviceId: d.id });
        expect(events[0].details).to.deep.equal({ profile: 'device' });
      });

      it('records an infrastructure certificate without a device and binds no key', async function () {
        const cert = fakeCertificate({ issuerId: ISSUER_ID, profile: 'tls-server' });
        const record = await registry.recordIssuance(issuance(cert, 'cli'));
        expect(record.deviceId).to.equal(undefined);
        expect((await registry.getCertificate(cert.serialHex)).deviceId).to.equal(undefined);
        expect(await registry.findDeviceIdByPublicKey(cert.publicKeySha256)).to.equal(undefined);
      });

      it('stores serials in uppercase and finds them in any case', async function () {
        const d = await device(await manufacturer());
        const lower = randomSerialHex().toLowerCase();
        const record = await issue({ issuerId: ISSUER_ID, deviceId: d.id, serialHex: lower });
        expect(record.serialHex).to.equal(lower.toUpperCase());
        expect((await registry.getCertificate(lower)).serialHex).to.equal(lower.toUpperCase());
        expect((await registry.getCertificate(lower.toUpperCase())).serialHex).to.equal(lower.toUpperCase());
        const mixed = lower.slice(0, 8).toUpperCase() + lower.slice(8);
        expect((await registry.getCertificate(mixed)).serialHex).to.equal(lower.toUpperCase());
      });

      it('refuses a serial already recorded (in any case) with KAKUIN_E_SERIAL_EXISTS and changes nothing', async function () {
        const m = await manufacturer();
        const [a, b] = [await device(m), await device(m)];
        const first = await issue({ issuerId: ISSUER_ID, deviceId: a.id });
        const again = fakeCertificate({ issuerId: ISSUER_ID, deviceId: b.id, serialHex: first.serialHex.toLowerCase() });
        await expectKakuinError(registry.recordIssuance(issuance(again)), 'KAKUIN_E_SERIAL_EXISTS');
        expect(await registry.getCertificate(first.serialHex)).to.deep.equal(first);
        expect((await registry.getDevice(b.id)).status).to.equal('registered');
        expect(await registry.findDeviceIdByPublicKey(again.publicKeySha256)).to.equal(undefined);
        expect(await registry.listAuditEvents({ type: 'certificate.issued' })).to.have.length(1);
      });

      it('refuses a key bound to another device with KAKUIN_E_PUBLIC_KEY_IN_USE and records nothing', async function () {
        const m = await manufacturer();
        const [a, b] = [await device(m), await device(m)];
        const first = await issue({ issuerId: ISSUER_ID, deviceId: a.id });
        const stolen = fakeCertificate({ issuerId: ISSUER_ID, deviceId: b.id, publicKeySha256: first.publicKeySha256 });
        await expectKakuinError(registry.recordIssuance(issuance(stolen)), 'KAKUIN_E_PUBLIC_KEY_IN_USE');
        await expectKakuinError(registry.getCertificate(stolen.serialHex), 'KAKUIN_E_CERTIFICATE_NOT_FOUND');
        expect(await registry.listAuditEvents({ deviceId: b.id })).to.deep.equal([]);
        expect((await registry.getDevice(b.id)).status).to.equal('registered');
        expect(await registry.listCertificatesOfDevice(b.id)).to.deep.equal([]);
        expect(await registry.findDeviceIdByPublicKey(first.publicKeySha256)).to.equal(a.id);
      });

      it('accepts the same key again for the same device (renewal)', async function () {
        const d = await device(await manufacturer());
        const key = randomKeyHash();
        const first = await issue({ issuerId: ISSUER_ID, deviceId: d.id, publicKeySha256: key });
        const second = await issue({ issuerId: ISSUER_ID, deviceId: d.id, publicKeySha256: key });
        expect((await registry.listCertificatesOfDevice(d.id)).map((c) => c.serialHex).sort())
          .to.deep.equal([first.serialHex, second.serialHex].sort());
        expect(await registry.findDeviceIdByPublicKey(key)).to.equal(d.id);
        expect((await registry.getDevice(d.id)).status).to.equal('active');
      });

      it('refuses an unknown device with KAKUIN_E_DEVICE_NOT_FOUND and records nothing', async function () {
        const cert = fakeCertificate({ issuerId: ISSUER_ID, deviceId: randomUUID() });
        await expectKakuinError(registry.recordIssuance(issuance(cert)), 'KAKUIN_E_DEVICE_NOT_FOUND');
        await expectKakuinError(registry.getCertificate(cert.serialHex), 'KAKUIN_E_CERTIFICATE_NOT_FOUND');
        expect(await registry.findDeviceIdByPublicKey(cert.publicKeySha256)).to.equal(undefined);
        expect(await registry.listAuditEvents({})).to.deep.equal([]);
      });

      it('refuses an unknown issuer with KAKUIN_E_ISSUER_NOT_FOUND and records nothing', async function () {
        const cert = fakeCertificate({ issuerId: 'no-such-ca' });
        await expectKakuinError(registry.recordIssuance(issuance(cert)), 'KAKUIN_E_ISSUER_NOT_FOUND');
        await expectKakuinError(registry.getCertificate(cert.serialHex), 'KAKUIN_E_CERTIFICATE_NOT_FOUND');
      });

      it('refuses an unknown serial with KAKUIN_E_CERTIFICATE_NOT_FOUND', async function () {
        await expectKakuinError(registry.getCertificate(randomSerialHex()), 'KAKUIN_E_CERTIFICATE_NOT_FOUND');
        expect(await registry.listCertificatesOfDevice(randomUUID())).to.deep.equal([]);
        expect(await registry.findDeviceIdByPublicKey(randomKeyHash())).to.equal(undefined);
      });

      it('250 concurrent issuances: exactly the bad ones fail, every good one is readable', async function () {
        const m = await manufacturer();
        const pre = await device(m);
        const existing = await issue({ issuerId: ISSUER_ID, deviceId: pre.id });
        const devices = await Promise.all(Array.from({ length: 250 }, () => device(m)));
        const certs = devices.map((d) => fakeCertificate({ issuerId: ISSUER_ID, deviceId: d.id }));
        const expectedFailures = new Map<number, ErrorCode>([
          [40, 'KAKUIN_E_SERIAL_EXISTS'], // serial recorded before
          [41, 'KAKUIN_E_DEVICE_NOT_FOUND'],
          [120, 'KAKUIN_E_PUBLIC_KEY_IN_USE'], // key bound before
          [130, 'KAKUIN_E_PUBLIC_KEY_IN_USE'], // key of #60, recorded in an earlier call
          [150, 'KAKUIN_E_SERIAL_EXISTS'], // serial of #10
          [220, 'KAKUIN_E_PUBLIC_KEY_IN_USE'], // key of #215, in the same instant
        ]);
        certs[40] = { ...certs[40], serialHex: existing.serialHex };
        certs[41] = { ...certs[41], deviceId: randomUUID() };
        certs[120] = { ...certs[120], publicKeySha256: existing.publicKeySha256 };
        certs[130] = { ...certs[130], publicKeySha256: certs[60].publicKeySha256 };
        certs[150] = { ...certs[150], serialHex: certs[10].serialHex };
        certs[220] = { ...certs[220], publicKeySha256: certs[215].publicKeySha256 };

        const outcomes = await Promise.allSettled(certs.map((c) => registry.recordIssuance(issuance(c))));

        const failed = new Map<number, string>();
        outcomes.forEach((o, i) => {
          if (o.status === 'rejected') failed.set(i, o.reason instanceof KakuinError ? o.reason.code : String(o.reason));
        });
        expect(Object.fromEntries(failed)).to.deep.equal(Object.fromEntries(expectedFailures));
        const good = certs.filter((_, i) => !expectedFailures.has(i));
        for (const c of good) {
          expect((await registry.getCertificate(c.serialHex)).fingerprintSha256).to.equal(c.fingerprintSha256);
          expect(await registry.findDeviceIdByPublicKey(c.publicKeySha256)).to.equal(c.deviceId);
        }
        for (const i of [40, 120, 130, 150, 220]) expect((await registry.getDevice(devices[i].id)).status).to.equal('registered');
        expect(await registry.findDevices({ manufacturerId: m, status: 'active', limit: 1000 })).to.have.length(good.length + 1);
        const events = await registry.listAuditEvents({ type: 'certificate.issued', limit: 1000 });
        expect(events.map((e) => e.serialHex).sort()).to.deep.equal([existing.serialHex, ...good.map((c) => c.serialHex)].sort());
        expect((await registry.getCertificate(certs[10].serialHex)).deviceId).to.equal(devices[10].id);
      });
    });

    describe('admin tokens', function () {
      it('creates a token, finds it by HMAC and lists it', async function () {
        const hmac = randomKeyHash();
        const token = await registry.createAdminToken({ name: 'alice', tokenHmac: hmac, role: 'admin' });
        expect(token).to.include({ name: 'alice', tokenHmac: hmac, role: 'admin' });
        expect(token.disabledAt).to.equal(undefined);
        expect(await registry.findAdminTokenByHmac(hmac)).to.deep.equal(token);
        expect(await registry.findAdminTokenByHmac(randomKeyHash())).to.equal(undefined);
        await registry.createAdminToken({ name: 'ops-bot', tokenHmac: randomKeyHash(), role: 'admin' });
        expect((await registry.listAdminTokens()).map((t) => t.name).sort()).to.deep.equal(['alice', 'ops-bot']);
      });

      it('keeps a token\'s role and the manufacturer a manufacturer token is bound to; refuses a role without its binding', async function () {
        const m = await registry.createManufacturer({ name: 'Role Co' });
        const hmac = randomKeyHash();
        const maker = await registry.createAdminToken({ name: 'maker', tokenHmac: hmac, role: 'manufacturer', manufacturerId: m.id });
        expect(maker).to.include({ role: 'manufacturer', manufacturerId: m.id });
        expect(await registry.findAdminTokenByHmac(hmac)).to.deep.equal(maker);
        const auditor = await registry.createAdminToken({ name: 'auditor', tokenHmac: randomKeyHash(), role: 'auditor' });
        expect(auditor.manufacturerId).to.equal(undefined);
        await expectKakuinError(registry.createAdminToken({ name: 'x', tokenHmac: randomKeyHash(), role: 'manufacturer' }), 'KAKUIN_E_VALIDATION');
        await expectKakuinError(registry.createAdminToken({ name: 'y', tokenHmac: randomKeyHash(), role: 'operator', manufacturerId: m.id }), 'KAKUIN_E_VALIDATION');
        await expectKakuinError(registry.createAdminToken({ name: 'z', tokenHmac: randomKeyHash(), role: 'root' as never }), 'KAKUIN_E_VALIDATION');
        expect((await registry.listAdminTokens()).map((t) => [t.name, t.role]).sort()).to.deep.equal([['auditor', 'auditor'], ['maker', 'manufacturer']]);
      });

      it('refuses a duplicate name with KAKUIN_E_TOKEN_EXISTS', async function () {
        await registry.createAdminToken({ name: 'alice', tokenHmac: randomKeyHash(), role: 'admin' });
        await expectKakuinError(registry.createAdminToken({ name: 'alice', tokenHmac: randomKeyHash(), role: 'admin' }), 'KAKUIN_E_TOKEN_EXISTS');
        expect(await registry.listAdminTokens()).to.have.length(1);
      });
    });

    describe('audit events', function () {
      it('assigns increasing ids, stamps the time and keeps the details', async function () {
        const before = Date.now();
        const a = await registry.appendAuditEvent({ type: 'device.registered', actor: 'cli', deviceId: 'd1', details: { n: 1, tags: ['x'] } });
        const b = await registry.appendAuditEvent({ type: 'device.registered', actor: 'cli' });
        expect(b.id).to.be.greaterThan(a.id);
        expect(a.at.getTime()).to.be.within(before, Date.now());
        expect(b.deviceId).to.equal(undefined);
        expect(b.details).to.equal(undefined);
        expect(await registry.listAuditEvents({})).to.deep.equal([a, b]);
      });

      it('filters by device, type and since (inclusive), honours limit and lists oldest first', async function () {
        const t0 = Date.UTC(2030, 0, 1);
        const at = (s: number) => new Date(t0 + s * 1000);
        const e1 = await registry.appendAuditEvent({ type: 'device.registered', actor: 'cli', deviceId: 'd1', at: at(0) });
        const e2 = await registry.appendAuditEvent({ type: 'certificate.issued', actor: 'token:s', deviceId: 'd1', serialHex: 'ab01', at: at(10) });
        const e3 = await registry.appendAuditEvent({ type: 'device.registered', actor: 'cli', deviceId: 'd2', at: at(20) });
        const e4 = await registry.appendAuditEvent({ type: 'certificate.issued', actor: 'token:s', deviceId: 'd2', at: at(30) });
        const e5 = await registry.appendAuditEvent({ type: 'admin.login', actor: 'token:alice', at: at(5) });
        expect(e2.serialHex).to.equal('AB01');
        const ids = async (q: Parameters<Registry['listAuditEvents']>[0]) => (await registry.listAuditEvents(q)).map((e) => e.id);
        expect(await ids({})).to.deep.equal([e1.id, e2.id, e3.id, e4.id, e5.id]);
        expect(await ids({ deviceId: 'd1' })).to.deep.equal([e1.id, e2.id]);
        expect(await ids({ type: 'certificate.issued' })).to.deep.equal([e2.id, e4.id]);
        expect(await ids({ since: at(10) })).to.deep.equal([e2.id, e3.id, e4.id]);
        expect(await ids({ since: at(10), type: 'device.registered' })).to.deep.equal([e3.id]);
        expect(await ids({ deviceId: 'd2', type: 'certificate.issued', since: at(0) })).to.deep.equal([e4.id]);
        expect(await ids({ limit: 2 })).to.deep.equal([e1.id, e2.id]);
        expect(await ids({ deviceId: 'nobody' })).to.deep.equal([]);
        const [read] = await registry.listAuditEvents({ type: 'admin.login' });
        expect(read).to.deep.equal(e5);
        expect(read.at.getTime()).to.equal(at(5).getTime());
      });

      it('links every event into this instance\'s hash chain in its own transaction; a refused write takes no link', async function () {
        const a = await registry.appendAuditEvent({ type: 'device.registered', actor: 'cli', deviceId: 'd1', details: { n: 1 } });
        await registry.createAdminToken({ name: 'chain-bot', tokenHmac: randomKeyHash(), role: 'admin' }, { type: 'token.created', actor: 'cli', details: { name: 'chain-bot' } });
        // Refused (duplicate name): its audit event and its link roll back with it.
        await expectKakuinError(registry.createAdminToken({ name: 'chain-bot', tokenHmac: randomKeyHash(), role: 'admin' }, { type: 'token.created', actor: 'cli' }), 'KAKUIN_E_TOKEN_EXISTS');
        const c = await registry.appendAuditEvent({ type: 'device.revoked', actor: 'cli', deviceId: 'd1' });
        const events = await registry.listAuditEvents({});
        expect(events.map((e) => e.chain!.seq)).to.deep.equal([1, 2, 3]);
        expect(new Set(events.map((e) => e.chain!.chain)).size).to.equal(1);
        expect(events[0].chain!.prev).to.equal(GENESIS_PREV);
        expect(events[1].chain!.prev).to.equal(events[0].chain!.hash);
        expect(events[2].chain!.prev).to.equal(events[1].chain!.hash);
        expect(events[0]).to.deep.equal(a);
        expect(events[2]).to.deep.equal(c);
        for (const e of events) expect(hashOfHashedEvent(hashedAuditEvent(e, e.chain!))).to.equal(e.chain!.hash);
        expect(await registry.auditChainHeads()).to.deep.equal([{ chain: c.chain!.chain, seq: 3, hash: c.chain!.hash, eventId: c.id }]);
      });
    });

    describe('close', function () {
      it('commits an issuance in flight, then refuses calls with KAKUIN_E_REGISTRY_UNAVAILABLE', async function () {
        const d = await device(await manufacturer());
        const pending = registry.recordIssuance(issuance(fakeCertificate({ issuerId: ISSUER_ID, deviceId: d.id })));
        await registry.close();
        expect((await pending).deviceId).to.equal(d.id);
        await expectKakuinError(registry.getDevice(d.id), 'KAKUIN_E_REGISTRY_UNAVAILABLE');
        await expectKakuinError(registry.createManufacturer({ name: 'late' }), 'KAKUIN_E_REGISTRY_UNAVAILABLE');
        await expectKakuinError(registry.recordIssuance(issuance(fakeCertificate({ issuerId: ISSUER_ID }))), 'KAKUIN_E_REGISTRY_UNAVAILABLE');
        await registry.close();
      });
    });

    runRevocationContract(() => registry);
    runCrlOcspContract(() => registry);
    runLegacyContract(() => registry);
    runEnrollmentContract(() => registry);
    runPagingContract(() => registry);
  });
}
