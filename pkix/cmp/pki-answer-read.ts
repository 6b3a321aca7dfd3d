/**
 * Reading CMP answers (RFC 9810 §5.2.3, §5.3.4, §5.3.10, §5.3.19): the PKIStatusInfo of an error,
 * a certificate response or a revocation response, the certificate of a CertRepMessage, and the
 * InfoTypeAndValues of a genp. The server reads its own stored answers with these (a certConf's
 * hash is checked against the certificate it sent); tests and benchmarks read kakuin's answers.
 */
import { derChildren, derRaw, expectChildren, expectTag, guardDer, malformed, readBitString, readOid, readSmallInteger, type DerNode } from '../der-reader.js';
import { TAG_SEQUENCE } from '../der.js';
import { explicitOne, type InfoTypeAndValue, type PkiMessage } from './pki-message.js';

/** The certificate of the first CertResponse of a CertRepMessage (ip/cp/kup content), if it carries one. */
export function certRepCertificate(certRepMessage: DerNode): Buffer | undefined {
  return guardDer('CertRepMessage', () => {
    const parts = expectChildren(certRepMessage, TAG_SEQUENCE, 'CertRepMessage');
    const responses = expectChildren(parts[parts.length - 1], TAG_SEQUENCE, 'CertRepMessage.response');
    const fields = expectChildren(responses[0], TAG_SEQUENCE, 'CertResponse');
    const pair = fields.find((f, i) => i >= 2 && f.tag === TAG_SEQUENCE);
    if (pair === undefined) return undefined;
    const certOrEnc = derChildren(pair)[0];
    if (certOrEnc?.tag !== 0xa0) return undefined;
    return Buffer.from(derRaw(explicitOne(certOrEnc, 'CertOrEncCert.certificate')));
  });
}

/** PKIStatusInfo as read back: status, the statusString texts, and the failInfo bit numbers set. */
export interface PkiStatusInfo {
  status: number;
  text: string[];
  failInfoBits: number[];
}

export function parsePkiStatusInfo(node: DerNode): PkiStatusInfo {
  const f = expectChildren(node, TAG_SEQUENCE, 'PKIStatusInfo');
  const out: PkiStatusInfo = { status: readSmallInteger(f[0], 'PKIStatus'), text: [], failInfoBits: [] };
  for (const extra of f.slice(1)) {
    if (extra.tag === TAG_SEQUENCE) {
      out.text = derChildren(extra).map((t) => expectTag(t, 0x0c, 'PKIFreeText UTF8String')).map((t) => t.buf.toString('utf8', t.contentStart, t.end));
    } else {
      const bits = readBitString(extra, 'PKIFailureInfo');
      for (let i = 0; i < bits.bytes.length * 8 - bits.unusedBits; i++) if (bits.bytes[i >> 3] & (0x80 >> (i & 7))) out.failInfoBits.push(i);
    }
  }
  return out;
}

/** The PKIStatusInfo of an error body (ErrorMsgContent), of the first CertResponse of ip/cp/kup, or the first of an rp. */
export function answerStatus(msg: PkiMessage): PkiStatusInfo | undefined {
  const b = msg.body;
  if (b === undefined || !('node' in b)) return undefined;
  return guardDer('PKIStatusInfo', () => {
    const parts = expectChildren(b.node, TAG_SEQUENCE, b.type);
    switch (b.type) {
      case 'error': return parsePkiStatusInfo(parts[0]);
      case 'rp': return parsePkiStatusInfo(expectChildren(parts[0], TAG_SEQUENCE, 'RevRepContent.status')[0]);
      case 'ip': case 'cp': case 'kup': return parsePkiStatusInfo(derChildren(derChildren(parts[parts.length - 1])[0])[1]);
      default: return undefined;
    }
  });
}

/** GenRepContent ::= SEQUENCE OF InfoTypeAndValue (a genp's content). */
export function genpInfos(msg: PkiMessage): InfoTypeAndValue[] {
  const b = msg.body;
  if (b?.type !== 'genp') throw malformed('not a genp');
  return guardDer('GenRepContent', () => expectChildren(b.node, TAG_SEQUENCE, 'GenRepContent').map((i) => {
    const f = expectChildren(i, TAG_SEQUENCE, 'InfoTypeAndValue');
    return { infoType: readOid(f[0], 'infoType'), ...(f[1] !== undefined && { value: f[1] }) };
  }));
}
