/**
 * A device issuing CA rollover as the composition root builds it: the same for `kakuin ca rollover`
 * on the CA host (actor `cli`, no approval: whoever runs it holds the CA's keys) and for an approved
 * `POST /api/v1/ca/rollover` (actor: the requesting token; management-api/approvals.ts).
 */
import { newPkcs11KeyUri, tokenOfKeyUri } from '../hsm-adapters/pkcs11/index.js';
import { rollOverDeviceCa } from '../ca/rollover.js';
import type { LoadedIssuer } from '../ca/issuer.js';
import type { KakuinConfig } from './config.js';
import { caBackdateSeconds, type Kakuin } from './wiring.js';

export async function rollOverDeviceCaAs(kakuin: Kakuin, config: Readonly<KakuinConfig>, actor: string): Promise<LoadedIssuer> {
  // The new CA's key goes where the current one's is: the same PKCS#11 token, or the software store.
  const token = tokenOfKeyUri(kakuin.hierarchy.device.record.keyUri);
  const ca = await rollOverDeviceCa(kakuin.registry, kakuin.keys, {
    organization: config.ca.organization, rootKeyAlgorithm: config.ca.rootKeyAlgorithm, issuingKeyAlgorithm: config.ca.issuingKeyAlgorithm,
    rootValidityYears: config.ca.rootValidityYears, issuingValidityYears: config.ca.issuingValidityYears, backdateSeconds: caBackdateSeconds(config),
    keyUriFor: (id) => (token === undefined ? `file:${id}-ca` : newPkcs11KeyUri(token, `${id}-ca`)),
    urls: kakuin.urls, actor,
  }, kakuin.hierarchy.root);
  await kakuin.registry.appendAuditEvent({ type: 'ca.rolled-over', actor, details: { issuerId: ca.id, previousIssuerId: kakuin.hierarchy.device.id } });
  return ca;
}
