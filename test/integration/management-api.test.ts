/**
 * The management API over real HTTPS on 127.0.0.1, with CSRs made by the `openssl` command and
 * the issued certificates checked by `openssl verify` / `openssl x509`.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { cliMain, makeTempDir, opensslBytes, opensslOk } from '../support/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';

function opensslCsr(dir: string, name: string, subject: string, keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']): { csrPem: string; keyFile: string; csrFile: string } {
  const keyFile = path.join(dir, `${name}.key`);
  const csrFile = path.join(dir, `${name}.csr`);
  opensslOk(['req', '-new', ...keyArgs, '-nodes', '-keyout', keyFile, '-subj', subject, '-out', csrFile]);
  return { csrPem: opensslOk(['req', '-in', csrFile]), keyFile, csrFile };
}

describe('management API (HTTPS, in process)', function () {
  this.timeout(60_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let manufacturerId: string;

  const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc.url, svc.rootPem, method, p, { token: svc.adminToken, ...options });

  async function registerDevice(serialNumber: string, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber, ...extra } });
    expect(r.status, r.text).to.equal(201);
    return r.json.id;
  }

  async function counts(deviceId: string): Promise<{ certs: number; events: number }> {
    const d = await api('GET', `/api/v1/devices/${deviceId}`);
    const e = await api('GET', `/api/v1/audit-events?deviceId=${deviceId}`);
    return { certs: d.json.certificates.length, events: e.json.events.length };
  }

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService();
    const r = await api('POST', '/api/v1/manufacturers', { body: { name: 'Acme Sensors' } });
    expect(r.status, r.text).to.equal(201);
    manufacturerId = r.json.id;
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  describe('authentication', () => {
    it('refuses a request without a token with 401 and WWW-Authenticate', async () => {
      const r = await request(svc.url, svc.rootPem, 'GET', '/api/v1/manufacturers');
      expect(r.status).to.equal(401);
      expect(r.json.code).to.equal('KAKUIN_E_UNAUTHENTICATED');
      expect(r.headers['www-authenticate']).to.match(/^Bearer/);
    });

    it('refuses an unknown token', async () => {
      const r = await request(svc.url, svc.rootPem, 'POST', '/api/v1/manufacturers', { token: 'kkadm_not-a-real-token-at-all', body: { name: 'x' } });
      expect(r.status).to.equal(401);
      expect(r.json.code).to.equal('KAKUIN_E_UNAUTHENTICATED');
    });

    it('serves the CA chain to anyone, issuing CA first and root last', async () => {
      const r = await request(svc.url, svc.rootPem, 'GET', '/api/v1/ca/chain');
      expect(r.status).to.equal(200);
      expect(r.headers['content-type']).to.match(/application\/pem-certificate-chain/);
      const blocks = r.text.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
      expect(blocks).to.have.length(2);
      const chainFile = path.join(tmp.dir, 'chain.pem');
      writeFileSync(chainFile, r.text);
      const subjects = opensslOk(['crl2pkcs7', '-nocrl', '-certfile', chainFile]);
      const printed = opensslOk(['pkcs7', '-print_certs', '-noout'], subjects);
      const order = [...printed.matchAll(/subject=(.*)/g)].map((m) => m[1]);
      expect(order[0]).to.include('Device Issuing CA');
      expect(order[1]).to.include('Root CA');
    });
  });

  describe('manufacturers and devices', () => {
    it('refuses a duplicate manufacturer name with 409', async () => {
      const r = await api('POST', '/api/v1/manufacturers', { body: { name: 'Acme Sensors' } });
      expect(r.status).to.equal(409);
      expect(r.json.code).to.equal('KAKUIN_E_MANUFACTURER_EXISTS');
    });

    it('registers a device and finds it by serial number, MAC and IMEI', async () => {
      const id = await registerDevice('SN-LOOKUP-1', { identifiers: { mac: 'AA-BB-CC-00-11-22', imei: '490154203237518' }, model: 'T1000' });
      for (const q of ['serialNumber=SN-LOOKUP-1', 'mac=aa:bb:cc:00:11:22', 'imei=490154203237518']) {
        const r = await api('GET', `/api/v1/devices?${q}`);
        expect(r.status).to.equal(200);
        expect(r.json.devices.map((d: { id: string }) => d.id), q).to.deep.equal([id]);
      }
      const one = await api('GET', `/api/v1/devices/${id}`);
      expect(one.json).to.include({ id, serialNumber: 'SN-LOOKUP-1', status: 'registered', model: 'T1000' });
      expect(one.json.identifiers).to.deep.equal({ mac: 'aa:bb:cc:00:11:22', imei: '490154203237518' });
    });

    it('filters devices by status', async () => {
      const r = await api('GET', `/api/v1/devices?status=registered&manufacturerId=${manufacturerId}`);
      expect(r.status).to.equal(200);
      expect(r.json.devices.length).to.be.greaterThan(0);
      expect(r.json.devices.every((d: { status: string }) => d.status === 'registered')).to.equal(true);
      const bad = await api('GET', '/api/v1/devices?status=stolen');
      expect(bad.status).to.equal(400);
      expect(bad.json.code).to.equal('KAKUIN_E_VALIDATION');
    });

    const refusals: [string, Record<string, unknown>, number, string][] = [
      ['a serial number outside PrintableString', { serialNumber: 'SN_1@x' }, 400, 'KAKUIN_E_INVALID_SERIAL_NUMBER'],
      ['an empty serial number', { serialNumber: '' }, 400, 'KAKUIN_E_INVALID_SERIAL_NUMBER'],
      ['a serial number over 64 characters', { serialNumber: 'A'.repeat(65) }, 400, 'KAKUIN_E_INVALID_SERIAL_NUMBER'],
      ['a malformed MAC', { serialNumber: 'SN-BADMAC', identifiers: { mac: 'zz:zz' } }, 400, 'KAKUIN_E_INVALID_IDENTIFIER'],
      ['an IMEI with a wrong check digit', { serialNumber: 'SN-BADIMEI', identifiers: { imei: '490154203237519' } }, 400, 'KAKUIN_E_INVALID_IDENTIFIER'],
      ['an unknown manufacturer', { serialNumber: 'SN-NOMFR', manufacturerId: '00000000-0000-4000-8000-000000000000' }, 404, 'KAKUIN_E_MANUFACTURER_NOT_FOUND'],
    ];
    for (const [what, body, status, code] of refusals) {
      it(`refuses ${what} with ${code} and records nothing`, async () => {
        const r = await api('POST', '/api/v1/devices', { body: { manufacturerId, ...body } });
        expect(r.status, r.text).to.equal(status);
        expect(r.json.code).to.equal(code);
        if (typeof body.serialNumber === 'string' && body.serialNumber) {
          const found = await api('GET', `/api/v1/devices?serialNumber=${encodeURIComponent(body.serialNumber)}`);
          expect(found.json.devices).to.deep.equal([]);
        }
      });
    }

    it('refuses a second device with the same serial number or MAC for one manufacturer', async () => {
      await registerDevice('SN-DUP-1', { identifiers: { mac: '02:00:00:00:00:01' } });
      for (const body of [{ serialNumber: 'SN-DUP-1' }, { serialNumber: 'SN-DUP-2', identifiers: { mac: '02-00-00-00-00-01' } }]) {
        const r = await api('POST', '/api/v1/devices', { body: { manufacturerId, ...body } });
        expect(r.status).to.equal(409);
        expect(r.json.code).to.equal('KAKUIN_E_DEVICE_EXISTS');
      }
    });

    it('refuses a body that is not JSON, and one over the size limit', async () => {
      const r1 = await api('POST', '/api/v1/devices', { body: '{"manufacturerId":', contentType: 'application/json' });
      expect(r1.status).to.equal(400);
      expect(r1.json.code).to.equal('KAKUIN_E_BAD_REQUEST');
      const r2 = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber: 'X', model: 'm'.repeat(70_000) } });
      expect(r2.status).to.equal(413);
      expect(r2.json.code).to.equal('KAKUIN_E_BODY_TOO_LARGE');
      const r3 = await api('POST', '/api/v1/devices', { body: 'serialNumber=x', contentType: 'application/x-www-form-urlencoded' });
      expect(r3.status).to.equal(415);
      expect(r3.json.code).to.equal('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE');
    });

    it('answers a malformed %-encoding in the path with 400, not 500', async () => {
      for (const [method, p] of [['GET', '/api/v1/devices/%E0%A4%A'], ['POST', '/api/v1/certificates/%ZZ/revoke'], ['POST', '/api/v1/devices/%ZZ/suspend']]) {
        const r = await api(method, p, method === 'POST' ? { body: {} } : {});
        expect(r.status, p).to.equal(400);
        expect(r.json.code).to.equal('KAKUIN_E_BAD_REQUEST');
      }
    });

    it('answers an unknown device id with 404', async () => {
      const r = await api('GET', '/api/v1/devices/00000000-0000-4000-8000-000000000000');
      expect(r.status).to.equal(404);
      expect(r.json.code).to.equal('KAKUIN_E_DEVICE_NOT_FOUND');
    });
  });

  describe('certificate issuance', () => {
    it('issues a certificate for an openssl CSR that openssl verifies, with the device profile', async () => {
      const deviceId = await registerDevice('SN-0001', { hardwareModuleName: { hwType: '1.3.6.1.4.1.55555.1', hwSerialHex: '0102a0ff' } });
      const { csrPem } = opensslCsr(tmp.dir, 'dev1', '/serialNumber=SN-0001');
      const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: csrPem, contentType: 'application/pkcs10' });
      expect(r.status, r.text).to.equal(201);
      expect(r.json.certificate).to.match(/^-----BEGIN CERTIFICATE-----/);
      const leaf = path.join(tmp.dir, 'dev1.pem');
      const chain = path.join(tmp.dir, 'chain-dev1.pem');
      const root = path.join(tmp.dir, 'root.pem');
      writeFileSync(leaf, r.json.certificate);
      writeFileSync(chain, r.json.chain);
      writeFileSync(root, svc.rootPem);
      const issuing = path.join(tmp.dir, 'issuing.pem');
      writeFileSync(issuing, r.json.chain.split(/(?<=-----END CERTIFICATE-----\n)/)[0]);
      expect(opensslOk(['verify', '-CAfile', root, '-untrusted', issuing, '-purpose', 'sslclient', leaf])).to.match(/: OK/);

      const text = opensslOk(['x509', '-in', leaf, '-noout', '-text']);
      expect(text).to.match(/Subject: O\s?=\s?Acme Sensors, serialNumber\s?=\s?SN-0001/);
      expect(text).to.include(`URI:urn:kakuin:device:${deviceId}`);
      expect(text).to.match(/othername: ?(1\.3\.6\.1\.5\.5\.7\.8\.4|hardwareModuleName)/i);
      expect(text).to.match(/X509v3 Key Usage: critical\s+Digital Signature\n/);
      expect(text).to.match(/X509v3 Extended Key Usage:\s+TLS Web Client Authentication\n/);
      expect(text).to.match(/CA:FALSE/);
      expect(text).to.include(`URI:http://localhost:8080/crl/device.crl`);
      expect(text).to.include('OCSP - URI:http://localhost:8080/ocsp');
      expect(text).to.include('CA Issuers - URI:http://localhost:8080/ca/device.cer');
      expect(text).to.match(/X509v3 Subject Key Identifier/);
      expect(text).to.match(/X509v3 Authority Key Identifier/);

      const serial = opensslOk(['x509', '-in', leaf, '-noout', '-serial']).trim().replace('serial=', '');
      expect(serial).to.match(/^[0-7][0-9A-F]{31}$/);
      expect(serial).to.equal(r.json.serialHex);
      const rec = await api('GET', `/api/v1/certificates/${serial.toLowerCase()}`);
      expect(rec.status).to.equal(200);
      expect(rec.json).to.include({ serialHex: serial, status: 'good', deviceId });
      expect(rec.json.certificate.trim()).to.equal(r.json.certificate.trim());
      const device = await api('GET', `/api/v1/devices/${deviceId}`);
      expect(device.json.status).to.equal('active');
      const events = await api('GET', `/api/v1/audit-events?deviceId=${deviceId}&type=certificate.issued`);
      expect(events.json.events).to.have.length(1);
      expect(events.json.events[0]).to.include({ actor: 'token:bootstrap', serialHex: serial });
    });

    it('answers a PEM chain when asked with Accept: application/pem-certificate-chain, for a JSON {csr} body', async () => {
      const deviceId = await registerDevice('SN-0002');
      const { csrPem } = opensslCsr(tmp.dir, 'dev2', '/CN=sensor/serialNumber=SN-0002', ['-newkey', 'ed25519']);
      const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: { csr: csrPem }, accept: 'application/pem-certificate-chain' });
      expect(r.status, r.text).to.equal(201);
      expect(r.headers['content-type']).to.match(/application\/pem-certificate-chain/);
      expect(r.text.match(/-----BEGIN CERTIFICATE-----/g)).to.have.length(3);
    });

    it('a fresh CA is backdated like its device certificates: no leaf validity starts before its CA\'s (NSS, pyca)', async () => {
      const deviceId = await registerDevice('SN-BACKDATE');
      const { csrPem } = opensslCsr(tmp.dir, 'backdate', '/serialNumber=SN-BACKDATE');
      const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: csrPem, contentType: 'application/pkcs10' });
      expect(r.status, r.text).to.equal(201);
      const leaf = new X509Certificate(r.json.certificate);
      const cas = (r.json.chain as string).split(/(?<=-----END CERTIFICATE-----\n?)/).filter((p) => p.includes('BEGIN')).map((p) => new X509Certificate(p));
      expect(cas).to.have.length(2);
      for (const ca of cas) expect(Date.parse(ca.validFrom), `${ca.subject} from ${ca.validFrom}, leaf from ${leaf.validFrom}`).to.be.at.most(Date.parse(leaf.validFrom));
      // The leaf is backdated an hour (ca.device.backdateSeconds), so the CAs are too.
      expect(Date.parse(leaf.validFrom)).to.be.below(Date.now() - 3_500_000);
    });

    it('takes a binary DER CSR and an RSA-2048 key', async () => {
      const deviceId = await registerDevice('SN-0003');
      const { csrFile } = opensslCsr(tmp.dir, 'dev3', '/serialNumber=SN-0003', ['-newkey', 'rsa:2048']);
      const der = opensslBytes(['req', '-in', csrFile, '-outform', 'DER']);
      expect(der[0]).to.equal(0x30);
      const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: der, contentType: 'application/pkcs10' });
      expect(r.status, r.text).to.equal(201);
    });

    it('one live identity per device: the same CSR again is 200 existing, a new key 409 until a re-enrollment is allowed, which supersedes the old', async () => {
      const deviceId = await registerDevice('SN-ONE-ID');
      const first = opensslCsr(tmp.dir, 'oneid-a', '/serialNumber=SN-ONE-ID');
      const issued = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: first.csrPem, contentType: 'application/pkcs10' });
      expect(issued.status, issued.text).to.equal(201);
      expect(issued.json.existing).to.equal(false);
      const again = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: first.csrPem, contentType: 'application/pkcs10' });
      expect(again.status, again.text).to.equal(200);
      expect(again.json).to.include({ existing: true, serialHex: issued.json.serialHex, certificate: issued.json.certificate });
      const second = opensslCsr(tmp.dir, 'oneid-b', '/serialNumber=SN-ONE-ID');
      const clone = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: second.csrPem, contentType: 'application/pkcs10' });
      expect(clone.status, clone.text).to.equal(409);
      expect(clone.json.code).to.equal('KAKUIN_E_DEVICE_ALREADY_ENROLLED');
      expect((await api('GET', `/api/v1/devices/${deviceId}`)).json.certificates).to.have.length(1);
      const allow = await api('POST', `/api/v1/devices/${deviceId}/allow-reenrollment`, { body: { until: new Date(Date.now() + 3_600_000).toISOString() } });
      expect(allow.status, allow.text).to.equal(200);
      const renewed = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: second.csrPem, contentType: 'application/pkcs10' });
      expect(renewed.status, renewed.text).to.equal(201);
      expect(renewed.json.supersedes).to.deep.equal([issued.json.serialHex]);
      expect((await api('GET', `/api/v1/certificates/${issued.json.serialHex}`)).json).to.include({ status: 'revoked', reason: 'superseded' });
      const third = opensslCsr(tmp.dir, 'oneid-c', '/serialNumber=SN-ONE-ID');
      const used = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: third.csrPem, contentType: 'application/pkcs10' });
      expect(used.status, 'the allowance was used up').to.equal(409);
    });

    it('kakuin issue follows the same rule: the same CSR returns the certificate issued before, a new key is refused with KAKUIN_E_DEVICE_ALREADY_ENROLLED', async () => {
      const deviceId = await registerDevice('SN-ONE-CLI');
      const first = opensslCsr(tmp.dir, 'onecli-a', '/serialNumber=SN-ONE-CLI');
      const issued = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: first.csrPem, contentType: 'application/pkcs10' });
      expect(issued.status, issued.text).to.equal(201);
      const env = { ...process.env, ...svc.env };
      const same = spawnSync(process.execPath, [cliMain, 'issue', '--device', deviceId, '--csr', first.csrFile], { env, encoding: 'utf8' });
      expect(same.status, same.stderr).to.equal(0);
      expect(same.stderr).to.match(/already has certificate [0-9A-F]+ for this key/);
      expect(same.stdout).to.contain(issued.json.certificate.trim());
      const other = opensslCsr(tmp.dir, 'onecli-b', '/serialNumber=SN-ONE-CLI');
      const refused = spawnSync(process.execPath, [cliMain, 'issue', '--device', deviceId, '--csr', other.csrFile], { env, encoding: 'utf8' });
      expect(refused.status).to.not.equal(0);
      expect(refused.stderr).to.contain('KAKUIN_E_DEVICE_ALREADY_ENROLLED');
      expect((await api('GET', `/api/v1/devices/${deviceId}`)).json.certificates).to.have.length(1);
    });

    describe('bad input gets a 4xx with a stable code and records nothing', () => {
      let deviceId: string;
      let baseline: { certs: number; events: number };
      before(async () => {
        deviceId = await registerDevice('SN-BAD-1');
      });
      beforeEach(async () => {
        baseline = await counts(deviceId);
      });
      afterEach(async () => {
        expect(await counts(deviceId)).to.deep.equal(baseline);
        const h = await request(svc.url, svc.rootPem, 'GET', '/healthz');
        expect(h.status).to.equal(200);
      });

      it('garbage DER', async () => {
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: Buffer.from([0x30, 0x82, 0x01, 0x00, 0x02, 0x01]), contentType: 'application/pkcs10' });
        expect(r.status).to.equal(400);
        expect(r.json.code).to.equal('KAKUIN_E_DER_MALFORMED');
      });

      it('text that is neither PEM nor base64', async () => {
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: 'hello, world!', contentType: 'text/plain' });
        expect(r.status).to.equal(400);
        expect(r.json.code).to.equal('KAKUIN_E_PEM_MALFORMED');
      });

      it('a word that happens to be base64 ("hello") is named as not a PKCS#10 request, not by a DER detail', async () => {
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: 'hello', contentType: 'application/pkcs10' });
        expect(r.status).to.equal(400);
        expect(r.json.code).to.equal('KAKUIN_E_DER_MALFORMED');
        expect(r.json.message).to.include('not a PKCS#10 certification request in PEM, DER or base64').and.not.include('length field');
      });

      it('a CSR whose signature does not verify', async () => {
        const { csrFile } = opensslCsr(tmp.dir, 'tamper', '/serialNumber=SN-BAD-1');
        const der = opensslBytes(['req', '-in', csrFile, '-outform', 'DER']);
        der[der.length - 5] ^= 0x01;
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: der, contentType: 'application/pkcs10' });
        expect(r.status).to.equal(400);
        expect(r.json.code).to.be.oneOf(['KAKUIN_E_CSR_SIGNATURE_INVALID', 'KAKUIN_E_DER_MALFORMED']);
      });

      it('an unsupported curve (P-521)', async () => {
        const { csrPem } = opensslCsr(tmp.dir, 'p521', '/serialNumber=SN-BAD-1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']);
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: csrPem, contentType: 'application/pkcs10' });
        expect(r.status).to.equal(400);
        expect(r.json.code).to.equal('KAKUIN_E_KEY_UNSUPPORTED');
      });

      it('an RSA key under 2048 bits', async () => {
        const { csrPem } = opensslCsr(tmp.dir, 'rsa1024', '/serialNumber=SN-BAD-1', ['-newkey', 'rsa:1024']);
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: csrPem, contentType: 'application/pkcs10' });
        expect(r.status).to.equal(400);
        expect(r.json.code).to.equal('KAKUIN_E_KEY_TOO_WEAK');
      });

      it('a CSR whose subject names another serial number', async () => {
        const { csrPem } = opensslCsr(tmp.dir, 'mismatch', '/serialNumber=SN-SOMEONE-ELSE');
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: csrPem, contentType: 'application/pkcs10' });
        expect(r.status).to.equal(400);
        expect(r.json.code).to.equal('KAKUIN_E_CSR_SUBJECT_MISMATCH');
      });

      it('a public key that belongs to another device', async () => {
        const other = await registerDevice('SN-KEYOWNER');
        const { csrPem, keyFile } = opensslCsr(tmp.dir, 'owner', '/serialNumber=SN-KEYOWNER');
        const first = await api('POST', `/api/v1/devices/${other}/certificates`, { body: csrPem, contentType: 'application/pkcs10' });
        expect(first.status, first.text).to.equal(201);
        const reuse = path.join(tmp.dir, 'reuse.csr');
        opensslOk(['req', '-new', '-key', keyFile, '-subj', '/serialNumber=SN-BAD-1', '-out', reuse]);
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: opensslOk(['req', '-in', reuse]), contentType: 'application/pkcs10' });
        expect(r.status).to.equal(409);
        expect(r.json.code).to.equal('KAKUIN_E_PUBLIC_KEY_IN_USE');
      });

      it('a body over the size limit', async () => {
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: Buffer.alloc(200_000, 0x41), contentType: 'application/pkcs10' });
        expect(r.status).to.equal(413);
        expect(r.json.code).to.equal('KAKUIN_E_BODY_TOO_LARGE');
        expect(r.json.message, 'the 413 names the limit').to.match(/at most \d+ bytes/);
      });

      it('a CSR for an unknown device', async () => {
        const { csrPem } = opensslCsr(tmp.dir, 'nodev', '/serialNumber=SN-BAD-1');
        const r = await api('POST', '/api/v1/devices/00000000-0000-4000-8000-000000000000/certificates', { body: csrPem, contentType: 'application/pkcs10' });
        expect(r.status).to.equal(404);
        expect(r.json.code).to.equal('KAKUIN_E_DEVICE_NOT_FOUND');
      });

      it('an Accept header that allows neither JSON nor PEM', async () => {
        const { csrPem } = opensslCsr(tmp.dir, 'accept', '/serialNumber=SN-BAD-1');
        const r = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: csrPem, contentType: 'application/pkcs10', accept: 'image/png' });
        expect(r.status).to.equal(406);
        expect(r.json.code).to.equal('KAKUIN_E_NOT_ACCEPTABLE');
      });
    });

    it('answers an unknown or malformed serial with 404 / 400', async () => {
      const r = await api('GET', '/api/v1/certificates/7F00000000000000000000000000ABCD');
      expect(r.status).to.equal(404);
      expect(r.json.code).to.equal('KAKUIN_E_CERTIFICATE_NOT_FOUND');
      const bad = await api('GET', '/api/v1/certificates/not-hex');
      expect(bad.status).to.equal(400);
      expect(bad.json.code).to.equal('KAKUIN_E_VALIDATION');
    });
  });
});
