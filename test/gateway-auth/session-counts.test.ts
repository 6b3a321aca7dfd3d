/** SessionTable (gateway-auth/session-counts.ts): the per-certificate open-session counts a clone rule asks. */
import { expect } from 'chai';
import { SessionTable } from '../../gateway-auth/index.js';

describe('gateway-auth: per-certificate session counts', () => {
  it('groups one certificate\'s sessions by source address and worker, and forgets closed ones', () => {
    const t = new SessionTable();
    t.openOn(1, '7:1', { certKey: 'device/0A', remoteAddress: '192.0.2.1' });
    t.openOn(2, '8:1', { certKey: 'device/0A', remoteAddress: '198.51.100.7' });
    t.openOn(2, '8:2', { certKey: 'device/0A', remoteAddress: '198.51.100.7' });
    t.openOn(1, '7:2', { certKey: 'device/0B', remoteAddress: '192.0.2.1' });
    expect(t.sessionsOf('device/0A')).to.deep.equal({
      certKey: 'device/0A', open: 3,
      sources: [{ address: '198.51.100.7', sessions: 2, workers: [2] }, { address: '192.0.2.1', sessions: 1, workers: [1] }],
    });
    expect(t.certificatesWithAtLeast(2)).to.deep.equal(['device/0A']);
    expect(t.openSessions()).to.equal(4);
    t.close('8:1');
    t.close('8:1');
    expect(t.sessionsOf('device/0A').open).to.equal(2);
    expect(t.sessionsOf('device/0C')).to.deep.equal({ certKey: 'device/0C', open: 0, sources: [] });
  });

  it('drops every session of a worker that exited, and no other', () => {
    const t = new SessionTable();
    t.openOn(1, '3:1', { certKey: 'device/0A', remoteAddress: '192.0.2.1' });
    t.openOn(2, '4:1', { certKey: 'device/0A', remoteAddress: '192.0.2.2' });
    t.openOn(1, '3:2', { certKey: 'device/0B', remoteAddress: undefined });
    expect(t.dropPrefix('3:')).to.equal(2);
    expect(t.sessionsOf('device/0A').sources).to.deep.equal([{ address: '192.0.2.2', sessions: 1, workers: [2] }]);
    expect(t.sessionsOf('device/0B').open).to.equal(0);
  });

  it('counts in process (worker 0) through the reporter methods the gateway calls', () => {
    const t = new SessionTable();
    t.opened({ id: '1', certKey: 'device/0A', deviceId: 'd', remoteAddress: '::1', frontEnd: 'mqtt' });
    expect(t.sessionsOf('device/0A').sources).to.deep.equal([{ address: '::1', sessions: 1, workers: [0] }]);
    t.closed('1');
    expect(t.openSessions()).to.equal(0);
  });
});
