import path from 'node:path';
import { createAdminToken } from '../management-api/admin-tokens.js';
import type { Kakuin } from './wiring.js';
import { writePrivateFile } from './secrets.js';

/**
 * The first admin token. `KAKUIN_ADMIN_TOKEN` is always accepted (as the admin `bootstrap`).
 * Without it, a registry with no admin token gets one named `initial-admin`, printed once and kept
 * in `<dataDir>/secrets/admin-token` (mode 0600) for the operator.
 */
export async function ensureFirstAdminToken(kakuin: Kakuin, env: Record<string, string | undefined>): Promise<{ token?: string; file?: string }> {
  if (env.KAKUIN_ADMIN_TOKEN) return {};
  const file = path.join(kakuin.config.secrets.directory, 'admin-token');
  if ((await kakuin.registry.listAdminTokens()).length > 0) return { file };
  const { token } = await createAdminToken(kakuin.registry, kakuin.pepper, 'initial-admin', 'system');
  writePrivateFile(file, `${token}\n`);
  return { token, file };
}
