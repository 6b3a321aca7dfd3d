/**
 * Which of two firmware versions is older (the `firmwareDowngrade` rule). Versions are what devices
 * report (`2.10.1`, `v3.0.0-rc2`, `2024.11.3`): compared segment by segment, digits as numbers, so
 * 2.10 is newer than 2.9; a pre-release suffix (`-rc2`) sorts before its release, as in SemVer §11.
 */
function segments(v: string): (number | string)[] {
  return v.replace(/^v/i, '').split(/[.\-+_]/).map((s) => (/^\d+$/.test(s) ? Number(s) : s.toLowerCase()));
}

/** Negative when a is older than b, 0 when equal, positive when newer. */
export function compareFirmware(a: string, b: string): number {
  const x = segments(a);
  const y = segments(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === q) continue;
    // 1.0 vs 1.0-rc1: the shorter (a release) is newer than the pre-release.
    if (p === undefined) return typeof q === 'string' ? 1 : -1;
    if (q === undefined) return typeof p === 'string' ? -1 : 1;
    if (typeof p === 'number' && typeof q === 'number') return p - q;
    if (typeof p === 'number') return 1;
    if (typeof q === 'number') return -1;
    return p < q ? -1 : 1;
  }
  return 0;
}
