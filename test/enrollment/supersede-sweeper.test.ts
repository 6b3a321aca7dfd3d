/**
 * The supersede sweeper on a real SQLite registry with an injected clock: due rows are revoked as
 * `superseded` (with the actor that scheduled them), rows not yet due are kept, rows whose
 * certificate was revoked meanwhile are dropped, and a new sweeper (a restart) finds what is left.
 */
import { expect } from 'chai';
import path from 'node:path';
import { openSqliteRegistry, type SqliteRegistry } from '../../registry/sqlite/index.js';
import { RevocationService } from '../../ca/revocation.js';
import { SupersedeSweeper } from '../../enrollment/supersede-sweeper.js';
import { makeTempDir } from '../support/index.js';
import { fakeCertificate, issuance, ISSUER_ID } from '../contract/registry-fixtures.js';

describe('enrollment: durable supersede sweeper', function () {
  let tmp: { dir: string; cleanup: () => void };
  let registry: SqliteRegistry;
  let revocation: RevocationService;
  const t0 = new Date('2030-01-01T00:00:00Z');
  let now = t0;
  const clock = () => now;

  beforeEach(async () => {
    tmp = makeTempDir();
    registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
    await registry.putIssuer({ id: ISSUER_ID, kind: 'device', certificateDer: Buffer.from([0x30, 0]), keyUri: 'file:device.key' });
    revocation = new RevocationService(registry, async () => {}, clock);
    now = t0;
  });

  afterEach(async () => {
    await registry.close();
    tmp.cleanup();
  });

  const issue = async () => (await registry.recordIssuance(issuance(fakeCertificate({ issuerId: ISSUER_ID })))).serialHex;
  const at = (ms: number) => new Date(t0.getTime() + ms);

  it('revokes due rows as superseded with their actor, keeps the others, and a new sweeper (a restart) finds them', async () => {
    const [a, b, c] = [await issue(), await issue(), await issue()];
    await registry.scheduleSupersede([
      { serialHex: a, at: at(1000), actor: 'station:s1' },
      { serialHex: b, at: at(5000), actor: 'token:alice' },
      { serialHex: c, at: at(1500), actor: 'station:s1' },
    ]);
    // c was revoked by an operator before its time came: its row is dropped, nothing fails.
    await revocation.revokeCertificate(c, { reason: 'keyCompromise' }, 'token:ops');

    const first = new SupersedeSweeper(registry, revocation, { intervalMs: 60_000, clock });
    now = at(500);
    expect(await first.sweep(), 'nothing due yet').to.equal(0);
    expect((await registry.getCertificate(a)).status).to.equal('good');
    now = at(2000);
    expect(await first.sweep()).to.equal(1);
    expect(await registry.getCertificate(a)).to.include({ status: 'revoked', reason: 'superseded' });
    expect((await registry.getCertificate(b)).status).to.equal('good');
    expect((await registry.getCertificate(c)).reason, 'left as the operator revoked it').to.equal('keyCompromise');
    const events = await registry.listAuditEvents({ type: 'certificate.revoked', limit: 1000 });
    expect(events.find((e) => e.serialHex === a)?.actor).to.equal('station:s1');
    expect((await registry.listDueSupersedes(at(10_000), 1000)).map((p) => p.serialHex)).to.deep.equal([b]);
    first.close();

    // A restart after b fell due: the new sweeper revokes it when it starts.
    now = at(6000);
    const second = new SupersedeSweeper(registry, revocation, { intervalMs: 60_000, clock });
    second.start();
    const deadline = Date.now() + 2000;
    while ((await registry.getCertificate(b)).status !== 'revoked' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    second.close();
    expect(await registry.getCertificate(b)).to.include({ status: 'revoked', reason: 'superseded' });
    expect(await registry.listDueSupersedes(at(10_000), 1000)).to.deep.equal([]);
  });

  it('wakes up when a row it was told about falls due, without waiting for the interval', async () => {
    const a = await issue();
    now = new Date();
    const due = new Date(now.getTime() + 300);
    await registry.scheduleSupersede([{ serialHex: a, at: due, actor: 'station:s2' }]);
    const sweeper = new SupersedeSweeper(registry, revocation, { intervalMs: 60_000 });
    try {
      sweeper.start();
      sweeper.wakeAt(due);
      await new Promise((r) => setTimeout(r, 100));
      expect((await registry.getCertificate(a)).status, 'not before it is due').to.equal('good');
      const deadline = Date.now() + 3000;
      while ((await registry.getCertificate(a)).status !== 'revoked' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await registry.getCertificate(a)).to.include({ status: 'revoked', reason: 'superseded' });
    } finally {
      sweeper.close();
    }
  });
});
