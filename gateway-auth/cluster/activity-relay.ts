/**
 * Device activity from a cluster worker to the primary (gateway.workers > 1): the primary's recorder
 * is the one activity writer and, in `kakuin serve`, the detections feed in front of it, so rules see
 * every worker's connections (a clone's two sessions on two workers, a rate spike spread over them).
 *
 * The front ends call the recorder on hot paths (ActivityRecorder: return at once, no I/O), so calls
 * are queued and sent as one IPC message at most every RELAY_INTERVAL_MS (or at RELAY_MAX_CALLS);
 * `traffic` calls for one device within a batch are summed (the rollups and the rate rule count per
 * interval of seconds, not per message). Connection events keep their order.
 */
import type { ActivityRecorder, FrontEnd } from '../activity-recorder.js';

export const RELAY_INTERVAL_MS = 200;
const RELAY_MAX_CALLS = 2_000;

/** One recorder call as it travels (JSON over the cluster channel). */
export type ActivityCall =
  | ['admitted', string, string | undefined, FrontEnd]
  | ['refused', string | undefined, string, string | undefined, FrontEnd]
  | ['closed', string, string | undefined, FrontEnd]
  | ['traffic', string, number, number]
  | ['tokenResult', string | undefined, boolean, string | undefined]
  | ['firmware', string, string, FrontEnd];

/** The worker's side: a recorder whose calls go to `send` in batches. */
export function relayingRecorder(send: (calls: ActivityCall[]) => void): ActivityRecorder & { flush(): void; stop(): void } {
  let calls: ActivityCall[] = [];
  // Per batch: the index of the device's traffic call, so later ones are added to it.
  let trafficAt = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (calls.length === 0) return;
    const batch = calls;
    calls = [];
    trafficAt = new Map();
    send(batch);
  };
  const push = (call: ActivityCall): void => {
    calls.push(call);
    if (calls.length >= RELAY_MAX_CALLS) flush();
    else if (timer === undefined) {
      timer = setTimeout(flush, RELAY_INTERVAL_MS);
      timer.unref();
    }
  };
  return {
    admitted: (d, a, f) => push(['admitted', d, a, f]),
    refused: (d, r, a, f) => push(['refused', d, r, a, f]),
    closed: (d, a, f) => push(['closed', d, a, f]),
    traffic: (d, messages, bytes) => {
      const i = trafficAt.get(d);
      if (i !== undefined) {
        const t = calls[i] as ['traffic', string, number, number];
        t[2] += messages;
        t[3] += bytes;
        return;
      }
      trafficAt.set(d, calls.length);
      push(['traffic', d, messages, bytes]);
    },
    tokenResult: (d, ok, a) => push(['tokenResult', d, ok, a]),
    firmware: (d, v, f) => push(['firmware', d, v, f]),
    flush,
    stop: flush,
  };
}

/** The primary's side: replays a worker's batch into `into`; a malformed call is skipped, never thrown. */
export function replayActivity(into: ActivityRecorder, calls: unknown): void {
  if (!Array.isArray(calls)) return;
  for (const c of calls) {
    if (!Array.isArray(c)) continue;
    const [method, ...args] = c as [string, ...unknown[]];
    switch (method) {
      case 'admitted': into.admitted(args[0] as string, args[1] as string | undefined, args[2] as FrontEnd); break;
      case 'refused': into.refused(args[0] as string | undefined, args[1] as string, args[2] as string | undefined, args[3] as FrontEnd); break;
      case 'closed': into.closed(args[0] as string, args[1] as string | undefined, args[2] as FrontEnd); break;
      case 'traffic': into.traffic(args[0] as string, args[1] as number, args[2] as number); break;
      case 'tokenResult': into.tokenResult(args[0] as string | undefined, args[1] as boolean, args[2] as string | undefined); break;
      case 'firmware': into.firmware(args[0] as string, args[1] as string, args[2] as FrontEnd); break;
      default: break;
    }
  }
}
