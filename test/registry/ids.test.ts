/** Device ids (registry/ids.ts): UUIDv7, RFC 9562 §5.7. */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { newDeviceId } from '../../registry/ids.js';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function timeOf(id: string): number {
  return Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);
}

describe('device ids', function () {
  it('are UUIDv7: version 7, variant 10, the millisecond time in the first 48 bits', function () {
    const now = Date.UTC(2026, 10, 24, 10, 0, 0, 456);
    for (let i = 0; i < 1000; i++) {
      const id = newDeviceId(now);
      expect(id).to.match(UUID_V7);
      expect(timeOf(id)).to.equal(now);
    }
  });

  it('sort by creation time and are distinct within one millisecond', function () {
    const t = Date.now();
    expect(newDeviceId(t) < newDeviceId(t + 1)).to.equal(true);
    const ids = new Set(Array.from({ length: 20_000 }, () => newDeviceId(t)));
    expect(ids.size).to.equal(20_000);
  });

  it('are what the SQLite registry gives new devices', async function () {
    const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-ids-'));
    const registry = await openSqliteRegistry({ path: path.join(dir, 'registry.sqlite') });
    try {
      const m = await registry.createManufacturer({ name: 'Ids Inc' });
      const before = Date.now();
      const first = await registry.createDevice({ manufacturerId: m.id, serialNumber: 'ID-1' });
      const second = await registry.createDevice({ manufacturerId: m.id, serialNumber: 'ID-2' });
      expect(first.id).to.match(UUID_V7);
      expect(timeOf(first.id)).to.be.within(before, Date.now());
      expect(first.id <= second.id || timeOf(first.id) === timeOf(second.id)).to.equal(true);
    } finally {
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
