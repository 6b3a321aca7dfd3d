/**
 * PEM armour (RFC 7468): "-----BEGIN label-----", base64 of the DER in lines of 64 characters,
 * "-----END label-----".
 */
import { KakuinError } from '../errors/index.js';

/** RFC 7468 §2: generators wrap base64 at exactly 64 characters. Ends with a newline. */
export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

const BLOCK_RE = /-----BEGIN ([A-Z0-9][A-Z0-9 ]*)-----\r?\n?([\s\S]*?)-----END ([A-Z0-9][A-Z0-9 ]*)-----/g;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBlocks(text: string, accept: (label: string) => boolean, wanted: string): { label: string; der: Buffer }[] {
  if (typeof text !== 'string') throw new KakuinError('KAKUIN_E_PEM_MALFORMED', 'PEM input must be text');
  const out: { label: string; der: Buffer }[] = [];
  for (const m of text.matchAll(BLOCK_RE)) {
    if (m[1] !== m[3]) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', `PEM block BEGIN ${m[1]} ends with END ${m[3]}`);
    if (!accept(m[1])) continue;
    const b64 = m[2].replace(/[ \t\r\n]/g, '');
    if (b64.length === 0 || !BASE64_RE.test(b64)) {
      throw new KakuinError('KAKUIN_E_PEM_MALFORMED', `PEM block ${m[1]} does not hold valid base64`);
    }
    out.push({ label: m[1], der: Buffer.from(b64, 'base64') });
  }
  if (out.length === 0) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', `no PEM block${wanted} found`);
  return out;
}

/**
 * The DER of every PEM block in `text` (of `label` when given), in order. Text around the blocks
 * (OpenSSL's "Certificate:" dumps, comments) is ignored, as RFC 7468 §2 allows.
 * KAKUIN_E_PEM_MALFORMED when there is no such block or a block's base64 is bad.
 */
export function fromPem(text: string, label?: string): Buffer[] {
  return decodeBlocks(text, (l) => label === undefined || l === label, label === undefined ? '' : ` labelled ${label}`).map((b) => b.der);
}

/** Like fromPem, accepting any of several labels (e.g. "CERTIFICATE REQUEST" and "NEW CERTIFICATE REQUEST"). */
export function fromPemAny(text: string, labels: readonly string[]): { label: string; der: Buffer }[] {
  return decodeBlocks(text, (l) => labels.includes(l), ` labelled ${labels.join(' or ')}`);
}
