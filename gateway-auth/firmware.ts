/**
 * The firmware version a device reports (POST /v1/status, the MQTT 5 CONNECT user property
 * `firmware`, the legacy token request's `firmwareVersion`): one form for every front end, so the
 * registry's history and the `firmwareVersion` device filter compare like with like. Semantic
 * versions with pre-release and build parts fit (`2.4.1-rc.1+b77`), as do vendor forms
 * (`V1.02_2026`); spaces and control characters do not (they end up in logs and CSV exports).
 */
import { z } from 'zod';

export const FIRMWARE_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+~:-]{0,63}$/;

export const firmwareVersion = z.string().regex(FIRMWARE_VERSION_PATTERN,
  'must be 1 to 64 characters: letters, digits and . _ + ~ : - (starting with a letter or digit)');

export function isFirmwareVersion(value: unknown): value is string {
  return typeof value === 'string' && FIRMWARE_VERSION_PATTERN.test(value);
}
