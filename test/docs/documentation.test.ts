import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ERROR_CATALOGUE } from '../../errors/index.js';
import { configFileOptions, ENV_ONLY, ENV_OPTIONS } from '../../cli/config.js';
import { repoPath } from '../support/index.js';

const SOURCE_DIRS = ['errors', 'pkix', 'hsm-adapters', 'registry', 'ca', 'cli', 'ocsp-responder', 'enrollment', 'gateway-auth', 'api-schema'];

function sourceFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

describe('documentation', () => {
  const errorsDoc = readFileSync(repoPath('docs', 'errors.md'), 'utf8');

  it('documents every error code in the catalogue', () => {
    const missing = Object.keys(ERROR_CATALOGUE).filter((code) => !errorsDoc.includes(`\`${code}\``));
    expect(missing, `codes missing from docs/errors.md`).to.deep.equal([]);
  });

  it('documents no code that the catalogue does not have', () => {
    const documented = new Set(errorsDoc.match(/KAKUIN_E_[A-Z0-9_]+/g) ?? []);
    const unknown = [...documented].filter((c) => !(c in ERROR_CATALOGUE));
    expect(unknown, 'docs/errors.md names codes that do not exist').to.deep.equal([]);
  });

  it('uses no KAKUIN_E_ code in source that is missing from the catalogue', () => {
    const files = SOURCE_DIRS.flatMap((d) => sourceFiles(repoPath(d)));
    expect(files.length).to.be.greaterThan(10);
    const stray: string[] = [];
    for (const f of files) {
      for (const code of readFileSync(f, 'utf8').match(/KAKUIN_E_[A-Z0-9_]+/g) ?? []) {
        if (!(code in ERROR_CATALOGUE)) stray.push(`${path.relative(repoPath(), f)}: ${code}`);
      }
    }
    expect(stray).to.deep.equal([]);
  });

  it('documents every configuration option and environment variable', () => {
    const configDoc = readFileSync(repoPath('docs', 'configuration.md'), 'utf8');
    const names = [...configFileOptions(), ...Object.keys(ENV_OPTIONS), ...ENV_ONLY];
    const missing = names.filter((n) => !configDoc.includes(`\`${n}\``));
    expect(missing, 'options missing from docs/configuration.md').to.deep.equal([]);
  });
});
