/**
 * Detection templates and detections in the management API, over real HTTPS against an
 * in-process `kakuin serve` (SQLite): the shipped templates, versions on PUT, bad bodies refused
 * with their field, detections listed with filters and paging, acknowledged and resolved by an
 * operator (not an auditor), a device suspended by a rule naming its detection, and resuming it
 * resolving that detection with the note. Findings are handed to the service's own responder as
 * the engine would hand them.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Finding } from '../../operations/detections/engine.js';
import { opensslOk } from '../support/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';

describe('management API: detection templates and detections', function () {
  this.timeout(60_000);
  let svc: TestService;
  let operator: string;
  let auditor: string;
  const deviceIds: string[] = [];

  const call = (token: string, method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc.url, svc.rootPem, method, p, { token, ...options });
  const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}) => call(svc.adminToken, method, p, options);

  async function detect(deviceId: string, f: Partial<Finding> = {}): Promise<void> {
    const d = svc.service.detections!;
    d.responder.accept({
      deviceId, rule: 'rate', templateId: 'home', templateVersion: 1, action: 'record', at: new Date(), summary: '61 messages in 600 s (at most 30)',
      evidence: { messagesInWindow: 61 }, ...f,
    });
    await d.responder.idle();
  }

  before(async () => {
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0' } });
    const manufacturerId = (await api('POST', '/api/v1/manufacturers', { body: { name: 'Detection Meters' } })).json.id;
    for (let i = 0; i < 3; i++) deviceIds.push((await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber: `DET-${i}` } })).json.id);
    operator = (await api('POST', '/api/v1/tokens', { body: { name: 'ops', role: 'operator' } })).json.token;
    auditor = (await api('POST', '/api/v1/tokens', { body: { name: 'audit', role: 'auditor' } })).json.token;
  });

  after(async () => {
    await svc?.stop();
  });

  it('lists the four shipped templates at version 1, assigned to nothing', async () => {
    const r = await call(auditor, 'GET', '/api/v1/detection-templates');
    expect(r.status, r.text).to.equal(200);
    expect(r.json.templates.map((t: { id: string; version: number }) => `${t.id}@${t.version}`)).to.deep.equal(['camera@1', 'home@1', 'school@1', 'vehicle@1']);
    const vehicle = (await call(operator, 'GET', '/api/v1/detection-templates/vehicle')).json;
    expect(vehicle.rules.silence).to.deep.equal({ expectedIntervalSeconds: 60, silenceLimitSeconds: 21600, action: 'alert' });
    expect(vehicle.createdBy).to.equal('system');
  });

  it('creates a template (201), refuses the same id again (409), and PUT makes version 2 keeping version 1', async () => {
    const body = { id: 'meters-eu', assignedTo: { profiles: ['device'] }, rules: { authBurst: { maxAttempts: 10, perSeconds: 60, action: 'alert' } } };
    const created = await api('POST', '/api/v1/detection-templates', { body });
    expect(created.status, created.text).to.equal(201);
    expect(created.json).to.include({ id: 'meters-eu', version: 1, createdBy: 'token:bootstrap' });
    expect(created.json.assignedTo).to.deep.equal({ manufacturerIds: [], profiles: ['device'], commonAuthIds: [] });
    const again = await api('POST', '/api/v1/detection-templates', { body });
    expect(again.status).to.equal(409);
    expect(again.json.code).to.equal('KAKUIN_E_DETECTION_TEMPLATE_EXISTS');
    const put = await api('PUT', '/api/v1/detection-templates/meters-eu', { body: { rules: { authBurst: { maxAttempts: 20, perSeconds: 60, action: 'suspend' } } } });
    expect(put.status, put.text).to.equal(200);
    expect(put.json.version).to.equal(2);
    expect((await api('GET', '/api/v1/detection-templates/meters-eu?version=1')).json.rules.authBurst.maxAttempts).to.equal(10);
    expect((await api('GET', '/api/v1/detection-templates/meters-eu')).json.rules.authBurst.maxAttempts).to.equal(20);
    const missing = await api('PUT', '/api/v1/detection-templates/nope', { body: { rules: { firmwareDowngrade: { action: 'alert' } } } });
    expect(missing.status).to.equal(404);
    expect(missing.json.code).to.equal('KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND');
  });

  it('refuses bad template bodies with a clear code and field, writing nothing', async () => {
    for (const [rules, field] of [
      [{ firmwareDowngrade: { action: 'revoke' } }, 'rules.firmwareDowngrade.action'],
      [{ networks: { allowed: ['300.1.2.3/8'], action: 'alert' } }, 'rules.networks.allowed.0'],
      [{ usualHours: { timeZone: 'Europe/Atlantis', from: '06:00', to: '22:00', action: 'alert' } }, 'rules.usualHours.timeZone'],
    ] as const) {
      const r = await api('POST', '/api/v1/detection-templates', { body: { id: 'bad', rules } });
      expect(r.status, r.text).to.equal(400);
      expect(r.json.field, r.text).to.equal(field);
    }
    const unknown = await api('POST', '/api/v1/detection-templates', { body: { id: 'bad', rules: {}, colour: 'red' } });
    expect(unknown.status).to.equal(400);
    expect((await api('GET', '/api/v1/detection-templates/bad')).status).to.equal(404);
  });

  it('lets only an admin write templates; operators and auditors read them', async () => {
    const body = { id: 'ops-made', rules: { firmwareDowngrade: { action: 'alert' } } };
    expect((await call(operator, 'POST', '/api/v1/detection-templates', { body })).status).to.equal(403);
    expect((await call(auditor, 'PUT', '/api/v1/detection-templates/home', { body })).status).to.equal(403);
    expect((await call(auditor, 'GET', '/api/v1/detection-templates/home')).status).to.equal(200);
  });

  it('lists detections newest first with filters and paging; an operator acknowledges and resolves, an auditor may not', async () => {
    await detect(deviceIds[0], { rule: 'silence', summary: 'silent', evidence: { silentSeconds: 99 } });
    await detect(deviceIds[0]);
    await detect(deviceIds[1]);
    const all = await call(auditor, 'GET', '/api/v1/detections?limit=2');
    expect(all.status, all.text).to.equal(200);
    expect(all.json.detections).to.have.length(2);
    const rest = await call(auditor, 'GET', `/api/v1/detections?limit=2&after=${all.json.next}`);
    expect(rest.json.detections).to.have.length(1);
    expect(rest.json.next).to.equal(undefined);
    const mine = (await call(operator, 'GET', `/api/v1/detections?deviceId=${deviceIds[0]}&rule=silence`)).json.detections;
    expect(mine).to.have.length(1);
    expect(mine[0]).to.include({ state: 'open', outcome: 'recorded', templateId: 'home', templateVersion: 1 });
    expect(mine[0].evidence).to.deep.equal({ silentSeconds: 99 });
    const id = mine[0].id;
    expect((await call(auditor, 'POST', `/api/v1/detections/${id}/acknowledge`)).status).to.equal(403);
    const ack = await call(operator, 'POST', `/api/v1/detections/${id}/acknowledge`, { body: { note: 'looking at it' } });
    expect(ack.status, ack.text).to.equal(200);
    expect(ack.json).to.include({ state: 'acknowledged', acknowledgedBy: 'token:ops', acknowledgeNote: 'looking at it' });
    const res = await call(operator, 'POST', `/api/v1/detections/${id}/resolve`, { body: { note: 'router reboot' } });
    expect(res.json).to.include({ state: 'resolved', resolveNote: 'router reboot' });
    const twice = await call(operator, 'POST', `/api/v1/detections/${id}/acknowledge`);
    expect(twice.status).to.equal(409);
    expect(twice.json.code).to.equal('KAKUIN_E_DETECTION_STATE');
    expect((await call(operator, 'GET', '/api/v1/detections/det_nope')).json.code).to.equal('KAKUIN_E_DETECTION_NOT_FOUND');
    expect((await call(operator, 'GET', '/api/v1/detections?state=closed')).status).to.equal(400);
    expect((await call(operator, 'GET', '/api/v1/detections?state=resolved')).json.detections.map((d: { id: string }) => d.id)).to.deep.equal([id]);
  });

  it('shows which detection suspended a device, and resuming it with a note resolves that detection', async () => {
    const deviceId = deviceIds[2];
    await detect(deviceId, { action: 'suspend', rule: 'networks', summary: 'connected from 203.0.113.5, outside its allowed networks' });
    const device = await call(operator, 'GET', `/api/v1/devices/${deviceId}`);
    expect(device.json.status).to.equal('suspended');
    const det = (await call(operator, 'GET', `/api/v1/detections?deviceId=${deviceId}`)).json.detections[0];
    expect(det).to.include({ outcome: 'suspended', action: 'suspend' });
    expect(device.json.statusReason).to.deep.equal({ detectionId: det.id, rule: 'networks', templateId: 'home', templateVersion: 1, summary: det.summary });
    const events = (await api('GET', `/api/v1/audit-events?deviceId=${deviceId}&type=device.suspended`)).json.events;
    expect(events[0]).to.include({ actor: `detection:${det.id}` });
    const resumed = await call(operator, 'POST', `/api/v1/devices/${deviceId}/resume`, { body: { note: 'customer moved house' } });
    expect(resumed.status, resumed.text).to.equal(200);
    expect(resumed.json.resolvedDetections).to.deep.equal([det.id]);
    const after = (await call(operator, 'GET', `/api/v1/detections/${det.id}`)).json;
    expect(after).to.include({ state: 'resolved', resolvedBy: 'token:ops', resolveNote: 'customer moved house' });
    expect((await call(operator, 'GET', `/api/v1/devices/${deviceId}`)).json.statusReason).to.equal(undefined);
  });

  it('as kakuin serve wires it: a device enrolled through the API and sending beyond its template over the gateway is suspended and cut off', async () => {
    const mfr = (await api('POST', '/api/v1/manufacturers', { body: { name: 'Detection Wiring' } })).json.id;
    const put = await api('PUT', '/api/v1/detection-templates/home', {
      body: { assignedTo: { manufacturerIds: [mfr] }, rules: { rate: { maxMessages: 3, perSeconds: 60, action: 'suspend' } } },
    });
    expect(put.status, put.text).to.equal(200);
    const dev = (await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: 'DETW-1' } })).json.id;
    const dir = svc.dataDir;
    const key = path.join(dir, 'detw.key');
    const csr = path.join(dir, 'detw.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/serialNumber=DETW-1', '-out', csr]);
    const issued = await api('POST', `/api/v1/devices/${dev}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    const cert = path.join(dir, 'detw.pem');
    const root = path.join(dir, 'detw-root.pem');
    writeFileSync(cert, issued.json.certificate);
    writeFileSync(root, svc.rootPem);
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) {
      codes.push(await curlStatus(['--cert', cert, '--key', key, '--cacert', root, '-H', 'Content-Type: application/json', '--data', '{"t":1}', `${svc.service.gatewayUrl}/v1/telemetry`]));
      await svc.service.detections!.responder.idle();
    }
    // Messages 1 to 3 are within the limit; the 4th fires the rule; from then on no HTTP response at all.
    expect(codes.slice(0, 3).every((c) => c === 200 || c === 202), String(codes)).to.equal(true);
    expect(codes.at(-1), String(codes)).to.equal(0);
    const device = (await call(operator, 'GET', `/api/v1/devices/${dev}`)).json;
    expect(device.status).to.equal('suspended');
    expect(device.statusReason).to.include({ rule: 'rate', templateId: 'home', templateVersion: put.json.version });
  });
});

/** curl's HTTP status (0: no HTTP response), without blocking the event loop (the gateway runs in this process). */
function curlStatus(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', ...args]);
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.resume();
    child.on('close', () => resolve(Number(out.trim()) || 0));
  });
}
