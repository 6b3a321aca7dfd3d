/**
 * The adapter table (registry/adapters.ts): each `storage.type` opens its adapter, names a worker
 * module that exists and exports `openRegistry`, and says which settings it cannot open without.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { registryAdapter, REGISTRY_ADAPTERS, STORAGE_TYPES, type StorageSettings } from '../../registry/adapters.js';
import { LATEST_SCHEMA_VERSION } from '../../registry/sqlite/index.js';
import { makeTempDir } from '../support/index.js';

function settings(over: Partial<StorageSettings>): StorageSettings {
  return { type: 'sqlite', path: '/nonexistent/kakuin.db', synchronous: 'NORMAL', database: 'kakuin', ...over };
}

describe('registry adapter table', function () {
  it('names sqlite and mongodb, and nothing else answers to a storage type', function () {
    expect(STORAGE_TYPES).to.deep.equal(['sqlite', 'mongodb']);
    for (const type of ['postgres', 'toString', '__proto__', '']) {
      expect(() => registryAdapter(type), type).to.throw().with.property('code', 'KAKUIN_E_INTERNAL');
    }
  });

  it('sqlite: absent until opened for writing, then opened read-only by the same settings, and its worker module opens it too', async function () {
    const tmp = makeTempDir();
    try {
      const storage = settings({ path: path.join(tmp.dir, 'kakuin.db') });
      const adapter = registryAdapter('sqlite');
      expect(await adapter.absent!(storage)).to.equal(true);
      const writer = await adapter.open(storage, { readonly: false });
      try {
        expect(await writer.schemaVersion()).to.equal(LATEST_SCHEMA_VERSION);
        await writer.createManufacturer({ name: 'Acme' });
        expect(await adapter.absent!(storage)).to.equal(false);
        const reader = await adapter.open(storage, { readonly: true });
        try {
          expect((await reader.listManufacturers()).map((m) => m.name)).to.deep.equal(['Acme']);
          await reader.createManufacturer({ name: 'Other' }).then(() => expect.fail('a read-only opening wrote'), (e) => expect(e.code).to.equal('KAKUIN_E_INTERNAL'));
        } finally {
          await reader.close();
        }
        const spec = adapter.worker(storage);
        expect(spec.options).to.deep.equal({ path: storage.path });
        const worker = await import(spec.module) as { openRegistry(o: unknown): Promise<{ listManufacturers(): Promise<{ name: string }[]>; close(): Promise<void> }> };
        const opened = await worker.openRegistry(spec.options);
        try {
          expect((await opened.listManufacturers()).map((m) => m.name)).to.deep.equal(['Acme']);
        } finally {
          await opened.close();
        }
      } finally {
        await writer.close();
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('mongodb: requires storage.uri, and its worker module exists beside the adapter', function () {
    const adapter = REGISTRY_ADAPTERS.mongodb;
    expect(adapter.requires.map((r) => r.setting)).to.deep.equal(['uri']);
    const spec = adapter.worker(settings({ type: 'mongodb', uri: 'mongodb://db1/?replicaSet=rs0', database: 'fleet' }));
    expect(spec.options).to.deep.equal({ uri: 'mongodb://db1/?replicaSet=rs0', database: 'fleet' });
    expect(existsSync(fileURLToPath(spec.module))).to.equal(true);
    expect(path.basename(path.dirname(fileURLToPath(spec.module)))).to.equal('mongodb');
  });
});
