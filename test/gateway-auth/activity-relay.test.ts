/** gateway-auth/cluster/activity-relay.ts: a worker's recorder calls reach the primary's recorder in order, traffic summed per batch. */
import { expect } from 'chai';
import type { ActivityRecorder } from '../../gateway-auth/activity-recorder.js';
import { relayingRecorder, replayActivity, type ActivityCall } from '../../gateway-auth/cluster/activity-relay.js';

function recording(): { calls: unknown[][]; recorder: ActivityRecorder } {
  const calls: unknown[][] = [];
  const rec = (name: string) => (...args: unknown[]) => { calls.push([name, ...args]); };
  return {
    calls,
    recorder: {
      admitted: rec('admitted'), refused: rec('refused'), closed: rec('closed'), traffic: rec('traffic'), tokenResult: rec('tokenResult'), firmware: rec('firmware'),
    },
  };
}

describe('gateway cluster: device activity relayed from a worker to the primary', () => {
  it('sends each call once, in order, through JSON, with one device\'s traffic in a batch summed', () => {
    const sent: string[] = [];
    const relay = relayingRecorder((calls) => sent.push(JSON.stringify(calls)));
    relay.admitted('d1', '192.0.2.1', 'http');
    relay.traffic('d1', 1, 10);
    relay.traffic('d2', 1, 5);
    relay.traffic('d1', 2, 20);
    relay.firmware('d1', '1.2.3', 'mqtt');
    relay.refused(undefined, 'certificate revoked', '192.0.2.9', 'tcp');
    relay.tokenResult('d3', false, '192.0.2.3');
    relay.closed('d1', '192.0.2.1', 'http');
    expect(sent).to.have.length(0);
    relay.flush();
    expect(sent).to.have.length(1);
    const primary = recording();
    replayActivity(primary.recorder, JSON.parse(sent[0]) as ActivityCall[]);
    expect(primary.calls).to.deep.equal([
      ['admitted', 'd1', '192.0.2.1', 'http'],
      ['traffic', 'd1', 3, 30],
      ['traffic', 'd2', 1, 5],
      ['firmware', 'd1', '1.2.3', 'mqtt'],
      ['refused', null, 'certificate revoked', '192.0.2.9', 'tcp'],
      ['tokenResult', 'd3', false, '192.0.2.3'],
      ['closed', 'd1', '192.0.2.1', 'http'],
    ]);
    relay.flush();
    expect(sent, 'nothing new: nothing sent').to.have.length(1);
  });

  it('sends a batch on its own after a short wait', async () => {
    const sent: ActivityCall[][] = [];
    const relay = relayingRecorder((calls) => sent.push(calls));
    relay.traffic('d1', 1, 1);
    await new Promise((r) => setTimeout(r, 400));
    expect(sent).to.deep.equal([[['traffic', 'd1', 1, 1]]]);
    relay.stop();
  });

  it('skips what is not a recorder call, without throwing', () => {
    const primary = recording();
    replayActivity(primary.recorder, 'not a list');
    replayActivity(primary.recorder, [null, 7, ['no-such-method', 'd1'], ['closed', 'd1', undefined, 'http']]);
    expect(primary.calls).to.deep.equal([['closed', 'd1', undefined, 'http']]);
  });
});
