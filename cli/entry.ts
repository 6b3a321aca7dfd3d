#!/usr/bin/env node
/**
 * The `kakuin` executable. `kakuin revocation sync` runs on a broker's or proxy's host, where no
 * native addon may be loaded (no better-sqlite3, no pkcs11js): it reaches revocation-sync/ (pkix
 * only) without importing the rest; every other command goes to main.ts.
 */
const argv = process.argv.slice(2);
if (argv[0] === 'revocation' && argv[1] === 'sync') {
  const [{ revocationSyncCommand }, { isKakuinError }] = await Promise.all([import('../revocation-sync/command.js'), import('../errors/index.js')]);
  revocationSyncCommand(argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (e: unknown) => {
      if (isKakuinError(e)) {
        process.stderr.write(`kakuin: ${e.code}: ${e.message}\n`);
        process.exitCode = e.code === 'KAKUIN_E_USAGE' ? 2 : 1;
      } else {
        process.stderr.write(`kakuin: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
        process.exitCode = 1;
      }
    },
  );
} else {
  await import('./main.js');
}
