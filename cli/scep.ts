/**
 * SCEP's wiring (enrollment/scep/): the service over the enrollment core, the RA certificate made
 * on first use by the device CA, and the store both registry adapters carry (`registry.scep`).
 */
import { ensureScepRa, ScepService, type ScepRa } from '../enrollment/scep/index.js';
import type { EnrollmentService } from '../enrollment/index.js';
import type { Registry } from '../registry/port.js';
import type { ScepStore } from '../registry/scep.js';
import type { Kakuin } from './wiring.js';

export function scepStoreOf(registry: Registry): ScepStore | undefined {
  // Both adapters carry `scep`; the MongoDB one is not imported here (cli/wiring.ts loads its driver only when configured).
  return (registry as { scep?: ScepStore }).scep;
}

export function scepFor(kakuin: Kakuin, enrollment: EnrollmentService, actor: string): { service: ScepService; store: ScepStore } | undefined {
  const store = scepStoreOf(kakuin.registry);
  if (!store) return undefined;
  let ra: Promise<ScepRa> | undefined;
  const device = kakuin.hierarchy.device;
  const service = new ScepService({
    store, registry: kakuin.registry, enrollment, pepper: kakuin.pepper,
    ra: () => {
      // Made once per process; a failed attempt (a registry hiccup) is tried again on the next request.
      ra ??= ensureScepRa(store, kakuin.registry, kakuin.keys, device, kakuin.config.ca.organization, actor).catch((e) => {
        ra = undefined;
        throw e;
      });
      return ra;
    },
    caCertificates: () => [device.record.certificateDer, kakuin.hierarchy.root.record.certificateDer],
  });
  return { service, store };
}
