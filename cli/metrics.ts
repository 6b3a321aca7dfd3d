/**
 * What `GET /metrics` reports for a process that serves the management API: the parts it runs
 * (OCSP responder or pre-signer, gateway, enrollment), the registry's feed position, when each CA
 * and OCSP responder certificate expires (to alert on, days ahead), and the usual process figures.
 * Counters count since the process started, as Prometheus expects.
 */
import { parseCertificate } from '../pkix/index.js';
import type { MetricFamily } from '../management-api/prometheus.js';
import type { OcspResponder } from '../ocsp-responder/index.js';
import type { DeviceGateway } from '../gateway-auth/index.js';
import type { EnrollmentService } from '../enrollment/index.js';
import type { Registry, Station } from '../registry/port.js';
import type { Kakuin } from './wiring.js';

export interface MetricSources {
  registry: Registry;
  /** The CA certificates this process knows (issuer id → DER). */
  caCertificates: () => { issuerId: string; der: Buffer }[];
  /** When each enabled station's API key expires (undefined: keys do not expire). */
  stationKeyExpiresAt?: (station: Station) => Date | undefined;
  /** Device certificates issued by this process (every path: enrollment, admin, EST). */
  issuedCount?: () => number;
  responder?: OcspResponder;
  gateway?: DeviceGateway;
  enrollment?: EnrollmentService;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

function counter(name: string, help: string, samples: MetricFamily['samples']): MetricFamily {
  return { name, help, type: 'counter', samples };
}

function gauge(name: string, help: string, samples: MetricFamily['samples']): MetricFamily {
  return { name, help, type: 'gauge', samples };
}

export function metricsCollector(sources: MetricSources): () => Promise<MetricFamily[]> {
  const notAfterOf = new Map<string, number>();
  const notAfter = (der: Buffer) => {
    const key = der.toString('base64');
    let v = notAfterOf.get(key);
    if (v === undefined) {
      v = parseCertificate(der).notAfter.getTime() / 1000;
      notAfterOf.set(key, v);
    }
    return v;
  };
  return async () => {
    const families: MetricFamily[] = [];
    const cpu = process.cpuUsage();
    families.push(
      counter('process_cpu_seconds_total', 'User and system CPU time of this process.', [{ value: (cpu.user + cpu.system) / 1e6 }]),
      gauge('process_resident_memory_bytes', 'Resident memory of this process.', [{ value: process.memoryUsage.rss() }]),
      gauge('process_start_time_seconds', 'When this process started (Unix time).', [{ value: Math.round(Date.now() / 1000 - process.uptime()) }]),
      gauge('kakuin_ca_certificate_not_after_seconds', 'When each CA certificate expires (Unix time).',
        sources.caCertificates().map((c) => ({ labels: { issuer: c.issuerId }, value: notAfter(c.der) }))),
    );

    // What needs the registry: a scrape during a registry outage still reports everything else
    // (the gateway's readiness and the OCSP lag matter most then), and says the registry is down.
    const fromRegistry: MetricFamily[] = [];
    let registryUp = 1;
    try {
      fromRegistry.push(gauge('kakuin_registry_feed_seq', 'The newest revocation feed sequence number in the registry.', [{ value: await sources.registry.latestFeedSeq() }]));
      if (sources.stationKeyExpiresAt) {
        // A station whose key expires stops the line: alert weeks ahead. Few rows (stations, not devices).
        const samples: MetricFamily['samples'] = [];
        for (const m of await sources.registry.listManufacturers()) {
          for (const s of await sources.registry.listStations(m.id)) {
            const at = s.disabledAt ? undefined : sources.stationKeyExpiresAt(s);
            if (at !== undefined) samples.push({ labels: { station: s.id, manufacturer: m.name, name: s.name }, value: at.getTime() / 1000 });
          }
        }
        fromRegistry.push(gauge('kakuin_station_key_expires_seconds', 'When each enabled station\'s API key expires (Unix time); rotate before.', samples));
      }
    } catch {
      registryUp = 0;
      fromRegistry.length = 0;
    }
    families.push(gauge('kakuin_metrics_registry_up', '1 when this scrape could read the registry.', [{ value: registryUp }]), ...fromRegistry);

    if (sources.issuedCount) {
      families.push(counter('kakuin_device_certificates_issued_total', 'Device certificates issued and recorded by this process.', [{ value: sources.issuedCount() }]));
    }

    const r = sources.responder;
    if (r) {
      // health() reads the registry's newest seq; without it the lag is NaN, the rest still reported.
      const h = await r.health();
      const c = h.counters as Record<string, number>;
      const feed = h.feed as { appliedSeq: number; lagEntries: number | null; lastReadAgeMs: number | null };
      const cache = h.cache as { responses: number; arenaBytes: number };
      const issuers = h.issuers as { issuerId: string; responderNotAfter: string }[];
      families.push(
        counter('kakuin_ocsp_responses_total', 'OCSP answers by source: pre-signed, live from the short cache, live signed.', [
          { labels: { source: 'presigned' }, value: c.presigned }, { labels: { source: 'live_cached' }, value: c.liveCached },
          { labels: { source: 'live_signed' }, value: c.liveSigned },
        ]),
        counter('kakuin_ocsp_errors_total', 'OCSP error statuses sent (RFC 6960 §2.3).', [
          { labels: { status: 'malformedRequest' }, value: c.malformedRequest }, { labels: { status: 'unauthorized' }, value: c.unauthorized },
          { labels: { status: 'tryLater' }, value: c.tryLater }, { labels: { status: 'internalError' }, value: c.internalError },
        ]),
        counter('kakuin_http_publications_total', 'CRLs and CA certificates served on the plain-HTTP listener.', [
          { labels: { kind: 'crl' }, value: c.crl }, { labels: { kind: 'ca_certificate' }, value: c.caCertificate },
        ]),
        gauge('kakuin_ocsp_feed_lag_entries', 'Revocation feed entries not yet applied to the OCSP responses.', [{ value: feed.lagEntries ?? Number.NaN }]),
        gauge('kakuin_ocsp_feed_last_read_age_seconds', 'Time since the responder last read the feed.', [{ value: feed.lastReadAgeMs === null ? Number.NaN : seconds(feed.lastReadAgeMs) }]),
        gauge('kakuin_ocsp_presigned_responses', 'Pre-signed OCSP responses held in memory.', [{ value: cache.responses }]),
        gauge('kakuin_ocsp_responder_not_after_seconds', 'When each delegated OCSP responder certificate expires (Unix time).',
          issuers.map((i) => ({ labels: { issuer: i.issuerId }, value: Date.parse(i.responderNotAfter) / 1000 }))),
      );
    }

    const g = sources.gateway;
    if (g) {
      const s = g.stats();
      const ready = g.readiness();
      families.push(
        gauge('kakuin_gateway_open_connections', 'Device TLS connections open now.', [{ value: s.openConnections }]),
        counter('kakuin_gateway_connections_total', 'Device connections by outcome.', [
          { labels: { outcome: 'admitted' }, value: s.admitted }, { labels: { outcome: 'refused' }, value: s.refused },
          { labels: { outcome: 'closed_by_status_change' }, value: s.closedByStatusChange },
        ]),
        gauge('kakuin_gateway_pending_handshakes', 'TLS handshakes in flight now, across all device listeners.', [{ value: s.pendingHandshakes }]),
        counter('kakuin_gateway_shed_connections_total', 'New device connections closed before their TLS handshake (reconnect storm bounds).', [
          { labels: { reason: 'handshakes' }, value: s.shed.handshakes }, { labels: { reason: 'source_rate' }, value: s.shed.sourceRate },
        ]),
        gauge('kakuin_gateway_shedding', '1 while the gateway shed new connections in the last 5 s.', [{ value: s.shedding ? 1 : 0 }]),
        gauge('kakuin_gateway_ready', '1 while the gateway can confirm revocation status (it fails closed otherwise).', [{ value: ready.ready ? 1 : 0 }]),
      );
      // gateway.workers > 1: the figures above are summed over the workers (gateway-auth/cluster/primary.ts).
      if (s.workers !== undefined) {
        families.push(
          gauge('kakuin_gateway_workers', 'Gateway worker processes by state (gateway.workers).', [
            { labels: { state: 'configured' }, value: s.workers.configured }, { labels: { state: 'live' }, value: s.workers.live },
            { labels: { state: 'ready' }, value: ready.workers?.ready ?? 0 },
          ]),
          counter('kakuin_gateway_worker_restarts_total', 'Gateway worker processes started again after one exited.', [{ value: s.workers.restarts }]),
        );
      }
    }

    const e = sources.enrollment;
    if (e) {
      const o = e.outcomes;
      families.push(
        counter('kakuin_enrollments_total', 'Enrollment requests (REST, batch items, EST) by outcome.', [
          { labels: { outcome: 'issued' }, value: o.issued }, { labels: { outcome: 'existing' }, value: o.existing },
          ...[...o.refused].sort(([a], [b]) => a.localeCompare(b)).map(([code, value]) => ({ labels: { outcome: 'refused', code }, value })),
        ]),
      );
    }
    return families;
  };
}

/** The CAs a process with the CA loaded knows: root, device CAs in service, infrastructure, station. */
export function caCertificatesOf(kakuin: Kakuin): () => { issuerId: string; der: Buffer }[] {
  const { hierarchy } = kakuin;
  const all = [hierarchy.root, hierarchy.device, ...kakuin.previousDeviceCas, hierarchy.infrastructure, ...(hierarchy.station ? [hierarchy.station] : [])];
  return () => all.map((i) => ({ issuerId: i.id, der: i.record.certificateDer }));
}
