/**
 * Shared session-ticket keys (gateway-auth/ticket-keys.ts) between two gateways in this process,
 * as two cluster workers hold them: `openssl s_client -sess_out` on one, `-sess_in` on the other.
 */
import path from 'node:path';
import { expect } from 'chai';
import { newTicketKey, type TicketKeys } from '../../gateway-auth/index.js';
import { startGateway, type RunningGateway } from './harness.js';
import { httpStatusOf, sClient } from './peers.js';
import { createGatewayPki, type GatewayPki, type TestDevice } from './pki.js';

describe('gateway-auth: shared and rotated session-ticket keys', function () {
  this.timeout(60_000);
  let pki: GatewayPki;
  let a: RunningGateway;
  let b: RunningGateway;
  let alone: RunningGateway;
  let d: TestDevice;
  let keys: TicketKeys;

  before(async () => {
    pki = await createGatewayPki();
    d = await pki.newDevice();
    keys = { current: newTicketKey() };
    const sink = { record: async () => {} };
    a = await startGateway(pki, { telemetry: { sink }, ticketKeys: keys, workerId: 1 });
    b = await startGateway(pki, { telemetry: { sink }, ticketKeys: keys, workerId: 2 });
    alone = await startGateway(pki, { telemetry: { sink } });
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close(), alone?.close()]);
    await pki?.cleanup();
  });

  const client = (gw: RunningGateway, extra: { version: '1.2' | '1.3'; sessOut?: string; sessIn?: string }) =>
    sClient(gw.port, { certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem'), ...extra });

  for (const version of ['1.2', '1.3'] as const) {
    it(`resumes on gateway B a TLS ${version} session made on gateway A; a gateway with its own key does not`, async () => {
      const sess = path.join(pki.dir, `shared-${version}.pem`);
      const first = await client(a, { version, sessOut: sess });
      expect(httpStatusOf(first.stdout), first.stdout).to.equal(200);
      expect(first.stdout).to.match(/^New,/m);
      const onB = await client(b, { version, sessIn: sess });
      expect(onB.stdout, onB.stdout).to.match(/^Reused,/m);
      expect(httpStatusOf(onB.stdout), 'a resumed session is admitted').to.equal(200);
      const elsewhere = await client(alone, { version, sessIn: sess });
      expect(elsewhere.stdout).to.match(/^New,/m);
      expect(httpStatusOf(elsewhere.stdout)).to.equal(200);
    });
  }

  it('keeps opening tickets of the previous key for one rotation, then makes a full handshake', async () => {
    const sess = path.join(pki.dir, 'rotated.pem');
    expect(httpStatusOf((await client(a, { version: '1.3', sessOut: sess })).stdout)).to.equal(200);
    keys = { current: newTicketKey(), previous: keys.current };
    a.gateway.setTicketKeys(keys);
    b.gateway.setTicketKeys(keys);
    const afterOne = await client(b, { version: '1.3', sessIn: sess });
    expect(afterOne.stdout, afterOne.stdout).to.match(/^Reused,/m);
    keys = { current: newTicketKey(), previous: keys.current };
    a.gateway.setTicketKeys(keys);
    b.gateway.setTicketKeys(keys);
    const afterTwo = await client(b, { version: '1.3', sessIn: sess });
    expect(afterTwo.stdout).to.match(/^New,/m);
    expect(httpStatusOf(afterTwo.stdout), 'still admitted after a full handshake').to.equal(200);
  });

  it('refuses a ticket key that is not 48 bytes (KAKUIN_E_CONFIG at build; TypeError on rotation)', async () => {
    expect(() => a.gateway.setTicketKeys({ current: Buffer.alloc(32) })).to.throw(TypeError, /48 bytes/);
    await startGateway(pki, { telemetry: { sink: { record: async () => {} } }, ticketKeys: { current: Buffer.alloc(16) } })
      .then(() => expect.fail('built'), (e: { code?: string }) => expect(e.code).to.equal('KAKUIN_E_CONFIG'));
  });
});
