/**
 * SoftHSM2 for tests: one token directory per test run (a temporary SOFTHSM2_CONF, set in this
 * process before the module is first initialised), a fresh token per caller.
 *
 * When the module is missing the PKCS#11 tests are skipped with a message, unless
 * KAKUIN_REQUIRE_SOFTHSM=1 (CI sets it), which turns the skip into a failure.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SOFTHSM2_DEFAULT_MODULE } from '../../hsm-adapters/pkcs11/index.js';

export const TEST_PIN = '1234-test-pin';
export const TEST_SO_PIN = '5678-test-so-pin';

export function softhsmModulePath(): string {
  return process.env.KAKUIN_PKCS11_MODULE || SOFTHSM2_DEFAULT_MODULE;
}

/**
 * Call from a `before` hook: skips the suite when SoftHSM2 is not installed, or fails it when
 * KAKUIN_REQUIRE_SOFTHSM=1. Returns the module path.
 */
export function requireSoftHsm(context: Mocha.Context): string {
  const modulePath = softhsmModulePath();
  const util = spawnSync('softhsm2-util', ['--version']);
  if (existsSync(modulePath) && !util.error) return modulePath;
  const why = `SoftHSM2 is not installed (no ${modulePath} or no softhsm2-util); apt-get install softhsm2, or set KAKUIN_PKCS11_MODULE`;
  if (process.env.KAKUIN_REQUIRE_SOFTHSM === '1') throw new Error(`${why} — KAKUIN_REQUIRE_SOFTHSM=1 requires the PKCS#11 tests to run`);
  console.log(`      (skipped: ${why})`);
  context.skip();
}

let tokenDir: string | undefined;

/** The SOFTHSM2_CONF of this run, created once and removed at exit. */
export function softhsmConf(): string {
  if (tokenDir === undefined) {
    const root = path.join(tmpdir(), `kakuin-softhsm-${process.pid}-${randomBytes(3).toString('hex')}`);
    const dir = path.join(root, 'tokens');
    mkdirSync(dir, { recursive: true });
    const conf = path.join(root, 'softhsm2.conf');
    writeFileSync(conf, `directories.tokendir = ${dir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    process.env.SOFTHSM2_CONF = conf;
    process.on('exit', () => rmSync(root, { recursive: true, force: true }));
    tokenDir = root;
  }
  return path.join(tokenDir, 'softhsm2.conf');
}

/** A new token labelled `kakuin-<what>-<random>` with the test PINs; returns its label. */
export function createToken(what: string): string {
  const conf = softhsmConf();
  const label = `kakuin-${what}-${randomBytes(3).toString('hex')}`.slice(0, 32);
  const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', TEST_PIN, '--so-pin', TEST_SO_PIN], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
  });
  if (r.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${r.stderr.toString()}${r.stdout.toString()}`);
  return label;
}
