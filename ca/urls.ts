/**
 * The URLs kakuin writes into certificates, all on the plain-HTTP listener (DESIGN.md "Identities,
 * roles and URLs"): relying parties fetch signed objects there without TLS, which RFC 5280 §4.2.1.13
 * and RFC 6960 expect (an HTTPS CRL or OCSP URL would need revocation checking of its own).
 */
export interface PublicUrls {
  ocsp: string;
  crl(issuerId: string): string;
  caIssuers(issuerId: string): string;
}

export function publicUrls(publicHttpUrl: string): PublicUrls {
  const base = publicHttpUrl.replace(/\/+$/, '');
  return {
    ocsp: `${base}/ocsp`,
    crl: (issuerId) => `${base}/crl/${encodeURIComponent(issuerId)}.crl`,
    caIssuers: (issuerId) => `${base}/ca/${encodeURIComponent(issuerId)}.cer`,
  };
}
