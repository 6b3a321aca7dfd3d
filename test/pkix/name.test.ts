import { expect } from 'chai';
import * as asn1js from 'asn1js';
import { encodeName, isPrintableString, nameToString, parseName } from '../../pkix/index.js';
import { asn1parse, pkijs, readVector, thrownCode } from './fixtures.js';

/** Each RDN of a Name as asn1js sees it: [number of values in the SET, [oid, value tag, value]]. */
function rdnsOf(der: Buffer): { count: number; oid: string; tag: number; value: string }[] {
  const parsed = asn1js.fromBER(new Uint8Array(der));
  expect(parsed.offset, 'asn1js decodes the whole Name').to.equal(der.length);
  const seq = parsed.result as asn1js.Sequence;
  return seq.valueBlock.value.map((rdn) => {
    const set = rdn as asn1js.Set;
    expect(set.idBlock.tagNumber).to.equal(17);
    const atv = set.valueBlock.value[0] as asn1js.Sequence;
    const [oid, value] = atv.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.BaseStringBlock];
    return { count: set.valueBlock.value.length, oid: oid.valueBlock.toString(), tag: value.idBlock.tagNumber, value: value.getValue() };
  });
}

describe('pkix Name', () => {
  it('writes serialNumber + CN exactly as openssl does (vector name-serialnumber-cn.der)', () => {
    const der = encodeName([{ type: 'serialNumber', value: 'ABC123' }, { type: 'CN', value: 'device-1' }]);
    expect(der.toString('hex')).to.equal(readVector('name-serialnumber-cn.der').toString('hex'));
  });

  it('writes C, ST, L, O, OU, CN exactly as openssl does (vector name-c-st-l-o-ou-cn.der)', () => {
    const der = encodeName([
      { type: 'C', value: 'JP' }, { type: 'ST', value: 'Tokyo' }, { type: 'L', value: 'Chiyoda' },
      { type: 'O', value: 'Kakuin Test' }, { type: 'OU', value: 'Devices' }, { type: 'CN', value: 'Kakuin Device CA' },
    ]);
    expect(der.toString('hex')).to.equal(readVector('name-c-st-l-o-ou-cn.der').toString('hex'));
  });

  it('writes domainComponent as IA5String, as RFC 4519 and openssl do (vector name-dc-cn.der)', () => {
    const der = encodeName([{ type: 'DC', value: 'example' }, { type: 'DC', value: 'com' }, { type: 'CN', value: 'dc-device' }]);
    expect(der.toString('hex')).to.equal(readVector('name-dc-cn.der').toString('hex'));
  });

  it('puts every attribute in its own RDN SET, serialNumber as PrintableString (0x13), CN as UTF8String (0x0C)', () => {
    const der = encodeName([
      { type: 'O', value: 'Kakuin' }, { type: 'serialNumber', value: 'SN 42' }, { type: 'CN', value: 'Gerät 42' }, { type: 'C', value: 'DE' },
    ]);
    expect(rdnsOf(der)).to.deep.equal([
      { count: 1, oid: '2.5.4.10', tag: 12, value: 'Kakuin' },
      { count: 1, oid: '2.5.4.5', tag: 19, value: 'SN 42' },
      { count: 1, oid: '2.5.4.3', tag: 12, value: 'Gerät 42' },
      { count: 1, oid: '2.5.4.6', tag: 19, value: 'DE' },
    ]);
    const text = asn1parse(der);
    expect(text.match(/cons: SET/g)).to.have.length(4);
    expect(text).to.match(/PRINTABLESTRING\s+:SN 42/);
    expect(text).to.match(/UTF8STRING\s+:Gerät 42|UTF8STRING\s+:Ger/);
    const pk = pkijs.RelativeDistinguishedNames.fromBER(new Uint8Array(der));
    expect(pk.typesAndValues.map((t) => [t.type, t.value.valueBlock.value])).to.deep.equal([
      ['2.5.4.10', 'Kakuin'], ['2.5.4.5', 'SN 42'], ['2.5.4.3', 'Gerät 42'], ['2.5.4.6', 'DE'],
    ]);
  });

  it("refuses '@' or '_' in serialNumber, a country that is not two letters, and empty values", () => {
    expect(isPrintableString('ABC-123')).to.equal(true);
    expect(isPrintableString('ABC_123')).to.equal(false);
    expect(thrownCode(() => encodeName([{ type: 'serialNumber', value: 'dev@42' }]))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => encodeName([{ type: 'serialNumber', value: 'dev_42' }]))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => encodeName([{ type: 'C', value: 'JPN' }]))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => encodeName([{ type: 'CN', value: '' }]))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => encodeName([{ type: 'DC', value: 'exämple' }]))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => encodeName([{ type: 'XX' as 'CN', value: 'x' }]))).to.equal('KAKUIN_E_ENCODING_INPUT');
  });

  it('writes an empty Name as an empty SEQUENCE', () => {
    expect(encodeName([]).toString('hex')).to.equal('3000');
    expect(parseName(Buffer.from('3000', 'hex')).attributes).to.deep.equal([]);
  });

  it('parses what openssl wrote, keeping the original bytes and the string tags', () => {
    const der = readVector('name-c-st-l-o-ou-cn.der');
    const n = parseName(der);
    expect(n.rawDer.equals(der)).to.equal(true);
    expect(n.attributes.map((a) => [a.type, a.value, a.stringTag])).to.deep.equal([
      ['C', 'JP', 0x13], ['ST', 'Tokyo', 0x0c], ['L', 'Chiyoda', 0x0c], ['O', 'Kakuin Test', 0x0c], ['OU', 'Devices', 0x0c], ['CN', 'Kakuin Device CA', 0x0c],
    ]);
    expect(nameToString(n)).to.equal('C=JP, ST=Tokyo, L=Chiyoda, O=Kakuin Test, OU=Devices, CN=Kakuin Device CA');
  });

  it('reads a multi-valued RDN and other string types, and escapes separators for display', () => {
    // SEQUENCE { SET { CN=a+b, O="x, y" (BMPString) }, SET { emailAddress (IA5String) } }
    const atv = (oid: string, value: asn1js.BaseBlock): asn1js.Sequence => new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), value] });
    const der = Buffer.from(new asn1js.Sequence({
      value: [
        new asn1js.Set({ value: [atv('2.5.4.3', new asn1js.Utf8String({ value: 'a+b' })), atv('2.5.4.10', new asn1js.BmpString({ value: 'x, y' }))] }),
        new asn1js.Set({ value: [atv('1.2.840.113549.1.9.1', new asn1js.IA5String({ value: 'ops@example.com' }))] }),
      ],
    }).toBER());
    const n = parseName(der);
    expect(n.attributes.map((a) => [a.oid, a.value, a.stringTag, a.rdnIndex])).to.deep.equal([
      ['2.5.4.3', 'a+b', 0x0c, 0], ['2.5.4.10', 'x, y', 0x1e, 0], ['1.2.840.113549.1.9.1', 'ops@example.com', 0x16, 1],
    ]);
    expect(nameToString(n)).to.equal('CN=a\\+b + O=x\\, y, emailAddress=ops@example.com');
  });

  it('refuses malformed names with KAKUIN_E_DER_MALFORMED', () => {
    for (const bad of ['3100', '30023100', '3007310530030603550403', '300b3109300706035504030c01']) {
      expect(thrownCode(() => parseName(Buffer.from(bad, 'hex'))), bad).to.equal('KAKUIN_E_DER_MALFORMED');
    }
  });
});
