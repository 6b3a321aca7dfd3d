import { expect } from 'chai';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../../hsm-adapters/index.js';
import { SoftwareKeyStore } from '../../hsm-adapters/software/index.js';
import { KakuinError } from '../../errors/index.js';
import { rejectsWithCode, runKeyStoreContract, verifiesWithNode } from '../contract/keystore.contract.js';
import { makeTempDir, openssl, opensslOk } from '../support/index.js';

// Not ASCII on purpose: Node and the openssl command must agree on its UTF-8 bytes.
const PASSPHRASE = 'correct horse battery staple — 鍵';

describe('software key store (file: URIs)', function () {
  let root: { dir: string; cleanup: () => void };
  let counter = 0;
  /** A key directory of its own for one test; not created yet. */
  const freshDirectory = (): string => path.join(root.dir, `keys-${++counter}`);

  before(function () {
    root = makeTempDir('kakuin-software-keys-');
  });

  after(function () {
    root.cleanup();
  });

  runKeyStoreContract('SoftwareKeyStore', async () => {
    const store = new SoftwareKeyStore({ directory: path.join(root.dir, 'contract'), passphrase: PASSPHRASE });
    return { store, uriFor: (label) => `file:${label}`, cleanup: () => store.close() };
  }, [...KEY_ALGORITHMS]);

  describe('key files', function () {
    for (const algorithm of ['ed25519', 'ecdsa-p256'] as const) {
      it(`stores a ${algorithm} key as an encrypted PKCS#8 PEM holding none of the private key bytes`, async function () {
        const directory = freshDirectory();
        const store = new SoftwareKeyStore({ directory, passphrase: PASSPHRASE });
        const signer = await store.generate('file:issuing-ca', algorithm);
        const file = path.join(directory, 'issuing-ca.key.pem');
        const pem = readFileSync(file, 'utf8');
        expect(pem).to.match(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
        expect(pem).to.not.include('BEGIN PRIVATE KEY');
        expect(pem).to.not.include('BEGIN EC PRIVATE KEY');

        // The private scalar, exported by the test from the key decrypted out of the file.
        const privateKey = createPrivateKey({ key: pem, format: 'pem', passphrase: PASSPHRASE });
        const d = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
        expect(d.length).to.equal(32);
        const body = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
        expect(readFileSync(file).includes(d), 'raw file').to.equal(false);
        expect(body.includes(d), 'decoded PEM body').to.equal(false);
        expect(body.includes(privateKey.export({ type: 'pkcs8', format: 'der' })), 'plaintext PKCS#8').to.equal(false);
        expect(pem.includes(d.toString('base64')), 'base64 of the scalar').to.equal(false);

        expect(spkiOf(privateKey).equals(signer.publicKeySpki)).to.equal(true);
      });
    }

    it('writes the key file with mode 0600 into a directory it creates with mode 0700, leaving no temporary file', async function () {
      const directory = path.join(freshDirectory(), 'nested', 'keys');
      const store = new SoftwareKeyStore({ directory, passphrase: PASSPHRASE });
      await store.generate('file:ocsp-signer', 'ecdsa-p256');
      expect(statSync(directory).mode & 0o777).to.equal(0o700);
      expect(statSync(path.join(directory, 'ocsp-signer.key.pem')).mode & 0o777).to.equal(0o600);
      expect(readdirSync(directory)).to.deep.equal(['ocsp-signer.key.pem']);
    });

    it('encrypts with PBES2: scrypt (no longer PBKDF2 at 2,048 iterations) and AES-256-CBC', async function () {
      const directory = freshDirectory();
      await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).generate('file:k', 'ed25519');
      const parsed = opensslOk(['asn1parse', '-in', path.join(directory, 'k.key.pem')]);
      expect(parsed).to.include(':PBES2').and.include(':scrypt').and.include(':aes-256-cbc');
      expect(parsed).to.not.include(':PBKDF2');
    });

    for (const algorithm of ['ecdsa-p384', 'ed25519', 'rsa-2048'] as const satisfies readonly KeyAlgorithm[]) {
      it(`lets an operator recover a ${algorithm} key with \`openssl pkey -passin\``, async function () {
        const directory = freshDirectory();
        const signer = await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).generate('file:root', algorithm);
        const publicPem = opensslOk(['pkey', '-in', path.join(directory, 'root.key.pem'), '-passin', `pass:${PASSPHRASE}`, '-pubout']);
        expect(pemBody(publicPem, 'PUBLIC KEY').equals(signer.publicKeySpki)).to.equal(true);
      });
    }

    it('loads a key written by `openssl genpkey` with the same passphrase', async function () {
      const directory = freshDirectory();
      mkdirSync(directory, { mode: 0o700 });
      const file = path.join(directory, 'imported.key.pem');
      opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes-256-cbc', '-pass', `pass:${PASSPHRASE}`, '-out', file]);
      const signer = await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).load('file:imported');
      expect(signer.algorithm).to.equal('ecdsa-p256');
      const publicPem = opensslOk(['pkey', '-in', file, '-passin', `pass:${PASSPHRASE}`, '-pubout']);
      expect(pemBody(publicPem, 'PUBLIC KEY').equals(signer.publicKeySpki)).to.equal(true);
    });
  });

  describe('encryption at rest (scrypt, RFC 7914)', function () {
    this.timeout(30_000);
    const asn1 = (file: string) => opensslOk(['asn1parse', '-in', file]);

    it('writes PKCS#8 under PBES2 with scrypt N = 2^14, r = 8, p = 1 and AES-256-CBC, which openssl pkey opens to the same key', async function () {
      const directory = freshDirectory();
      const signer = await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).generate('file:ca', 'ecdsa-p384');
      const file = path.join(directory, 'ca.key.pem');
      const parsed = asn1(file);
      expect(parsed).to.include('PBES2').and.include(':scrypt').and.include('aes-256-cbc');
      expect(parsed).to.not.include('PBKDF2');
      // costParameter 16384 (0x4000), blockSize 8, parallelizationParameter 1: openssl pkcs8 -scrypt's own
      expect(parsed).to.match(/INTEGER\s+:4000\s*\n.*INTEGER\s+:08\s*\n.*INTEGER\s+:01\s*\n/);
      const publicPem = opensslOk(['pkey', '-in', file, '-passin', `pass:${PASSPHRASE}`, '-pubout']);
      expect(pemBody(publicPem, 'PUBLIC KEY').equals(signer.publicKeySpki)).to.equal(true);
      expect(openssl(['pkey', '-in', file, '-passin', 'pass:wrong', '-noout']).status, 'the wrong passphrase fails in openssl too').to.not.equal(0);
    });

    it('keys.kdfCost chooses N (10 to 14, checked); a key written at a lower cost opens the same way', async function () {
      const directory = freshDirectory();
      await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE, kdfCost: 10 }).generate('file:cheap', 'ed25519');
      expect(asn1(path.join(directory, 'cheap.key.pem'))).to.match(/INTEGER\s+:0400\s/);
      expect((await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).load('file:cheap')).algorithm).to.equal('ed25519');
      for (const kdfCost of [9, 15, 12.5]) {
        expect(() => new SoftwareKeyStore({ directory, passphrase: PASSPHRASE, kdfCost }), String(kdfCost)).to.throw(KakuinError).with.property('code', 'KAKUIN_E_CONFIG');
      }
    });

    it('still opens a file an earlier kakuin wrote (PBKDF2, 2,048 iterations) and one of openssl pkcs8 -scrypt; rewrap rewrites only the weak ones, the keys unchanged', async function () {
      const directory = freshDirectory();
      mkdirSync(directory, { mode: 0o700 });
      const old = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      writeFileSync(path.join(directory, 'old.key.pem'), old.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE }), { mode: 0o600 });
      expect(asn1(path.join(directory, 'old.key.pem'))).to.include('PBKDF2');
      const plainFile = path.join(directory, 'plain.pem');
      opensslOk(['genpkey', '-algorithm', 'ED25519', '-out', plainFile]);
      opensslOk(['pkcs8', '-topk8', '-scrypt', '-v2', 'aes-256-cbc', '-in', plainFile, '-passout', `pass:${PASSPHRASE}`, '-out', path.join(directory, 'openssl.key.pem')]);
      const strongBefore = readFileSync(path.join(directory, 'openssl.key.pem'), 'utf8');
      const store = new SoftwareKeyStore({ directory, passphrase: PASSPHRASE });
      const before = await store.load('file:old');
      expect(before.publicKeySpki.equals(spkiOf(old))).to.equal(true);
      expect((await store.load('file:openssl')).algorithm).to.equal('ed25519');
      expect(await store.rewrap()).to.deep.equal({ rewritten: ['old'], kept: ['openssl'] });
      expect(asn1(path.join(directory, 'old.key.pem'))).to.include(':scrypt').and.not.include('PBKDF2');
      expect(readFileSync(path.join(directory, 'openssl.key.pem'), 'utf8'), 'a strong file is left alone').to.equal(strongBefore);
      const publicPem = opensslOk(['pkey', '-in', path.join(directory, 'old.key.pem'), '-passin', `pass:${PASSPHRASE}`, '-pubout']);
      expect(pemBody(publicPem, 'PUBLIC KEY').equals(spkiOf(old)), 'the same key').to.equal(true);
      const after = await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).load('file:old');
      const data = Buffer.from('signed after the rewrap');
      expect(verifiesWithNode(after.signatureAlgorithm, after.publicKeySpki, data, await after.sign(data))).to.equal(true);
      expect(readdirSync(directory).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
      expect(await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).rewrap()).to.deep.equal({ rewritten: [], kept: ['old', 'openssl'] });
    });

    it('rewrap with a wrong passphrase refuses (KAKUIN_E_KEY_PASSPHRASE) and changes no file', async function () {
      const directory = freshDirectory();
      mkdirSync(directory, { mode: 0o700 });
      const old = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const file = path.join(directory, 'old.key.pem');
      writeFileSync(file, old.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE }), { mode: 0o600 });
      const before = readFileSync(file, 'utf8');
      await rejectsWithCode(new SoftwareKeyStore({ directory, passphrase: `${PASSPHRASE}?` }).rewrap(), 'KAKUIN_E_KEY_PASSPHRASE');
      expect(readFileSync(file, 'utf8')).to.equal(before);
    });
  });

  describe('passphrase', function () {
    it('refuses a wrong passphrase with KAKUIN_E_KEY_PASSPHRASE, for load and for TLS key material', async function () {
      const directory = freshDirectory();
      await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).generate('file:root', 'ecdsa-p256');
      const wrong = new SoftwareKeyStore({ directory, passphrase: `${PASSPHRASE}!` });
      const error = await rejectsWithCode(wrong.load('file:root'), 'KAKUIN_E_KEY_PASSPHRASE');
      expect(error.message).to.not.include(PASSPHRASE);
      await rejectsWithCode(wrong.load('file:root'), 'KAKUIN_E_KEY_PASSPHRASE');
      await rejectsWithCode(wrong.tlsKeyMaterial('file:root'), 'KAKUIN_E_KEY_PASSPHRASE');
      expect(await wrong.exists('file:root')).to.equal(true);
    });

    it('refuses an empty or over-long passphrase when the store is built', function () {
      for (const passphrase of ['', 'x'.repeat(1025)]) {
        const build = () => new SoftwareKeyStore({ directory: freshDirectory(), passphrase });
        expect(build).to.throw(KakuinError).with.property('code', 'KAKUIN_E_KEY_PASSPHRASE');
      }
    });

    it('refuses a key file stored in plaintext', async function () {
      const directory = freshDirectory();
      mkdirSync(directory, { mode: 0o700 });
      const { privateKey } = generateKeyPairSync('ed25519');
      writeFileSync(path.join(directory, 'plain.key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const store = new SoftwareKeyStore({ directory, passphrase: PASSPHRASE });
      await rejectsWithCode(store.load('file:plain'), 'KAKUIN_E_KEY_PASSPHRASE');
    });

    it('refuses a damaged key file with KAKUIN_E_KEY_PASSPHRASE', async function () {
      const directory = freshDirectory();
      const store = new SoftwareKeyStore({ directory, passphrase: PASSPHRASE });
      await store.generate('file:k', 'ecdsa-p256');
      const file = path.join(directory, 'k.key.pem');
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.splice(2, 1);
      writeFileSync(file, lines.join('\n'));
      await rejectsWithCode(new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).load('file:k'), 'KAKUIN_E_KEY_PASSPHRASE');
    });

    it('refuses an encrypted key of a type kakuin does not use with KAKUIN_E_KEY_ALGORITHM', async function () {
      const directory = freshDirectory();
      mkdirSync(directory, { mode: 0o700 });
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-521' });
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE });
      writeFileSync(path.join(directory, 'p521.key.pem'), pem, { mode: 0o600 });
      await rejectsWithCode(new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).load('file:p521'), 'KAKUIN_E_KEY_ALGORITHM');
    });
  });

  describe('URIs', function () {
    const badUris = [
      'file:../x', 'file:/etc/x', 'file:', 'pkcs11:token=x', 'file:a/b', 'file:.hidden', 'file:..', 'file:.',
      'file://x', 'file:a b', 'file:a\\b', 'file:x\n', 'file:x%2Fy', 'FILE:x', 'x', '', `file:${'a'.repeat(129)}`,
    ];

    it('refuses every operation on a malformed or foreign URI with KAKUIN_E_KEY_URI_INVALID, touching no file', async function () {
      const directory = freshDirectory();
      const store = new SoftwareKeyStore({ directory, passphrase: PASSPHRASE });
      for (const uri of badUris) {
        await rejectsWithCode(store.generate(uri, 'ed25519'), 'KAKUIN_E_KEY_URI_INVALID');
        await rejectsWithCode(store.load(uri), 'KAKUIN_E_KEY_URI_INVALID');
        await rejectsWithCode(store.exists(uri), 'KAKUIN_E_KEY_URI_INVALID');
        await rejectsWithCode(store.tlsKeyMaterial(uri), 'KAKUIN_E_KEY_URI_INVALID');
      }
      expect(existsSync(directory)).to.equal(false);
    });

    it('accepts names of up to 128 letters, digits, dots, underscores and hyphens', async function () {
      const store = new SoftwareKeyStore({ directory: freshDirectory(), passphrase: PASSPHRASE });
      for (const name of ['a', 'Root_CA-2024.v1', `x${'y'.repeat(127)}`]) {
        const signer = await store.generate(`file:${name}`, 'ed25519');
        expect(signer.uri).to.equal(`file:${name}`);
        expect(await store.exists(`file:${name}`)).to.equal(true);
      }
    });
  });

  describe('generation and signing', function () {
    it('refuses an algorithm it does not know with KAKUIN_E_KEY_ALGORITHM, writing nothing', async function () {
      const directory = freshDirectory();
      const store = new SoftwareKeyStore({ directory, passphrase: PASSPHRASE });
      await rejectsWithCode(store.generate('file:k', 'rsa-4096' as KeyAlgorithm), 'KAKUIN_E_KEY_ALGORITHM');
      expect(await store.exists('file:k')).to.equal(false);
    });

    it('lets exactly one of several concurrent generate calls for one URI win; the rest get KAKUIN_E_KEY_EXISTS', async function () {
      const directory = freshDirectory();
      const stores = Array.from({ length: 4 }, () => new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }));
      const results = await Promise.allSettled(stores.map((s) => s.generate('file:root', 'ecdsa-p256')));
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).to.have.length(1);
      for (const r of lost) expect((r.reason as KakuinError).code).to.equal('KAKUIN_E_KEY_EXISTS');
      const onDisk = await new SoftwareKeyStore({ directory, passphrase: PASSPHRASE }).load('file:root');
      expect(onDisk.publicKeySpki.equals((won[0] as PromiseFulfilledResult<{ publicKeySpki: Buffer }>).value.publicKeySpki)).to.equal(true);
      expect(readdirSync(directory)).to.deep.equal(['root.key.pem']);
    });

    it('caches loaded signers per URI and forgets them on close', async function () {
      const directory = freshDirectory();
      const store = new SoftwareKeyStore({ directory, passphrase: PASSPHRASE });
      const generated = await store.generate('file:k', 'ed25519');
      expect(await store.load('file:k')).to.equal(generated);
      const [a, b] = await Promise.all([store.load('file:k'), store.load('file:k')]);
      expect(a).to.equal(generated);
      expect(b).to.equal(generated);
      await store.close();
      const reloaded = await store.load('file:k');
      expect(reloaded).to.not.equal(generated);
      expect(reloaded.publicKeySpki.equals(generated.publicKeySpki)).to.equal(true);
    });

    it('reports a signing failure as a rejected promise with KAKUIN_E_SIGNING_FAILED', async function () {
      const store = new SoftwareKeyStore({ directory: freshDirectory(), passphrase: PASSPHRASE });
      const signer = await store.generate('file:k', 'ecdsa-p256');
      let pending: Promise<Buffer> | undefined;
      expect(() => { pending = signer.sign(42 as unknown as Buffer); }).to.not.throw();
      await rejectsWithCode(pending!, 'KAKUIN_E_SIGNING_FAILED');
    });

    it('signs P-384 with SHA-384 (a SHA-256 verification fails)', async function () {
      const store = new SoftwareKeyStore({ directory: freshDirectory(), passphrase: PASSPHRASE });
      const signer = await store.generate('file:k', 'ecdsa-p384');
      const data = Buffer.from('tbs');
      const signature = await signer.sign(data);
      expect(verifiesWithNode('ecdsa-with-SHA384', signer.publicKeySpki, data, signature)).to.equal(true);
      expect(verifiesWithNode('ecdsa-with-SHA256', signer.publicKeySpki, data, signature)).to.equal(false);
    });
  });

  describe('TLS key material', function () {
    it('hands a TLS listener the encrypted PEM as stored plus the passphrase, and a handshake succeeds', async function () {
      const directory = freshDirectory();
      const store = new SoftwareKeyStore({ directory, passphrase: PASSPHRASE });
      await store.generate('file:api-tls', 'ecdsa-p256');
      const file = path.join(directory, 'api-tls.key.pem');
      const material = await store.tlsKeyMaterial('file:api-tls');
      expect(material.key).to.equal(readFileSync(file, 'utf8'));
      expect(material.key).to.include('BEGIN ENCRYPTED PRIVATE KEY');
      expect(material.passphrase).to.equal(PASSPHRASE);
      expect(createPrivateKey({ key: material.key, passphrase: material.passphrase }).asymmetricKeyType).to.equal('ec');

      const certFile = path.join(directory, 'api-tls.crt');
      opensslOk(['req', '-x509', '-new', '-key', file, '-passin', `pass:${PASSPHRASE}`, '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-out', certFile]);
      const cert = readFileSync(certFile, 'utf8');
      tls.createSecureContext({ key: material.key, passphrase: material.passphrase, cert });
      expect(await handshake({ key: material.key, passphrase: material.passphrase, cert })).to.equal(true);
    });

    it('refuses TLS key material for a missing key with KAKUIN_E_KEY_NOT_FOUND', async function () {
      const store = new SoftwareKeyStore({ directory: freshDirectory(), passphrase: PASSPHRASE });
      await rejectsWithCode(store.tlsKeyMaterial('file:absent'), 'KAKUIN_E_KEY_NOT_FOUND');
    });
  });
});

function spkiOf(privateKey: KeyObject): Buffer {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
}

function pemBody(pem: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`).exec(pem);
  if (!m) throw new Error(`no ${label} PEM block in ${pem}`);
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

/** A TLS 1.3 handshake on localhost with the given server key; resolves true when the client trusts it. */
function handshake(server: { key: string; passphrase: string; cert: string }): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const listener = tls.createServer({ ...server, minVersion: 'TLSv1.3' }, (socket) => socket.end());
    listener.on('error', reject);
    listener.listen(0, '127.0.0.1', () => {
      const { port } = listener.address() as { port: number };
      const client = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: server.cert }, () => {
        const authorized = client.authorized;
        client.end();
        listener.close(() => resolve(authorized));
      });
      client.on('error', (e) => { listener.close(); reject(e); });
    });
  });
}
