/** The URLs of kakuin's ACME resources (enrollment/acme/routes.ts serves them). */
/** Every URL an ACME object names, from the base URL the client reached (https://host:port). */
export class AcmeUrls {
  constructor(readonly base: string) {}
  get directory() { return `${this.base}/acme/directory`; }
  get newNonce() { return `${this.base}/acme/new-nonce`; }
  get newAccount() { return `${this.base}/acme/new-account`; }
  get newOrder() { return `${this.base}/acme/new-order`; }
  get revokeCert() { return `${this.base}/acme/revoke-cert`; }
  get keyChange() { return `${this.base}/acme/key-change`; }
  get renewalInfo() { return `${this.base}/acme/renewal-info`; }
  account(id: string) { return `${this.base}/acme/acct/${id}`; }
  order(id: string) { return `${this.base}/acme/order/${id}`; }
  finalize(id: string) { return `${this.base}/acme/order/${id}/finalize`; }
  authorization(id: string) { return `${this.base}/acme/authz/${id}`; }
  challenge(authzId: string, id: string) { return `${this.base}/acme/chall/${authzId}/${id}`; }
  certificate(serialHex: string) { return `${this.base}/acme/cert/${serialHex}`; }
  /** The account id in a kid URL of this server; undefined for any other URL. */
  accountIdOf(kid: string): string | undefined {
    const prefix = `${this.base}/acme/acct/`;
    return kid.startsWith(prefix) ? kid.slice(prefix.length) : undefined;
  }
}
