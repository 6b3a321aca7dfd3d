/**
 * ACME wiring (enrollment/acme) for the processes that serve the management API with enrollment,
 * and the `kakuin acme eab create|list|revoke` command. Certificates come from the infrastructure
 * CA (ca/tls-server.ts), as kakuin's own listeners' do.
 */
import { parseArgs } from 'node:util';
import { issueServerCertificate } from '../ca/tls-server.js';
import type { RevocationService } from '../ca/revocation.js';
import { KakuinError } from '../errors/index.js';
import { AcmeService, createEabKey, eabKeyJson, mountAcme, mountAcmeAdminRoutes, revokeEabKey } from '../enrollment/acme/index.js';
import type { ApiRoutes } from '../api-schema/routes.js';
import type { ApiHelpers } from '../management-api/management-api.js';
import type { AcmeStore } from '../registry/acme.js';
import type { Registry } from '../registry/port.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';
import { pepper } from './secrets.js';
import { openRegistry, type Kakuin } from './wiring.js';

/** The registry's ACME store (both adapters carry `acme`; one that has none cannot serve ACME). */
export function acmeStoreOf(registry: Registry): AcmeStore {
  const store = (registry as { acme?: AcmeStore }).acme;
  if (store === undefined) throw new KakuinError('KAKUIN_E_CONFIG', `the ${registry.constructor.name} registry has no ACME store; set acme.enabled to false`);
  return store;
}

export interface RunningAcme {
  service: AcmeService;
  mount(routes: ApiRoutes, helpers: ApiHelpers): void;
  close(): Promise<void>;
}

export function startAcme(kakuin: Kakuin, revocation: RevocationService, logger: Logger): RunningAcme | undefined {
  const { config, registry, hierarchy, urls } = kakuin;
  if (!config.acme.enabled) return undefined;
  const store = acmeStoreOf(registry);
  const infrastructure = hierarchy.infrastructure;
  const audit = (event: Parameters<Registry['appendAuditEvent']>[0]) => registry.appendAuditEvent(event);
  const service = new AcmeService({
    store, pepper: kakuin.pepper, audit,
    issue: ({ spki, hostnames, actor, details }) => issueServerCertificate(registry, infrastructure, urls, {
      spki, hostnames, validityDays: config.acme.validityDays, organization: config.ca.organization, actor, profile: 'acme', details,
    }),
    chain: [infrastructure.record.certificateDer],
    issuerKeyId: infrastructure.keyId,
    certificate: (serialHex) => registry.getCertificate(serialHex),
    revoke: async (serialHex, reason, actor) => { await revocation.revokeCertificate(serialHex, { reason }, actor); },
    validation: {
      httpPort: config.acme.validationPorts.http, tlsAlpnPort: config.acme.validationPorts.tlsAlpn, resolve: config.acme.resolve,
      ...(config.acme.dnsHook !== undefined && { dnsHook: config.acme.dnsHook }), timeoutMs: config.acme.validationTimeoutSeconds * 1000,
    },
    validityDays: config.acme.validityDays,
    onBackgroundError: (e) => logger.error('an ACME validation could not record its result', { cause: String(e) }),
  });
  return {
    service,
    mount: (routes, helpers) => {
      mountAcme(routes, { service, logger });
      mountAcmeAdminRoutes(routes, helpers, { store, audit, pepper: kakuin.pepper });
    },
    close: () => service.close(),
  };
}

export const ACME_USAGE = 'kakuin acme eab create --names PATTERN[,PATTERN...] | acme eab list | acme eab revoke --kid KID';

/** `kakuin acme eab ...`: needs the registry and the pepper only, not the CA keys. */
export async function acmeCommand(config: KakuinConfig, rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, options: { names: { type: 'string' }, kid: { type: 'string' } }, allowPositionals: true, strict: true });
  const [group, action] = positionals;
  if (group !== 'eab' || !['create', 'list', 'revoke'].includes(action ?? '') || positionals.length !== 2) throw new KakuinError('KAKUIN_E_USAGE', ACME_USAGE);
  if ((action === 'create') !== (values.names !== undefined) || (action === 'revoke') !== (values.kid !== undefined)) throw new KakuinError('KAKUIN_E_USAGE', ACME_USAGE);
  const registry = await openRegistry(config);
  try {
    const store = acmeStoreOf(registry);
    const audit = (event: Parameters<Registry['appendAuditEvent']>[0]) => registry.appendAuditEvent(event);
    if (action === 'create') {
      const names = values.names!.split(',').map((n) => n.trim()).filter(Boolean);
      const key = await createEabKey(store, audit, pepper(config.secrets.directory), names, 'cli');
      process.stdout.write(`ACME external account binding for ${key.names.join(', ')} (the HMAC key is shown once, store it now):\n`
        + `  key id    ${key.kid}\n  HMAC key  ${key.hmacKey}\n`
        + `certbot: --eab-kid ${key.kid} --eab-hmac-key ${key.hmacKey}\nlego:    --eab --kid ${key.kid} --hmac ${key.hmacKey}\n`);
    } else if (action === 'revoke') {
      const key = await revokeEabKey(store, audit, values.kid!, 'cli');
      process.stdout.write(`EAB key ${key.kid} revoked at ${key.revokedAt!.toISOString()}\n`);
    } else {
      const rows = (await store.listEabKeys()).map(eabKeyJson);
      const cells = [['KID', 'NAMES', 'CREATED', 'STATUS', 'ACCOUNT'],
        ...rows.map((k) => [k.kid, k.names.join(','), k.createdAt, k.revokedAt ? `revoked ${k.revokedAt}` : 'active', k.accountId ?? '-'])];
      const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
      for (const r of cells) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
    }
  } finally {
    await registry.close();
  }
  return 0;
}
