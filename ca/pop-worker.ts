/** Worker thread of the proof-of-possession verifier pool (see pop-verifier.ts). */
import { parentPort } from 'node:worker_threads';
import { readCsr, verifyCsr } from '../pkix/index.js';
import { isKakuinError } from '../errors/index.js';
import type { VerifierReply } from './pop-verifier.js';

parentPort!.on('message', (msg: { id: number; der: Uint8Array }) => {
  let reply: VerifierReply;
  try {
    verifyCsr(readCsr(Buffer.from(msg.der.buffer, msg.der.byteOffset, msg.der.byteLength)));
    reply = { id: msg.id };
  } catch (e) {
    reply = isKakuinError(e)
      ? { id: msg.id, error: { code: e.code, message: e.message } }
      : { id: msg.id, error: { code: 'KAKUIN_E_INTERNAL', message: 'CSR verification failed' } };
  }
  parentPort!.postMessage(reply);
});
