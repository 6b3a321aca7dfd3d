/**
 * The README runs top to bottom. Every block fenced ```sh run is run, in README order, in one bash
 * session (`set -euo pipefail`, so shell variables carry from one section to the next) against the
 * real `kakuin serve` (dist/cli/main.js) on free ports and an empty data directory, the way an
 * operator follows the walkthroughs. A block that fails names its README line and its output.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, repoPath, repoRoot } from '../support/index.js';
import { spawnService, type ChildService } from '../support/service.js';

export interface RunnableBlock {
  /** README line of the opening fence (1-based). */
  line: number;
  body: string[];
}

/** The blocks fenced ```sh run (the info string's first word `sh`, then `run`), in order. */
export function runnableBlocks(markdown: string): RunnableBlock[] {
  const lines = markdown.split('\n');
  const blocks: RunnableBlock[] = [];
  let open: { line: number; run: boolean; body: string[] } | undefined;
  lines.forEach((text, i) => {
    if (open === undefined) {
      // CommonMark: a backtick fence's info string has no backtick (so ```` ```sh run ```` in prose is no fence).
      const fence = /^(\s*)`{3,}([^`]*)$/.exec(text);
      if (!fence) return;
      const run = /^sh\s+run$/.test(fence[2].trim());
      if (run && fence[1] !== '') throw new Error(`README line ${i + 1}: an indented \`\`\`sh run block would be skipped; start its fence in column 1`);
      open = { line: i + 1, run, body: [] };
    } else if (/^\s*`{3,}\s*$/.test(text)) {
      if (open.run) blocks.push({ line: open.line, body: open.body });
      open = undefined;
    } else {
      open.body.push(text);
    }
  });
  if (open?.run) throw new Error(`README line ${open.line}: the \`\`\`sh run block is not closed`);
  return blocks;
}

export interface BlockRun {
  status: 'passed' | 'failed' | 'timed out';
  /** The failing block's opening fence line, and the README line bash was on when the command failed. */
  failedBlockLine?: number;
  failedLine?: number;
  /** Everything the failing block printed (stdout and stderr, interleaved); all output when it passed. */
  output: string;
}

const BLOCK_MARK = '::readme-block';
const FAIL_MARK = '::readme-failed';

/** Run the blocks in one bash session in `cwd` with `env`; stops at the first failing command. */
export async function runBlocks(blocks: RunnableBlock[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<BlockRun> {
  // Script line → README line, so the ERR trap's $LINENO names the README line of the failing command.
  const script = ['set -Eeuo pipefail', `trap 'rc=$?; echo "${FAIL_MARK} $LINENO $rc" >&2' ERR`];
  const readmeLine = new Map<number, number>();
  for (const b of blocks) {
    script.push(`echo '${BLOCK_MARK} ${b.line}'`);
    b.body.forEach((text, i) => {
      script.push(text);
      readmeLine.set(script.length, b.line + 1 + i);
    });
  }
  script.push(`echo '${BLOCK_MARK} end'`);
  const scriptFile = path.join(options.cwd, '.readme-blocks.sh');
  const logFile = path.join(options.cwd, '.readme-blocks.log');
  writeFileSync(scriptFile, `${script.join('\n')}\n`);
  const log = openSync(logFile, 'w');
  let timedOut = false;
  const code = await new Promise<number | null>((resolve, reject) => {
    // One output file for stdout and stderr keeps what a command printed in the order it printed it.
    const proc = spawn('bash', ['--noprofile', '--norc', scriptFile], { cwd: options.cwd, env: options.env, stdio: ['ignore', log, log], detached: true });
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-proc.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, options.timeoutMs);
    proc.once('error', reject);
    proc.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  closeSync(log);
  const all = readFileSync(logFile, 'utf8');
  const marks = [...all.matchAll(new RegExp(`^${BLOCK_MARK} (\\S+)$`, 'gm'))];
  if (code === 0 && !timedOut && marks.at(-1)?.[1] === 'end') return { status: 'passed', output: all };
  const last = marks.filter((m) => m[1] !== 'end').at(-1);
  const output = last ? all.slice(last.index! + last[0].length + 1) : all;
  // The last trap report is the command that stopped the shell (earlier ones: a failure inside a process
  // substitution, which does not stop it).
  const failed = [...output.matchAll(new RegExp(`^${FAIL_MARK} (\\d+) (\\d+)$`, 'gm'))].at(-1);
  return {
    status: timedOut ? 'timed out' : 'failed',
    failedBlockLine: last ? Number(last[1]) : undefined,
    failedLine: failed ? readmeLine.get(Number(failed[1])) : undefined,
    output: output.replace(new RegExp(`^${FAIL_MARK} .*\\n?`, 'gm'), ''),
  };
}

/** The environment the walkthrough's shell and kakuin get: the caller's, without any KAKUIN_* of its own. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KAKUIN_')) env[k] = v;
  return { ...env, ...extra };
}

function describeFailure(r: BlockRun): string {
  const where = r.failedLine !== undefined ? `README.md line ${r.failedLine} (block at line ${r.failedBlockLine})` : `README.md block at line ${r.failedBlockLine}`;
  return `${where} ${r.status}; its output:\n${r.output.trimEnd()}`;
}

describe('README runner', () => {
  describe('the runner itself', () => {
    let dir: string;
    beforeEach(() => { dir = mkdtempSync(path.join(repoRoot, '.readme-run-')); });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('takes only the blocks fenced sh run, in order, with the line of their fence', () => {
      const md = ['# t', '```sh', 'echo no', '```', '```sh run', 'echo one', '```', 'text', '```sh run', 'echo two', 'echo three', '```', '```', 'plain', '```'].join('\n');
      expect(runnableBlocks(md)).to.deep.equal([{ line: 5, body: ['echo one'] }, { line: 9, body: ['echo two', 'echo three'] }]);
    });

    it('takes inline code in prose for what it is, not for a fence', () => {
      expect(runnableBlocks('Blocks fenced\n```` ```sh run ```` are run.\n```sh run\necho one\n```\n')).to.deep.equal([{ line: 3, body: ['echo one'] }]);
    });

    it('refuses an indented or unclosed sh run block instead of skipping it', () => {
      expect(() => runnableBlocks('- item\n  ```sh run\n  echo x\n  ```\n')).to.throw(/line 2: an indented/);
      expect(() => runnableBlocks('x\n```sh run\necho x\n')).to.throw(/line 2: .* not closed/);
    });

    it('carries variables from one block to the next and names the README line of a failing command with its output', async () => {
      const blocks = runnableBlocks(['```sh run', 'A=hello', '```', '', '```sh run', 'echo "$A from block two"', 'ls /nonexistent-readme-path', 'echo never', '```'].join('\n'));
      const r = await runBlocks(blocks, { cwd: dir, env: cleanEnv({}), timeoutMs: 10_000 });
      expect(r.status).to.equal('failed');
      expect(r.failedBlockLine).to.equal(5);
      expect(r.failedLine).to.equal(7);
      expect(r.output).to.contain('hello from block two').and.contain('/nonexistent-readme-path').and.not.contain('never');
    });

    it('fails a pipeline whose first command fails and an undefined variable', async () => {
      const pipe = await runBlocks(runnableBlocks('```sh run\nfalse | cat\n```\n'), { cwd: dir, env: cleanEnv({}), timeoutMs: 10_000 });
      expect(pipe.status).to.equal('failed');
      const unset = await runBlocks(runnableBlocks('```sh run\necho "$NOT_DEFINED_ANYWHERE"\n```\n'), { cwd: dir, env: cleanEnv({}), timeoutMs: 10_000 });
      expect(unset.status).to.equal('failed');
      expect(unset.output).to.match(/NOT_DEFINED_ANYWHERE: unbound variable/);
    });
  });

  describe('README.md', () => {
    const readme = readFileSync(repoPath('README.md'), 'utf8');
    const blocks = runnableBlocks(readme);

    it('marks the walkthroughs runnable, the first block taking ports and paths from the KAKUIN_* variables', () => {
      expect(blocks.length).to.be.greaterThan(10);
      const first = blocks[0].body.join('\n');
      for (const v of ['KAKUIN_DATA_DIR', 'KAKUIN_API_PORT', 'KAKUIN_OCSP_PORT', 'KAKUIN_GATEWAY_PORT', 'KAKUIN_LEGACY_PORT']) {
        expect(first, `the first runnable block (line ${blocks[0].line}) reads ${v}`).to.contain(v);
      }
      // Later blocks use the variables, never a fixed port or a data path relative to the checkout.
      const fixed = blocks.slice(1).flatMap((b) => b.body.map((text, i) => ({ line: b.line + 1 + i, text })))
        .filter(({ text }) => /(?<![\w$])(?::(?:8443|8080|9443|9444)\b|data\/)/.test(text.replace(/#.*$/, '')));
      expect(fixed, 'runnable lines with a fixed port or data/ path').to.deep.equal([]);
    });

    it('runs every sh run block in order against a fresh kakuin serve on free ports', async function () {
      this.timeout(120_000);
      const started = Date.now();
      const work = mkdtempSync(path.join(repoRoot, '.readme-run-'));
      let service: ChildService | undefined;
      try {
        const [api, ocsp, gateway, legacy] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
        const kakuinEnv = {
          KAKUIN_DATA_DIR: path.join(work, 'data'),
          KAKUIN_API_PORT: String(api),
          KAKUIN_OCSP_PORT: String(ocsp),
          KAKUIN_GATEWAY_PORT: String(gateway),
          KAKUIN_LEGACY_PORT: String(legacy),
        };
        // What `npm start` runs after building: no passphrase, token or log setting of the test's own.
        service = await spawnService(kakuinEnv);
        // The work directory is inside the checkout, so `npx kakuin` finds this package as it does for a user.
        const r = await runBlocks(blocks, { cwd: work, env: cleanEnv(kakuinEnv), timeoutMs: 110_000 - (Date.now() - started) });
        if (r.status !== 'passed') {
          expect.fail(`${describeFailure(r)}\n--- kakuin serve stderr (last 2,000 characters):\n${service.stderr().slice(-2000)}`);
        }
      } finally {
        if (service) {
          service.proc.kill('SIGTERM');
          await service.exited;
        }
        // README_RUNNER_KEEP=1 keeps the walkthrough's files and data directory to look at.
        if (process.env.README_RUNNER_KEEP) console.log(`README runner: kept ${work}`);
        else rmSync(work, { recursive: true, force: true });
      }
    });
  });
});
