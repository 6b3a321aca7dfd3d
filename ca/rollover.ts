/**
 * Device issuing CA rollover. A new device CA (`device-<n>`, kind `device`, signed by the root) takes
 * over issuance; the earlier ones stay in service — trusted by the gateway, answering OCSP and
 * publishing CRLs — until their certificates expire, so devices they certified keep working through
 * the overlap. The subject names differ (`Device Issuing CA <n>`), so no relying party has to tell two
 * CAs of one name apart by key alone.
 */
import type { KeyRing } from '../hsm-adapters/index.js';
import type { Registry } from '../registry/port.js';
import { createSubordinate, type HierarchyOptions } from './hierarchy.js';
import { issuerFromParts, type LoadedIssuer } from './issuer.js';

export async function rollOverDeviceCa(
  registry: Registry, keys: KeyRing, options: HierarchyOptions, root: LoadedIssuer, now = new Date(),
): Promise<LoadedIssuer> {
  const ids = new Set((await registry.listIssuers()).map((i) => i.id));
  let n = 2;
  while (ids.has(`device-${n}`)) n++;
  return createSubordinate(registry, keys, options, root, `device-${n}`, 'device', `Device Issuing CA ${n}`, now);
}

/**
 * The device CAs in service: `current` (the newest, which issues) and `previous` (older ones whose
 * certificates have not expired: they still answer for what they issued).
 */
export async function deviceCasInService(
  registry: Registry, keys: KeyRing, first: LoadedIssuer, now = new Date(),
): Promise<{ current: LoadedIssuer; previous: LoadedIssuer[] }> {
  const records = (await registry.listIssuers())
    .filter((i) => i.kind === 'device' && i.id !== first.id)
    .sort((a, b) => generation(a.id) - generation(b.id));
  const all = [first];
  for (const record of records) all.push(issuerFromParts(record, await keys.load(record.keyUri)));
  const current = all[all.length - 1];
  const previous = all.slice(0, -1).filter((ca) => ca.certificate.notAfter.getTime() > now.getTime());
  return { current, previous };
}

function generation(id: string): number {
  const m = /-(\d+)$/.exec(id);
  return m ? Number(m[1]) : 1;
}
