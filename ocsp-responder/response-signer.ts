/**
 * Builds and signs OCSP responses (RFC 6960 §4.2.1, RFC 5019 §2.2) with pkix's encoders and the
 * identity's Signer:
 *   - ResponderID byKey: SHA-1 of the delegated responder's public key (RFC 6960 §4.2.1; RFC 5019
 *     §2.2.3 prefers it);
 *   - the responder certificate in `certs`, so a client can check the delegation (RFC 6960
 *     §4.2.2.2) without fetching anything;
 *   - producedAt = thisUpdate = now in whole seconds (RFC 5019 §2.2.4: no fractions), nextUpdate =
 *     thisUpdate + validity, never past the responder certificate's notAfter;
 *   - the request's nonce echoed in the client's own encoding (RFC 8954 §2.1, RFC 6960 §4.4.1).
 */
import {
  encodeBasicOcspResponse, encodeCertId, encodeOcspResponse, encodeResponseData, encodeSingleResponse, type OcspCertStatus,
  type OcspNonceEncoding,
} from '../pkix/index.js';
import type { SignedResponse } from './cached-response.js';
import type { PreparedIdentity } from './signing-identity.js';

export const DEFAULT_VALIDITY_MS = 24 * 3600 * 1000;

export interface ResponseSignerOptions {
  /** nextUpdate − thisUpdate. Default 24 h; at least 2 minutes (a response is re-signed at half life). */
  validityMs?: number;
  /** Clock (ms since 1970); tests move it. */
  now?: () => number;
}

export interface SingleResponseInput {
  /** The CertID DER to state it for: the client's own bytes, or a pre-signed SHA-1 CertID. */
  certIdDer: Buffer;
  status: OcspCertStatus;
}

export interface NonceInput {
  nonce: Buffer;
  nonceEncoding?: OcspNonceEncoding;
}

export class ResponseSigner {
  readonly validityMs: number;
  readonly now: () => number;

  constructor(options: ResponseSignerOptions = {}) {
    const validityMs = options.validityMs ?? DEFAULT_VALIDITY_MS;
    if (!Number.isInteger(validityMs) || validityMs < 120_000 || validityMs > 366 * 24 * 3600 * 1000) {
      throw new RangeError('validityMs must be an integer between 2 minutes and 366 days');
    }
    this.validityMs = validityMs;
    this.now = options.now ?? Date.now;
  }

  /** The SHA-1 CertID a pre-signed response is stored under (RFC 5019 §2.1.1: clients MUST use SHA-1). */
  presignedCertId(identity: PreparedIdentity, serialHex: string): Buffer {
    return encodeCertId('sha1', identity.issuerNameDer, identity.issuerSubjectPublicKey, Buffer.from(serialHex, 'hex'));
  }

  /** The window a response signed now states: [thisUpdate, nextUpdate], whole seconds. */
  window(identity: PreparedIdentity): { thisUpdateMs: number; nextUpdateMs: number } {
    const thisUpdateMs = Math.floor(this.now() / 1000) * 1000;
    const capped = Math.floor(identity.responderNotAfterMs / 1000) * 1000;
    const nextUpdateMs = Math.max(thisUpdateMs, Math.min(thisUpdateMs + this.validityMs, capped));
    return { thisUpdateMs, nextUpdateMs };
  }

  /**
   * One signed OCSPResponse holding one SingleResponse per input, in order. `status` of the result
   * is the first input's. Rejects with the signer's error (KAKUIN_E_SIGNING_FAILED).
   */
  async sign(identity: PreparedIdentity, inputs: readonly SingleResponseInput[], nonce?: NonceInput): Promise<SignedResponse> {
    const { thisUpdateMs, nextUpdateMs } = this.window(identity);
    const thisUpdate = new Date(thisUpdateMs);
    const nextUpdate = new Date(nextUpdateMs);
    const singles = new Array<Buffer>(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      singles[i] = encodeSingleResponse({ certId: inputs[i].certIdDer, certStatus: inputs[i].status, thisUpdate, nextUpdate });
    }
    const tbs = encodeResponseData({
      responderKeyHash: identity.responderKeyHash, producedAt: thisUpdate, responses: singles,
      ...(nonce !== undefined && { nonce: nonce.nonce, nonceEncoding: nonce.nonceEncoding ?? 'octet-string' }),
    });
    const signature = await identity.signer.sign(tbs);
    const der = encodeOcspResponse(encodeBasicOcspResponse(tbs, identity.signer.signatureAlgorithm, signature, [identity.responderCertificateDer]));
    return { der, status: inputs[0].status, thisUpdateMs, nextUpdateMs };
  }

  /** One pre-signed response per certificate (SHA-1 CertIDs), signed concurrently (a PKCS#11 signer overlaps them). */
  signEach(identity: PreparedIdentity, items: readonly { serialHex: string; status: OcspCertStatus }[]): Promise<SignedResponse[]> {
    return Promise.all(items.map((item) => this.sign(identity, [{ certIdDer: this.presignedCertId(identity, item.serialHex), status: item.status }])));
  }
}
