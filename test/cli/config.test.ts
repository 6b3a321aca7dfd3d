import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../cli/config.js';
import { makeTempDir } from '../support/index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('configuration', () => {
  let tmp: { dir: string; cleanup: () => void };
  beforeEach(() => { tmp = makeTempDir(); });
  afterEach(() => tmp.cleanup());

  it('has defaults that put everything under ./data and the URLs on the OCSP port', () => {
    const c = loadConfig({}, tmp.dir);
    expect(c.dataDir).to.equal(path.join(tmp.dir, 'data'));
    expect(c.api.port).to.equal(8443);
    expect(c.publicHttpUrl).to.equal('http://localhost:8080');
    expect(c.storage).to.deep.include({ type: 'sqlite', synchronous: 'NORMAL', path: path.join(tmp.dir, 'data', 'kakuin.db') });
    expect(c.bindHost).to.equal('127.0.0.1');
  });

  it('takes ports and URLs from the environment, and derives the public URL from KAKUIN_OCSP_PORT', () => {
    const c = loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_API_PORT: '18443', KAKUIN_OCSP_PORT: '18080', KAKUIN_TLS_HOSTNAMES: 'pki.example, 10.0.0.5' }, '/');
    expect(c.api.port).to.equal(18443);
    expect(c.publicHttpUrl).to.equal('http://localhost:18080');
    expect(c.tls.hostnames).to.deep.equal(['pki.example', '10.0.0.5']);
    const d = loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_PUBLIC_HTTP_URL: 'http://pki.example/' }, '/');
    expect(d.publicHttpUrl).to.equal('http://pki.example');
  });

  it('reads the config file in the data directory, with the environment on top', () => {
    writeFileSync(path.join(tmp.dir, 'kakuin.json'), JSON.stringify({ api: { port: 9000 }, ca: { device: { validityDays: 'no-well-defined-expiration' } } }));
    const c = loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/');
    expect(c.api.port).to.equal(9000);
    expect(c.ca.device.validityDays).to.equal('no-well-defined-expiration');
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_API_PORT: '9001' }, '/').api.port).to.equal(9001);
  });

  it('refuses unknown keys, bad values and https public URLs with KAKUIN_E_CONFIG', () => {
    const file = path.join(tmp.dir, 'c.json');
    for (const bad of [{ api: { prot: 1 } }, { api: { port: 70000 } }, { storage: { synchronous: 'OFF' } }, { publicHttpUrl: 'https://x' }, { ca: { rootKeyAlgorithm: 'dsa' } }, [1]]) {
      writeFileSync(file, JSON.stringify(bad));
      expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: file }, '/')), JSON.stringify(bad)).to.equal('KAKUIN_E_CONFIG');
    }
    writeFileSync(file, '{not json');
    expect(codeOf(() => loadConfig({ KAKUIN_CONFIG: file }, tmp.dir))).to.equal('KAKUIN_E_CONFIG');
    expect(codeOf(() => loadConfig({ KAKUIN_API_PORT: 'eighty' }, tmp.dir))).to.equal('KAKUIN_E_CONFIG');
  });

  it('ocsp.validityMinutes (2–20160, default 1440), ocsp.validityHours as a deprecated alias, both set refused', () => {
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/').ocsp.validityMinutes).to.equal(1440);
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/').deprecations).to.deep.equal([]);
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_OCSP_VALIDITY_MINUTES: '2' }, '/').ocsp.validityMinutes).to.equal(2);
    const file = path.join(tmp.dir, 'k.json');
    writeFileSync(file, JSON.stringify({ ocsp: { validityHours: 3 } }));
    const alias = loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: file }, '/');
    expect(alias.ocsp.validityMinutes).to.equal(180);
    expect(alias.deprecations.join()).to.include('ocsp.validityHours');
    expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: file, KAKUIN_OCSP_VALIDITY_MINUTES: '30' }, '/'))).to.equal('KAKUIN_E_CONFIG');
    for (const bad of ['1', '20161']) {
      expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_OCSP_VALIDITY_MINUTES: bad }, '/'))).to.equal('KAKUIN_E_CONFIG');
    }
  });

  it('legacy.burstLimit (default 10) with legacy.deviceFailureLimit as a deprecated alias; legacy.lockMinutes ignored with a warning; backoff bounds checked', () => {
    const plain = loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/');
    expect(plain.legacy).to.deep.include({ burstLimit: 10, backoffBaseMs: 100, backoffMaxMs: 8000 });
    expect(plain.legacy).to.not.have.property('lockMinutes');
    const file = path.join(tmp.dir, 'k.json');
    writeFileSync(file, JSON.stringify({ legacy: { deviceFailureLimit: 25, lockMinutes: 30 } }));
    const old = loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: file }, '/');
    expect(old.legacy.burstLimit).to.equal(25);
    expect(old.deprecations.join('\n')).to.include('legacy.deviceFailureLimit').and.include('legacy.lockMinutes is ignored');
    writeFileSync(file, JSON.stringify({ legacy: { deviceFailureLimit: 25, burstLimit: 20 } }));
    expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: file }, '/'))).to.equal('KAKUIN_E_CONFIG');
    writeFileSync(file, JSON.stringify({ legacy: { backoffBaseMs: 500, backoffMaxMs: 100 } }));
    expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: file }, '/'))).to.equal('KAKUIN_E_CONFIG');
    writeFileSync(file, JSON.stringify({ legacy: { burstLimit: 12, backoffBaseMs: 5, backoffMaxMs: 50 } }));
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: file }, '/').legacy).to.deep.include({ burstLimit: 12, backoffBaseMs: 5, backoffMaxMs: 50 });
  });

  it('ca.device.commonName: none by default, serialNumber or deviceId, per profile too; anything else refused', () => {
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/').ca.device.commonName).to.equal('none');
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_DEVICE_COMMON_NAME: 'deviceId' }, '/').ca.device.commonName).to.equal('deviceId');
    expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_DEVICE_COMMON_NAME: 'cn' }, '/'))).to.equal('KAKUIN_E_CONFIG');
    const file = path.join(tmp.dir, 'k.json');
    writeFileSync(file, JSON.stringify({ ca: { profiles: { cam: { validityDays: 5, commonName: 'serialNumber' } } } }));
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: file }, '/').ca.profiles.cam).to.deep.equal({ validityDays: 5, backdateSeconds: 3600, commonName: 'serialNumber' });
    writeFileSync(file, JSON.stringify({ ca: { profiles: { cam: { validityDays: 5, commonName: 'CN' } } } }));
    expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: file }, '/'))).to.equal('KAKUIN_E_CONFIG');
  });

  it('gateway.routes and gateway.tcp: lists checked field by field (unknown fields, bad prefixes and upstreams refused)', () => {
    const write = (gateway: unknown) => writeFileSync(path.join(tmp.dir, 'kakuin.json'), JSON.stringify({ gateway }));
    write({
      routes: [{ prefix: '/api', upstreamUrl: 'https://api.internal:8443', upstreamCaFile: 'api-ca.pem', bodyLimitBytes: 4096 }, { prefix: '/', upstreamUrl: 'http://127.0.0.1:8000' }],
      tcp: [{ port: 9700, upstream: '127.0.0.1:7000' }],
    });
    const c = loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/');
    expect(c.gateway.routes[0]).to.deep.equal({ prefix: '/api', upstreamUrl: 'https://api.internal:8443', upstreamCaFile: path.join(tmp.dir, 'api-ca.pem'), bodyLimitBytes: 4096 });
    expect(c.gateway.tcp).to.deep.equal([{ port: 9700, upstream: '127.0.0.1:7000' }]);
    expect(loadConfig({ KAKUIN_DATA_DIR: makeTempDir().dir }, '/').gateway.routes).to.deep.equal([]);
    for (const bad of [
      { routes: [{ prefix: '/api', upstreamUrl: 'http://x', stripPrefix: true }] },
      { routes: [{ prefix: 'api', upstreamUrl: 'http://x' }] },
      { routes: [{ prefix: '/api/', upstreamUrl: 'http://x' }] },
      { routes: [{ prefix: '/a', upstreamUrl: 'ftp://x' }] },
      { routes: [{ prefix: '/a', upstreamUrl: 'http://x' }, { prefix: '/a', upstreamUrl: 'http://y' }] },
      { tcp: [{ port: 9700, upstream: '127.0.0.1' }] },
      { tcp: [{ port: 9700, upstream: 'tcp://127.0.0.1:7000' }] },
      { tcp: [{ port: 9700, upstream: '127.0.0.1:7000', tls: true }] },
    ]) {
      write(bad);
      expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/')), JSON.stringify(bad)).to.equal('KAKUIN_E_CONFIG');
    }
  });

  it('gateway storm bounds: maxPendingHandshakes (default 64, env too), perSourceConnectionsPerSecond (default 0 = off) and perSourceBurst; bad values refused', () => {
    const write = (gateway: unknown) => writeFileSync(path.join(tmp.dir, 'kakuin.json'), JSON.stringify({ gateway }));
    const fresh = loadConfig({ KAKUIN_DATA_DIR: makeTempDir().dir }, '/').gateway;
    expect([fresh.maxPendingHandshakes, fresh.perSourceConnectionsPerSecond, fresh.perSourceBurst]).to.deep.equal([64, 0, undefined]);
    write({ maxPendingHandshakes: 200, perSourceConnectionsPerSecond: 5, perSourceBurst: 20 });
    const c = loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/').gateway;
    expect([c.maxPendingHandshakes, c.perSourceConnectionsPerSecond, c.perSourceBurst]).to.deep.equal([200, 5, 20]);
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_GATEWAY_MAX_PENDING_HANDSHAKES: '16' }, '/').gateway.maxPendingHandshakes).to.equal(16);
    for (const bad of [{ maxPendingHandshakes: 0 }, { maxPendingHandshakes: 'many' }, { perSourceConnectionsPerSecond: -1 }, { perSourceBurst: 0 }, { perSourceBurst: 1.5 }]) {
      write(bad);
      expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/')), JSON.stringify(bad)).to.equal('KAKUIN_E_CONFIG');
    }
  });

  it('gateway.workers: one per core by default (os.availableParallelism), KAKUIN_GATEWAY_WORKERS too; 0, fractions and words refused', () => {
    const write = (gateway: unknown) => writeFileSync(path.join(tmp.dir, 'kakuin.json'), JSON.stringify({ gateway }));
    expect(loadConfig({ KAKUIN_DATA_DIR: makeTempDir().dir }, '/').gateway.workers).to.equal(availableParallelism());
    write({ workers: 3 });
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/').gateway.workers).to.equal(3);
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_GATEWAY_WORKERS: '1' }, '/').gateway.workers).to.equal(1);
    for (const bad of [{ workers: 0 }, { workers: 1.5 }, { workers: 'all' }, { workers: 257 }]) {
      write(bad);
      expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/')), JSON.stringify(bad)).to.equal('KAKUIN_E_CONFIG');
    }
  });

  it('events.webhooks and events.syslog: https (http only to loopback), files under the data directory, known event types; anything else refused', () => {
    const write = (events: unknown) => writeFileSync(path.join(tmp.dir, 'kakuin.json'), JSON.stringify({ events }));
    expect(loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/').events).to.deep.equal({ webhooks: [] });
    write({
      webhooks: [
        { url: 'https://soc.example/hook', secretFile: 'secrets/soc', caFile: 'soc-ca.pem', events: ['device.*', 'enrollment.refused'] },
        { url: 'http://127.0.0.1:8099/sim', secretFile: '/etc/kakuin/sim' },
      ],
      syslog: { url: 'tls://siem.example:6514', events: ['*'], hostname: 'pki-1' },
    });
    const c = loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/');
    expect(c.events.webhooks).to.deep.equal([
      { url: 'https://soc.example/hook', secretFile: path.join(tmp.dir, 'secrets/soc'), caFile: path.join(tmp.dir, 'soc-ca.pem'), events: ['device.*', 'enrollment.refused'] },
      { url: 'http://127.0.0.1:8099/sim', secretFile: '/etc/kakuin/sim', events: ['*'] },
    ]);
    expect(c.events.syslog).to.deep.equal({ url: 'tls://siem.example:6514', events: ['*'], hostname: 'pki-1' });
    for (const bad of [
      { webhooks: [{ url: 'http://soc.example/hook', secretFile: 's' }] },
      { webhooks: [{ url: 'https://soc.example/hook' }] },
      { webhooks: [{ url: 'https://soc.example/hook', secretFile: 's', events: ['device.revokd'] }] },
      { webhooks: [{ url: 'https://soc.example/hook', secretFile: 's', events: [] }] },
      { webhooks: [{ url: 'https://soc.example/hook', secretFile: 's', retries: 3 }] },
      { webhooks: [{ url: 'https://soc.example/hook', secretFile: 's' }, { url: 'https://soc.example/hook', secretFile: 't' }] },
      { webhooks: { url: 'https://soc.example/hook', secretFile: 's' } },
      { syslog: { url: 'udp://siem.example:514' } },
      { syslog: { url: 'tls://siem.example' } },
      { syslog: { url: 'tcp://siem.example:514', events: ['nothing.*'] } },
      { hooks: [] },
    ]) {
      write(bad);
      expect(codeOf(() => loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, '/')), JSON.stringify(bad)).to.equal('KAKUIN_E_CONFIG');
    }
  });

  it('is frozen', () => {
    const c = loadConfig({}, tmp.dir);
    expect(Object.isFrozen(c)).to.equal(true);
    expect(Object.isFrozen(c.api)).to.equal(true);
    expect(() => { (c.api as { port: number }).port = 1; }).to.throw(TypeError);
  });
});
