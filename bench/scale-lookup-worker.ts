/**
 * One connection of the scale benchmark's parallel lookups (bench/scale.ts): opens the fixture
 * read-only through the SQLite adapter, derives its random keys, says ready, and on "go" does its
 * lookups one at a time through the port, checking each result; posts how long they took.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteRegistry } from '../registry/sqlite/index.js';
import { scaleDevice, type ScaleDevice } from './scale-keys.js';

export interface LookupWorkerData {
  dbPath: string;
  kind: 'serial' | 'serialNumber' | 'mac';
  count: number;
  devices: number;
}

async function main(): Promise<void> {
  const d = workerData as LookupWorkerData;
  const registry = await openSqliteRegistry({ path: d.dbPath, readonly: true });
  const picks: ScaleDevice[] = new Array(d.count);
  for (let k = 0; k < d.count; k++) picks[k] = scaleDevice(Math.floor(Math.random() * d.devices));
  const lookup = async (dev: ScaleDevice): Promise<boolean> => {
    if (d.kind === 'serial') return (await registry.getCertificate(dev.serialHex)).deviceId === dev.id;
    const found = await registry.findDevices(d.kind === 'mac' ? { mac: dev.mac } : { serialNumber: dev.serialNumber });
    return found.length === 1 && found[0].id === dev.id;
  };
  for (let k = 0; k < Math.min(2000, d.count); k++) await lookup(picks[k]);
  parentPort!.once('message', () => {
    void (async () => {
      const t0 = performance.now();
      for (let k = 0; k < d.count; k++) {
        if (!(await lookup(picks[k]))) throw new Error(`lookup of ${picks[k].serialNumber} returned the wrong record`);
      }
      parentPort!.postMessage({ ms: performance.now() - t0 });
      await registry.close();
    })().catch((e: unknown) => parentPort!.postMessage({ error: String((e as Error)?.stack ?? e) }));
  });
  parentPort!.postMessage({ ready: true });
}

main().catch((e: unknown) => parentPort!.postMessage({ error: String((e as Error)?.stack ?? e) }));
