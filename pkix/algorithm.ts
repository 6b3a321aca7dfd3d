/**
 * X.509 signature algorithms kakuin writes. (The pkix helper extends this file with encoders.)
 */
export type SignatureAlgorithmName = 'ecdsa-with-SHA256' | 'ecdsa-with-SHA384' | 'Ed25519' | 'sha256WithRSAEncryption';
