/**
 * `kakuin user ...` on the host: people's logins (management-api/users.ts). The first admin is
 * made here (the API's user routes need an admin already); every change is an audit event with
 * actor `cli`. What a person must be shown once — a generated password, the otpauth:// URI of a
 * new TOTP secret — is printed once and never stored in the clear.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KakuinError } from '../errors/index.js';
import { UserAccounts, userJson } from '../management-api/users.js';
import type { UserStore } from '../registry/users.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';
import { openKakuin } from './wiring.js';

export const USER_USAGE = 'kakuin user create --name NAME --role admin|operator|auditor|manufacturer [--manufacturer ID] [--totp] [--password-stdin]'
  + ' | user list | user disable|enable --name NAME | user reset-password --name NAME [--password-stdin] | user reset-totp --name NAME';

/** The password from standard input (one line; a trailing newline is not part of it). */
function passwordFromStdin(): string {
  return readFileSync(0, 'utf8').replace(/\r?\n$/, '');
}

export async function userCommand(config: KakuinConfig, logger: Logger, rest: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: rest, allowPositionals: true, strict: true,
      options: { name: { type: 'string' }, role: { type: 'string' }, manufacturer: { type: 'string' }, totp: { type: 'boolean' }, 'password-stdin': { type: 'boolean' } },
    });
  } catch (e) {
    throw new KakuinError('KAKUIN_E_USAGE', `${(e as Error).message}\nusage: ${USER_USAGE}`);
  }
  const { values, positionals } = parsed;
  const action = positionals[0];
  const actions = ['create', 'list', 'disable', 'enable', 'reset-password', 'reset-totp'];
  if (action === undefined || !actions.includes(action) || positionals.length > 1 || (action !== 'list' && values.name === undefined)
    || (action !== 'create' && (values.role !== undefined || values.manufacturer !== undefined || values.totp !== undefined))
    || (action === 'create' && values.role === undefined)
    || (values['password-stdin'] === true && action !== 'create' && action !== 'reset-password')) {
    throw new KakuinError('KAKUIN_E_USAGE', `usage: ${USER_USAGE}`);
  }
  const chosen = values['password-stdin'] === true ? passwordFromStdin() : undefined;
  const kakuin = await openKakuin(config, logger, { bootstrap: false, actor: 'cli' });
  try {
    const store = (kakuin.registry as { users?: UserStore }).users;
    if (store === undefined) throw new KakuinError('KAKUIN_E_CONFIG', 'this registry adapter keeps no users');
    const accounts = new UserAccounts(kakuin.registry, store, kakuin.pepper, { passwordKdfCost: config.users.passwordKdfCost });
    const out = (line: string) => process.stdout.write(`${line}\n`);
    const once = (c: { password?: string; totpUri?: string }) => {
      if (c.password !== undefined) out(`password (shown once, hand it over now): ${c.password}`);
      if (c.totpUri !== undefined) out(`TOTP secret for the authenticator app (shown once; a QR code of this line): ${c.totpUri}`);
    };
    switch (action) {
      case 'create': {
        const r = await accounts.create({
          name: values.name!, role: values.role!, ...(values.manufacturer !== undefined && { manufacturerId: values.manufacturer }),
          ...(chosen !== undefined && { password: chosen }), ...(values.totp === true && { totp: true }),
        }, 'cli');
        const of = r.user.manufacturerId !== undefined ? ` of manufacturer ${r.user.manufacturerId}` : '';
        out(`user ${r.user.name} created (role ${r.user.role}${of}${r.user.totpSecret !== undefined ? ', TOTP second factor' : ''})`);
        once(r);
        break;
      }
      case 'disable':
        out(`user ${(await accounts.disable(values.name!, 'cli')).name} disabled; its sessions ended`);
        break;
      case 'enable':
        out(`user ${(await accounts.enable(values.name!, 'cli')).name} enabled`);
        break;
      case 'reset-password': {
        const r = await accounts.resetPassword(values.name!, 'cli', chosen);
        out(`password of ${r.user.name} reset; its sessions ended`);
        once(r);
        break;
      }
      case 'reset-totp': {
        const r = await accounts.resetTotp(values.name!, 'cli');
        out(`TOTP secret of ${r.user.name} replaced; its sessions ended`);
        once(r);
        break;
      }
      default: {
        const rows = [];
        for (let after: string | undefined, page; (page = await store.listUsers({ afterKey: after, limit: 500 })).length > 0; after = page[page.length - 1].name) {
          rows.push(...page.map(userJson));
          if (page.length < 500) break;
        }
        const cells = [['NAME', 'ROLE', 'STATUS', 'TOTP', 'CREATED', 'LAST LOGIN', 'MANUFACTURER'],
          ...rows.map((u) => [u.name, u.role, u.status, u.totp ? 'yes' : 'no', u.createdAt, u.lastLoginAt ?? '-', u.manufacturerId ?? '-'])];
        const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
        for (const r of cells) out(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
      }
    }
  } finally {
    await kakuin.close();
  }
  return 0;
}
