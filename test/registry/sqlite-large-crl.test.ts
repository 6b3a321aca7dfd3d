/**
 * Large CRLs (≥ 1 MiB; ~47 MB at a million revoked) are stored by a worker thread on its own
 * connection (registry/sqlite/large-crl-writer.ts), so the event loop serves while SQLite writes.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { expect } from 'chai';
import { openSqliteRegistry, type SqliteRegistry } from '../../registry/sqlite/index.js';
import { LARGE_CRL_BYTES } from '../../registry/sqlite/large-crl-writer.js';
import { expectKakuinError } from '../contract/registry.contract.js';
import { makeTempDir } from '../support/index.js';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000);

describe('registry/sqlite large CRLs', function () {
  this.timeout(30_000);
  let tmp: ReturnType<typeof makeTempDir>;
  let registry: SqliteRegistry;
  const big = (n: bigint, fill?: number) => ({
    issuerId: 'device', kind: 'full' as const, number: n, thisUpdate: at(0), nextUpdate: at(60), feedSeq: Number(n),
    der: fill === undefined ? randomBytes(LARGE_CRL_BYTES * 3) : Buffer.alloc(LARGE_CRL_BYTES * 2, fill),
  });

  beforeEach(async () => {
    tmp = makeTempDir('kakuin-large-crl-');
    registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
    await registry.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' });
  });

  afterEach(async () => {
    await registry.close();
    tmp.cleanup();
  });

  it('keeps serving the event loop while it stores a large CRL, and reads it back byte for byte', async () => {
    const crl = big(7n);
    let ranDuringStore = false;
    setImmediate(() => { ranDuringStore = true; });
    // Written inline, the store would finish before any queued callback runs.
    await registry.putCrl(crl);
    expect(ranDuringStore, 'a callback queued before the store ran before it finished').to.equal(true);
    expect(await registry.getLatestCrl('device', 'full')).to.deep.equal(crl);
    // The caller's buffer is untouched (the worker got a copy).
    expect(crl.der.length).to.equal(LARGE_CRL_BYTES * 3);
  });

  it('keeps the higher-numbered CRL when an older large one arrives later, and a reopened registry sees it', async () => {
    await registry.putCrl(big(9n, 0x09));
    await registry.putCrl(big(8n, 0x08));
    expect((await registry.getLatestCrl('device', 'full'))?.number).to.equal(9n);
    const file = path.join(tmp.dir, 'registry.db');
    await registry.close();
    registry = await openSqliteRegistry({ path: file });
    const again = await registry.getLatestCrl('device', 'full');
    expect(again?.number).to.equal(9n);
    expect(again?.der.every((b) => b === 0x09)).to.equal(true);
  });

  it('refuses a large CRL of an unknown issuer with KAKUIN_E_ISSUER_NOT_FOUND and stores nothing', async () => {
    await expectKakuinError(registry.putCrl({ ...big(3n), issuerId: 'nobody' }), 'KAKUIN_E_ISSUER_NOT_FOUND');
    expect(await registry.getLatestCrl('nobody', 'full')).to.equal(undefined);
  });

  it('small CRLs are still written inline', async () => {
    const small = { ...big(2n), der: Buffer.from([0x30, 0]) };
    let ranDuringStore = false;
    setImmediate(() => { ranDuringStore = true; });
    await registry.putCrl(small);
    expect(ranDuringStore).to.equal(false);
    expect(await registry.getLatestCrl('device', 'full')).to.deep.equal(small);
  });
});
