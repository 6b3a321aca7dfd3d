/**
 * Wiring of bulk jobs and two-person approval for the process that serves the management API
 * (it writes the registry): the job runner over the revocation service this process revokes
 * through, the approval gate, and at start the resumption of what a crash left.
 */
import { ApprovalGate } from '../management-api/approvals.js';
import { reconcileBulkApprovals } from '../management-api/bulk-routes.js';
import type { ManagementApiDeps } from '../management-api/management-api.js';
import { BulkJobRunner } from '../operations/bulk/index.js';
import type { RevocationService } from '../ca/revocation.js';
import type { ApprovalStore } from '../registry/approvals.js';
import type { JobStore } from '../registry/jobs.js';
import type { Registry } from '../registry/port.js';
import { KakuinError } from '../errors/index.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';
import { rollOverDeviceCaAs } from './ca-rollover.js';
import type { Kakuin } from './wiring.js';

export interface BulkAndApprovals {
  deps: Pick<ManagementApiDeps, 'approvals' | 'bulk' | 'rollOverDeviceCa'>;
  /** Resumes running jobs and settles approved or dropped ones; call once the API's routes defined the gated acts. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

export function bulkAndApprovals(kakuin: Kakuin, registry: Registry, revocation: RevocationService, config: Readonly<KakuinConfig>, logger: Logger): BulkAndApprovals {
  // Both adapters carry the two ports (registry/jobs.ts, registry/approvals.ts).
  const stores = registry as Registry & { jobs?: JobStore; approvals?: ApprovalStore };
  if (stores.jobs === undefined || stores.approvals === undefined) {
    throw new KakuinError('KAKUIN_E_INTERNAL', 'this registry adapter keeps no bulk jobs or approvals');
  }
  const jobs = stores.jobs;
  const runner = new BulkJobRunner(jobs, revocation, logger);
  const approvals = new ApprovalGate(stores.approvals, { ttlMinutes: config.approvals.ttlMinutes });
  const offline = kakuin.offlineIssuers.has(kakuin.hierarchy.root.id);
  return {
    deps: {
      approvals,
      bulk: { jobs, runner, bulkThreshold: config.approvals.bulkThreshold, maxDevices: config.bulk.maxDevices },
      ...(!offline && {
        rollOverDeviceCa: async (actor: string) => {
          const previousIssuerId = kakuin.hierarchy.device.id;
          const ca = await rollOverDeviceCaAs(kakuin, config, actor);
          return { issuerId: ca.id, serialHex: ca.certificate.serialHex, previousIssuerId };
        },
      }),
    },
    async resume() {
      const { resumed, failed } = await runner.resume();
      if (resumed.length + failed.length > 0) logger.info('bulk jobs after a restart', { resumed, failed });
      await reconcileBulkApprovals(jobs, approvals, runner);
    },
    close: () => runner.close(),
  };
}
