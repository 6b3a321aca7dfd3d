/**
 * Open sessions per device, by source address (the `sessions` rule: a clone is a second session
 * from another address). A small interface so that a count held by one primary (seen across every
 * gateway worker, issue 20) can replace the in-process one without touching the engine; multi-worker
 * gateways are not built yet, so one process's own count is the whole truth today.
 */
export interface SessionCounts {
  /** A session of the device opened from `address`; answers the distinct addresses open now. */
  open(deviceId: string, address: string): number;
  closed(deviceId: string, address: string): void;
  /** Distinct addresses with a session open now (empty when none). */
  addresses(deviceId: string): readonly string[];
}

export class InProcessSessionCounts implements SessionCounts {
  /** deviceId → address → sessions open from it. */
  private readonly open_ = new Map<string, Map<string, number>>();

  open(deviceId: string, address: string): number {
    let byAddress = this.open_.get(deviceId);
    if (byAddress === undefined) this.open_.set(deviceId, byAddress = new Map());
    byAddress.set(address, (byAddress.get(address) ?? 0) + 1);
    return byAddress.size;
  }

  closed(deviceId: string, address: string): void {
    const byAddress = this.open_.get(deviceId);
    const n = byAddress?.get(address);
    if (byAddress === undefined || n === undefined) return;
    if (n > 1) byAddress.set(address, n - 1);
    else byAddress.delete(address);
    if (byAddress.size === 0) this.open_.delete(deviceId);
  }

  addresses(deviceId: string): readonly string[] {
    const byAddress = this.open_.get(deviceId);
    return byAddress === undefined ? [] : [...byAddress.keys()];
  }
}
