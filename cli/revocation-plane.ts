/**
 * Wiring of the revocation plane: the revocation service, CRL publication (bodies built in a worker
 * thread), the OCSP responder with its pre-signed responses, and the plain-HTTP listener that
 * serves OCSP, CRLs and CA certificates. All of them follow the registry's revocation feed.
 */
import { CrlPublisher, type CrlPolicy } from '../ca/crl/crl-publisher.js';
import { WorkerCrlBodyBuilder } from '../ca/crl/crl-builder.js';
import { ensureOcspSigner, type OcspSigner } from '../ca/ocsp-signers.js';
import { RevocationService } from '../ca/revocation.js';
import { FeedFollower } from '../registry/feed-follower.js';
import type { FeedEntry } from '../registry/port.js';
import { createOcspHttpServer, OcspResponder, Publications, type OcspSigningIdentity, withWorkerWalks } from '../ocsp-responder/index.js';
import type { LoadedIssuer } from '../ca/issuer.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';
import { workerRegistry, type Kakuin } from './wiring.js';
import { offlineRootResponder } from './offline-root.js';

export interface RevocationPlane {
  revocation: RevocationService;
  crls: CrlPublisher;
  responder: OcspResponder;
  /** Base URL of the plain-HTTP listener as bound (the configured public URL may differ). */
  httpUrl: string;
  /** More work to finish before a revocation call returns (e.g. the gateway closing connections). */
  afterChange: ((entries: FeedEntry[]) => Promise<void>)[];
  /** Serves another protocol's path on the plain-HTTP listener (SCEP with `scep.plainHttp`). */
  mountPlainHttp(path: string, handler: import('node:http').RequestListener): void;
  close(): Promise<void>;
}

const HOUR_MS = 3600_000;

/**
 * Responder certificates are short-lived: twice a day, roll over those due (ca/ocsp-signers.ts) and
 * have `responder` re-sign with the new ones. The ca role and `kakuin serve` both run it.
 */
export function scheduleResponderRollover(kakuin: Kakuin, issuers: LoadedIssuer[], responder: OcspResponder, logger: Logger): NodeJS.Timeout {
  const { config, registry } = kakuin;
  const timer = setInterval(() => {
    (async () => {
      const ensured = [];
      for (const issuer of issuers) {
        ensured.push(await ensureOcspSigner(registry, kakuin.keys, issuer, {
          organization: config.ca.organization, validityDays: config.ocsp.signerValidityDays,
          renewWithinDays: config.ocsp.signerRenewWithinDays, keyAlgorithm: 'ecdsa-p256',
          keyUriFor: kakuin.ocspKeyUriFor, actor: 'system',
        }));
      }
      // The offline root's responder is not rolled here (its root signs it at a ceremony): one a later
      // `ca import-root-publications` recorded is taken up, else the current one is kept.
      let offline = kakuin.ocspSigners.filter((s) => kakuin.offlineIssuers.has(s.issuer.id));
      let offlineChanged = false;
      if (kakuin.offlineIssuers.has(kakuin.hierarchy.root.id)) {
        const { signer } = await offlineRootResponder(registry, kakuin.keys, kakuin.hierarchy.root);
        if (signer && !offline.some((s) => s.certificateDer.equals(signer.certificateDer))) {
          offline = [signer];
          offlineChanged = true;
          kakuin.ocspSigners = [...kakuin.ocspSigners.filter((s) => !kakuin.offlineIssuers.has(s.issuer.id)), signer];
        }
      }
      if (ensured.some((e) => e.rolled) || offlineChanged) {
        logger.info('OCSP responder certificates rolled over; re-signing stored responses');
        await responder.setIdentities(ocspIdentities([...ensured.map((e) => e.signer), ...offline]));
      }
    })().catch((e) => logger.error('OCSP responder rollover failed', { error: String(e) }));
  }, 12 * HOUR_MS);
  timer.unref();
  return timer;
}

export function ocspIdentities(signers: OcspSigner[]): OcspSigningIdentity[] {
  return signers.map((s) => ({
    issuerId: s.issuer.id, issuerCertificateDer: s.issuer.record.certificateDer, responderCertificateDer: s.certificateDer, signer: s.signer,
  }));
}

/** The CAs whose CRLs and OCSP responses kakuin signs: an offline root publishes its own. */
export function servedIssuers(kakuin: Kakuin): LoadedIssuer[] {
  const { hierarchy } = kakuin;
  return [hierarchy.root, hierarchy.device, ...kakuin.previousDeviceCas, hierarchy.infrastructure, ...(hierarchy.station ? [hierarchy.station] : [])]
    .filter((i) => !kakuin.offlineIssuers.has(i.id));
}

/** CRL publication for `issuers` as configured, bodies built in a worker thread on its own connection. */
export function crlPublisherFor(kakuin: Kakuin, issuers: LoadedIssuer[], logger: Logger): CrlPublisher {
  const { config } = kakuin;
  return new CrlPublisher(
    kakuin.registry, issuers, kakuin.urls,
    new WorkerCrlBodyBuilder(workerRegistry(config)),
    crlPolicyOf(config),
    logger,
  );
}

/** The CRL schedule as configured (crl.*). */
export function crlPolicyOf(config: Readonly<KakuinConfig>): CrlPolicy {
  return {
    coalesceMs: config.crl.coalesceMs,
    fullCoalesceMs: config.crl.fullCoalesceMs,
    fullValidityMs: config.crl.fullValidityHours * HOUR_MS,
    fullRebuildMs: config.crl.fullRebuildMinutes * 60_000,
    deltaValidityMs: config.crl.deltaValidityMinutes * 60_000,
  };
}

export async function startRevocationPlane(kakuin: Kakuin, logger: Logger): Promise<RevocationPlane> {
  const { config, registry } = kakuin;
  const issuers = servedIssuers(kakuin);
  const crls = crlPublisherFor(kakuin, issuers, logger);
  const responder = new OcspResponder({
    // The start's two whole-registry walks (stored responses, certificate statuses) run in worker
    // threads on connections of their own, as in the ocsp role: a million load in seconds.
    registry: withWorkerWalks(registry, workerRegistry(config)),
    identities: ocspIdentities(kakuin.ocspSigners),
    logger,
    validityMs: config.ocsp.validityMinutes * 60_000,
    live: { ratePerSecond: config.ocsp.liveRatePerSecond },
  });
  const publications = new Publications({ registry, logger });
  crls.published.push((record) => publications.crlPublished(record));
  const listener = createOcspHttpServer({
    responder, publications, logger, crlReplacement: CrlPublisher.replacementSeconds(crlPolicyOf(config)),
  });
  const follower = new FeedFollower(registry, {
    afterSeq: await registry.latestFeedSeq(),
    onEntries: (entries) => crls.onFeedEntries(entries),
    onError: (e) => logger.warn('revocation feed read failed; retrying', { error: String(e) }),
  });

  const stops: (() => Promise<void>)[] = [];
  try {
    await responder.start();
    stops.push(() => responder.stop());
    await crls.start();
    stops.push(() => crls.stop());
    follower.start();
    stops.push(async () => follower.stop());
    const address = await listener.listen(config.ocsp.port, config.bindHost);
    stops.push(() => listener.close());
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const httpUrl = `http://${host === '0.0.0.0' ? 'localhost' : host}:${address.port}`;
    logger.info('OCSP, CRL and CA certificate listener', { url: httpUrl, publicUrl: config.publicHttpUrl });

    const rollover = scheduleResponderRollover(kakuin, issuers, responder, logger);
    stops.push(async () => clearInterval(rollover));

    // When a revocation call returns, this process's OCSP answers already reflect it, and the
    // CRL publisher has been told (its delta follows within crl.coalesceMs, its full within crl.fullCoalesceMs).
    const afterChange: RevocationPlane['afterChange'] = [];
    const revocation = new RevocationService(registry, async (entries) => {
      if (entries.length === 0) return;
      crls.onFeedEntries(entries);
      follower.poke();
      const [ok] = await Promise.all([responder.waitForSeq(entries[entries.length - 1].seq, 2000), ...afterChange.map((f) => f(entries))]);
      if (!ok) logger.warn('OCSP cache did not catch up with a revocation within 2 s', { seq: entries[entries.length - 1].seq });
    });

    return {
      revocation, crls, responder, httpUrl, afterChange,
      mountPlainHttp: (path, handler) => listener.mount(path, handler),
      close: async () => {
        for (const stop of stops.reverse()) await stop();
      },
    };
  } catch (e) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw e;
  }
}
