import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import * as asn1js from 'asn1js';
import {
  decodeOid, derBitString, derBoolean, derChildren, derContent, derExplicit, derGeneralizedTime, derIA5String, derImplicit,
  derInteger, derNull, derOctetString, derOid, derPrintableString, derRaw, derSequence, derSet, derTime, derUtcTime,
  derUtf8String, encodeTlv, readBoolean, readDer, readIntegerBytes, readOid, readSmallInteger, readString, readTime,
  readUnsignedInteger,
} from '../../pkix/index.js';
import { opensslOk } from '../support/index.js';
import { asn1parse, thrownCode, withFiles } from './fixtures.js';

const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('pkix DER encoder', () => {
  describe('INTEGER', () => {
    const cases: [number | bigint, string][] = [
      [0, '020100'], [1, '020101'], [127, '02017f'], [128, '02020080'], [255, '020200ff'], [256, '02020100'],
      [-1, '0201ff'], [-128, '020180'], [-129, '0202ff7f'], [65535, '020300ffff'],
      [2n ** 64n, '0209010000000000000000'], [-(2n ** 63n), '02088000000000000000'],
    ];
    for (const [value, expected] of cases) {
      it(`encodes ${value} minimally as ${expected}, as asn1js does`, () => {
        expect(derInteger(value).toString('hex')).to.equal(expected);
        if (typeof value === 'number') {
          expect(Buffer.from(new asn1js.Integer({ value }).toBER()).toString('hex')).to.equal(expected);
        }
      });
    }

    it('reads a Buffer as an unsigned magnitude: drops leading zeros, pads 0x00 when the high bit is set', () => {
      expect(derInteger(h('80')).toString('hex')).to.equal('02020080');
      expect(derInteger(h('ff01')).toString('hex')).to.equal('020300ff01');
      expect(derInteger(h('000001')).toString('hex')).to.equal('020101');
      expect(derInteger(h('000080')).toString('hex')).to.equal('02020080');
      expect(derInteger(h('7f')).toString('hex')).to.equal('02017f');
      expect(derInteger(h('0000')).toString('hex')).to.equal('020100');
      expect(derInteger(Buffer.alloc(0)).toString('hex')).to.equal('020100');
    });

    it('encodes a 20-octet serial with the high bit set as 21 content octets, as openssl does', () => {
      const serial = Buffer.alloc(20, 0xab);
      const viaOpenssl = withFiles({}, (p) => {
        opensslOk(['asn1parse', '-genstr', `INTEGER:0x${serial.toString('hex')}`, '-out', p('int.der'), '-noout']);
        return readFileSync(p('int.der'));
      });
      expect(derInteger(serial).toString('hex')).to.equal(viaOpenssl.toString('hex'));
      expect(derInteger(serial)[1]).to.equal(21);
    });

    it('refuses numbers that are not safe integers', () => {
      expect(thrownCode(() => derInteger(2 ** 60))).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => derInteger(1.5))).to.equal('KAKUIN_E_ENCODING_INPUT');
    });

    it('reads back what it writes, and refuses non-minimal integers', () => {
      for (const v of [0, 1, 127, 128, -1, -129, 123456789]) expect(readSmallInteger(readDer(derInteger(v)))).to.equal(v);
      expect(readUnsignedInteger(readDer(derInteger(h('80ff')))).toString('hex')).to.equal('80ff');
      expect(thrownCode(() => readIntegerBytes(readDer(h('02020001'))))).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => readIntegerBytes(readDer(h('0202ff80'))))).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => readIntegerBytes(readDer(h('0200'))))).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => readUnsignedInteger(readDer(h('0201ff'))))).to.equal('KAKUIN_E_DER_MALFORMED');
    });
  });

  describe('lengths', () => {
    for (const [len, header] of [[0, '0400'], [127, '047f'], [128, '048180'], [255, '0481ff'], [256, '04820100'], [65535, '0482ffff'], [65536, '0483010000']] as const) {
      it(`writes a ${len}-octet content with the minimal header ${header} and reads it back`, () => {
        const der = derOctetString(Buffer.alloc(len, 0x5a));
        expect(der.subarray(0, header.length / 2).toString('hex')).to.equal(header);
        expect(der.length).to.equal(header.length / 2 + len);
        const node = readDer(der);
        expect(derContent(node).length).to.equal(len);
        expect(Buffer.from(new asn1js.OctetString({ valueHex: new Uint8Array(len).fill(0x5a) }).toBER()).equals(der)).to.equal(true);
      });
    }

    it('concatenates pieces in encodeTlv and nests SEQUENCEs', () => {
      const der = derSequence(derInteger(1), derSequence(derNull(), derBoolean(true)), derOctetString(h('aabb')));
      expect(der.toString('hex')).to.equal('300e020101300505000101ff0402aabb');
      expect(encodeTlv(0x30, [derInteger(1), derInteger(2)]).toString('hex')).to.equal('3006020101020102');
      expect(asn1parse(der)).to.contain('BOOLEAN           :255');
    });
  });

  describe('OBJECT IDENTIFIER', () => {
    const cases: [string, string][] = [
      ['2.5.4.3', '0603550403'],
      ['1.2.840.113549.1.1.11', '06092a864886f70d01010b'],
      ['1.2.840.10045.4.3.2', '06082a8648ce3d040302'],
      ['0.9.2342.19200300.100.1.25', '060a0992268993f22c640119'],
      ['2.999.3', '0603883703'],
      ['1.3.6.1.4.1.59999.4294967296.1', '060e2b0601040183d45f908080800001'],
    ];
    for (const [oid, expected] of cases) {
      it(`encodes ${oid} like asn1js and decodes it back`, () => {
        expect(derOid(oid).toString('hex')).to.equal(expected);
        expect(Buffer.from(new asn1js.ObjectIdentifier({ value: oid }).toBER()).toString('hex')).to.equal(expected);
        expect(readOid(readDer(derOid(oid)))).to.equal(oid);
      });
    }

    it('refuses what is not a dotted OID', () => {
      for (const bad of ['', '1', '3.1', '1.40', '1.2.', '1..2', '1.02', 'a.b']) {
        expect(thrownCode(() => derOid(bad)), bad).to.equal('KAKUIN_E_ENCODING_INPUT');
      }
    });

    it('refuses non-minimal or truncated subidentifiers when reading', () => {
      expect(thrownCode(() => decodeOid(h('2a8086')))).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => decodeOid(h('2a86')))).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => decodeOid(Buffer.alloc(0)))).to.equal('KAKUIN_E_DER_MALFORMED');
    });
  });

  describe('strings and simple types', () => {
    it('writes BIT STRING with the unused-bits octet', () => {
      expect(derBitString(h('80'), 7).toString('hex')).to.equal('03020780');
      expect(derBitString(Buffer.alloc(0)).toString('hex')).to.equal('030100');
      expect(thrownCode(() => derBitString(h('80'), 8))).to.equal('KAKUIN_E_ENCODING_INPUT');
    });

    it('writes DER BOOLEAN (TRUE is 0xFF) and NULL, and reads back only DER booleans', () => {
      expect(derBoolean(true).toString('hex')).to.equal('0101ff');
      expect(derBoolean(false).toString('hex')).to.equal('010100');
      expect(derNull().toString('hex')).to.equal('0500');
      expect(readBoolean(readDer(h('0101ff')))).to.equal(true);
      expect(thrownCode(() => readBoolean(readDer(h('010101'))))).to.equal('KAKUIN_E_DER_MALFORMED');
    });

    it('writes UTF8String, PrintableString and IA5String with their tags', () => {
      expect(derUtf8String('dévice').toString('hex')).to.equal('0c0764c3a9766963 65'.replace(' ', ''));
      expect(derPrintableString('ABC 123').toString('hex')).to.equal('130741424320313233');
      expect(derIA5String('a@b').toString('hex')).to.equal('1603614062');
      expect(readString(readDer(derUtf8String('デバイス')))).to.equal('デバイス');
    });

    it('refuses characters outside PrintableString and IA5String', () => {
      for (const bad of ['a@b', 'a_b', 'a*b', 'a&b', 'é', 'a!']) {
        expect(thrownCode(() => derPrintableString(bad)), bad).to.equal('KAKUIN_E_ENCODING_INPUT');
      }
      expect(derPrintableString("A-Z a-z 0-9 '()+,-./:=?").length).to.be.greaterThan(2);
      expect(thrownCode(() => derIA5String('é'))).to.equal('KAKUIN_E_ENCODING_INPUT');
    });

    it('refuses invalid UTF-8 and 8-bit octets in PrintableString when reading', () => {
      expect(thrownCode(() => readString(readDer(h('0c02c328'))))).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => readString(readDer(h('1301ff'))))).to.equal('KAKUIN_E_DER_MALFORMED');
    });

    it('writes [n] EXPLICIT and [n] IMPLICIT tags', () => {
      expect(derExplicit(0, derInteger(2)).toString('hex')).to.equal('a003020102');
      expect(derExplicit(3, derSequence()).toString('hex')).to.equal('a3023000');
      expect(derImplicit(0, h('0102'), false).toString('hex')).to.equal('80020102');
      expect(derImplicit(1, h('3000'), true).toString('hex')).to.equal('a1023000');
    });

    it('sorts SET OF components into DER order (X.690 §11.6)', () => {
      const set = derSet(derInteger(3), derInteger(1), derOctetString(h('00')), derInteger(2));
      expect(set.toString('hex')).to.equal('310c020101020102020103040100');
    });
  });

  describe('Time (RFC 5280 §4.1.2.5)', () => {
    it('uses UTCTime through 2049-12-31 and GeneralizedTime from 2050-01-01', () => {
      expect(derTime(new Date('2049-12-31T23:59:59Z')).toString('latin1')).to.equal('\x17\x0d491231235959Z');
      expect(derTime(new Date('2050-01-01T00:00:00Z')).toString('latin1')).to.equal('\x18\x0f20500101000000Z');
      expect(derTime(new Date('1950-01-01T00:00:00Z')).toString('latin1')).to.equal('\x17\x0d500101000000Z');
      expect(derTime(new Date('1949-12-31T23:59:59Z')).toString('latin1')).to.equal('\x18\x0f19491231235959Z');
      expect(derTime(new Date('2026-03-04T05:06:07.890Z')).toString('latin1')).to.equal('\x17\x0d260304050607Z');
    });

    it('writes 99991231235959Z as GeneralizedTime and refuses UTCTime outside 1950-2049', () => {
      expect(derGeneralizedTime(new Date(Date.UTC(9999, 11, 31, 23, 59, 59))).toString('latin1')).to.equal('\x18\x0f99991231235959Z');
      expect(thrownCode(() => derUtcTime(new Date('2050-01-01T00:00:00Z')))).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => derTime(new Date('nope')))).to.equal('KAKUIN_E_ENCODING_INPUT');
    });

    it('reads both forms back, and refuses times outside the RFC 5280 profile', () => {
      for (const iso of ['2049-12-31T23:59:59Z', '2050-01-01T00:00:00Z', '1950-01-01T00:00:00Z', '9999-12-31T23:59:59Z']) {
        expect(readTime(readDer(derTime(new Date(iso)))).toISOString()).to.equal(iso.replace('Z', '.000Z'));
      }
      const bad = ['\x17\x0b4912312359Z', '\x17\x0c491231235959', '\x18\x1320500101000000.123Z', '\x17\x0d490230000000Z', '\x17\x0d491231246000Z'];
      for (const b of bad) expect(thrownCode(() => readTime(readDer(Buffer.from(b, 'latin1')))), JSON.stringify(b)).to.equal('KAKUIN_E_DER_MALFORMED');
    });
  });
});

describe('pkix DER reader', () => {
  const malformed: [string, string][] = [
    ['empty input', ''],
    ['a lone tag', '30'],
    ['content shorter than its length', '300501'],
    ['indefinite length', '308002010100 00'.replace(' ', '')],
    ['long-form length for a short content', '3081020101'],
    ['long-form length with a leading zero', '308200800101'],
    ['a length field of 5 octets', '30850000000001'],
    ['trailing bytes', '3000ff'],
    ['a high-tag-number identifier', '1f2100'],
    ['a child running past its parent', '3003020201'],
  ];
  for (const [what, bytes] of malformed) {
    it(`refuses ${what} with KAKUIN_E_DER_MALFORMED`, () => {
      expect(thrownCode(() => {
        const node = readDer(h(bytes));
        if (node.constructed) derChildren(node);
      })).to.equal('KAKUIN_E_DER_MALFORMED');
    });
  }

  it('walks children without copying, and gives back the original bytes', () => {
    const der = derSequence(derInteger(5), derSequence(derOid('2.5.4.3')));
    const root = readDer(der);
    const [a, b] = derChildren(root);
    expect(readSmallInteger(a)).to.equal(5);
    expect(derRaw(b).toString('hex')).to.equal('30050603550403');
    expect(derRaw(b).buffer).to.equal(der.buffer);
    expect(readDer(der, 2).end).to.equal(5);
    expect(thrownCode(() => derChildren(a))).to.equal('KAKUIN_E_DER_MALFORMED');
  });
});
