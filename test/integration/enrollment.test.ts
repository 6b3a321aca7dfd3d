/**
 * Production-line enrollment over real HTTPS: stations with API keys scoped to their manufacturer,
 * pre-registration (JSON and CSV), enrollment with openssl CSRs, clone and key-reuse refusals with
 * audit events, allowed re-enrollment superseding the old certificate, and NDJSON batches.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cliMain, makeTempDir, opensslAsync, opensslBytes, opensslOk } from '../support/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { apiAs, newFactory, opensslCsr, type Factory } from '../enrollment/support.js';

describe('production-line enrollment (REST and batch)', function () {
  /** A second admin, made on the host (`kakuin token create` needs no approval): the approver of mass acts. */
  let secondAdminToken: string | undefined;
  const secondAdmin = (): string => {
    if (secondAdminToken === undefined) {
      const r = spawnSync(process.execPath, [cliMain, 'token', 'create', '--name', 'second-admin', '--role', 'admin'], { env: { ...process.env, ...svc.env }, timeout: 30_000 });
      expect(r.status, r.stderr.toString()).to.equal(0);
      secondAdminToken = r.stdout.toString().trim().split('\n').pop()!;
    }
    return secondAdminToken;
  };
  this.timeout(120_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let a: Factory;
  let b: Factory;
  let admin: ReturnType<typeof apiAs>;
  let stationA: ReturnType<typeof apiAs>;
  let stationB: ReturnType<typeof apiAs>;

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService();
    admin = apiAs(svc, svc.adminToken);
    a = await newFactory(svc, 'Factory A');
    b = await newFactory(svc, 'Factory B');
    stationA = apiAs(svc, a.apiKey);
    stationB = apiAs(svc, b.apiKey);
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  async function events(type: string) {
    const r = await admin('GET', `/api/v1/audit-events?type=${type}&limit=1000`);
    expect(r.status, r.text).to.equal(200);
    return r.json.events as { actor: string; deviceId?: string; details: Record<string, unknown> }[];
  }

  describe('stations', () => {
    it('creates a station with an API key of at least 128 random bits, shown once and stored only as an HMAC', async () => {
      const s = await admin('POST', `/api/v1/manufacturers/${a.manufacturerId}/stations`, { body: { name: 'line-2' } });
      expect(s.status, s.text).to.equal(201);
      expect(Buffer.from(s.json.apiKey.replace(/^kkst_/, ''), 'base64url').length).to.be.at.least(16);
      const list = await admin('GET', `/api/v1/manufacturers/${a.manufacturerId}/stations`);
      expect(list.text).to.not.include(s.json.apiKey);
      expect(list.json.stations.map((x: { name: string }) => x.name)).to.include.members(['line-1', 'line-2']);
      const created = (await events('station.created')).find((e) => e.details.stationId === s.json.id);
      expect(created?.actor).to.equal('token:bootstrap');
    });

    it('refuses a station on admin routes (devices, revocation, stations)', async () => {
      expect((await stationA('GET', '/api/v1/devices')).json.code).to.equal('KAKUIN_E_FORBIDDEN');
      expect((await stationA('POST', `/api/v1/manufacturers/${a.manufacturerId}/stations`, { body: { name: 'x' } })).status).to.equal(403);
      expect((await stationA('POST', '/api/v1/devices/anything/revoke', { body: {} })).status).to.equal(403);
    });

    it('refuses a duplicate station name within a manufacturer', async () => {
      const r = await admin('POST', `/api/v1/manufacturers/${a.manufacturerId}/stations`, { body: { name: 'line-1' } });
      expect(r.status).to.equal(409);
      expect(r.json.code).to.equal('KAKUIN_E_STATION_EXISTS');
    });

    it('rotating the key ends the old one at once; disabling ends the station', async () => {
      const s = await admin('POST', `/api/v1/manufacturers/${a.manufacturerId}/stations`, { body: { name: 'line-rotate' } });
      const old = s.json.apiKey;
      expect((await apiAs(svc, old)('GET', '/api/v1/station/devices')).status).to.equal(200);
      const rot = await admin('POST', `/api/v1/stations/${s.json.id}/rotate-key`);
      expect(rot.status, rot.text).to.equal(200);
      expect(rot.json.apiKey).to.not.equal(old);
      expect((await apiAs(svc, old)('GET', '/api/v1/station/devices')).status).to.equal(401);
      expect((await apiAs(svc, rot.json.apiKey)('GET', '/api/v1/station/devices')).status).to.equal(200);
      const dis = await admin('POST', `/api/v1/stations/${s.json.id}/disable`);
      expect(dis.status, dis.text).to.equal(200);
      expect(dis.json.disabledAt).to.be.a('string');
      const r = await apiAs(svc, rot.json.apiKey)('GET', '/api/v1/station/devices');
      expect(r.status).to.equal(401);
      expect(r.json.code).to.equal('KAKUIN_E_UNAUTHENTICATED');
      expect((await events('station.key-rotated')).some((e) => e.details.stationId === s.json.id)).to.equal(true);
      expect((await events('station.disabled')).some((e) => e.details.stationId === s.json.id)).to.equal(true);
    });

    it('a disabled station can be enabled again: its current key works again, and both changes are audit events', async () => {
      const s = await admin('POST', `/api/v1/manufacturers/${a.manufacturerId}/stations`, { body: { name: 'line-reenable' } });
      const key = s.json.apiKey;
      expect((await admin('POST', `/api/v1/stations/${s.json.id}/disable`)).status).to.equal(200);
      expect((await apiAs(svc, key)('GET', '/api/v1/station/devices')).status).to.equal(401);
      const en = await admin('POST', `/api/v1/stations/${s.json.id}/enable`);
      expect(en.status, en.text).to.equal(200);
      expect(en.json.disabledAt).to.equal(undefined);
      expect((await apiAs(svc, key)('GET', '/api/v1/station/devices')).status).to.equal(200);
      expect((await events('station.enabled')).some((e) => e.details.stationId === s.json.id)).to.equal(true);
      const unknown = await admin('POST', '/api/v1/stations/00000000-0000-4000-8000-000000000000/enable');
      expect(unknown.status).to.equal(404);
      expect(unknown.json.code).to.equal('KAKUIN_E_STATION_NOT_FOUND');
      expect((await apiAs(svc, key)('POST', `/api/v1/stations/${s.json.id}/enable`)).status, 'admin only').to.be.oneOf([401, 403]);
    });
  });

  describe('pre-registration', () => {
    it('registers valid JSON rows and names each bad row with its code (per row, not all or nothing)', async () => {
      const r = await stationA('POST', '/api/v1/devices/import', {
        body: [
          { serialNumber: 'A-0001', mac: 'AA-BB-CC-00-00-01', imei: '490154203237518', model: 'S1' },
          { serialNumber: 'A-0002', mac: 'zz' },
          { serialNumber: 'A-0003', hardwareId: 'hw-3' },
          { serialNumber: 'A-0001' },
          { serialNumber: 'A-0004', imei: '490154203237519' },
          { serialNumber: 'A-0005', color: 'red' },
        ],
      });
      expect(r.status, r.text).to.equal(200);
      expect(r.json.registered.map((x: { serialNumber: string }) => x.serialNumber)).to.deep.equal(['A-0001', 'A-0003']);
      expect(r.json.errors.map((x: { row: number; code: string }) => [x.row, x.code])).to.deep.equal([
        [2, 'KAKUIN_E_INVALID_IDENTIFIER'], [4, 'KAKUIN_E_DEVICE_EXISTS'], [5, 'KAKUIN_E_INVALID_IDENTIFIER'], [6, 'KAKUIN_E_BATCH_ITEM_MALFORMED'],
      ]);
      const own = await stationA('GET', '/api/v1/station/devices?serialNumber=A-0001');
      expect(own.json.devices[0].identifiers.mac).to.equal('aa:bb:cc:00:00:01');
      expect(own.json.devices[0].manufacturerId).to.equal(a.manufacturerId);
    });

    it('takes CSV with a header line', async () => {
      const csv = 'serialNumber,mac,model\nA-0101,aa:bb:cc:00:01:01,S2\nA-0102,,S2\nA-0103,nope,S2\nA-0104,aa:bb:cc:00:01:04\n';
      const r = await stationA('POST', '/api/v1/devices/import', { body: csv, contentType: 'text/csv' });
      expect(r.status, r.text).to.equal(200);
      expect(r.json.registered.map((x: { serialNumber: string }) => x.serialNumber)).to.deep.equal(['A-0101', 'A-0102']);
      expect(r.json.errors.map((x: { row: number; code: string }) => [x.row, x.code])).to.deep.equal([
        [3, 'KAKUIN_E_INVALID_IDENTIFIER'], [4, 'KAKUIN_E_BATCH_ITEM_MALFORMED'],
      ]);
    });

    it('scopes a station to its manufacturer: it cannot import for or see another', async () => {
      const r = await stationA('POST', `/api/v1/devices/import?manufacturerId=${b.manufacturerId}`, { body: [{ serialNumber: 'X-1' }] });
      expect(r.status).to.equal(403);
      expect((await stationB('GET', '/api/v1/station/devices?serialNumber=A-0001')).json.devices).to.deep.equal([]);
    });

    it('an admin imports naming the manufacturer', async () => {
      const r = await admin('POST', `/api/v1/devices/import?manufacturerId=${b.manufacturerId}`, { body: [{ serialNumber: 'B-0001' }, { serialNumber: 'A-0001' }] });
      expect(r.status, r.text).to.equal(201);
      expect((await admin('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'B-0009' }] })).json.code).to.equal('KAKUIN_E_VALIDATION');
    });
  });

  describe('enrollment with a CSR', () => {
    it('enrolls a pre-registered device for its own station, with an openssl-verifiable certificate and a station:<id> audit actor', async () => {
      const { csrPem } = opensslCsr(tmp.dir, 'a1', '/serialNumber=A-0001');
      const r = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0001', csr: csrPem } });
      expect(r.status, r.text).to.equal(201);
      expect(r.json.existing).to.equal(false);
      const subject = opensslOk(['x509', '-noout', '-subject'], r.json.certificate);
      expect(subject).to.match(/serialNumber\s*=\s*A-0001/);
      expect(subject).to.match(/O\s*=\s*Factory A/);
      const issued = (await admin('GET', `/api/v1/audit-events?deviceId=${r.json.deviceId}&type=certificate.issued`)).json.events;
      expect(issued[0].actor).to.equal(`station:${a.stationId}`);
      // Retrying the same CSR returns the same certificate and issues nothing.
      const again = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0001', csr: csrPem } });
      expect(again.status, again.text).to.equal(200);
      expect(again.json.existing).to.equal(true);
      expect(again.json.serialHex).to.equal(r.json.serialHex);
      const device = await admin('GET', `/api/v1/devices/${r.json.deviceId}`);
      expect(device.json.certificates).to.have.length(1);
      expect(device.json.status).to.equal('active');
    });

    it("refuses a station of manufacturer B for A's device (as unregistered for B) and records it", async () => {
      const { csrPem } = opensslCsr(tmp.dir, 'a3-by-b', '/serialNumber=A-0003');
      const r = await stationB('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0003', csr: csrPem } });
      expect(r.status).to.equal(403);
      expect(r.json.code).to.equal('KAKUIN_E_DEVICE_NOT_REGISTERED');
      const forged = await stationB('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0003', csr: csrPem, manufacturerId: a.manufacturerId } });
      expect(forged.json.code).to.equal('KAKUIN_E_FORBIDDEN');
      const refused = await events('enrollment.refused');
      expect(refused.some((e) => e.actor === `station:${b.stationId}` && e.details.serialNumber === 'A-0003' && e.details.reason === 'unregistered')).to.equal(true);
      const a3 = (await stationA('GET', '/api/v1/station/devices?serialNumber=A-0003')).json.devices[0];
      expect(a3.status).to.equal('registered');
    });

    it('refuses an unregistered serial number with KAKUIN_E_DEVICE_NOT_REGISTERED and an audit event', async () => {
      const { csrPem } = opensslCsr(tmp.dir, 'ghost', '/serialNumber=GHOST-1');
      const r = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'GHOST-1', csr: csrPem } });
      expect(r.json.code).to.equal('KAKUIN_E_DEVICE_NOT_REGISTERED');
      expect((await events('enrollment.refused')).some((e) => e.details.serialNumber === 'GHOST-1')).to.equal(true);
    });

    it('refuses a clone (a second key for a device with an active identity) with an audit event', async () => {
      const { csrPem } = opensslCsr(tmp.dir, 'a1-clone', '/serialNumber=A-0001');
      const r = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0001', csr: csrPem } });
      expect(r.status).to.equal(409);
      expect(r.json.code).to.equal('KAKUIN_E_DEVICE_ALREADY_ENROLLED');
      expect((await events('enrollment.refused')).some((e) => e.details.serialNumber === 'A-0001' && e.details.reason === 'already-enrolled')).to.equal(true);
    });

    it("refuses a key already bound to another device (key reuse) with an audit event", async () => {
      const first = opensslCsr(tmp.dir, 'a101', '/serialNumber=A-0101');
      expect((await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0101', csr: first.csrPem } })).status).to.equal(201);
      const reuse = opensslCsr(tmp.dir, 'a102', '/serialNumber=A-0102', first.keyFile);
      const r = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0102', csr: reuse.csrPem } });
      expect(r.json.code).to.equal('KAKUIN_E_PUBLIC_KEY_IN_USE');
      expect((await events('enrollment.refused')).some((e) => e.details.serialNumber === 'A-0102' && e.details.reason === 'public-key-in-use')).to.equal(true);
    });

    it('after allow-reenrollment the new certificate supersedes the old one (revoked as superseded, overlapHours 0), once', async () => {
      const device = (await stationA('GET', '/api/v1/station/devices?serialNumber=A-0001')).json.devices[0];
      const before = (await admin('GET', `/api/v1/devices/${device.id}`)).json.certificates[0];
      const until = new Date(Date.now() + 3_600_000).toISOString();
      expect((await stationA('POST', `/api/v1/devices/${device.id}/allow-reenrollment`, { body: { until } })).status).to.equal(403);
      const allow = await admin('POST', `/api/v1/devices/${device.id}/allow-reenrollment`, { body: { until } });
      expect(allow.status, allow.text).to.equal(200);
      const { csrPem } = opensslCsr(tmp.dir, 'a1-rma', '/serialNumber=A-0001');
      const r = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0001', csr: csrPem } });
      expect(r.status, r.text).to.equal(201);
      expect(r.json.supersedes).to.deep.equal([before.serialHex]);
      const old = await admin('GET', `/api/v1/certificates/${before.serialHex}`);
      expect(old.json.status).to.equal('revoked');
      expect(old.json.reason).to.equal('superseded');
      // The allowance is used up: another new key is a clone again.
      const third = opensslCsr(tmp.dir, 'a1-third', '/serialNumber=A-0001');
      expect((await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0001', csr: third.csrPem } })).json.code).to.equal('KAKUIN_E_DEVICE_ALREADY_ENROLLED');
    });

    it('refuses a CSR with a bad signature, a CSR whose subject names another device, and garbage, changing nothing', async () => {
      const { csrPem, csrFile } = opensslCsr(tmp.dir, 'a3-mismatch', '/serialNumber=A-9999');
      const r = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0003', csr: csrPem } });
      expect(r.json.code).to.equal('KAKUIN_E_CSR_SUBJECT_MISMATCH');
      const der = opensslBytes(['req', '-in', csrFile, '-outform', 'DER']);
      der[der.length - 1] ^= 0x01;
      const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
      const sig = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0003', csr: tampered } });
      expect(sig.json.code).to.equal('KAKUIN_E_CSR_SIGNATURE_INVALID');
      const bad = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0003', csr: 'not a csr' } });
      expect(bad.status).to.equal(400);
      const a3 = (await stationA('GET', '/api/v1/station/devices?serialNumber=A-0003')).json.devices[0];
      expect((await admin('GET', `/api/v1/devices/${a3.id}`)).json.certificates).to.deep.equal([]);
    });
  });

  describe('batch (NDJSON)', () => {
    it('enrolls line by line, one bad line failing alone, results in input order; a retried batch issues nothing new', async () => {
      const serials = Array.from({ length: 6 }, (_, i) => `A-B${String(i).padStart(3, '0')}`);
      const imp = await stationA('POST', '/api/v1/devices/import', { body: serials.map((serialNumber) => ({ serialNumber })) });
      expect(imp.status, imp.text).to.equal(201);
      const csrs = serials.map((s) => opensslCsr(tmp.dir, s, `/serialNumber=${s}`).csrPem);
      const lines = [
        JSON.stringify({ serialNumber: serials[0], csr: csrs[0] }),
        JSON.stringify({ serialNumber: serials[1], csr: csrs[1] }),
        '{"serialNumber": "broken',
        JSON.stringify({ serialNumber: 'NOT-REGISTERED', csr: csrs[2] }),
        '',
        JSON.stringify({ serialNumber: serials[2], csr: csrs[2] }),
        JSON.stringify({ serialNumber: serials[3], csr: 'garbage' }),
        `{"serialNumber": "${'X'.repeat(70_000)}"}`,
        JSON.stringify({ serialNumber: serials[4], csr: csrs[4] }),
      ];
      const body = `${lines.join('\n')}\n`;
      const run = async () => {
        const r = await stationA('POST', '/api/v1/enroll/batch', { body, contentType: 'application/x-ndjson' });
        expect(r.status, r.text).to.equal(200);
        expect(r.headers['content-type']).to.match(/application\/x-ndjson/);
        return r.text.trim().split('\n').map((l) => JSON.parse(l));
      };
      const first = await run();
      expect(first.map((x) => x.line)).to.deep.equal([1, 2, 3, 4, 6, 7, 8, 9]);
      expect(first.map((x) => x.error?.code ?? 'ok')).to.deep.equal([
        'ok', 'ok', 'KAKUIN_E_BATCH_ITEM_MALFORMED', 'KAKUIN_E_DEVICE_NOT_REGISTERED', 'ok', 'KAKUIN_E_PEM_MALFORMED', 'KAKUIN_E_BATCH_ITEM_MALFORMED', 'ok',
      ]);
      expect(first.filter((x) => x.certificate).every((x) => x.existing === false)).to.equal(true);
      const issuedBefore = (await events('certificate.issued')).length;
      const second = await run();
      expect(second.filter((x) => x.certificate).map((x) => x.serialHex)).to.deep.equal(first.filter((x) => x.certificate).map((x) => x.serialHex));
      expect(second.filter((x) => x.certificate).every((x) => x.existing === true)).to.equal(true);
      expect((await events('certificate.issued')).length).to.equal(issuedBefore);
    });

    it("a batch of station B cannot enroll A's devices", async () => {
      const csr = opensslCsr(tmp.dir, 'b-batch', '/serialNumber=A-B005').csrPem;
      const r = await stationB('POST', '/api/v1/enroll/batch', { body: `${JSON.stringify({ serialNumber: 'A-B005', csr })}\n`, contentType: 'application/x-ndjson' });
      expect(JSON.parse(r.text.trim()).error.code).to.equal('KAKUIN_E_DEVICE_NOT_REGISTERED');
    });

    it('refuses the items beyond 10,000 lines', async () => {
      const line = JSON.stringify({ serialNumber: 'NOPE', csr: 'x' });
      const body = `${Array.from({ length: 10_001 }, () => line).join('\n')}\n`;
      const r = await stationA('POST', '/api/v1/enroll/batch', { body, contentType: 'application/x-ndjson' });
      const out = r.text.trim().split('\n').map((l) => JSON.parse(l));
      expect(out).to.have.length(10_001);
      expect(out[10_000].error.code).to.equal('KAKUIN_E_BATCH_TOO_LARGE');
      expect(out[9_999].error.code).to.not.equal('KAKUIN_E_BATCH_TOO_LARGE');
    });
  });

  describe('incident response', () => {
    it('revokes everything a station issued in a time window, and only that; a station may not call it', async () => {
      const s = await admin('POST', `/api/v1/manufacturers/${a.manufacturerId}/stations`, { body: { name: 'line-compromised' } });
      const compromised = apiAs(svc, s.json.apiKey);
      await stationA('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'A-C001' }, { serialNumber: 'A-C002' }, { serialNumber: 'A-C003' }] });
      const since = new Date(Date.now() - 1000).toISOString();
      const c1 = await compromised('POST', '/api/v1/enroll', { body: { serialNumber: 'A-C001', csr: opensslCsr(tmp.dir, 'c1', '/serialNumber=A-C001').csrPem } });
      const c2 = await compromised('POST', '/api/v1/enroll', { body: { serialNumber: 'A-C002', csr: opensslCsr(tmp.dir, 'c2', '/serialNumber=A-C002').csrPem } });
      const other = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-C003', csr: opensslCsr(tmp.dir, 'c3', '/serialNumber=A-C003').csrPem } });
      expect([c1.status, c2.status, other.status]).to.deep.equal([201, 201, 201]);
      const until = new Date(Date.now() + 1000).toISOString();
      expect((await compromised('POST', `/api/v1/stations/${s.json.id}/revoke-issued`, { body: { since, until } })).status).to.equal(403);
      // A mass revocation waits for a second admin (management-api/approvals.ts); that one is made on the host.
      const asked = await admin('POST', `/api/v1/stations/${s.json.id}/revoke-issued`, { body: { since, until, reason: 'keyCompromise' } });
      expect(asked.status, asked.text).to.equal(202);
      const second = apiAs(svc, secondAdmin());
      const r = await second('POST', `/api/v1/approvals/${asked.json.approval.id}/approve`);
      expect(r.status, r.text).to.equal(200);
      r.json = r.json.result;
      expect(r.json.revoked).to.have.members([c1.json.serialHex, c2.json.serialHex]);
      expect((await admin('GET', `/api/v1/certificates/${c1.json.serialHex}`)).json).to.include({ status: 'revoked', reason: 'keyCompromise' });
      expect((await admin('GET', `/api/v1/certificates/${other.json.serialHex}`)).json.status).to.equal('good');
      const askedAgain = await admin('POST', `/api/v1/stations/${s.json.id}/revoke-issued`, { body: { since, until } });
      const again = (await second('POST', `/api/v1/approvals/${askedAgain.json.approval.id}/approve`)).json.result;
      expect(again.revoked).to.deep.equal([]);
      expect(again.alreadyRevoked).to.have.length(2);
    });
  });

  describe('server-side key generation (PKCS#12)', () => {
    const password = 'factory-line-p12-password';

    async function p12Info(base64: string, pass = password) {
      const file = path.join(tmp.dir, `p12-${Math.random().toString(36).slice(2)}.p12`);
      writeFileSync(file, Buffer.from(base64, 'base64'));
      return opensslAsync(['pkcs12', '-in', file, '-info', '-nodes', '-passin', `pass:${pass}`]);
    }

    it('returns the key once as PKCS#12 that openssl pkcs12 opens with the password (key, leaf, chain); the key matches the certificate', async () => {
      await stationA('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'A-K001' }] });
      const r = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-K001', keygen: { password } } });
      expect(r.status, r.text).to.equal(201);
      const info = await p12Info(r.json.pkcs12);
      expect(info.status, info.stderr).to.equal(0);
      expect(info.stdout.match(/-----BEGIN CERTIFICATE-----/g)).to.have.length(3);
      expect(info.stdout).to.match(/-----BEGIN PRIVATE KEY-----/);
      expect(info.stdout).to.match(/subject=.*serialNumber\s*=\s*A-K001/);
      const keyPem = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(info.stdout)![0];
      const fromKey = (await opensslAsync(['pkey', '-pubout'], keyPem)).stdout;
      const fromCert = (await opensslAsync(['x509', '-noout', '-pubkey'], r.json.certificate)).stdout;
      expect(fromKey).to.equal(fromCert);
      expect((await p12Info(r.json.pkcs12, 'wrong-password-xxxxxxxx')).status).to.not.equal(0);
    });

    it('writes the PKCS#12 with PBES2/AES-256-CBC, PBKDF2-HMAC-SHA-256 and a SHA-256 MAC at 100,000 iterations (openssl pkcs12 -info); legacy: true gives 3DES/SHA-1 only when asked', async () => {
      await stationA('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'A-K003' }, { serialNumber: 'A-K004' }] });
      const r = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-K003', keygen: { password } } });
      expect(r.status, r.text).to.equal(201);
      const info = await p12Info(r.json.pkcs12);
      expect(info.status, info.stderr).to.equal(0);
      expect(info.stderr).to.match(/MAC: sha256, Iteration 100000/);
      expect(info.stderr).to.match(/Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 100000, PRF hmacWithSHA256/);
      expect(info.stderr).to.not.match(/3DES|TripleDES|RC2|sha1/i);
      expect(info.stdout).to.match(/friendlyName: A-K003/);
      const legacy = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-K004', keygen: { password, legacy: true } } });
      expect(legacy.status, legacy.text).to.equal(201);
      const old = await p12Info(legacy.json.pkcs12);
      expect(old.status, old.stderr).to.equal(0);
      expect(old.stderr).to.match(/MAC: sha1/).and.match(/Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC/);
      expect(old.stdout.match(/-----BEGIN CERTIFICATE-----/g)).to.have.length(3);
      const pemLegacy = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-K004', keygen: { password, format: 'pem', legacy: true } } });
      expect(pemLegacy.status).to.equal(400);
      expect(pemLegacy.json.code).to.equal('KAKUIN_E_VALIDATION');
    });

    it('a retried keygen item issues a new key pair and supersedes the earlier keygen certificate; a CSR-enrolled device is still a clone case', async () => {
      await stationA('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'A-K002' }] });
      const line = `${JSON.stringify({ serialNumber: 'A-K002', keygen: { password } })}\n`;
      const batch = async () => JSON.parse((await stationA('POST', '/api/v1/enroll/batch', { body: line, contentType: 'application/x-ndjson' })).text.trim());
      const first = await batch();
      expect(first.pkcs12, JSON.stringify(first)).to.be.a('string');
      const second = await batch();
      expect(second.serialHex).to.not.equal(first.serialHex);
      expect(second.supersedes).to.deep.equal([first.serialHex]);
      expect((await admin('GET', `/api/v1/certificates/${first.serialHex}`)).json).to.include({ status: 'revoked', reason: 'superseded' });
      const csrDevice = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-0101', keygen: { password } } });
      expect(csrDevice.json.code).to.equal('KAKUIN_E_DEVICE_ALREADY_ENROLLED');
      const pem = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-K002', keygen: { password, format: 'pem' } } });
      expect(pem.status, pem.text).to.equal(201);
      expect(pem.json.pkcs12).to.equal(undefined);
      expect(pem.json.pem).to.match(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
      const keyPem = /-----BEGIN ENCRYPTED PRIVATE KEY-----[\s\S]+?-----END ENCRYPTED PRIVATE KEY-----\n/.exec(pem.json.pem)![0];
      const pub = await opensslAsync(['pkey', '-passin', `pass:${password}`, '-pubout'], keyPem);
      expect(pub.status, pub.stderr).to.equal(0);
      expect(pub.stdout).to.equal((await opensslAsync(['x509', '-noout', '-pubkey'], pem.json.certificate)).stdout);
      expect((await opensslAsync(['pkey', '-passin', 'pass:not-the-password-at-all', '-pubout'], keyPem)).status).to.not.equal(0);
      const weak = await stationA('POST', '/api/v1/enroll', { body: { serialNumber: 'A-K002', keygen: { password: 'short' } } });
      expect(weak.json.code).to.equal('KAKUIN_E_VALIDATION');
    });
  });

  describe('issuance quota', () => {
    it('a station with a quota gets KAKUIN_E_STATION_QUOTA_EXHAUSTED past it (per batch item); retries of issued CSRs still answer; raising it lets the rest through', async () => {
      const st = await admin('POST', `/api/v1/manufacturers/${a.manufacturerId}/stations`, { body: { name: 'line-quota' } });
      const q = await admin('POST', `/api/v1/stations/${st.json.id}/quota`, { body: { maxIssuances: 2 } });
      expect(q.status, q.text).to.equal(200);
      expect(q.json).to.include({ maxIssuances: 2, issued: 0 });
      expect((await apiAs(svc, st.json.apiKey)('POST', `/api/v1/stations/${st.json.id}/quota`, { body: { maxIssuances: 100 } })).status).to.equal(403);
      const serials = ['A-Q001', 'A-Q002', 'A-Q003'];
      await stationA('POST', '/api/v1/devices/import', { body: serials.map((serialNumber) => ({ serialNumber })) });
      const body = `${serials.map((s) => JSON.stringify({ serialNumber: s, csr: opensslCsr(tmp.dir, s, `/serialNumber=${s}`).csrPem })).join('\n')}\n`;
      const run = async () => (await apiAs(svc, st.json.apiKey)('POST', '/api/v1/enroll/batch', { body, contentType: 'application/x-ndjson' })).text.trim().split('\n').map((l) => JSON.parse(l));
      const first = await run();
      expect(first.filter((x) => x.certificate)).to.have.length(2);
      expect(first.filter((x) => x.error).map((x) => x.error.code)).to.deep.equal(['KAKUIN_E_STATION_QUOTA_EXHAUSTED']);
      const second = await run();
      expect(second.filter((x) => x.existing === true)).to.have.length(2);
      expect(second.filter((x) => x.error).map((x) => x.error.code)).to.deep.equal(['KAKUIN_E_STATION_QUOTA_EXHAUSTED']);
      await admin('POST', `/api/v1/stations/${st.json.id}/quota`, { body: { maxIssuances: null } });
      const third = await run();
      expect(third.filter((x) => x.error)).to.deep.equal([]);
    });
  });
});
