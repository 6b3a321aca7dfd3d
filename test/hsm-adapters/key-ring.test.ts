import { expect } from 'chai';
import { generateKeyPairSync, sign } from 'node:crypto';
import path from 'node:path';
import { KakuinError } from '../../errors/index.js';
import {
  KeyRing, parseKeyUri, signatureAlgorithmFor, type KeyAlgorithm, type KeyStore, type Signer,
} from '../../hsm-adapters/index.js';
import { SoftwareKeyStore } from '../../hsm-adapters/software/index.js';
import { rejectsWithCode, verifiesWithNode } from '../contract/keystore.contract.js';
import { makeTempDir } from '../support/index.js';

/**
 * A stand-in for the PKCS#11 adapter: keys held in memory, signing on a later tick as a module
 * would, no key file and no TLS key material.
 */
class InMemoryModuleStore implements KeyStore {
  readonly scheme = 'pkcs11';
  readonly calls: string[] = [];
  closed = false;
  readonly #signers = new Map<string, Signer>();

  async generate(uri: string, algorithm: KeyAlgorithm): Promise<Signer> {
    this.calls.push(`generate ${uri}`);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signer: Signer = {
      uri, algorithm, signatureAlgorithm: signatureAlgorithmFor(algorithm),
      publicKeySpki: publicKey.export({ type: 'spki', format: 'der' }),
      sign: (data) => new Promise((resolve) => setImmediate(() => resolve(sign(null, data, privateKey)))),
    };
    this.#signers.set(uri, signer);
    return signer;
  }

  async load(uri: string): Promise<Signer> {
    this.calls.push(`load ${uri}`);
    const signer = this.#signers.get(uri);
    if (!signer) throw new KakuinError('KAKUIN_E_KEY_NOT_FOUND', `no key under ${uri}`);
    return signer;
  }

  async exists(uri: string): Promise<boolean> {
    this.calls.push(`exists ${uri}`);
    return this.#signers.has(uri);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

describe('KeyRing', function () {
  let temp: { dir: string; cleanup: () => void };
  let software: SoftwareKeyStore;
  let module: InMemoryModuleStore;
  let ring: KeyRing;
  const moduleUri = 'pkcs11:token=kakuin;object=root-ca';

  beforeEach(function () {
    temp = makeTempDir('kakuin-keyring-');
    software = new SoftwareKeyStore({ directory: path.join(temp.dir, 'keys'), passphrase: 'ring test' });
    module = new InMemoryModuleStore();
    ring = new KeyRing([software, module]);
  });

  afterEach(function () {
    temp.cleanup();
  });

  it('finds the store serving a URI by its scheme', function () {
    expect(ring.storeFor('file:root')).to.equal(software);
    expect(ring.storeFor(moduleUri)).to.equal(module);
  });

  it('generates, loads and checks keys in the store the scheme names', async function () {
    const fileSigner = await ring.generate('file:tls-api', 'ecdsa-p256');
    expect(await software.exists('file:tls-api')).to.equal(true);
    expect(await ring.exists('file:tls-api')).to.equal(true);
    expect(await ring.load('file:tls-api')).to.equal(fileSigner);

    const moduleSigner = await ring.generate(moduleUri, 'ed25519');
    expect(await ring.exists(moduleUri)).to.equal(true);
    expect(await ring.load(moduleUri)).to.equal(moduleSigner);
    expect(module.calls).to.deep.equal([`generate ${moduleUri}`, `exists ${moduleUri}`, `load ${moduleUri}`]);
    const data = Buffer.from('to be signed');
    expect(verifiesWithNode(moduleSigner.signatureAlgorithm, moduleSigner.publicKeySpki, data, await moduleSigner.sign(data))).to.equal(true);
  });

  it('refuses URIs of a scheme no store serves, or without a scheme, with KAKUIN_E_KEY_URI_INVALID (as rejections)', async function () {
    for (const uri of ['awskms:alias/root', 'no-scheme', '', ':x', 'File:root']) {
      expect(() => ring.storeFor(uri)).to.throw(KakuinError).with.property('code', 'KAKUIN_E_KEY_URI_INVALID');
      await rejectsWithCode(ring.load(uri), 'KAKUIN_E_KEY_URI_INVALID');
      await rejectsWithCode(ring.generate(uri, 'ed25519'), 'KAKUIN_E_KEY_URI_INVALID');
      await rejectsWithCode(ring.exists(uri), 'KAKUIN_E_KEY_URI_INVALID');
    }
    await rejectsWithCode(new KeyRing([module]).load('file:root'), 'KAKUIN_E_KEY_URI_INVALID');
  });

  it('gives TLS key material only for stores that can hand a key to Node TLS', async function () {
    await ring.generate('file:tls-gateway', 'ecdsa-p256');
    const material = await ring.tlsKeyMaterial('file:tls-gateway');
    expect(material.key).to.include('BEGIN ENCRYPTED PRIVATE KEY');
    await ring.generate(moduleUri, 'ed25519');
    await rejectsWithCode(ring.tlsKeyMaterial(moduleUri), 'KAKUIN_E_KEY_URI_INVALID');
  });

  it('refuses two stores for one scheme', function () {
    expect(() => new KeyRing([software, new SoftwareKeyStore({ directory: temp.dir, passphrase: 'x' })]))
      .to.throw(KakuinError).with.property('code', 'KAKUIN_E_INTERNAL');
  });

  it('closes every store', async function () {
    await ring.close();
    expect(module.closed).to.equal(true);
  });
});

describe('parseKeyUri', function () {
  it('reads a file: URI as a key name', function () {
    expect(parseKeyUri('file:device-ca')).to.deep.equal({ scheme: 'file', name: 'device-ca' });
  });

  it('reads RFC 7512 path and query attributes of a pkcs11: URI, percent-decoded', function () {
    const uri = parseKeyUri('pkcs11:token=kakuin%20prod;object=r%C3%B6%C3%B6t;type=private;id=%01%A5?pin-source=file:/run/pin&module-path=/usr/lib/softhsm/libsofthsm2.so');
    expect(uri.scheme).to.equal('pkcs11');
    if (uri.scheme !== 'pkcs11') return;
    expect({ ...uri.path }).to.deep.equal({ token: 'kakuin prod', object: 'rööt', type: 'private' });
    expect(uri.id?.toString('hex')).to.equal('01a5');
    expect({ ...uri.query }).to.deep.equal({ 'pin-source': 'file:/run/pin', 'module-path': '/usr/lib/softhsm/libsofthsm2.so' });
  });

  it('refuses malformed URIs and unknown schemes with KAKUIN_E_KEY_URI_INVALID', function () {
    for (const uri of ['file:../etc/passwd', 'pkcs11:', 'pkcs11:token', 'pkcs11:token=a;token=b', 'pkcs11:object=%zz', 'pkcs11:object=%FF', 'awskms:x', 'root']) {
      expect(() => parseKeyUri(uri), uri).to.throw(KakuinError).with.property('code', 'KAKUIN_E_KEY_URI_INVALID');
    }
  });
});
