/**
 * One write transaction at a time per process, and the operations still running at close.
 *
 * Every transaction that appends to the revocation feed or the audit log $incs one counter
 * document, so two of them running at once conflict and one is retried by the driver; with many
 * at once (a burst of enrollments) the retries multiply. Queueing this process's transactions
 * leaves conflicts only between processes. Factory lines issue thousands of certificates an hour,
 * far below what one serial writer sustains (see docs/mongodb.md).
 */
export class WriteQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work, work);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** Operations in flight, so close() lets them finish before it closes the client. */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();

  track<T>(operation: Promise<T>): Promise<T> {
    this.running.add(operation);
    const forget = () => { this.running.delete(operation); };
    operation.then(forget, forget);
    return operation;
  }

  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
