/** Worker thread of the proof-of-possession verifier pool (see pop-verifier.ts). */
import { parentPort } from 'node:worker_threads';
import { readCsr, verifyCsr } from '../pkix/index.js';
import { isKakuinError } from '../errors/index.js';
import type { VerifierReply, VerifierRequest } from './pop-verifier.js';

function verifyOne(id: number, der: Buffer): VerifierReply {
  try {
    verifyCsr(readCsr(der));
    return { id };
  } catch (e) {
    return isKakuinError(e)
      ? { id, error: { code: e.code, message: e.message } }
      : { id, error: { code: 'KAKUIN_E_INTERNAL', message: 'CSR verification failed' } };
  }
}

parentPort!.on('message', (msg: VerifierRequest) => {
  const all = Buffer.from(msg.ders.buffer, msg.ders.byteOffset, msg.ders.byteLength);
  const replies: VerifierReply[] = [];
  let start = 0;
  msg.ids.forEach((id, i) => {
    replies.push(verifyOne(id, all.subarray(start, msg.ends[i])));
    start = msg.ends[i];
  });
  parentPort!.postMessage(replies);
});
