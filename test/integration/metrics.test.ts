/**
 * GET /metrics (Prometheus text format, admin only) of a running kakuin: every line well formed,
 * and the counters move with what the test does (enrollments by outcome, OCSP answers); the CA
 * expiry gauge agrees with `openssl x509 -enddate`.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderPrometheus } from '../../management-api/prometheus.js';
import { metricsCollector } from '../../cli/metrics.js';
import type { Registry } from '../../registry/port.js';
import { makeTempDir, opensslAsync } from '../support/index.js';
import { request, startTestService, type TestService } from '../support/service.js';
import { apiAs, newFactory, opensslCsr } from '../enrollment/support.js';

const PORTS = { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0' };
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/;

/** name{labels} → value; throws on any line that is not a comment or a well-formed sample. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const t = /^# TYPE (\S+) (counter|gauge)$/.exec(line);
    if (t) {
      typed.add(t[1]);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    expect(typed.has(m[1]), `${m[1]} has a # TYPE line before its samples`).to.equal(true);
    samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return samples;
}

describe('GET /metrics', function () {
  this.timeout(60_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService({ env: PORTS });
  });
  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  const scrape = async () => {
    const r = await request(svc.url, svc.rootPem, 'GET', '/metrics', { token: svc.adminToken });
    expect(r.status, r.text).to.equal(200);
    expect(String(r.headers['content-type'])).to.match(/^text\/plain; ?version=0\.0\.4/);
    return parse(r.text);
  };

  it('is for admins only', async () => {
    expect((await request(svc.url, svc.rootPem, 'GET', '/metrics')).status).to.equal(401);
    const f = await newFactory(svc, 'Metrics Station Co');
    expect((await apiAs(svc, f.apiKey)('GET', '/metrics')).status).to.equal(403);
  });

  it('counts enrollments by outcome and OCSP answers by source; CA expiry matches openssl', async () => {
    const before = await scrape();
    const f = await newFactory(svc, 'Metrics Factory');
    const station = apiAs(svc, f.apiKey);
    expect((await station('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'MET-1' }] })).status).to.equal(201);
    const { csrPem } = opensslCsr(tmp.dir, 'met1', '/serialNumber=MET-1');
    const issued = await station('POST', '/api/v1/enroll', { body: { serialNumber: 'MET-1', csr: csrPem } });
    expect(issued.status, issued.text).to.equal(201);
    expect((await station('POST', '/api/v1/enroll', { body: { serialNumber: 'MET-1', csr: csrPem } })).status).to.equal(200);
    expect((await station('POST', '/api/v1/enroll', { body: { serialNumber: 'NOT-THERE', csr: csrPem } })).status).to.equal(403);

    const certFile = path.join(tmp.dir, 'met1.pem');
    writeFileSync(certFile, issued.json.certificate);
    const ocsp = await opensslAsync(['ocsp', '-issuer', path.join(svc.dataDir, 'ca', 'device.pem'), '-cert', certFile,
      '-url', `${svc.service.httpUrl}/ocsp`, '-noverify', '-timeout', '10']);
    expect(ocsp.stdout).to.include(`${certFile}: good`);

    const after = await scrape();
    const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
    expect(delta('kakuin_enrollments_total{outcome="issued"}')).to.equal(1);
    expect(delta('kakuin_device_certificates_issued_total')).to.equal(1);
    expect(delta('kakuin_enrollments_total{outcome="existing"}')).to.equal(1);
    expect(delta('kakuin_enrollments_total{outcome="refused",code="KAKUIN_E_DEVICE_NOT_REGISTERED"}')).to.equal(1);
    const answered = ['presigned', 'live_cached', 'live_signed'].reduce((n, s) => n + delta(`kakuin_ocsp_responses_total{source="${s}"}`), 0);
    expect(answered).to.equal(1);
    expect(after.get('kakuin_registry_feed_seq')).to.be.greaterThan(before.get('kakuin_registry_feed_seq') ?? -1);
    expect(after.get('kakuin_gateway_ready')).to.equal(1);
    expect(after.get('kakuin_gateway_open_connections')).to.equal(0);
    expect(after.get('process_resident_memory_bytes')).to.be.greaterThan(10_000_000);
    const keyExpiry = after.get(`kakuin_station_key_expires_seconds{station="${f.stationId}",manufacturer="Metrics Factory",name="line-1"}`);
    expect(keyExpiry! - Date.now() / 1000).to.be.within(364.9 * 86_400, 365 * 86_400);
    for (const issuer of ['root', 'device', 'infrastructure', 'station']) {
      expect(after.get(`kakuin_ocsp_responder_not_after_seconds{issuer="${issuer}"}`), issuer).to.be.greaterThan(Date.now() / 1000);
    }
    const end = (await opensslAsync(['x509', '-in', path.join(svc.dataDir, 'ca', 'root.pem'), '-noout', '-enddate'])).stdout.trim().replace(/^notAfter=/, '');
    expect(after.get('kakuin_ca_certificate_not_after_seconds{issuer="root"}')).to.equal(Date.parse(end) / 1000);
  });

  it('a scrape while the registry is unreachable still answers, with kakuin_metrics_registry_up 0', async () => {
    const down = async () => { throw new Error('registry unavailable'); };
    const registry = { latestFeedSeq: down, listManufacturers: down, listStations: down } as unknown as Registry;
    const collect = metricsCollector({ registry, caCertificates: () => [], stationKeyExpiresAt: () => new Date(), issuedCount: () => 7 });
    const samples = parse(renderPrometheus(await collect()));
    expect(samples.get('kakuin_metrics_registry_up')).to.equal(0);
    expect(samples.has('kakuin_registry_feed_seq')).to.equal(false);
    expect(samples.get('kakuin_device_certificates_issued_total')).to.equal(7);
    expect((await scrape()).get('kakuin_metrics_registry_up')).to.equal(1);
  });

  it('renders the text format: escaped label values, NaN, and refuses bad names', () => {
    const text = renderPrometheus([{ name: 'x_total', help: 'a\\b', type: 'counter', samples: [{ labels: { code: 'a"b\\c\nd' }, value: 2 }, { value: Number.NaN }] }]);
    expect(text).to.equal('# HELP x_total a\\\\b\n# TYPE x_total counter\nx_total{code="a\\"b\\\\c\\nd"} 2\nx_total NaN\n');
    expect(() => parse(text)).to.not.throw();
    expect(() => renderPrometheus([{ name: 'bad-name', help: '', type: 'gauge', samples: [] }])).to.throw(RangeError);
    expect(() => renderPrometheus([{ name: 'ok', help: '', type: 'gauge', samples: [{ labels: { 'bad-label': 'v' }, value: 1 }] }])).to.throw(RangeError);
  });
});
