/**
 * Issue 21 item 2, users for people, over real HTTPS on 127.0.0.1 against an in-process kakuin
 * (SQLite) whose clock the test moves (session timeouts, TOTP steps, lockouts) instead of sleeping.
 * The first admin comes from `kakuin user create` (a child process on the same data directory);
 * TOTP codes are computed here from the otpauth:// URI it printed, by this file's own RFC 6238 code.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import { cliMain } from '../support/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';
import { routesOf } from '../../api-schema/routes.js';
import { ROUTE_ACCESS, admits, routeKey, type Principal } from '../../api-schema/access.js';

const COOKIE = /^__Host-kakuin_session=([A-Za-z0-9_-]{43}); Path=\/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict$/;

/** RFC 4648 base32 decoding, for the secret of an otpauth URI. */
function unbase32(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 with SHA-1, 6 digits, 30 s (RFC 4226 §5.3 truncation). */
function totpAt(secret: Buffer, ms: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(ms / 30_000)));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const o = mac[19] & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

function secretOf(uri: string): Buffer {
  const m = /^otpauth:\/\/totp\/kakuin:([^?]+)\?secret=([A-Z2-7]+)&issuer=kakuin&algorithm=SHA1&digits=6&period=30$/.exec(uri);
  expect(m, uri).to.not.equal(null);
  return unbase32(m![2]);
}

interface Session { cookie: string; csrf: string; login: HttpResponse }

describe('users: people log in with a password and TOTP, and their sessions obey the role table', function () {
  this.timeout(180_000);
  let svc: TestService;
  let now = Date.now();
  const MIN = 60_000;
  let adminPassword: string;
  let adminSecret: Buffer;
  let manufacturerId: string;

  const call = (method: string, p: string, options: { body?: object; session?: Session; csrf?: string | false; token?: string } = {}) =>
    request(svc.url, svc.rootPem, method, p, {
      ...(options.body !== undefined && { body: options.body }), ...(options.token !== undefined && { token: options.token }),
      headers: {
        ...(options.session !== undefined && { cookie: `__Host-kakuin_session=${options.session.cookie}` }),
        ...(options.session !== undefined && options.csrf !== false && { 'x-kakuin-csrf': options.csrf ?? options.session.csrf }),
      },
    });
  const admin = (method: string, p: string, body?: object) => call(method, p, { token: svc.adminToken, ...(body !== undefined && { body }) });
  const kakuin = (args: string[], input?: string) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...process.env, ...svc.env }, timeout: 30_000, input });
    return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const login = (name: string, password: string, totp?: string) => call('POST', '/api/v1/session', { body: { name, password, ...(totp !== undefined && { totp }) } });
  async function session(name: string, password: string, secret?: Buffer): Promise<Session> {
    // A TOTP code is good once: each login with one moves to the next 30-second step.
    if (secret !== undefined) now += 30_000;
    const r = await login(name, password, secret === undefined ? undefined : totpAt(secret, now));
    expect(r.status, r.text).to.equal(201);
    const m = COOKIE.exec(String(r.headers['set-cookie']));
    expect(m, String(r.headers['set-cookie'])).to.not.equal(null);
    return { cookie: m![1], csrf: r.json.csrfToken, login: r };
  }
  const adminSession = () => session('root-admin', adminPassword, adminSecret);
  async function newUser(name: string, role: string, extra: object = {}): Promise<string> {
    const s = await adminSession();
    const r = await call('POST', '/api/v1/users', { session: s, body: { name, role, ...extra } });
    expect(r.status, r.text).to.equal(201);
    return r.json.password;
  }
  const events = async (type: string) => (await admin('GET', `/api/v1/audit-events?type=${type}&limit=1000`)).json.events as { actor: string; details: Record<string, unknown> }[];

  before(async () => {
    // Every listener on a free port: other tests on this machine hold the defaults.
    svc = await startTestService({ env: { KAKUIN_USERS_PASSWORD_KDF_COST: '10', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0' }, clock: () => now });
    manufacturerId = (await admin('POST', '/api/v1/manufacturers', { name: 'Login Sensors' })).json.id;
    const r = kakuin(['user', 'create', '--name', 'root-admin', '--role', 'admin']);
    expect(r.code, r.stderr).to.equal(0);
    adminPassword = /^password \(shown once, hand it over now\): (\S+)$/m.exec(r.stdout)![1];
    adminSecret = secretOf(/(otpauth:\/\/\S+)$/m.exec(r.stdout)![1]);
    expect(r.stdout).to.include('user root-admin created (role admin, TOTP second factor)');
  });

  after(async () => {
    await svc?.stop();
  });

  it('an admin logs in with password and TOTP: the cookie is __Host-, HttpOnly, Secure, SameSite=Strict, and GET /api/v1/session says who it is', async () => {
    const noCode = await login('root-admin', adminPassword);
    expect([noCode.status, noCode.json.code]).to.deep.equal([401, 'KAKUIN_E_TOTP_REQUIRED']);
    expect(noCode.headers['set-cookie']).to.equal(undefined);
    const s = await adminSession();
    expect(s.login.json).to.include({ name: 'root-admin', role: 'admin', via: 'session', idleTimeoutSeconds: 1800, actor: 'user:root-admin' });
    expect(new Date(s.login.json.expiresAt).getTime()).to.equal(now + 12 * 3_600_000);
    expect(new Date(s.login.json.idleExpiresAt).getTime()).to.equal(now + 30 * MIN);
    const me = await call('GET', '/api/v1/session', { session: s });
    expect(me.status, me.text).to.equal(200);
    expect(me.json).to.include({ name: 'root-admin', role: 'admin', via: 'session', csrfToken: s.csrf });
    // A token caller is answered too (no session, no CSRF token).
    const token = await admin('GET', '/api/v1/session');
    expect(token.json).to.deep.equal({ name: 'bootstrap', role: 'admin', actor: 'token:bootstrap', via: 'token' });
    const logins = await events('user.login');
    expect(logins.at(-1)).to.deep.include({ actor: 'user:root-admin' });
    expect(logins.at(-1)!.details).to.include({ secondFactor: 'totp' });
  });

  it('a TOTP code is accepted once: the same code again is refused, as is a wrong one, and both count as failures', async () => {
    const s = await adminSession();
    expect(s.csrf).to.be.a('string');
    const code = totpAt(adminSecret, now);
    const again = await login('root-admin', adminPassword, code);
    expect([again.status, again.json.code]).to.deep.equal([401, 'KAKUIN_E_TOTP_INVALID']);
    const wrong = await login('root-admin', adminPassword, code === '000000' ? '111111' : '000000');
    expect([wrong.status, wrong.json.code]).to.deep.equal([401, 'KAKUIN_E_TOTP_INVALID']);
    expect((await events('user.login.failed')).slice(-2).map((e) => e.details.reason)).to.deep.equal(['totp replay', 'totp']);
    // The code of the next step is good.
    now += 30_000;
    expect((await login('root-admin', adminPassword, totpAt(adminSecret, now))).status).to.equal(201);
  });

  it('a wrong password and an unknown user get the same answer, and neither sets a cookie', async () => {
    await newUser('bob', 'operator', { password: 'bob-password-long-enough' });
    const wrong = await login('bob', 'not-bobs-password');
    const unknown = await login('nobody-here', 'not-bobs-password');
    for (const r of [wrong, unknown]) {
      expect(r.status).to.equal(401);
      expect(r.headers['set-cookie']).to.equal(undefined);
    }
    expect(wrong.json).to.deep.equal(unknown.json);
    expect(wrong.json.code).to.equal('KAKUIN_E_LOGIN_FAILED');
    const ok = await session('bob', 'bob-password-long-enough');
    expect(ok.login.json).to.include({ name: 'bob', role: 'operator' });
  });

  it('a request with the session cookie that is not a GET needs the CSRF header; without it nothing changes', async () => {
    const s = await adminSession();
    const before = (await admin('GET', '/api/v1/users')).json.users.length;
    for (const csrf of [false, 'x'.repeat(43), s.csrf.slice(0, -1)] as const) {
      const r = await call('POST', '/api/v1/users', { session: s, csrf, body: { name: 'csrf-victim', role: 'admin' } });
      expect([r.status, r.json.code], String(csrf)).to.deep.equal([403, 'KAKUIN_E_CSRF']);
    }
    expect((await admin('GET', '/api/v1/users')).json.users.length).to.equal(before);
    // Another session's token is not this session's.
    const other = await adminSession();
    const crossed = await call('POST', '/api/v1/users', { session: s, csrf: other.csrf, body: { name: 'csrf-victim', role: 'operator' } });
    expect(crossed.json.code).to.equal('KAKUIN_E_CSRF');
    // GET needs none; a bearer token needs none.
    expect((await call('GET', '/api/v1/users', { session: s, csrf: false })).status).to.equal(200);
    expect((await admin('POST', '/api/v1/users', { name: 'by-token', role: 'auditor' })).status).to.equal(201);
  });

  it('users are listed and shown without a password hash or TOTP secret; creation shows the generated password and TOTP URI once', async () => {
    const s = await adminSession();
    const created = await call('POST', '/api/v1/users', { session: s, body: { name: 'maker-mia', role: 'manufacturer', manufacturerId, totp: true } });
    expect(created.status, created.text).to.equal(201);
    expect(created.json).to.include({ name: 'maker-mia', role: 'manufacturer', manufacturerId, status: 'active', totp: true });
    expect(created.json.password).to.match(/^[A-Za-z0-9_-]{20}$/);
    secretOf(created.json.totpUri);
    const list = await call('GET', '/api/v1/users', { session: s });
    expect(list.text).to.not.match(/scrypt|passwordHash|totpSecret|otpauth/);
    expect(list.json.users.map((u: { name: string }) => u.name)).to.include.members(['root-admin', 'bob', 'maker-mia']);
    const bad = await call('POST', '/api/v1/users', { session: s, body: { name: 'adm2', role: 'admin', totp: false } });
    expect([bad.status, bad.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);
    const weak = await call('POST', '/api/v1/users', { session: s, body: { name: 'weak', role: 'operator', password: 'short' } });
    expect([weak.status, weak.json.code]).to.deep.equal([400, 'KAKUIN_E_PASSWORD_WEAK']);
    const dup = await call('POST', '/api/v1/users', { session: s, body: { name: 'bob', role: 'operator' } });
    expect([dup.status, dup.json.code]).to.deep.equal([409, 'KAKUIN_E_USER_EXISTS']);
    expect((await events('user.created')).map((e) => [e.details.name, e.actor])).to.deep.include.members([['maker-mia', 'user:root-admin'], ['root-admin', 'cli']]);
  });

  it('an auditor\'s session reads but cannot change anything: 403 KAKUIN_E_FORBIDDEN, with or without the CSRF token', async () => {
    const password = await newUser('audrey', 'auditor');
    const s = await session('audrey', password);
    expect((await call('GET', '/api/v1/users', { session: s })).status).to.equal(200);
    expect((await call('GET', '/api/v1/audit-events', { session: s })).status).to.equal(200);
    const post = await call('POST', '/api/v1/manufacturers', { session: s, body: { name: 'Not Allowed' } });
    expect([post.status, post.json.code]).to.deep.equal([403, 'KAKUIN_E_FORBIDDEN']);
    const user = await call('POST', '/api/v1/users', { session: s, body: { name: 'evil', role: 'admin' } });
    expect([user.status, user.json.code]).to.deep.equal([403, 'KAKUIN_E_FORBIDDEN']);
  });

  it('each declared route × each role, as a person\'s session: 403 KAKUIN_E_FORBIDDEN exactly where the table does not admit the role', async () => {
    const sessions = {} as Record<Exclude<Principal, 'station'>, Session>;
    sessions.admin = await adminSession();
    sessions.operator = await session('walk-op', await newUser('walk-op', 'operator'));
    sessions.auditor = await session('walk-aud', await newUser('walk-aud', 'auditor'));
    sessions.manufacturer = await session('walk-maker', await newUser('walk-maker', 'manufacturer', { manufacturerId }));
    const declared = routesOf(svc.service.apiApp)!.declared();
    const wrong: string[] = [];
    let walked = 0;
    for (const route of declared) {
      const key = routeKey(route.method, route.path);
      const rule = ROUTE_ACCESS[key];
      expect(rule, `a rule for ${key}`).to.not.equal(undefined);
      // Logging out would end the session the walk goes on with; the logout test covers it.
      if (key === 'DELETE /api/v1/session' || rule.includes('device')) continue;
      const p = route.path
        .replace(/^\/api\/v1\/manufacturers\/\{id\}/, `/api/v1/manufacturers/${manufacturerId}`)
        .replace('{id}', 'no-such-id').replace('{serialHex}', '0badc0de').replace('{name}', 'no-such-user')
        .replace('{issuerId}', 'no-such-issuer').replace('{label}', 'nolabel');
      for (const [principal, s] of Object.entries(sessions) as [Principal, Session][]) {
        const r = await call(route.method.toUpperCase(), p, { session: s, ...(route.method === 'post' && { body: {} }) });
        walked++;
        const seen = `${key} as a ${principal} session: ${r.status} ${r.json?.code ?? ''}`;
        if (route.path.startsWith('/.well-known/est/') && !rule.includes('anyone')) {
          // EST takes a station's HTTP Basic key or certificate only (RFC 7030 §3.2.3): a cookie is no credential there.
          if (r.status !== 401) wrong.push(`${seen}, but EST knows no sessions`);
        } else if (admits(rule, principal)) {
          if (r.status === 403 || r.status === 401) wrong.push(`${seen}, but the table admits it`);
        } else if (r.status !== 403 || r.json?.code !== 'KAKUIN_E_FORBIDDEN') {
          wrong.push(`${seen}, but the table refuses it`);
        }
      }
    }
    expect(wrong).to.deep.equal([]);
    expect(walked).to.be.greaterThan(200);
    // Every session is still alive after the walk (nothing in it logged out or disabled anyone).
    for (const s of Object.values(sessions)) expect((await call('GET', '/api/v1/session', { session: s })).status).to.equal(200);
  });

  it('a session ends after the idle timeout without a request, and each request moves the idle end on', async () => {
    const password = await newUser('idle-ida', 'operator');
    const s = await session('idle-ida', password);
    now += 29 * MIN;
    expect((await call('GET', '/api/v1/session', { session: s })).status).to.equal(200);
    now += 29 * MIN;
    const still = await call('GET', '/api/v1/session', { session: s });
    expect(still.status).to.equal(200);
    expect(new Date(still.json.idleExpiresAt).getTime()).to.equal(now + 30 * MIN);
    now += 30 * MIN;
    const gone = await call('GET', '/api/v1/devices', { session: s });
    expect([gone.status, gone.json.code]).to.deep.equal([401, 'KAKUIN_E_SESSION_EXPIRED']);
    expect(String(gone.headers['set-cookie'])).to.equal('__Host-kakuin_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict');
    expect((await call('GET', '/api/v1/session', { session: s })).json.code).to.equal('KAKUIN_E_UNAUTHENTICATED');
  });

  it('a session ends at its absolute age (users.sessionMaxHours, 12 h) however busy it is', async () => {
    const password = await newUser('busy-bea', 'operator');
    const s = await session('busy-bea', password);
    const start = now;
    while (now + 20 * MIN < start + 12 * 3_600_000) {
      now += 20 * MIN;
      const r = await call('GET', '/api/v1/session', { session: s });
      expect(r.status, `${(now - start) / MIN} min`).to.equal(200);
    }
    now = start + 12 * 3_600_000;
    const r = await call('GET', '/api/v1/session', { session: s });
    expect([r.status, r.json.code]).to.deep.equal([401, 'KAKUIN_E_SESSION_EXPIRED']);
  });

  it('logout ends the session and clears the cookie; the old cookie authenticates nothing', async () => {
    const password = await newUser('leo', 'operator');
    const s = await session('leo', password);
    const noCsrf = await call('DELETE', '/api/v1/session', { session: s, csrf: false });
    expect(noCsrf.json.code).to.equal('KAKUIN_E_CSRF');
    const out = await call('DELETE', '/api/v1/session', { session: s });
    expect(out.status, out.text).to.equal(204);
    expect(String(out.headers['set-cookie'])).to.equal('__Host-kakuin_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict');
    const after = await call('GET', '/api/v1/session', { session: s });
    expect([after.status, after.json.code]).to.deep.equal([401, 'KAKUIN_E_UNAUTHENTICATED']);
    expect((await events('user.logout')).at(-1)).to.deep.include({ actor: 'user:leo' });
  });

  it('disabling a user kills its open session at once and refuses its logins; enabling lets it log in again', async () => {
    const password = await newUser('dora', 'operator');
    const s = await session('dora', password);
    const a = await adminSession();
    const d = await call('POST', '/api/v1/users/dora/disable', { session: a });
    expect(d.status, d.text).to.equal(200);
    expect(d.json.status).to.equal('disabled');
    const dead = await call('GET', '/api/v1/devices', { session: s });
    expect([dead.status, dead.json.code]).to.deep.equal([401, 'KAKUIN_E_UNAUTHENTICATED']);
    const refused = await login('dora', password);
    expect([refused.status, refused.json.code]).to.deep.equal([403, 'KAKUIN_E_USER_DISABLED']);
    const twice = await call('POST', '/api/v1/users/dora/disable', { session: a });
    expect([twice.status, twice.json.code]).to.deep.equal([409, 'KAKUIN_E_USER_STATE']);
    expect((await call('POST', '/api/v1/users/dora/enable', { session: a })).json.status).to.equal('active');
    await session('dora', password);
    expect((await events('user.disabled')).at(-1)).to.deep.include({ actor: 'user:root-admin' });
  });

  it('reset-password and reset-totp end the user\'s sessions and show the new credential once; the old ones fail', async () => {
    const password = await newUser('rita', 'operator', { totp: true });
    const a = await adminSession();
    const created = (await call('GET', '/api/v1/users', { session: a })).json.users.find((u: { name: string }) => u.name === 'rita');
    expect(created.totp).to.equal(true);
    const totp = await call('POST', '/api/v1/users/rita/reset-totp', { session: a });
    const secret = secretOf(totp.json.totpUri);
    const s = await session('rita', password, secret);
    const reset = await call('POST', '/api/v1/users/rita/reset-password', { session: a });
    expect(reset.status, reset.text).to.equal(200);
    expect(reset.json.password).to.match(/^[A-Za-z0-9_-]{20}$/);
    expect((await call('GET', '/api/v1/session', { session: s })).status).to.equal(401);
    now += 30_000;
    expect((await login('rita', password, totpAt(secret, now))).json.code).to.equal('KAKUIN_E_LOGIN_FAILED');
    await session('rita', reset.json.password, secret);
    const r = kakuin(['user', 'reset-password', '--name', 'rita', '--password-stdin'], 'a chosen long password\n');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.not.include('a chosen long password');
    await session('rita', 'a chosen long password', secret);
    const list = kakuin(['user', 'list']);
    expect(list.stdout).to.match(/^rita\s+operator\s+active\s+yes\s/m);
  });

  it('a person changes their own password with the current one; every session of theirs ends, this one too', async () => {
    const password = await newUser('pia', 'auditor');
    const s = await session('pia', password);
    const other = await session('pia', password);
    const wrong = await call('POST', '/api/v1/session/password', { session: s, body: { password: 'not-the-current-one', newPassword: 'pias-new-long-password' } });
    expect([wrong.status, wrong.json.code]).to.deep.equal([401, 'KAKUIN_E_LOGIN_FAILED']);
    const weak = await call('POST', '/api/v1/session/password', { session: s, body: { password, newPassword: 'short' } });
    expect([weak.status, weak.json.code]).to.deep.equal([400, 'KAKUIN_E_PASSWORD_WEAK']);
    const noCsrf = await call('POST', '/api/v1/session/password', { session: s, csrf: false, body: { password, newPassword: 'pias-new-long-password' } });
    expect(noCsrf.json.code).to.equal('KAKUIN_E_CSRF');
    const byToken = await admin('POST', '/api/v1/session/password', { password, newPassword: 'pias-new-long-password' });
    expect([byToken.status, byToken.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);
    const changed = await call('POST', '/api/v1/session/password', { session: s, body: { password, newPassword: 'pias-new-long-password' } });
    expect(changed.status, changed.text).to.equal(204);
    expect(String(changed.headers['set-cookie'])).to.match(/^__Host-kakuin_session=; Path=\/; Max-Age=0;/);
    for (const dead of [s, other]) expect((await call('GET', '/api/v1/session', { session: dead })).status).to.equal(401);
    expect((await login('pia', password)).json.code).to.equal('KAKUIN_E_LOGIN_FAILED');
    await session('pia', 'pias-new-long-password');
    expect((await events('user.password.changed')).at(-1)).to.deep.include({ actor: 'user:pia' });
  });

  it('failed logins are throttled per user name — known or not, alike — with Retry-After, and the lock ends', async () => {
    now += 2 * 3_600_000; // earlier tests' failures from this address are past the counters' window
    const password = await newUser('tom', 'operator');
    for (const name of ['tom', 'no-such-tom']) {
      for (let i = 0; i < 5; i++) expect((await login(name, 'wrong-password-xx')).json.code, `${name} #${i + 1}`).to.equal('KAKUIN_E_LOGIN_FAILED');
    }
    const tom = await login('tom', password);
    const ghost = await login('no-such-tom', password);
    for (const r of [tom, ghost]) {
      expect([r.status, r.json.code]).to.deep.equal([429, 'KAKUIN_E_LOGIN_THROTTLED']);
      expect(r.headers['retry-after']).to.equal('30');
    }
    expect(tom.json).to.deep.equal(ghost.json);
    now += 31_000;
    // The lock is over; one more failure doubles it.
    expect((await login('tom', 'wrong-password-xx')).json.code).to.equal('KAKUIN_E_LOGIN_FAILED');
    const doubled = await login('tom', password);
    expect([doubled.json.code, doubled.headers['retry-after']]).to.deep.equal(['KAKUIN_E_LOGIN_THROTTLED', '60']);
    now += 61_000;
    await session('tom', password);
    const failed = (await events('user.login.failed')).filter((e) => e.details.name === 'no-such-tom');
    expect(failed).to.have.length(5);
    expect(failed[0]).to.deep.include({ actor: 'anonymous' });
  });

  it('failed logins are throttled per source address over all names', async () => {
    now += 2 * 3_600_000;
    const password = await newUser('sam', 'operator');
    for (let i = 0; i < 20; i++) expect((await login(`guess-${i}`, 'wrong-password-xx')).json.code).to.equal('KAKUIN_E_LOGIN_FAILED');
    const r = await login('sam', password);
    expect([r.status, r.json.code, r.headers['retry-after']]).to.deep.equal([429, 'KAKUIN_E_LOGIN_THROTTLED', '30']);
    now += 31_000;
    await session('sam', password);
  });
});
