/**
 * The legacy token path in process: token validations per second on the data path (signature,
 * expiry, identifier match, kill-switch look-up), and token issuances per second (registry look-up,
 * secret check, signing) for generated (HMAC) and imported (scrypt, async in the libuv pool) secrets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  generateAuthSecret, hmacVerifier, LegacyAbuseGuard, LegacyAuthService, LegacyKillSwitch, LegacyTokenSigner, scryptVerifier, SCRYPT_COST,
} from '../gateway-auth/legacy/index.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';
import { registerDevices, runConcurrent } from './fixtures.js';

const quiet = { info() {}, warn() {}, error() {} };

export async function benchLegacy(scale = 1): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-legacy-'));
  const registry = await openSqliteRegistry({ path: path.join(dir, 'kakuin.db') });
  const pepper = randomBytes(32);
  try {
    const devicesHmac = Math.max(100, Math.round(2000 * scale));
    const devicesScrypt = Math.max(20, Math.round(200 * scale));
    const { manufacturerId, deviceIds } = await registerDevices(registry, devicesHmac + devicesScrypt, 'LEG');
    const cai = await registry.createCommonAuthId({ name: 'bench', manufacturerId });
    const secrets = deviceIds.map(() => generateAuthSecret());
    const creds = await Promise.all(deviceIds.map(async (deviceId, i) => ({
      deviceId, commonAuthId: cai.id, uniqueId: `u-${i}`,
      verifierKind: i < devicesHmac ? 'hmac' as const : 'scrypt' as const,
      verifier: i < devicesHmac ? hmacVerifier(pepper, secrets[i]) : await scryptVerifier(pepper, secrets[i]),
    })));
    await registry.putLegacyCredentials(creds, []);
    const killSwitch = new LegacyKillSwitch({ registry, logger: quiet, statusGraceMs: 60_000 });
    await killSwitch.start();
    const tokens = new LegacyTokenSigner(pepper);
    const auth = new LegacyAuthService({
      registry, pepper, tokens, killSwitch, logger: quiet,
      abuse: new LegacyAbuseGuard(registry, { burstLimit: 10, commonAuthIdLimit: 1e6, sourceLimit: 1e6, backoffBaseMs: 100, backoffMaxMs: 8000 }),
      tokenTtlMs: 3600_000, throttleDelayMs: 0,
    });

    const hmacTime = await runConcurrent(devicesHmac, 64, (i) => auth.authenticate({ commonAuthId: cai.id, uniqueId: `u-${i}`, authSecret: secrets[i] }, '127.0.0.1'));
    const scryptTime = await runConcurrent(devicesScrypt, 16, (i) => {
      const j = devicesHmac + i;
      return auth.authenticate({ commonAuthId: cai.id, uniqueId: `u-${j}`, authSecret: secrets[j] }, '127.0.0.1');
    });

    const issued = await Promise.all(deviceIds.slice(0, 1000).map(async (id, i) => ({
      id, header: `Bearer ${(await auth.authenticate({ commonAuthId: cai.id, uniqueId: `u-${i}`, authSecret: secrets[i] }, '127.0.0.1')).token}`,
    })));
    const validations = Math.max(20_000, Math.round(200_000 * scale));
    const start = process.hrtime.bigint();
    for (let i = 0; i < validations; i++) {
      const t = issued[i % issued.length];
      auth.validate(t.header, t.id);
    }
    const validateTime = Number(process.hrtime.bigint() - start) / 1e9;
    await killSwitch.stop();
    return {
      legacy_token_validations_per_s: Math.round(validations / validateTime),
      legacy_token_issuances_hmac_per_s: Math.round(devicesHmac / hmacTime),
      legacy_token_issuances_scrypt_per_s: Math.round(devicesScrypt / scryptTime),
      legacy_scrypt_log2_n: SCRYPT_COST.log2N,
    };
  } finally {
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
