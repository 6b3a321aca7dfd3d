/**
 * The audit signer key in a PKCS#11 token (SoftHSM2): on a CA made with `kakuin init --keys
 * pkcs11:token=...`, `kakuin audit checkpoint` generates the audit signer key in the token where
 * the infrastructure CA's key is (no key file), the infrastructure CA issues its certificate, and
 * `kakuin audit verify` checks the signature against the root; openssl reads the certificate's EKU.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { cliMain, freePort, makeTempDir, opensslOk } from '../support/index.js';
import { testEnv } from '../support/service.js';
import { createToken, requireSoftHsm, softhsmConf, TEST_PIN } from './softhsm.js';

describe('the audit signer key in a PKCS#11 token (SoftHSM2)', function () {
  this.timeout(120_000);
  let tmp: ReturnType<typeof makeTempDir>;
  let env: Record<string, string>;
  const kakuin = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { PATH: process.env.PATH ?? '', ...env, KAKUIN_LOG_LEVEL: 'info' }, timeout: 60_000 });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  before(async function () {
    const modulePath = requireSoftHsm(this);
    softhsmConf();
    const token = createToken('audit');
    tmp = makeTempDir('kakuin-pkcs11-audit-');
    const dataDir = path.join(tmp.dir, 'data');
    mkdirSync(dataDir);
    env = {
      ...testEnv(dataDir), KAKUIN_PKCS11_MODULE: modulePath, KAKUIN_PKCS11_PIN: TEST_PIN, SOFTHSM2_CONF: process.env.SOFTHSM2_CONF!,
      KAKUIN_OCSP_PORT: String(await freePort()), KAKUIN_GATEWAY_PORT: '0',
    };
    const init = kakuin('init', '--keys', `pkcs11:token=${token}`);
    expect(init.status, init.stderr).to.equal(0);
    env.TOKEN = token;
  });
  after(() => tmp?.cleanup());

  it('checkpoint signs with a token key, the certificate is the infrastructure CA\'s (documentSigning), and verify passes', function () {
    const cp = kakuin('audit', 'checkpoint');
    expect(cp.status, cp.stderr).to.equal(0);
    expect(cp.stdout).to.match(/^audit checkpoint written: event \d+\n$/);
    expect(cp.stderr).to.match(new RegExp(`"key":"pkcs11:token=${env.TOKEN};[^"]*object=audit-signer"`));
    const keysDir = path.join(env.KAKUIN_DATA_DIR, 'keys');
    const keyFiles = existsSync(keysDir) ? readdirSync(keysDir) : [];
    expect(keyFiles.filter((f) => f.includes('audit'))).to.deep.equal([]);
    const signer = path.join(env.KAKUIN_DATA_DIR, 'audit', 'signer.pem');
    expect(existsSync(signer)).to.equal(true);
    const text = opensslOk(['x509', '-in', signer, '-noout', '-issuer', '-ext', 'extendedKeyUsage,keyUsage,basicConstraints']);
    expect(text).to.match(/Infrastructure/i);
    expect(text).to.match(/Document Signing|1\.3\.6\.1\.5\.5\.7\.3\.36/);
    expect(text).to.contain('Digital Signature').and.contain('CA:FALSE');
    opensslOk(['verify', '-CAfile', path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem'), '-untrusted', path.join(env.KAKUIN_DATA_DIR, 'ca', 'infrastructure.pem'), signer]);
    const verify = kakuin('audit', 'verify', '--json');
    expect(verify.status, verify.stdout + verify.stderr).to.equal(0);
    expect(JSON.parse(verify.stdout)).to.include({ ok: true, checkpoints: 1 });
  });
});
