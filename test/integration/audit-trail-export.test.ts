/**
 * The audit trail end to end, from the real `kakuin serve`: checkpoints every
 * `audit.checkpointEvery` events go out to a webhook (events out); the export
 * (GET /api/v1/audit-events/export) is checked by a third party with nothing but the file, the
 * root certificate, an RFC 8785 implementation and `openssl`; `kakuin audit verify` passes, and once
 * the tail is deleted from the SQLite file it fails with KAKUIN_E_AUDIT_TAIL_MISSING (exit 3) given
 * the checkpoints the webhook collected.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import canonicalizeModule from 'canonicalize';
import { expect } from 'chai';
import { cliMain, makeTempDir, openssl } from '../support/index.js';
import { request, spawnService, type ChildService } from '../support/service.js';
import { receiverTls, startWebhookReceiver, type WebhookReceiver } from '../operations/event-receivers.js';

// The third party's own RFC 8785 implementation (not kakuin's code): erdtman/canonicalize.
const jcs = canonicalizeModule as unknown as (v: unknown) => string;

interface ExportLine { record: string; event: Record<string, any>; hash: string }

/**
 * What an auditor runs on the export: every hash, every chain link, and every checkpoint's
 * certificate chain and signature with openssl. Returns the checkpoints verified.
 */
function thirdPartyVerify(ndjson: string, rootPem: string, work: string): number {
  const lines = ndjson.trim().split('\n').map((l) => JSON.parse(l) as ExportLine);
  expect(lines[0].record).to.equal('header');
  const heads = new Map<string, { seq: number; hash: string }>();
  const byPlace = new Map<string, string>();
  let checkpoints = 0;
  for (const line of lines.slice(1)) {
    const e = line.event;
    expect(createHash('sha256').update(jcs(e), 'utf8').digest('hex'), `event ${e.id}`).to.equal(line.hash);
    const head = heads.get(e.chain);
    expect(e.seq, `event ${e.id} seq`).to.equal((head?.seq ?? 0) + 1);
    expect(e.prev, `event ${e.id} prev`).to.equal(head?.hash ?? '0'.repeat(64));
    heads.set(e.chain, { seq: e.seq, hash: line.hash });
    byPlace.set(`${e.chain}#${e.seq}`, line.hash);
    if (e.type !== 'audit.checkpoint') continue;
    const d = e.details;
    const dir = path.join(work, `checkpoint-${e.id}`);
    mkdirSync(dir);
    const pem = (b64: string) => `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
    writeFileSync(path.join(dir, 'signer.pem'), pem(d.certificates[0]));
    writeFileSync(path.join(dir, 'intermediate.pem'), d.certificates.slice(1).map(pem).join(''));
    writeFileSync(path.join(dir, 'root.pem'), rootPem);
    writeFileSync(path.join(dir, 'statement.json'), jcs(d.statement));
    writeFileSync(path.join(dir, 'signature.der'), Buffer.from(d.signature, 'base64'));
    const chain = openssl(['verify', '-x509_strict', '-CAfile', path.join(dir, 'root.pem'), '-untrusted', path.join(dir, 'intermediate.pem'), path.join(dir, 'signer.pem')]);
    expect(chain.status, chain.stderr).to.equal(0);
    const text = openssl(['x509', '-in', path.join(dir, 'signer.pem'), '-noout', '-ext', 'extendedKeyUsage']).stdout;
    expect(text).to.match(/Document Signing|1\.3\.6\.1\.5\.5\.7\.3\.36/);
    const pub = openssl(['x509', '-in', path.join(dir, 'signer.pem'), '-noout', '-pubkey']).stdout;
    writeFileSync(path.join(dir, 'pub.pem'), pub);
    expect(d.signatureAlgorithm).to.equal('ecdsa-with-SHA256');
    const sig = openssl(['dgst', '-sha256', '-verify', path.join(dir, 'pub.pem'), '-signature', path.join(dir, 'signature.der'), path.join(dir, 'statement.json')]);
    expect(sig.stdout.trim(), sig.stderr).to.equal('Verified OK');
    // Every head it signed is in the file, with that hash.
    for (const h of d.statement.heads) expect(byPlace.get(`${h.chain}#${h.seq}`), `head ${h.chain}#${h.seq}`).to.equal(h.hash);
    checkpoints++;
  }
  return checkpoints;
}

function kakuinCli(env: Record<string, string>, args: string[]) {
  return spawnSync(process.execPath, [cliMain, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
}

describe('audit trail from kakuin serve: export checked by a third party with openssl; audit verify with the webhook\'s checkpoints', function () {
  this.timeout(120_000);
  let tmp: ReturnType<typeof makeTempDir>;
  let child: ChildService | undefined;
  let receiver: WebhookReceiver | undefined;

  before(() => { tmp = makeTempDir('kakuin-audit-export-'); });
  after(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    await receiver?.close();
    tmp.cleanup();
  });

  it('checkpoints go out, the export verifies standalone, a deleted tail is caught only with the off-host checkpoints', async () => {
    const files = receiverTls(tmp.dir);
    const secret = randomBytes(24).toString('hex');
    writeFileSync(path.join(tmp.dir, 'soc-secret'), secret);
    receiver = await startWebhookReceiver(secret, files);
    const dataDir = path.join(tmp.dir, 'data');
    mkdirSync(dataDir);
    const configFile = path.join(tmp.dir, 'kakuin.json');
    writeFileSync(configFile, JSON.stringify({
      audit: { checkpointEvery: 5, checkpointMinutes: 1 },
      events: { webhooks: [{ url: receiver.url, secretFile: path.join(tmp.dir, 'soc-secret'), caFile: files.certFile, events: ['audit.checkpoint'] }] },
    }));
    const env = {
      KAKUIN_DATA_DIR: dataDir, KAKUIN_CONFIG: configFile,
      KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0',
      KAKUIN_KEY_PASSPHRASE: 'audit-test-passphrase', KAKUIN_LOG_LEVEL: 'error', KAKUIN_ADMIN_TOKEN: `kktest_${randomBytes(24).toString('base64url')}`,
    };
    child = await spawnService(env);
    const root = readFileSync(path.join(dataDir, 'ca', 'root.pem'), 'utf8');
    const api = (method: string, p: string, body?: object) => request(child!.url, root, method, p, { token: env.KAKUIN_ADMIN_TOKEN, body });
    const m = await api('POST', '/api/v1/manufacturers', { name: 'Audit Works' });
    expect(m.status, m.text).to.equal(201);
    // The checkpointer's first look is its baseline; then every 5 events a checkpoint.
    await new Promise((r) => setTimeout(r, 1500));
    for (let round = 1; round <= 2; round++) {
      for (let i = 0; i < 6; i++) expect((await api('POST', '/api/v1/devices', { manufacturerId: m.json.id, serialNumber: `AU-${round}-${i}` })).status).to.equal(201);
      await receiver.waitFor(() => receiver!.events.length >= round, 15_000);
    }
    const checkpointsOut = receiver.events.slice(0, 2);
    expect(checkpointsOut.map((e) => e.type)).to.deep.equal(['audit.checkpoint', 'audit.checkpoint']);

    const exported = await api('GET', '/api/v1/audit-events/export');
    expect(exported.status, exported.text).to.equal(200);
    expect(String(exported.headers['content-type'])).to.match(/^application\/x-ndjson/);
    const work = path.join(tmp.dir, 'third-party');
    mkdirSync(work);
    expect(thirdPartyVerify(exported.text, root, work)).to.be.at.least(2);

    child.proc.kill('SIGTERM');
    await child.exited;

    const ok = kakuinCli(env, ['audit', 'verify']);
    expect(ok.status, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/^audit trail verified: \d+ events, \d+ chains, \d+ checkpoints\n$/);

    // The webhook's copies, one JSON body per line, as a collector would keep them.
    const collected = path.join(tmp.dir, 'checkpoints.ndjson');
    writeFileSync(collected, checkpointsOut.map((e) => JSON.stringify(e)).join('\n') + '\n');
    // Delete the tail: from the head the second checkpoint signed for the serving chain on.
    const last = checkpointsOut[1].details.statement.heads as { chain: string; seq: number; eventId: number }[];
    const cut = Math.max(...last.map((h) => h.eventId));
    const db = new Database(path.join(dataDir, 'kakuin.db'));
    const removed = db.prepare('DELETE FROM audit_events WHERE id >= ?').run(cut).changes;
    db.close();
    expect(removed).to.be.greaterThan(1);

    // What is left on the host is consistent: the stored checkpoint after the cut went with it.
    const blind = kakuinCli(env, ['audit', 'verify']);
    expect(blind.status, blind.stdout + blind.stderr).to.equal(0);
    const tampered = kakuinCli(env, ['audit', 'verify', '--checkpoints', collected]);
    expect(tampered.status, tampered.stdout + tampered.stderr).to.equal(3);
    expect(tampered.stdout).to.match(/^KAKUIN_E_AUDIT_TAIL_MISSING: chain \S+ ends at seq \d+, but checkpoint checkpoints\.ndjson line 2 signed its head/);
    const json = JSON.parse(kakuinCli(env, ['audit', 'verify', '--checkpoints', collected, '--json']).stdout);
    expect(json.ok).to.equal(false);
    expect(json.problem.code).to.equal('KAKUIN_E_AUDIT_TAIL_MISSING');
  });
});
