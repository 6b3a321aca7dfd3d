/**
 * pkix/cmp: what it writes, asn1js reads back identically (and re-encodes byte for byte: DER), and
 * what it reads matches asn1js's reading of the same bytes; PasswordBasedMac against RFC 9810
 * §5.1.3.1's definition computed independently here.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import * as asn1js from 'asn1js';
import {
  answerStatus, derExplicit, derInteger, derOctetString, derSequence, encodeCertRepBody, encodeErrorBody, encodeFailureInfo, encodePbmAlgorithm,
  encodePkiMessage, encodeResponseHeader, encodeStatusInfo, parsePkiMessage, passwordBasedMac, PKI_FAILURE_INFO, readPbmParameters,
  parseAlgorithmIdentifier, readDer, type PkiFailureInfo,
} from '../../pkix/index.js';

function asn1(der: Buffer): asn1js.AsnType {
  const r = asn1js.fromBER(new Uint8Array(der).buffer);
  expect(r.offset, 'asn1js decodes the whole input').to.equal(der.length);
  return r.result;
}

describe('pkix/cmp', () => {
  it('writes PKIFailureInfo as a DER named-bit BIT STRING: trailing zero bits dropped, asn1js reads the same bits', () => {
    // badAlg is bit 0 (7 unused bits), badPOP bit 9, transactionIdInUse bit 21 (X.690 §11.2.2).
    expect(encodeFailureInfo(['badAlg']).toString('hex')).to.equal('03020780');
    expect(encodeFailureInfo(['badPOP']).toString('hex')).to.equal('0303060040');
    expect(encodeFailureInfo(['transactionIdInUse']).toString('hex')).to.equal('030402000004');
    for (const bits of [['badMessageCheck'], ['badRequest', 'notAuthorized'], ['systemFailure']] as PkiFailureInfo[][]) {
      const der = encodeFailureInfo(bits);
      const b = asn1(der) as asn1js.BitString;
      const bytes = Buffer.from(b.valueBlock.valueHexView);
      const set: number[] = [];
      for (let i = 0; i < bytes.length * 8 - b.valueBlock.unusedBits; i++) if (bytes[i >> 3] & (0x80 >> (i & 7))) set.push(i);
      expect(set).to.deep.equal(bits.map((x) => PKI_FAILURE_INFO[x]).sort((p, q) => p - q));
      expect(Buffer.from(b.toBER()).equals(der), 're-encoded identically').to.equal(true);
    }
  });

  it('an error PKIMessage it writes is DER (asn1js re-encodes it byte for byte) and reads back: status, text, failInfo', () => {
    const pbm = { salt: randomBytes(16), owf: 'sha256' as const, iterationCount: 1000, mac: 'sha1' as const };
    const header = encodeResponseHeader({
      pvno: 2, senderName: derSequence(), recipientDer: derExplicit(4, derSequence()), protectionAlgDer: encodePbmAlgorithm(pbm),
      senderKID: Buffer.from('ref'), transactionID: randomBytes(16), senderNonce: randomBytes(16), recipNonce: randomBytes(16), messageTime: new Date(Date.UTC(2026, 11, 8, 1, 2, 3)),
    });
    const body = encodeErrorBody(encodeStatusInfo(2, { text: 'KAKUIN_E_CMP_PROTECTION_INVALID: no', failInfo: ['badMessageCheck'] }));
    const der = encodePkiMessage(header, body, passwordBasedMac(Buffer.from('s3cret'), pbm, derSequence(header, body)));
    expect(Buffer.from(asn1(der).toBER()).equals(der)).to.equal(true);
    const m = parsePkiMessage(der);
    expect(m.header.pvno).to.equal(2);
    expect(m.header.messageTime?.toISOString()).to.equal('2026-12-08T01:02:03.000Z');
    expect(m.bodyTag).to.equal(23);
    expect(answerStatus(m)).to.deep.equal({ status: 2, text: ['KAKUIN_E_CMP_PROTECTION_INVALID: no'], failInfoBits: [1] });
    // The protected part is exactly header || body under one SEQUENCE, as the MAC covered it.
    expect(passwordBasedMac(Buffer.from('s3cret'), readPbmParameters(m.header.protectionAlg!), m.protectedPartDer).equals(m.protection!)).to.equal(true);
  });

  it('PasswordBasedMac is HMAC over ProtectedPart keyed by OWF^iterationCount(secret || salt) (RFC 9810 §5.1.3.1)', () => {
    const salt = Buffer.from('0123456789abcdef', 'hex');
    const data = Buffer.from('protected part');
    let key = createHash('sha256').update(Buffer.concat([Buffer.from('pw'), salt])).digest();
    for (let i = 1; i < 500; i++) key = createHash('sha256').update(key).digest();
    const expected = createHmac('sha1', key).update(data).digest();
    expect(passwordBasedMac(Buffer.from('pw'), { salt, owf: 'sha256', iterationCount: 500, mac: 'sha1' }, data).equals(expected)).to.equal(true);
  });

  it('reads PBMParameter as written, and refuses an iterationCount beyond its bound (KAKUIN_E_ALGORITHM_UNSUPPORTED)', () => {
    const alg = parseAlgorithmIdentifier(readDer(encodePbmAlgorithm({ salt: Buffer.alloc(16, 7), owf: 'sha256', iterationCount: 500, mac: 'sha256' })));
    expect(readPbmParameters(alg)).to.deep.equal({ salt: Buffer.alloc(16, 7), owf: 'sha256', iterationCount: 500, mac: 'sha256' });
    const huge = parseAlgorithmIdentifier(readDer(encodePbmAlgorithm({ salt: Buffer.alloc(16, 7), owf: 'sha256', iterationCount: 10_000_000, mac: 'sha256' })));
    expect(() => readPbmParameters(huge)).to.throw().with.property('code', 'KAKUIN_E_ALGORITHM_UNSUPPORTED');
  });

  it('a cp it writes carries the certificate under CertOrEncCert [0] and status accepted (asn1js walk)', () => {
    const fakeCert = derSequence(derInteger(1), derOctetString(Buffer.from('cert')));
    const body = encodeCertRepBody('cp', [{ certReqId: -1, statusInfo: encodeStatusInfo(0), certificate: fakeCert }]);
    const t = asn1(body) as asn1js.Constructed;
    expect(t.idBlock.tagClass).to.equal(3);
    expect(t.idBlock.tagNumber).to.equal(3);
    const rep = t.valueBlock.value[0] as asn1js.Sequence;
    const response = (rep.valueBlock.value[0] as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence;
    expect((response.valueBlock.value[0] as asn1js.Integer).valueBlock.valueDec).to.equal(-1);
    const pair = response.valueBlock.value[2] as asn1js.Sequence;
    const certOrEnc = pair.valueBlock.value[0] as asn1js.Constructed;
    expect(certOrEnc.idBlock.tagNumber).to.equal(0);
    expect(Buffer.from(certOrEnc.valueBlock.value[0].toBER()).equals(fakeCert)).to.equal(true);
  });

  it('refuses malformed PKIMessages with KAKUIN_E_DER_MALFORMED, whatever the bytes', () => {
    for (const bad of [Buffer.alloc(0), Buffer.from('3000', 'hex'), Buffer.from('30050201020000', 'hex'), randomBytes(64), Buffer.from('not der')]) {
      expect(() => parsePkiMessage(bad)).to.throw().with.property('code', 'KAKUIN_E_DER_MALFORMED');
    }
  });
});
