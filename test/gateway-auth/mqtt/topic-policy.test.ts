/** The topic policy: MQTT filter matching, subset semantics for SUBSCRIBE, templates and denied roots. */
import { expect } from 'chai';
import {
  DeviceTopicPolicy, filterIsSubset, parseTopicTemplate, stripShare, topicMatches,
} from '../../../gateway-auth/mqtt/topic-policy.js';
import { hasCode } from '../../../errors/index.js';

const values = { deviceId: 'd1', manufacturerId: 'm7', serialNumber: 'SN-1' };
const policy = (pub: string[], sub: string[] = pub, v = values) =>
  new DeviceTopicPolicy(pub.map((t, i) => parseTopicTemplate(t, `p${i}`)), sub.map((t, i) => parseTopicTemplate(t, `s${i}`)), v);

describe('gateway-auth/mqtt: topic policy', function () {
  it('matches topics with + and # as MQTT §4.7 says, # including its parent level', function () {
    expect(topicMatches('devices/d1/#', 'devices/d1')).to.equal(true);
    expect(topicMatches('devices/d1/#', 'devices/d1/a/b')).to.equal(true);
    expect(topicMatches('devices/+/temp', 'devices/d2/temp')).to.equal(true);
    expect(topicMatches('devices/+/temp', 'devices/d2/temp/x')).to.equal(false);
    expect(topicMatches('devices/d1/#', 'devices/d10/a')).to.equal(false);
    expect(topicMatches('#', '$SYS/broker')).to.equal(false);
    expect(topicMatches('+/broker', '$SYS/broker')).to.equal(false);
  });

  it('a SUBSCRIBE filter is allowed only when every topic it matches is allowed (subset)', function () {
    const allowed = 'devices/d1/#';
    for (const f of ['devices/d1', 'devices/d1/#', 'devices/d1/+', 'devices/d1/+/x', 'devices/d1/a/#']) {
      expect(filterIsSubset(f, allowed), f).to.equal(true);
    }
    for (const f of ['devices/#', 'devices/+/x', '#', '+/d1/x', 'devices/d1x/#', 'devices']) {
      expect(filterIsSubset(f, allowed), f).to.equal(false);
    }
    expect(filterIsSubset('a/+/c', 'a/+/c')).to.equal(true);
    expect(filterIsSubset('a/b/c', 'a/+/c')).to.equal(true);
    expect(filterIsSubset('a/#', 'a/+')).to.equal(false);
    expect(filterIsSubset('a/+', 'a/b')).to.equal(false);
    expect(filterIsSubset('a/b', 'a/+/#')).to.equal(true);
    expect(filterIsSubset('$SYS/#', '#')).to.equal(false);
  });

  it('fills in {deviceId}, {manufacturerId} and {serialNumber}, per direction', function () {
    const p = policy(['devices/{deviceId}/#', 'fleet/{manufacturerId}/{serialNumber}/up'], ['devices/{deviceId}/cmd/+']);
    expect(p.publish).to.deep.equal(['devices/d1/#', 'fleet/m7/SN-1/up']);
    expect(p.mayPublish('fleet/m7/SN-1/up')).to.equal(true);
    expect(p.mayPublish('fleet/m7/SN-2/up')).to.equal(false);
    expect(p.maySubscribe('devices/d1/cmd/reboot')).to.equal(true);
    expect(p.maySubscribe('devices/d1/#')).to.equal(false);
  });

  it('a placeholder value with /, + or # grants nothing instead of widening the filter', function () {
    const p = policy(['fleet/{serialNumber}/up'], undefined, { ...values, serialNumber: 'a/+' });
    expect(p.publish).to.deep.equal([]);
    expect(p.mayPublish('fleet/a/b/up')).to.equal(false);
  });

  it('refuses $SYS/ and $CONTROL/ whatever the templates, topics with wildcards, and strips $share/<group>/', function () {
    const p = policy(['devices/{deviceId}/#', '#']);
    expect(p.mayPublish('$SYS/broker/x')).to.equal(false);
    expect(p.mayPublish('$CONTROL/dynamic-security/v1')).to.equal(false);
    expect(p.maySubscribe('$SYS/#')).to.equal(false);
    expect(p.maySubscribe('$CONTROL/#')).to.equal(false);
    expect(p.mayPublish('devices/d1/+')).to.equal(false);
    expect(p.mayPublish('')).to.equal(false);
    const own = policy(['devices/{deviceId}/#']);
    expect(own.maySubscribe('$share/g/devices/d1/#')).to.equal(true);
    expect(own.maySubscribe('$share/g/devices/#')).to.equal(false);
    expect(own.maySubscribe('$share/g')).to.equal(false);
    expect(stripShare('$share/g/a/b')).to.equal('a/b');
    expect(stripShare('$share//a')).to.equal(undefined);
  });

  it('refuses bad templates at start with KAKUIN_E_CONFIG', function () {
    for (const t of ['', 'devices/{deviceName}/#', 'devices/#/x', 'devices/a+/x', '$SYS/#', 'devices/{deviceId', '$share/g/x']) {
      expect(() => parseTopicTemplate(t, 'f'), t).to.throw().that.satisfies((e: unknown) => hasCode(e, 'KAKUIN_E_CONFIG'));
    }
  });
});
