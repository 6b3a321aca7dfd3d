/**
 * Factory stations with station certificates (mTLS), certificate profiles per manufacturer, and
 * durable supersession, against a real service: `curl --cert/--key` as the station (spawned
 * asynchronously: the service runs in this process), `openssl` for keys, CSRs and checks.
 */
import { expect } from 'chai';
import https from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { makeTempDir, opensslAsync, opensslBytes } from '../support/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { apiAs, curl, newFactory, opensslCsr, type Factory } from '../enrollment/support.js';

/** Every listener on a free port: other test files may run beside this one. */
const PORTS = { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0' };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('factory stations: station certificates (mTLS) with curl and openssl', function () {
  this.timeout(120_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let rootFile: string;
  let a: Factory;
  let b: Factory;
  let admin: ReturnType<typeof apiAs>;

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService({ env: PORTS });
    admin = apiAs(svc, svc.adminToken);
    rootFile = path.join(tmp.dir, 'root.pem');
    writeFileSync(rootFile, svc.rootPem);
    a = await newFactory(svc, 'Station Factory A');
    b = await newFactory(svc, 'Station Factory B');
    for (const [f, serials] of [[a, ['STA-0001', 'STA-0002', 'STA-0003']], [b, ['STB-0001']]] as const) {
      const imp = await apiAs(svc, f.apiKey)('POST', '/api/v1/devices/import', { body: serials.map((serialNumber) => ({ serialNumber })) });
      expect(imp.status, imp.text).to.equal(201);
    }
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  /** A station key and CSR from openssl; the admin has the station CA issue the certificate. */
  async function stationCertificate(f: Factory, name: string, body: Record<string, unknown> = {}) {
    const { csrPem, keyFile } = opensslCsr(tmp.dir, name, `/CN=${name}`);
    const r = await admin('POST', `/api/v1/stations/${f.stationId}/certificate`, { body: { csr: csrPem, ...body } });
    expect(r.status, r.text).to.equal(201);
    const certFile = path.join(tmp.dir, `${name}.pem`);
    writeFileSync(certFile, r.json.certificate);
    return { certFile, keyFile, serialHex: r.json.serialHex as string, json: r.json };
  }

  function estCsrFile(name: string, serialNumber: string): string {
    const { csrFile } = opensslCsr(tmp.dir, name, `/serialNumber=${serialNumber}`);
    const file = path.join(tmp.dir, `${name}.b64`);
    writeFileSync(file, opensslBytes(['req', '-in', csrFile, '-outform', 'DER']).toString('base64'));
    return file;
  }

  const asCert = (c: { certFile: string; keyFile: string }) => ['--cacert', rootFile, '--cert', c.certFile, '--key', c.keyFile];

  it('the station CA issues a station certificate that openssl verifies to the root: names the station, clientAuth, recorded as profile station', async () => {
    const c = await stationCertificate(a, 'sta-a1');
    expect(c.json.supersedes).to.deep.equal([]);
    const chainFile = path.join(tmp.dir, 'station-chain.pem');
    writeFileSync(chainFile, c.json.chain);
    const verify = await opensslAsync(['verify', '-CAfile', rootFile, '-untrusted', chainFile, '-purpose', 'sslclient', c.certFile]);
    expect(verify.status, verify.stdout + verify.stderr).to.equal(0);
    const text = (await opensslAsync(['x509', '-in', c.certFile, '-noout', '-subject', '-issuer', '-ext', 'subjectAltName,extendedKeyUsage'])).stdout;
    expect(text).to.match(/subject=.*O\s*=\s*Station Factory A.*CN\s*=\s*line-1.*serialNumber\s*=\s*/);
    expect(text).to.include(a.stationId);
    expect(text).to.match(/issuer=.*Station CA/);
    expect(text).to.include(`URI:urn:kakuin:station:${a.stationId}`);
    expect(text).to.match(/TLS Web Client Authentication/);
    const record = await admin('GET', `/api/v1/certificates/${c.serialHex}`);
    expect(record.json).to.include({ profile: 'station', issuerId: 'station', status: 'good' });
    expect(record.json.deviceId).to.equal(undefined);
    const listed = await admin('GET', `/api/v1/stations/${a.stationId}/certificates`);
    expect(listed.json.certificates.map((x: { serialHex: string }) => x.serialHex)).to.include(c.serialHex);
  });

  it('only an admin has a station certificate issued; an unknown station or a bad CSR changes nothing', async () => {
    const { csrPem } = opensslCsr(tmp.dir, 'sta-x', '/CN=x');
    const byStation = await apiAs(svc, a.apiKey)('POST', `/api/v1/stations/${a.stationId}/certificate`, { body: { csr: csrPem } });
    expect(byStation.status).to.equal(403);
    const unknown = await admin('POST', '/api/v1/stations/00000000-0000-0000-0000-000000000000/certificate', { body: { csr: csrPem } });
    expect(unknown.status).to.equal(404);
    expect(unknown.json.code).to.equal('KAKUIN_E_STATION_NOT_FOUND');
    const before = (await admin('GET', `/api/v1/stations/${b.stationId}/certificates`)).json.certificates.length;
    const garbage = await admin('POST', `/api/v1/stations/${b.stationId}/certificate`, { body: { csr: 'not a csr' } });
    expect(garbage.status).to.equal(400);
    const badOverlap = await admin('POST', `/api/v1/stations/${b.stationId}/certificate`, { body: { csr: csrPem, overlapHours: -1 } });
    expect(badOverlap.json.code).to.equal('KAKUIN_E_VALIDATION');
    expect((await admin('GET', `/api/v1/stations/${b.stationId}/certificates`)).json.certificates.length).to.equal(before);
  });

  it('EST simpleenroll and REST enroll authenticate a station by its certificate, scoped to its manufacturer', async () => {
    const c = await stationCertificate(a, 'sta-a-est');
    const est = await curl([...asCert(c), '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${estCsrFile('sta-est-1', 'STA-0001')}`,
      `${svc.url}/.well-known/est/simpleenroll`]);
    expect(est.status, est.body).to.equal(200);
    const printed = await opensslAsync(['pkcs7', '-inform', 'DER', '-print_certs', '-noout'], Buffer.from(est.body.replace(/\s+/g, ''), 'base64'));
    expect(printed.stdout).to.match(/serialNumber\s*=\s*STA-0001/);

    const csr = opensslCsr(tmp.dir, 'sta-rest-2', '/serialNumber=STA-0002');
    const bodyFile = path.join(tmp.dir, 'sta-rest-2.json');
    writeFileSync(bodyFile, JSON.stringify({ serialNumber: 'STA-0002', csr: csr.csrPem }));
    const rest = await curl([...asCert(c), '-H', 'Content-Type: application/json', '--data-binary', `@${bodyFile}`, `${svc.url}/api/v1/enroll`]);
    expect(rest.status, rest.body).to.equal(201);
    const events = await admin('GET', '/api/v1/audit-events?type=certificate.issued&limit=1000');
    const issued = events.json.events.find((e: { serialHex: string }) => e.serialHex === JSON.parse(rest.body).serialHex);
    expect(issued.actor).to.equal(`station:${a.stationId}`);

    // A's certificate cannot enroll, nor see, B's devices.
    const other = await curl([...asCert(c), '--data-binary', `@${estCsrFile('sta-est-b', 'STB-0001')}`, `${svc.url}/.well-known/est/simpleenroll`]);
    expect(other.status).to.equal(403);
    expect(other.body).to.include('KAKUIN_E_DEVICE_NOT_REGISTERED');
    const naming = await curl([...asCert(c), `${svc.url}/api/v1/station/devices`]);
    expect(naming.status).to.equal(200);
    const serials = JSON.parse(naming.body).devices.map((d: { serialNumber: string }) => d.serialNumber);
    expect(serials).to.include('STA-0001');
    expect(serials).to.not.include('STB-0001');
    const forB = await curl([...asCert(c), '-X', 'POST', '-H', 'Content-Type: application/x-ndjson', '--data-binary', '{}',
      `${svc.url}/api/v1/enroll/batch?manufacturerId=${b.manufacturerId}`]);
    expect(forB.status).to.equal(403);
    // An admin-only route stays admin-only for a station certificate.
    const adminRoute = await curl([...asCert(c), `${svc.url}/api/v1/manufacturers/${a.manufacturerId}/stations`]);
    expect(adminRoute.status).to.equal(401);
  });

  it('rotation supersedes the earlier certificate (refused from then on); a revoked certificate is refused on a keep-alive connection; a disabled station is refused', async () => {
    const first = await stationCertificate(b, 'sta-b-rot1');
    expect((await curl([...asCert(first), `${svc.url}/api/v1/station/devices`])).status).to.equal(200);
    const second = await stationCertificate(b, 'sta-b-rot2');
    expect(second.json.supersedes).to.deep.equal([first.serialHex]);
    expect((await admin('GET', `/api/v1/certificates/${first.serialHex}`)).json).to.include({ status: 'revoked', reason: 'superseded' });
    const old = await curl([...asCert(first), `${svc.url}/api/v1/station/devices`]);
    expect(old.status).to.equal(401);
    expect(JSON.parse(old.body).code).to.equal('KAKUIN_E_UNAUTHENTICATED');

    // Keep-alive: one TLS connection, the certificate revoked between two requests on it.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: svc.rootPem, cert: readFileSync(second.certFile), key: readFileSync(second.keyFile) });
    const get = () => new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
      const req = https.request(new URL('/api/v1/station/devices', svc.url), { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
      });
      req.on('error', reject);
      req.end();
    });
    try {
      expect((await get()).status).to.equal(200);
      const revoked = await admin('POST', `/api/v1/certificates/${second.serialHex}/revoke`, { body: { reason: 'keyCompromise' } });
      expect(revoked.status, revoked.text).to.equal(200);
      const after = await get();
      expect(after.reused, 'the same connection').to.equal(true);
      expect(after.status).to.equal(401);
    } finally {
      agent.destroy();
    }

    const third = await stationCertificate(b, 'sta-b-rot3');
    expect(third.json.supersedes, 'revoked ones are not superseded again').to.deep.equal([]);
    expect((await curl([...asCert(third), `${svc.url}/api/v1/station/devices`])).status).to.equal(200);
    expect((await admin('POST', `/api/v1/stations/${b.stationId}/disable`)).status).to.equal(200);
    expect((await curl([...asCert(third), `${svc.url}/api/v1/station/devices`])).status).to.equal(401);
    const est = await curl([...asCert(third), '--data-binary', `@${estCsrFile('sta-b-dis', 'STB-0001')}`, `${svc.url}/.well-known/est/simpleenroll`]);
    expect(est.status).to.equal(401);
    expect(est.headers).to.match(/www-authenticate: Basic/i);
  });

  it('the station CA answers OCSP and publishes a CRL: a station certificate names both, and its supersession shows in each (openssl ocsp, openssl crl)', async () => {
    const httpUrl = svc.service.httpUrl;
    const stationCaFile = path.join(tmp.dir, 'station-ca.pem');
    writeFileSync(stationCaFile, readFileSync(path.join(svc.dataDir, 'ca', 'station.pem')));
    const first = await stationCertificate(a, 'sta-a-pub1');
    const text = (await opensslAsync(['x509', '-in', first.certFile, '-noout', '-ext', 'crlDistributionPoints,authorityInfoAccess'])).stdout;
    expect(text).to.match(/\/crl\/station\.crl/);
    expect(text).to.match(/OCSP - URI:\S+\/ocsp/);
    expect(text).to.match(/CA Issuers - URI:\S+\/ca\/station\.cer/);
    const ocsp = async (certFile: string) => (await opensslAsync(['ocsp', '-issuer', stationCaFile, '-cert', certFile, '-url', `${httpUrl}/ocsp`,
      '-CAfile', rootFile, '-timeout', '10'])).stdout;
    await waitFor('the station certificate good over OCSP', async () => (await ocsp(first.certFile)).includes(`${first.certFile}: good`), 10_000);
    const second = await stationCertificate(a, 'sta-a-pub2');
    expect(second.json.supersedes).to.deep.equal([first.serialHex]);
    await waitFor('the superseded station certificate revoked over OCSP', async () => (await ocsp(first.certFile)).includes(`${first.certFile}: revoked`), 10_000);
    expect(await ocsp(first.certFile)).to.match(/Reason: superseded/);
    const crlFile = path.join(tmp.dir, 'station.crl');
    await waitFor('the station CRL listing the superseded certificate', async () => {
      // A revocation shows in the delta CRL within crl.coalesceMs; the full one is rebuilt on its schedule.
      const r = await fetch(`${httpUrl}/crl/station-delta.crl`);
      if (r.status !== 200) return false;
      writeFileSync(crlFile, Buffer.from(await r.arrayBuffer()));
      return (await opensslAsync(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text'])).stdout.includes(`Serial Number: ${first.serialHex}`);
    }, 10_000);
    const checked = await opensslAsync(['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', stationCaFile, '-noout']);
    expect(checked.status, checked.stderr).to.equal(0);
    expect(checked.stderr).to.match(/verify OK/);
  });

  it('a station certificate also authenticates the legacy provisioning routes, within its manufacturer; the admin-only import stays admin-only', async () => {
    const c = await stationCertificate(a, 'sta-a-legacy');
    const post = (p: string, body: unknown) => curl([...asCert(c), '-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body), `${svc.url}${p}`]);
    const cid = await post('/api/v1/legacy/common-auth-ids', { name: 'legacy-by-cert' });
    expect(cid.status, cid.body).to.equal(201);
    const commonAuthId = JSON.parse(cid.body).commonAuthId as string;
    const devicesOf = async (f: Factory) => (await admin('GET', `/api/v1/devices?manufacturerId=${f.manufacturerId}&limit=100`)).json.devices as { id: string; serialNumber: string }[];
    const own = (await devicesOf(a)).find((d) => d.serialNumber === 'STA-0002')!;
    const provisioned = await post(`/api/v1/devices/${own.id}/legacy-credentials`, { commonAuthId, uniqueId: 'STA-0002' });
    expect(provisioned.status, provisioned.body).to.equal(201);
    expect(JSON.parse(provisioned.body).authSecret).to.be.a('string');
    const other = (await devicesOf(b)).find((d) => d.serialNumber === 'STB-0001')!;
    const foreign = await post(`/api/v1/devices/${other.id}/legacy-credentials`, { commonAuthId, uniqueId: 'STB-0001' });
    expect(foreign.status).to.be.oneOf([403, 404]);
    const imported = await curl([...asCert(c), '-H', 'Content-Type: application/json', '--data-binary', '[]', `${svc.url}/api/v1/legacy/import`]);
    expect(imported.status).to.equal(401);
  });

  it('a station API key expires enrollment.stationKeyMaxAgeDays (365) after it was made or rotated: KAKUIN_E_STATION_KEY_EXPIRED on REST and EST, rotation revives the station', async () => {
    const made = await admin('POST', `/api/v1/manufacturers/${a.manufacturerId}/stations`, { body: { name: 'line-aging' } });
    expect(made.status, made.text).to.equal(201);
    const expiresIn = Date.parse(made.json.keyExpiresAt) - Date.now();
    expect(expiresIn).to.be.within(364.9 * 86_400_000, 365 * 86_400_000);
    const listed = (await admin('GET', `/api/v1/manufacturers/${a.manufacturerId}/stations`)).json.stations as { id: string; keyExpiresAt: string }[];
    expect(listed.find((x) => x.id === made.json.id)!.keyExpiresAt).to.equal(made.json.keyExpiresAt);
    const key = made.json.apiKey as string;
    expect((await apiAs(svc, key)('GET', '/api/v1/station/devices')).status).to.equal(200);

    // The key made 366 days ago (the registry row aged by hand).
    const db = new Database(path.join(svc.dataDir, 'kakuin.db'));
    try {
      db.prepare('UPDATE stations SET created_at = created_at - ? WHERE id = ?').run(366 * 86_400_000, made.json.id);
    } finally {
      db.close();
    }
    const rest = await apiAs(svc, key)('GET', '/api/v1/station/devices');
    expect([rest.status, rest.json.code]).to.deep.equal([401, 'KAKUIN_E_STATION_KEY_EXPIRED']);
    expect(String(rest.headers['www-authenticate'])).to.match(/^Bearer /);
    expect(rest.json.message).to.match(/rotate/);
    const est = await curl(['--cacert', rootFile, '-u', `${made.json.id}:${key}`, '--data-binary', `@${estCsrFile('sta-aging', 'STA-0003')}`, `${svc.url}/.well-known/est/simpleenroll`]);
    expect(est.status).to.equal(401);
    expect(est.headers).to.match(/www-authenticate: Basic/i);
    expect(est.body).to.match(/^KAKUIN_E_STATION_KEY_EXPIRED: /);

    const rotated = await admin('POST', `/api/v1/stations/${made.json.id}/rotate-key`);
    expect(rotated.status, rotated.text).to.equal(200);
    expect(Date.parse(rotated.json.keyExpiresAt) - Date.now()).to.be.within(364.9 * 86_400_000, 365 * 86_400_000);
    expect((await apiAs(svc, rotated.json.apiKey)('GET', '/api/v1/station/devices')).status).to.equal(200);
    expect((await apiAs(svc, key)('GET', '/api/v1/station/devices')).status).to.equal(401);
  });

  it('a device certificate is not a station credential, and the gateway does not take a station certificate for a device', async () => {
    const csr = opensslCsr(tmp.dir, 'sta-dev-3', '/serialNumber=STA-0003');
    const enrolled = await apiAs(svc, a.apiKey)('POST', '/api/v1/enroll', { body: { serialNumber: 'STA-0003', csr: csr.csrPem } });
    expect(enrolled.status, enrolled.text).to.equal(201);
    const deviceCert = path.join(tmp.dir, 'sta-dev-3.pem');
    writeFileSync(deviceCert, enrolled.json.certificate + enrolled.json.chain);
    const asDevice = await curl(['--cacert', rootFile, '--cert', deviceCert, '--key', csr.keyFile, `${svc.url}/api/v1/station/devices`]);
    expect(asDevice.status).to.equal(401);

    const station = await stationCertificate(a, 'sta-a-gw');
    // Nor is a station certificate a device's: EST simplereenroll refuses it.
    const renew = await curl([...asCert(station), '--data-binary', `@${estCsrFile('sta-renew', 'STA-0003')}`, `${svc.url}/.well-known/est/simplereenroll`]);
    expect(renew.status).to.equal(401);
    let status: number | undefined;
    try {
      status = (await curl([...asCert(station), '-X', 'POST', '--data-binary', '{}', `${svc.service.gatewayUrl}/v1/telemetry`])).status;
    } catch {
      status = undefined; // handshake refused: no HTTP response at all
    }
    expect(status === undefined || status === 401 || status === 403, `gateway answered ${status}`).to.equal(true);
  });
});

describe('factory stations: certificate profiles per manufacturer', function () {
  this.timeout(120_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let f: Factory;
  let admin: ReturnType<typeof apiAs>;
  let station: ReturnType<typeof apiAs>;

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService({ env: PORTS });
    admin = apiAs(svc, svc.adminToken);
    f = await newFactory(svc, 'Profile Factory');
    station = apiAs(svc, f.apiKey);
    const imp = await station('POST', '/api/v1/devices/import', { body: ['PR-1', 'PR-2', 'PR-3', 'PR-4'].map((serialNumber) => ({ serialNumber })) });
    expect(imp.status, imp.text).to.equal(201);
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  const days = (json: { notBefore: string; notAfter: string }) => (Date.parse(json.notAfter) - Date.parse(json.notBefore)) / 86_400_000;

  it('without a list a manufacturer has only `device`; an unknown profile and one not allowed are refused with their codes, issuing nothing', async () => {
    expect((await admin('GET', `/api/v1/manufacturers/${f.manufacturerId}/profiles`)).json.profiles).to.deep.equal(['device']);
    const csr = opensslCsr(tmp.dir, 'pr1', '/serialNumber=PR-1');
    const notAllowed = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-1', csr: csr.csrPem, profile: 'short-lived' } });
    expect(notAllowed.status).to.equal(403);
    expect(notAllowed.json.code).to.equal('KAKUIN_E_PROFILE_NOT_ALLOWED');
    const unknown = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-1', csr: csr.csrPem, profile: 'nope' } });
    expect(unknown.status).to.equal(400);
    expect(unknown.json.code).to.equal('KAKUIN_E_PROFILE_UNKNOWN');
    const device = (await station('GET', '/api/v1/station/devices?serialNumber=PR-1')).json.devices[0];
    expect(device.status, 'nothing was issued').to.equal('registered');
    const badList = await admin('POST', `/api/v1/manufacturers/${f.manufacturerId}/profiles`, { body: { profiles: ['device', 'nope'] } });
    expect(badList.json.code).to.equal('KAKUIN_E_PROFILE_UNKNOWN');
    const byStation = await station('POST', `/api/v1/manufacturers/${f.manufacturerId}/profiles`, { body: { profiles: ['short-lived'] } });
    expect(byStation.status).to.equal(403);
    expect((await admin('GET', `/api/v1/manufacturers/${f.manufacturerId}/profiles`)).json.profiles).to.deep.equal(['device']);
  });

  it('an allowed profile shapes the certificate (30-day short-lived) and names its record, over REST, a batch item and an EST label', async () => {
    const set = await admin('POST', `/api/v1/manufacturers/${f.manufacturerId}/profiles`, { body: { profiles: ['device', 'short-lived'] } });
    expect(set.status, set.text).to.equal(200);
    const csr1 = opensslCsr(tmp.dir, 'pr1b', '/serialNumber=PR-1');
    const rest = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-1', csr: csr1.csrPem, profile: 'short-lived' } });
    expect(rest.status, rest.text).to.equal(201);
    const restRecord = (await admin('GET', `/api/v1/certificates/${rest.json.serialHex}`)).json;
    expect(restRecord.profile).to.equal('short-lived');
    expect(days(restRecord)).to.be.closeTo(30 + 1 / 24, 0.001);

    const csr2 = opensslCsr(tmp.dir, 'pr2', '/serialNumber=PR-2');
    const batch = await station('POST', '/api/v1/enroll/batch', {
      body: `${JSON.stringify({ serialNumber: 'PR-2', csr: csr2.csrPem, profile: 'short-lived' })}\n`, contentType: 'application/x-ndjson',
    });
    const item = JSON.parse(batch.text.trim());
    expect(item.error, batch.text).to.equal(undefined);
    expect((await admin('GET', `/api/v1/certificates/${item.serialHex}`)).json.profile).to.equal('short-lived');

    const csr3 = opensslCsr(tmp.dir, 'pr3', '/serialNumber=PR-3');
    const der = opensslBytes(['req', '-in', csr3.csrFile, '-outform', 'DER']);
    const basic = { authorization: `Basic ${Buffer.from(`${f.stationId}:${f.apiKey}`).toString('base64')}` };
    const est = await apiAs(svc, '')('POST', '/.well-known/est/short-lived/simpleenroll', { body: der.toString('base64'), contentType: 'application/pkcs10', headers: basic });
    expect(est.status, est.text).to.equal(200);
    const printed = await opensslAsync(['pkcs7', '-inform', 'DER', '-print_certs'], Buffer.from(est.text.replace(/\s+/g, ''), 'base64'));
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(printed.stdout)![0];
    const serialHex = /serial=([0-9A-F]+)/.exec((await opensslAsync(['x509', '-noout', '-serial'], pem)).stdout)![1];
    const estRecord = (await admin('GET', `/api/v1/certificates/${serialHex}`)).json;
    expect(estRecord.profile).to.equal('short-lived');
    expect(days(estRecord)).to.be.closeTo(30 + 1 / 24, 0.001);

    // The plain `device` profile still gives the configured ten years.
    const csr4 = opensslCsr(tmp.dir, 'pr4', '/serialNumber=PR-4');
    const plain = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-4', csr: csr4.csrPem } });
    const plainRecord = (await admin('GET', `/api/v1/certificates/${plain.json.serialHex}`)).json;
    expect(plainRecord.profile).to.equal('device');
    expect(days(plainRecord)).to.be.greaterThan(3000);

    // Withdrawn: the EST label is refused again.
    await admin('POST', `/api/v1/manufacturers/${f.manufacturerId}/profiles`, { body: { profiles: ['device'] } });
    const refused = await apiAs(svc, '')('POST', '/.well-known/est/short-lived/simpleenroll', { body: der.toString('base64'), contentType: 'application/pkcs10', headers: basic });
    expect(refused.status).to.equal(403);
    expect(refused.text).to.include('KAKUIN_E_PROFILE_NOT_ALLOWED');
  });
  it('the keygen marker is part of the issuance: the certificate.issued event says keygen, and a retry still supersedes it', async () => {
    const imp = await station('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'PR-K1' }] });
    expect(imp.status, imp.text).to.equal(201);
    const keygen = { password: 'correct horse battery staple' };
    const first = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-K1', keygen } });
    expect(first.status, first.text).to.equal(201);
    const events = await admin('GET', `/api/v1/audit-events?deviceId=${first.json.deviceId}&limit=1000`);
    const issued = events.json.events.filter((e: { type: string }) => e.type === 'certificate.issued');
    expect(issued).to.have.length(1);
    expect(issued[0].details).to.include({ keygen: true, profile: 'device' });
    expect(events.json.events.map((e: { type: string }) => e.type), 'no separate marker event').to.not.include('enrollment.server-keygen');
    const retry = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-K1', keygen } });
    expect(retry.status, retry.text).to.equal(201);
    expect(retry.json.supersedes).to.deep.equal([first.json.serialHex]);
  });
  it('a re-enrollment interrupted between issuing and superseding (a crash) is finished by the retry of the same CSR', async () => {
    const imp = await station('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'PR-C1' }, { serialNumber: 'PR-C2' }] });
    expect(imp.status, imp.text).to.equal(201);
    const setUp = async (serialNumber: string, allow: boolean) => {
      const old = await station('POST', '/api/v1/enroll', { body: { serialNumber, csr: opensslCsr(tmp.dir, `${serialNumber}-a`, `/serialNumber=${serialNumber}`).csrPem } });
      expect(old.status, old.text).to.equal(201);
      if (allow) {
        const r = await admin('POST', `/api/v1/devices/${old.json.deviceId}/allow-reenrollment`, { body: { until: new Date(Date.now() + 3_600_000).toISOString() } });
        expect(r.status, r.text).to.equal(200);
      }
      // What a crash right after issuing leaves: a second good certificate, nothing superseded, no mark
      // (the issuance step of the enrollment core; the admin route now supersedes at once, issue 13).
      const csr = opensslCsr(tmp.dir, `${serialNumber}-b`, `/serialNumber=${serialNumber}`).csrPem;
      await svc.service.kakuin.deviceIssuer.issue({ deviceId: old.json.deviceId, csr, actor: 'test', reenrollment: 'granted' });
      return { old: old.json.serialHex as string, csr, deviceId: old.json.deviceId as string };
    };
    const c1 = await setUp('PR-C1', true);
    const retry = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-C1', csr: c1.csr } });
    expect(retry.status, retry.text).to.equal(200);
    expect(retry.json).to.include({ existing: true });
    expect(retry.json.supersedes).to.deep.equal([c1.old]);
    expect((await admin('GET', `/api/v1/certificates/${c1.old}`)).json).to.include({ status: 'revoked', reason: 'superseded' });
    const third = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-C1', csr: opensslCsr(tmp.dir, 'PR-C1-c', '/serialNumber=PR-C1').csrPem } });
    expect(third.status, 'the allowance was used up').to.equal(409);
    const again = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-C1', csr: c1.csr } });
    expect(again.json.supersedes, 'finished once').to.deep.equal([]);

    // Without an allowance a second certificate (issued outside the enrollment core) is left alone.
    const c2 = await setUp('PR-C2', false);
    const plain = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'PR-C2', csr: c2.csr } });
    expect(plain.status, plain.text).to.equal(200);
    expect(plain.json.supersedes).to.deep.equal([]);
    expect((await admin('GET', `/api/v1/certificates/${c2.old}`)).json.status).to.equal('good');
  });
});

describe('factory stations: durable supersession and the station CA on existing data dirs', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let dataDir: string;

  before(() => {
    tmp = makeTempDir();
    dataDir = path.join(tmp.dir, 'data');
  });

  after(() => tmp?.cleanup());

  // 0.001 h = 3.6 s: long enough to stop the service in between, short enough for a test.
  const OVERLAP_HOURS = 0.001;

  async function start(): Promise<TestService> {
    return startTestService({ dataDir, env: { ...PORTS, KAKUIN_CONFIG: configFile() } });
  }

  function configFile(): string {
    const file = path.join(tmp.dir, 'kakuin.json');
    writeFileSync(file, JSON.stringify({ enrollment: { overlapHours: OVERLAP_HOURS } }));
    return file;
  }

  async function reenroll(svc: TestService, f: Factory, serialNumber: string, n: number) {
    const station = apiAs(svc, f.apiKey);
    const admin = apiAs(svc, svc.adminToken);
    const first = await station('POST', '/api/v1/enroll', { body: { serialNumber, csr: opensslCsr(tmp.dir, `sup-${n}a`, `/serialNumber=${serialNumber}`).csrPem } });
    expect(first.status, first.text).to.equal(201);
    const allow = await admin('POST', `/api/v1/devices/${first.json.deviceId}/allow-reenrollment`, { body: { until: new Date(Date.now() + 3_600_000).toISOString() } });
    expect(allow.status, allow.text).to.equal(200);
    const second = await station('POST', '/api/v1/enroll', { body: { serialNumber, csr: opensslCsr(tmp.dir, `sup-${n}b`, `/serialNumber=${serialNumber}`).csrPem } });
    expect(second.status, second.text).to.equal(201);
    expect(second.json.supersedes).to.deep.equal([first.json.serialHex]);
    return { old: first.json.serialHex as string, scheduledAt: Date.now() };
  }

  const statusOf = async (svc: TestService, serialHex: string) => (await apiAs(svc, svc.adminToken)('GET', `/api/v1/certificates/${serialHex}`)).json;

  it('a superseded certificate stays good for the overlap and is revoked as superseded after it, even across a restart', async () => {
    let svc = await start();
    let old: string;
    let scheduledAt: number;
    let f: Factory;
    try {
      f = await newFactory(svc, 'Overlap Factory');
      const imp = await apiAs(svc, f.apiKey)('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'OV-1' }, { serialNumber: 'OV-2' }] });
      expect(imp.status, imp.text).to.equal(201);
      ({ old, scheduledAt } = await reenroll(svc, f, 'OV-1', 1));
      expect((await statusOf(svc, old)).status, 'good during the overlap').to.equal('good');
    } finally {
      await svc.stop();
    }
    // Stopped before the overlap ended: no process holds a timer for it any more.
    expect(Date.now() - scheduledAt, 'stopped within the overlap').to.be.lessThan(OVERLAP_HOURS * 3_600_000);
    await sleep(Math.max(0, scheduledAt + OVERLAP_HOURS * 3_600_000 - Date.now()) + 200);
    svc = await start();
    try {
      await waitFor('the sweep at start', async () => (await statusOf(svc, old)).status === 'revoked', 5000);
      expect(await statusOf(svc, old)).to.include({ status: 'revoked', reason: 'superseded' });

      // And in a running process: revoked when due, not at once.
      const second = await reenroll(svc, f!, 'OV-2', 2);
      expect((await statusOf(svc, second.old)).status).to.equal('good');
      await waitFor('the sweep when due', async () => (await statusOf(svc, second.old)).status === 'revoked', OVERLAP_HOURS * 3_600_000 + 5000);
      expect(Date.now() - second.scheduledAt, 'not before the overlap ended').to.be.at.least(OVERLAP_HOURS * 3_600_000 - 100);
      expect((await statusOf(svc, second.old)).reason).to.equal('superseded');
    } finally {
      await svc.stop();
    }
  });

  it('a data dir without a station CA gets one on its next open, signed by the root', async () => {
    const dir = path.join(tmp.dir, 'old-data');
    let svc = await startTestService({ dataDir: dir, env: PORTS });
    await svc.stop();
    // Make it look like a data dir from before station certificates: no station CA recorded, nor
    // anything it made (its OCSP responder and that one's certificate, its CRLs, stored responses).
    const db = new Database(path.join(dir, 'kakuin.db'));
    try {
      db.transaction(() => {
        const ids = ['station', 'ocsp-station'];
        const where = `IN (${ids.map(() => '?').join(', ')})`;
        db.prepare(`DELETE FROM ocsp_responses WHERE issuer_id ${where}`).run(...ids);
        db.prepare(`DELETE FROM crls WHERE issuer_id ${where}`).run(...ids);
        db.prepare(`DELETE FROM crl_numbers WHERE issuer_id ${where}`).run(...ids);
        db.prepare(`DELETE FROM certificates WHERE issuer_id ${where}`).run(...ids);
        expect(db.prepare(`DELETE FROM issuers WHERE id = 'ocsp-station'`).run().changes).to.equal(1);
        expect(db.prepare(`DELETE FROM issuers WHERE id = 'station'`).run().changes).to.equal(1);
      })();
    } finally {
      db.close();
    }
    svc = await startTestService({ dataDir: dir, env: PORTS });
    try {
      const f = await newFactory(svc, 'Old Data Factory');
      const { csrPem } = opensslCsr(tmp.dir, 'old-sta', '/CN=old');
      const r = await apiAs(svc, svc.adminToken)('POST', `/api/v1/stations/${f.stationId}/certificate`, { body: { csr: csrPem } });
      expect(r.status, r.text).to.equal(201);
      const chain = path.join(tmp.dir, 'old-chain.pem');
      const leaf = path.join(tmp.dir, 'old-leaf.pem');
      writeFileSync(chain, r.json.chain);
      writeFileSync(leaf, r.json.certificate);
      const root = path.join(tmp.dir, 'old-root.pem');
      writeFileSync(root, svc.rootPem);
      const verify = await opensslAsync(['verify', '-CAfile', root, '-untrusted', chain, leaf]);
      expect(verify.status, verify.stdout + verify.stderr).to.equal(0);
      // The station CA is published beside the others for operators, and verifies to the root.
      const published = await opensslAsync(['verify', '-CAfile', root, path.join(dir, 'ca', 'station.pem')]);
      expect(published.status, published.stdout + published.stderr).to.equal(0);
      expect(readFileSync(path.join(dir, 'ca', 'station.pem'), 'utf8')).to.equal(r.json.chain.split(/(?<=-----END CERTIFICATE-----\n)/)[0]);
    } finally {
      await svc.stop();
    }
  });
});
