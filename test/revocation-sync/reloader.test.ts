/** The sidecar's reload pacing: at most one reload per interval, the first change after a quiet period at once. */
import { expect } from 'chai';
import { Reloader } from '../../revocation-sync/reloader.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('revocation sync: reload pacing (--min-reload-interval)', () => {
  it('reloads at once after a quiet period, folds a burst into one reload at the end of the interval', async () => {
    const at: number[] = [];
    const started = Date.now();
    const r = new Reloader(300, async () => { at.push(Date.now() - started); }, () => {});
    r.request();
    await sleep(20);
    expect(at).to.have.length(1);
    expect(at[0]).to.be.below(50);
    for (let i = 0; i < 5; i++) { r.request(); await sleep(10); }
    await sleep(100);
    expect(at).to.have.length(1);
    await sleep(300);
    expect(at).to.have.length(2);
    expect(at[1]).to.be.within(290, 450);
    await sleep(400);
    r.request();
    await sleep(20);
    expect(at).to.have.length(3);
    r.stop();
  });

  it('a failed reload is counted and the next change tries again', async () => {
    let calls = 0;
    const errors: unknown[] = [];
    const r = new Reloader(0, async () => { calls++; if (calls === 1) throw new Error('nginx: [emerg]'); }, (e) => errors.push(e));
    r.request();
    await sleep(10);
    r.request();
    await sleep(10);
    expect(calls).to.equal(2);
    expect(r.failures).to.equal(1);
    expect(r.reloads).to.equal(1);
    expect(String(errors[0])).to.include('emerg');
  });
});
