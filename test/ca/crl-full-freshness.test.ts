/**
 * Issue 17: the full CRL lists a change within crl.fullCoalesceMs, built from the entries the CRL
 * worker keeps (appending the changes), and it carries its distribution point as IDP, as its delta
 * does. A real SQLite registry, the real worker thread, and `openssl crl` as the reader.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { CrlPublisher } from '../../ca/crl/crl-publisher.js';
import { FullCrlEntries } from '../../ca/crl/full-crl-entries.js';
import { WorkerCrlBodyBuilder } from '../../ca/crl/crl-builder.js';
import { bootstrapHierarchy, type CaHierarchy } from '../../ca/hierarchy.js';
import { publicUrls } from '../../ca/urls.js';
import { KeyRing } from '../../hsm-adapters/index.js';
import { SoftwareKeyStore } from '../../hsm-adapters/software/index.js';
import { forEachCrlEntry, parseCrl } from '../../pkix/index.js';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import type { FeedEntry, Registry } from '../../registry/port.js';
import { fakeCertificate, issuance } from '../contract/registry-fixtures.js';
import { buildRoot, makeTempDir, opensslOk } from '../support/index.js';

const URLS = publicUrls('http://crl.example.test:8080');

describe('full CRLs fresh within crl.fullCoalesceMs (incremental, in the CRL worker)', function () {
  this.timeout(30_000);
  let tmp: { dir: string; cleanup: () => void };
  let registry: Registry;
  let hierarchy: CaHierarchy;
  let publisher: CrlPublisher;
  let dbPath: string;
  const logged: Record<string, unknown>[] = [];

  beforeEach(async () => {
    tmp = makeTempDir();
    dbPath = path.join(tmp.dir, 'kakuin.db');
    registry = await openSqliteRegistry({ path: dbPath });
    const keys = new KeyRing([new SoftwareKeyStore({ directory: path.join(tmp.dir, 'keys'), passphrase: 'test-passphrase' })]);
    hierarchy = await bootstrapHierarchy(registry, keys, {
      organization: 'kakuin test', rootKeyAlgorithm: 'ecdsa-p256', issuingKeyAlgorithm: 'ecdsa-p256',
      rootValidityYears: 2, issuingValidityYears: 1, keyUriFor: (id) => `file:${id}-ca`, urls: URLS, actor: 'test',
    });
    logged.length = 0;
    const builder = new WorkerCrlBodyBuilder({ module: pathToFileURL(path.join(buildRoot, 'registry', 'sqlite', 'worker-open.js')).href, options: { path: dbPath } });
    publisher = new CrlPublisher(registry, [hierarchy.device], URLS, builder,
      { coalesceMs: 50, fullCoalesceMs: 300, fullValidityMs: 86_400_000, fullRebuildMs: 3600_000, deltaValidityMs: 3600_000 },
      { info: (_m, f) => { if (f) logged.push(f); }, error: () => {} });
    await publisher.start();
  });

  afterEach(async () => {
    await publisher.stop();
    await registry.close();
    tmp.cleanup();
  });

  async function certificate(): Promise<string> {
    return (await registry.recordIssuance(issuance(fakeCertificate({ issuerId: 'device' })))).serialHex;
  }

  async function change(serialHex: string, from: 'good' | 'held', to: 'revoked' | 'held' | 'good'): Promise<FeedEntry[]> {
    const reason = to === 'revoked' ? 'keyCompromise' as const : to === 'held' ? 'certificateHold' as const : undefined;
    const entries = await registry.applyStatusChange({
      certificates: [{ serialHex, from: [from], to, reason, revokedAt: to === 'good' ? undefined : new Date() }], audit: [],
    });
    publisher.onFeedEntries(entries);
    return entries;
  }

  /** The stored full CRL once it reflects `seq` (≤ 5 s), and how long that took. */
  async function fullCrlAt(seq: number): Promise<{ der: Buffer; ms: number }> {
    const started = Date.now();
    for (;;) {
      const full = await registry.getLatestCrl('device', 'full');
      if (full && full.feedSeq >= seq) return { der: full.der, ms: Date.now() - started };
      if (Date.now() - started > 5000) throw new Error(`no full CRL at seq ${seq}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  function listed(der: Buffer): Map<string, string | undefined> {
    const out = new Map<string, string | undefined>();
    forEachCrlEntry(parseCrl(der), (e) => out.set(e.serial.toString('hex').toUpperCase().replace(/^0+/, ''), e.reason));
    return out;
  }
  const bare = (hex: string) => hex.replace(/^0+/, '');

  it('a revocation is in the full CRL within crl.fullCoalesceMs, appended to the kept entries (one entry encoded)', async () => {
    const a = await certificate();
    const b = await certificate();
    const first = await change(a, 'good', 'revoked');
    const one = await fullCrlAt(first[0].seq);
    expect(listed(one.der).get(bare(a))).to.equal('keyCompromise');
    expect(one.ms).to.be.below(2000);
    const second = await change(b, 'good', 'revoked');
    const two = await fullCrlAt(second[0].seq);
    const entries = listed(two.der);
    expect([...entries.keys()].sort()).to.deep.equal([bare(a), bare(b)].sort());
    const fulls = logged.filter((f) => f.kind === 'full');
    expect(fulls[fulls.length - 1]).to.include({ entries: 2, encoded: 1 });
    // openssl reads it as a whole, signature included.
    const pem = path.join(tmp.dir, 'device.pem');
    writeFileSync(pem, opensslOk(['x509', '-inform', 'DER'], hierarchy.device.record.certificateDer));
    const text = opensslOk(['crl', '-inform', 'DER', '-CAfile', pem, '-noout', '-text'], two.der);
    // openssl prints whole bytes: a serial whose first nibble is 0 keeps that 0.
    expect(text).to.match(new RegExp(`Serial Number: 0*${bare(b)}\\b`));
  });

  it('a hold, then its release: the full CRL lists the hold, then drops it (the kept entries are walked again)', async () => {
    const a = await certificate();
    const held = await change(a, 'good', 'held');
    expect(listed((await fullCrlAt(held[0].seq)).der).get(bare(a))).to.equal('certificateHold');
    const released = await change(a, 'held', 'good');
    expect(listed((await fullCrlAt(released[0].seq)).der).has(bare(a))).to.equal(false);
    const held2 = await change(a, 'good', 'held');
    await fullCrlAt(held2[0].seq);
    const revoked = await change(a, 'held', 'revoked');
    const entries = listed((await fullCrlAt(revoked[0].seq)).der);
    expect(entries.size).to.equal(1);
    expect(entries.get(bare(a))).to.equal('keyCompromise');
  });

  it('the incremental full CRL lists exactly what a walk of the registry lists', async () => {
    const serials = await Promise.all(Array.from({ length: 6 }, () => certificate()));
    let last: FeedEntry[] = [];
    for (const s of serials.slice(0, 4)) last = await change(s, 'good', 'revoked');
    last = await change(serials[4], 'good', 'held');
    const incremental = listed((await fullCrlAt(last[0].seq)).der);
    const walked = listed((await publisher.publish('device', 'full')).der);
    expect([...incremental.entries()].sort()).to.deep.equal([...walked.entries()].sort());
    expect(incremental.size).to.equal(5);
  });

  it('kept entries survive issuance during a walk (the feed moved, no CRL row did), but not a revocation during it', async () => {
    const kept = new FullCrlEntries();
    const a = await certificate();
    await change(a, 'good', 'revoked');
    const before = await registry.latestFeedSeq();
    await certificate(); // issuance while the walk runs: the feed moves past `before`
    expect((await kept.entries(registry, 'device', before, Date.now())).mode).to.equal('walk');
    const b = await certificate();
    const revoked = await change(b, 'good', 'revoked');
    const next = await kept.entries(registry, 'device', revoked[0].seq, Date.now());
    expect(next).to.include({ mode: 'append', encoded: 1, count: 2 });

    const other = new FullCrlEntries();
    const seq = await registry.latestFeedSeq();
    const c = await certificate();
    await change(c, 'good', 'revoked'); // a revocation while the walk runs: it may or may not be in it
    expect((await other.entries(registry, 'device', seq, Date.now())).mode).to.equal('walk');
    const last = await change(await certificate(), 'good', 'revoked');
    const again = await other.entries(registry, 'device', last[0].seq, Date.now());
    expect(again).to.include({ mode: 'walk', count: 4 });
  });

  it('every full and delta CRL carries the issuing distribution point written into the certificates it covers', async () => {
    const a = await certificate();
    const entries = await change(a, 'good', 'revoked');
    const full = parseCrl((await fullCrlAt(entries[0].seq)).der);
    const delta = await registry.getLatestCrl('device', 'delta');
    const url = URLS.crl('device');
    expect(full.issuingDistributionPoint?.urls).to.deep.equal([url]);
    expect(parseCrl(delta!.der).issuingDistributionPoint?.urls).to.deep.equal([url]);
    // The device CA's own certificate names the root's CRL: the root's CRL covers it.
    const ca = opensslOk(['x509', '-inform', 'DER', '-noout', '-ext', 'crlDistributionPoints'], hierarchy.device.record.certificateDer);
    expect(ca).to.include(URLS.crl('root'));
  });

  it('a self-signed root\'s CRL carries no IDP (openssl -crl_check_all checks the root, which names no distribution point, against it)', async () => {
    const builder = new WorkerCrlBodyBuilder({ module: pathToFileURL(path.join(buildRoot, 'registry', 'sqlite', 'worker-open.js')).href, options: { path: dbPath } });
    const roots = new CrlPublisher(registry, [hierarchy.root], URLS, builder,
      { coalesceMs: 50, fullCoalesceMs: 300, fullValidityMs: 86_400_000, fullRebuildMs: 3600_000, deltaValidityMs: 3600_000 },
      { info: () => {}, error: () => {} });
    try {
      const crl = parseCrl((await roots.publish('root', 'full')).der);
      expect(crl.issuingDistributionPoint).to.equal(undefined);
    } finally {
      await roots.stop();
    }
  });
});
