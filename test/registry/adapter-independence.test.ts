/**
 * DESIGN.md "Components and folders": the storage adapters under registry/ never import each
 * other, and registry/records/ (the checks every adapter shares) imports no adapter. A static scan
 * of the TypeScript sources: every `import ... from`, `export ... from` and `import(...)` with a
 * relative specifier is resolved and must not land in another adapter's folder.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REGISTRY_ADAPTERS } from '../../registry/adapters.js';
import { repoPath } from '../support/index.js';

const REGISTRY = repoPath('registry');
/** Folders under registry/ that are not adapters: what every adapter may import. */
const SHARED_FOLDERS = new Set(['records']);

/** Relative module specifiers of a source file (static imports and re-exports, dynamic imports). */
export function relativeSpecifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?(?:[\w*\s{},]*?\s+from\s+)?['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const m of source.matchAll(pattern)) if (m[1].startsWith('.')) found.push(m[1]);
  }
  return found;
}

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourcesUnder(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** The folder directly under registry/ that a path is in, if any. */
function registryFolderOf(file: string): string | undefined {
  const rel = path.relative(REGISTRY, file);
  if (rel.startsWith('..') || !rel.includes(path.sep)) return undefined;
  return rel.split(path.sep)[0];
}

function folders(): string[] {
  return readdirSync(REGISTRY).filter((name) => statSync(path.join(REGISTRY, name)).isDirectory());
}

/** Every import from a registry folder into another registry folder it may not use. */
function crossAdapterImports(): string[] {
  const offences: string[] = [];
  for (const folder of folders()) {
    for (const file of sourcesUnder(path.join(REGISTRY, folder))) {
      for (const spec of relativeSpecifiers(readFileSync(file, 'utf8'))) {
        const target = registryFolderOf(path.resolve(path.dirname(file), spec));
        if (target === undefined || target === folder || (SHARED_FOLDERS.has(target) && !SHARED_FOLDERS.has(folder))) continue;
        offences.push(`${path.relative(REGISTRY, file)} imports ${spec}`);
      }
    }
  }
  return offences;
}

describe('registry adapters are independent', function () {
  it('no file under registry/<adapter>/ imports another adapter, and registry/records/ imports none', function () {
    expect(crossAdapterImports()).to.deep.equal([]);
  });

  it('every adapter folder has its entry in the adapter table, and every entry its folder', function () {
    const adapters = folders().filter((f) => !SHARED_FOLDERS.has(f)).sort();
    expect(Object.keys(REGISTRY_ADAPTERS).sort()).to.deep.equal(adapters);
  });

  it('the scan sees static imports, re-exports, type-only imports and dynamic imports', function () {
    // The scan must be able to fail: each form below names a module it has to report.
    const source = [
      "import { a } from '../sqlite/records.js';",
      "import type { B } from '../sqlite/issuance.js';",
      "export { c } from '../sqlite/signed-objects.js';",
      "export * from '../sqlite/queries.js';",
      "import '../sqlite/side-effect.js';",
      "const m = await import('../sqlite/index.js');",
      "import { d } from 'mongodb';",
    ].join('\n');
    expect(relativeSpecifiers(source).sort()).to.deep.equal([
      '../sqlite/index.js', '../sqlite/issuance.js', '../sqlite/queries.js', '../sqlite/records.js', '../sqlite/side-effect.js',
      '../sqlite/signed-objects.js',
    ]);
  });
});
