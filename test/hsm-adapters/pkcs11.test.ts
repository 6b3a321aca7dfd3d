import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { KEY_ALGORITHMS, KeyRing, type KeyAlgorithm } from '../../hsm-adapters/index.js';
import { acquireModule, Pkcs11KeyStore } from '../../hsm-adapters/pkcs11/index.js';
import { KakuinError } from '../../errors/index.js';
import { rejectsWithCode, runKeyStoreContract, verifiesWithNode } from '../contract/keystore.contract.js';
import { createToken, requireSoftHsm, softhsmConf, TEST_PIN } from './softhsm.js';

describe('PKCS#11 key store (pkcs11: URIs, SoftHSM2)', function () {
  let modulePath = '';
  let token = '';
  let wrongPinToken = '';
  let algorithms: KeyAlgorithm[] = [];
  const open: Pkcs11KeyStore[] = [];
  const store = (pin: string | undefined = TEST_PIN): Pkcs11KeyStore => {
    const s = new Pkcs11KeyStore({ modulePath, pin });
    open.push(s);
    return s;
  };

  before(function () {
    modulePath = requireSoftHsm(this);
    softhsmConf();
    // SoftHSM2 lists the tokens of its directory at C_Initialize: create them all before any store opens.
    token = createToken('unit');
    wrongPinToken = createToken('wrong-pin');
  });

  after(async function () {
    await Promise.all(open.map((s) => s.close()));
  });

  // The contract needs its algorithm list before the suite runs; Ed25519 is in it when this
  // SoftHSM2 build offers CKM_EDDSA (Debian's does), otherwise the adapter refuses it (tested below).
  algorithms = [...KEY_ALGORITHMS];

  runKeyStoreContract('Pkcs11KeyStore on SoftHSM2', async () => {
    const s = new Pkcs11KeyStore({ modulePath, pin: TEST_PIN });
    return { store: s, uriFor: (label) => `pkcs11:token=${token};object=${label}`, cleanup: () => s.close() };
  }, algorithms);

  it('generates keys that are sensitive and not extractable: reading or wrapping the private key fails', async function () {
    const s = store();
    const uri = `pkcs11:token=${token};object=export-${randomBytes(3).toString('hex')}`;
    await s.generate(uri, 'ecdsa-p256');
    const module = acquireModule(modulePath);
    try {
      const { pkcs11, lib } = module;
      const slot = pkcs11.C_GetSlotList(true).find((sl) => pkcs11.C_GetTokenInfo(sl).label.trimEnd() === token)!;
      const session = pkcs11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
      try {
        try { pkcs11.C_Login(session, lib.CKU_USER, TEST_PIN); } catch { /* already logged in through the store */ }
        pkcs11.C_FindObjectsInit(session, [{ type: lib.CKA_CLASS, value: lib.CKO_PRIVATE_KEY }, { type: lib.CKA_LABEL, value: uri.split('object=')[1] }]);
        const [key] = pkcs11.C_FindObjects(session, 1);
        pkcs11.C_FindObjectsFinal(session);
        const flags = pkcs11.C_GetAttributeValue(session, key, [
          { type: lib.CKA_SENSITIVE }, { type: lib.CKA_EXTRACTABLE }, { type: lib.CKA_ALWAYS_SENSITIVE }, { type: lib.CKA_NEVER_EXTRACTABLE },
        ]).map((a) => a.value[0]);
        expect(flags).to.deep.equal([1, 0, 1, 1]);
        // The private scalar cannot be read...
        expect(() => pkcs11.C_GetAttributeValue(session, key, [{ type: lib.CKA_VALUE }])).to.throw(/CKR_ATTRIBUTE_SENSITIVE/);
        // ...nor wrapped out under a key the caller knows.
        const wrappingKey = pkcs11.C_GenerateKey(session, { mechanism: lib.CKM_AES_KEY_GEN }, [
          { type: lib.CKA_VALUE_LEN, value: 32 }, { type: lib.CKA_WRAP, value: true }, { type: lib.CKA_TOKEN, value: false },
          { type: lib.CKA_EXTRACTABLE, value: true },
        ]);
        expect(() => pkcs11.C_WrapKey(session, { mechanism: lib.CKM_AES_KEY_WRAP_PAD }, wrappingKey, key, Buffer.alloc(4096)))
          .to.throw(/CKR_KEY_UNEXTRACTABLE|CKR_KEY_NOT_WRAPPABLE/);
      } finally {
        pkcs11.C_CloseSession(session);
      }
    } finally {
      module.release();
    }
  });

  it('refuses a wrong PIN with KAKUIN_E_PKCS11_PIN', async function () {
    const s = store('not-the-pin');
    await rejectsWithCode(s.openToken(wrongPinToken), 'KAKUIN_E_PKCS11_PIN');
    await rejectsWithCode(s.exists(`pkcs11:token=${wrongPinToken};object=anything`), 'KAKUIN_E_PKCS11_PIN');
  });

  it('reports a module that cannot be loaded with KAKUIN_E_PKCS11_MODULE', function () {
    expect(() => new Pkcs11KeyStore({ modulePath: '/nonexistent/libpkcs11.so', pin: TEST_PIN }))
      .to.throw(KakuinError).with.property('code', 'KAKUIN_E_PKCS11_MODULE');
  });

  it('makes a missing SoftHSM2 a failure, not a skip, under KAKUIN_REQUIRE_SOFTHSM=1', function () {
    const saved = { module: process.env.KAKUIN_PKCS11_MODULE, require: process.env.KAKUIN_REQUIRE_SOFTHSM };
    process.env.KAKUIN_PKCS11_MODULE = '/nonexistent/libsofthsm2.so';
    process.env.KAKUIN_REQUIRE_SOFTHSM = '1';
    try {
      expect(() => requireSoftHsm(this)).to.throw(/KAKUIN_REQUIRE_SOFTHSM=1/);
    } finally {
      for (const [name, value] of [['KAKUIN_PKCS11_MODULE', saved.module], ['KAKUIN_REQUIRE_SOFTHSM', saved.require]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('names an absent token with KAKUIN_E_PKCS11_TOKEN_NOT_FOUND', async function () {
    await rejectsWithCode(store().exists('pkcs11:token=no-such-token;object=x'), 'KAKUIN_E_PKCS11_TOKEN_NOT_FOUND');
  });

  it('refuses a URI carrying pin-value, and one naming no key to generate', async function () {
    const s = store();
    await rejectsWithCode(s.load(`pkcs11:token=${token};object=k?pin-value=${TEST_PIN}`), 'KAKUIN_E_KEY_URI_INVALID');
    await rejectsWithCode(s.generate(`pkcs11:token=${token}`, 'ecdsa-p256'), 'KAKUIN_E_KEY_URI_INVALID');
  });

  it('serves pkcs11: URIs through a KeyRing beside the software store, and refuses them TLS key material', async function () {
    const ring = new KeyRing([store()]);
    const uri = `pkcs11:token=${token};object=ring-${randomBytes(3).toString('hex')}`;
    const signer = await ring.generate(uri, 'ecdsa-p384');
    const data = randomBytes(50);
    expect(verifiesWithNode(signer.signatureAlgorithm, signer.publicKeySpki, data, await signer.sign(data))).to.equal(true);
    await rejectsWithCode(ring.tlsKeyMaterial(uri), 'KAKUIN_E_KEY_URI_INVALID');
  });

  it('after its sessions are closed underneath it, reopens once and fails no signature', async function () {
    const s = store();
    const uri = `pkcs11:token=${token};object=reopen-${randomBytes(3).toString('hex')}`;
    const signer = await s.generate(uri, 'ecdsa-p256');
    await Promise.all(Array.from({ length: 8 }, () => signer.sign(randomBytes(10))));
    const before = s.reopens;

    const module = acquireModule(modulePath);
    try {
      const slot = module.pkcs11.C_GetSlotList(true).find((sl) => module.pkcs11.C_GetTokenInfo(sl).label.trimEnd() === token)!;
      module.pkcs11.C_CloseAllSessions(slot);
    } finally {
      module.release();
    }

    const inputs = Array.from({ length: 32 }, () => randomBytes(64));
    const signatures = await Promise.all(inputs.map((d) => signer.sign(d)));
    signatures.forEach((sig, i) => expect(verifiesWithNode(signer.signatureAlgorithm, signer.publicKeySpki, inputs[i], sig)).to.equal(true));
    expect(s.reopens - before).to.equal(1);
  });

  it('signs without blocking the event loop: timers keep firing while 200 signatures run', async function () {
    const s = store();
    const signer = await s.generate(`pkcs11:token=${token};object=loop-${randomBytes(3).toString('hex')}`, 'rsa-2048');
    let ticks = 0;
    let maxGap = 0;
    let last = Date.now();
    const timer = setInterval(() => { ticks++; const now = Date.now(); maxGap = Math.max(maxGap, now - last); last = now; }, 1);
    try {
      await Promise.all(Array.from({ length: 200 }, () => signer.sign(randomBytes(100))));
    } finally {
      clearInterval(timer);
    }
    expect(ticks).to.be.greaterThan(5);
    expect(maxGap, 'longest event-loop stall, ms').to.be.lessThan(100);
  });
});
