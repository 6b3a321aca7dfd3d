/**
 * SCEP PKCSReq against EST simpleenroll, end to end over HTTPS against `kakuin serve` in this
 * process, keep-alive connections, the same pre-registered P-256 devices on both sides.
 *
 * Every request is built before the clock starts (a P-256 key, a CSR with its challengePassword,
 * a self-signed signer certificate, the envelope to the RA and the signed pkiMessage for SCEP; a
 * base64 CSR for EST), so what is timed is the server's work plus TLS and HTTP on both ends; the
 * client shares this process's event loop (unlike bench/enrollment.ts), which charges both
 * protocols alike. The CPU split of SCEP comes from ScepService.timing over a sequential run:
 * parsing the pkiMessage, checking it (signature, decryption with the RA's RSA key, challenge and
 * transaction records), issuing (the enrollment core: proof of possession, signing, commit), and
 * the reply (envelope to the requester's key by ECDH, the RA's RSA signature).
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../cli/config.js';
import { createLogger } from '../cli/logger.js';
import { startService } from '../cli/serve.js';
import { newStationApiKey, tokenHmac } from '../management-api/admin-tokens.js';
import { challengeHmac } from '../enrollment/scep/scep-service.js';
import {
  derOid, derPrintableString, derSequence, derSet, encodeCertificate, encodeCertificationRequest, encodeCertificationRequestInfo,
  encodeEnvelopedData, encodeName, encodeScepMessage, encodeTbsCertificate, OID_PKCS9_CHALLENGE_PASSWORD, parseCertificate,
  parseSignedData, scepReplyFields,
} from '../pkix/index.js';
import type { ScepStore } from '../registry/scep.js';
import { makeP256Csrs, runConcurrent } from './fixtures.js';

const CONCURRENCY = 8;

function post(url: string, ca: string, agent: https.Agent, headers: Record<string, string>, body: string | Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: url.includes('GetCACert') ? 'GET' : 'POST', ca, agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A PKCSReq for `serialNumber` with `password`, from a fresh P-256 key (signed with it, via a self-signed certificate). */
async function pkcsReq(serialNumber: string, password: string, raDer: Buffer): Promise<Buffer> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const subject = encodeName([{ type: 'serialNumber', value: serialNumber }]);
  const info = encodeCertificationRequestInfo(subject, spki, [derSequence(derOid(OID_PKCS9_CHALLENGE_PASSWORD), derSet(derPrintableString(password)))]);
  const csr = encodeCertificationRequest(info, 'ecdsa-with-SHA256', sign('sha256', info, { key: privateKey, dsaEncoding: 'der' }));
  const tbs = encodeTbsCertificate({
    serial: randomBytes(16), signatureAlgorithm: 'ecdsa-with-SHA256', issuer: subject, subject, spki, extensions: [],
    notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
  });
  const selfSigned = encodeCertificate(tbs, 'ecdsa-with-SHA256', sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' }));
  return encodeScepMessage({
    fields: { messageType: 'PKCSReq', transactionId: randomBytes(16).toString('hex'), senderNonce: randomBytes(16) },
    envelope: encodeEnvelopedData(csr, { certificate: raDer }), signerCertificate: selfSigned, keyType: 'ec',
    sign: async (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'der' }), signingTime: new Date(),
  });
}

export async function benchScep(count: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-scep-'));
  const env = {
    KAKUIN_DATA_DIR: dir, KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0',
    KAKUIN_KEY_PASSPHRASE: 'bench-passphrase-not-secret', KAKUIN_ADMIN_TOKEN: `kkbench_${randomBytes(24).toString('base64url')}`, KAKUIN_LOG_LEVEL: 'error',
  };
  const service = await startService(loadConfig(env), createLogger('error'), env);
  const agent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    const { registry, pepper } = service.kakuin;
    const scep = service.scep!;
    const store = (registry as unknown as { scep: ScepStore }).scep;
    const ca = readFileSync(path.join(dir, 'ca', 'root.pem'), 'utf8');
    const m = await registry.createManufacturer({ name: 'Bench factory' });
    const apiKey = newStationApiKey();
    const station = await registry.createStation({ manufacturerId: m.id, name: 'bench', keyHmac: tokenHmac(pepper, apiKey) }, { type: 'station.created', actor: 'bench' });
    const est = Array.from({ length: count }, (_, i) => `EST-${i}`);
    const sc = Array.from({ length: 2 * count }, (_, i) => `SCEP-${i}`);
    const rows = [...est, ...sc].map((serialNumber) => ({ serialNumber }));
    const imp = await post(`${service.apiUrl}/api/v1/devices/import`, ca, agent, { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, JSON.stringify(rows));
    if (imp.status !== 201) throw new Error(`import failed: ${imp.status} ${imp.body.toString().slice(0, 300)}`);

    const caCert = await post(`${service.apiUrl}/scep?operation=GetCACert`, ca, agent, {}, '');
    const raDer = parseSignedData(caCert.body).certificates.find((c) => parseCertificate(c).spki.keyType === 'rsa')!;
    const messages: Buffer[] = [];
    for (const serialNumber of sc) {
      const [device] = await registry.findDevices({ manufacturerId: m.id, serialNumber, limit: 1 });
      const password = randomBytes(20).toString('hex');
      const now = new Date();
      await store.putScepChallenge({ hmac: challengeHmac(pepper, password), deviceId: device.id, manufacturerId: m.id, actor: `station:${station.id}`, createdAt: now, expiresAt: new Date(now.getTime() + 3600_000) });
      messages.push(await pkcsReq(serialNumber, password, raDer));
    }
    const estBodies = makeP256Csrs(est).map((d) => d.toString('base64'));
    const basic = { authorization: `Basic ${Buffer.from(`${station.id}:${apiKey}`).toString('base64')}`, 'content-type': 'application/pkcs10' };
    const pki = { 'content-type': 'application/x-pki-message' };

    let failed = 0;
    const estSeconds = await runConcurrent(count, CONCURRENCY, async (i) => {
      const r = await post(`${service.apiUrl}/.well-known/est/simpleenroll`, ca, agent, basic, estBodies[i]);
      if (r.status !== 200) failed++;
    });
    const scepSeconds = await runConcurrent(count, CONCURRENCY, async (i) => {
      const r = await post(`${service.apiUrl}/scep?operation=PKIOperation`, ca, agent, pki, messages[i]);
      if (r.status !== 200 || scepReplyFields(parseSignedData(r.body).signers[0]).pkiStatus !== '0') failed++;
    });
    // The split: one request at a time, so the phases do not overlap.
    const before = { ...scep.timing };
    const sequentialSeconds = await runConcurrent(count, 1, async (i) => {
      const r = await post(`${service.apiUrl}/scep?operation=PKIOperation`, ca, agent, pki, messages[count + i]);
      if (r.status !== 200) failed++;
    });
    if (failed > 0) throw new Error(`${failed} enrollments failed`);
    const per = (k: keyof typeof before) => Math.round(((scep.timing[k] - before[k]) / count) * 1000) / 1000;
    const estRate = Math.round(count / estSeconds);
    const scepRate = Math.round(count / scepSeconds);
    return {
      scep_vs_est_devices: count,
      est_simpleenroll_per_s: estRate,
      scep_pkcsreq_per_s: scepRate,
      scep_est_ratio: Math.round((estRate / scepRate) * 100) / 100,
      scep_pkcsreq_sequential_per_s: Math.round(count / sequentialSeconds),
      scep_parse_ms: per('parse'),
      scep_check_ms: per('check'),
      scep_issue_ms: per('issue'),
      scep_reply_ms: per('reply'),
    };
  } finally {
    agent.destroy();
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
