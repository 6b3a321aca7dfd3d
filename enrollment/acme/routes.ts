/**
 * ACME (RFC 8555) on the management API port, under /acme/ (HTTPS only, §6.1):
 *
 *   GET  /acme/directory                 anyone  the directory (§7.1.1), meta.externalAccountRequired
 *   HEAD|GET /acme/new-nonce             anyone  a Replay-Nonce (§7.2)
 *   POST /acme/new-account               JWS (jwk) + external account binding → 201/200, Location: account URL
 *   POST /acme/acct/{id}                 JWS (kid)  POST-as-GET, contact update, deactivation
 *   POST /acme/key-change                JWS (kid)  account key rollover (§7.3.5)
 *   POST /acme/new-order                 JWS (kid)  → 201, Location: order URL; names the EAB key allows only
 *   POST /acme/order/{id}                JWS (kid)  POST-as-GET
 *   POST /acme/order/{id}/finalize       JWS (kid)  {csr} → the order (valid, with its certificate URL)
 *   POST /acme/authz/{id}                JWS (kid)  POST-as-GET, deactivation
 *   POST /acme/chall/{authzId}/{id}      JWS (kid)  {} starts validation; POST-as-GET reads it
 *   POST /acme/cert/{serialHex}          JWS (kid)  application/pem-certificate-chain
 *   POST /acme/revoke-cert               JWS (kid, or jwk of the certificate's key)
 *   GET  /acme/renewal-info/{certId}     anyone  ARI (RFC 9773 §4.2): suggestedWindow, Retry-After
 *
 * Every answer carries a fresh Replay-Nonce and Link rel="index"; every error is a problem
 * document (problems.ts). The JWS is the credential: the role table lists these as `anyone`.
 * URLs are built from the Host the client reached, so the JWS `url` check compares like with like.
 */
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { ApiRoutes } from '../../api-schema/routes.js';
import { KakuinError } from '../../errors/index.js';
import { routeNotFound, type Logger } from '../../management-api/http-errors.js';
import type { VerifiedJws } from './jws.js';
import { acmeProblemHandler } from './problems.js';
import { accountJson, authorizationJson, challengeJson, orderJson, pemChain } from './representations.js';
import type { AcmeService } from './service.js';
import { AcmeUrls } from './urls.js';

const JOSE = 'application/jose+json';
const MAX_JWS_BYTES = 64 * 1024;

export interface AcmeRouteDeps {
  service: AcmeService;
  logger: Logger;
}

function urlsOf(req: Request): AcmeUrls {
  const host = req.get('host');
  if (host === undefined || !/^[A-Za-z0-9.:[\]-]{1,300}$/.test(host)) throw new KakuinError('KAKUIN_E_ACME_MALFORMED', 'the request needs a Host header');
  return new AcmeUrls(`https://${host}`);
}

export function mountAcme(routes: ApiRoutes, deps: AcmeRouteDeps): void {
  const { service } = deps;
  const raw = express.raw({ type: JOSE, limit: MAX_JWS_BYTES });
  const jose = { [JOSE]: { parser: raw, description: 'a flattened JWS (RFC 8555 §6.2)' } };

  // §6.5: the server "MUST provide an unused nonce" in the Replay-Nonce header of every POST answer (and may on others).
  const nonceAndIndex: RequestHandler = (req, res, next) => {
    res.set('Replay-Nonce', service.nonces.issue());
    try {
      res.set('Link', `<${urlsOf(req).directory}>;rel="index"`);
    } catch {
      // The handler refuses the request; the index link is only a courtesy.
    }
    next();
  };
  routes.use('/acme', nonceAndIndex);

  routes.add({
    method: 'get', path: '/acme/directory', summary: 'ACME directory (RFC 8555 §7.1.1)', callers: ['anyone'],
    handler: ({ req, res }) => res.json(service.directory(urlsOf(req))),
  });

  routes.add({
    method: 'get', path: '/acme/new-nonce', summary: 'ACME: a fresh Replay-Nonce (HEAD: 200, GET: 204, RFC 8555 §7.2)', callers: ['anyone'],
    response: { status: 204, description: 'no body; the nonce is in Replay-Nonce' },
    handler: ({ req, res }) => { res.status(req.method === 'HEAD' ? 200 : 204).end(); },
  });

  type Handler = (v: VerifiedJws, urls: AcmeUrls, params: Record<string, string>, res: Response) => Promise<void>;
  const post = (path: string, summary: string, signer: 'jwk' | 'kid' | 'either', handler: Handler) => {
    routes.add({
      method: 'post', path, summary: `ACME: ${summary}`, callers: ['anyone'], body: { media: jose },
      handler: async ({ req, res, params }) => {
        // §6.2: "with Content-Type application/jose+json"; anything else is refused with 415.
        if (!req.is(JOSE)) throw new KakuinError('KAKUIN_E_ACME_MALFORMED', `ACME requests are ${JOSE}`, { status: 415 });
        const urls = urlsOf(req);
        const v = await service.verify(req.body, `${urls.base}${req.originalUrl}`, urls, signer);
        await handler(v, urls, params, res);
      },
    });
  };

  post('/acme/new-account', 'create or find an account (external account binding required)', 'jwk', async (v, urls, _req, res) => {
    const { account, created } = await service.newAccount(v, urls);
    res.status(created ? 201 : 200).set('Location', urls.account(account.id)).json(accountJson(account));
  });

  post('/acme/acct/{id}', 'the account: read, update contact, deactivate', 'kid', async (v, urls, params, res) => {
    const account = await service.updateAccount(v, params.id);
    res.set('Location', urls.account(account.id)).json(accountJson(account));
  });

  post('/acme/key-change', 'account key rollover (RFC 8555 §7.3.5)', 'kid', async (v, urls, _req, res) => {
    const account = await service.keyChange(v, urls);
    res.set('Location', urls.account(account.id)).json(accountJson(account));
  });

  post('/acme/new-order', 'a new order for names the account\'s EAB key allows', 'kid', async (v, urls, _req, res) => {
    const order = await service.newOrder(v);
    res.status(201).set('Location', urls.order(order.id)).json(orderJson(order, urls));
  });

  post('/acme/order/{id}', 'the order', 'kid', async (v, urls, params, res) => {
    res.json(orderJson(await service.order(v, params.id), urls));
  });

  post('/acme/order/{id}/finalize', 'finalize with a CSR: the infrastructure CA issues', 'kid', async (v, urls, params, res) => {
    const order = await service.finalize(v, params.id);
    res.set('Location', urls.order(order.id)).json(orderJson(order, urls));
  });

  post('/acme/authz/{id}', 'the authorization: read, deactivate', 'kid', async (v, urls, params, res) => {
    res.json(authorizationJson(await service.updateAuthorization(v, params.id), urls));
  });

  post('/acme/chall/{authzId}/{id}', 'the challenge: {} starts validation', 'kid', async (v, urls, params, res) => {
    const { authz, challenge } = await service.answerChallenge(v, params.authzId, params.id);
    res.set('Link', `<${urls.authorization(authz.id)}>;rel="up"`).json(challengeJson(authz.id, challenge, urls));
  });

  post('/acme/cert/{serialHex}', 'the certificate with its chain (PEM)', 'kid', async (v, _urls, params, res) => {
    const chain = await service.certificateChain(v, params.serialHex);
    res.status(200).type('application/pem-certificate-chain').send(Buffer.from(pemChain(chain), 'latin1'));
  });

  post('/acme/revoke-cert', 'revoke a certificate (by the account that ordered it, or the certificate\'s key)', 'either', async (v, _urls, _req, res) => {
    await service.revoke(v);
    res.status(200).end();
  });

  routes.add({
    method: 'get', path: '/acme/renewal-info/{certId}', summary: 'ACME renewal information (RFC 9773): the suggested renewal window', callers: ['anyone'],
    handler: async ({ res, params }) => {
      const info = await service.renewalInfo(params.certId);
      res.set('Retry-After', String(info.retryAfterSeconds)).json({ suggestedWindow: info.suggestedWindow });
    },
  });

  routes.use('/acme', routeNotFound, acmeProblemHandler(deps.logger, () => service.nonces.issue()));
}
