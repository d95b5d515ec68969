import { DependencyUnavailableError } from '../errors.js';
import type { DependencyMonitor } from './monitor.js';
import { withTimeout } from './timeout.js';

/** A Redis round trip takes well under a millisecond; an answer this late counts as an outage. */
const OPERATION_TIMEOUT_MS = 300;
/** After a failure the dependency is left alone this long, so an outage costs requests no latency. */
const RETRY_AFTER_MS = 1000;

/**
 * A circuit breaker for an optional dependency (the cache, the rate counters): every operation gets
 * a short timeout; after a failure, operations fail at once until one probe may try again.
 * Failures throw DependencyUnavailableError and are reported to the monitor (one log line per outage).
 */
export class Breaker {
  private retryAt = 0;
  private probing = false;

  constructor(private readonly monitor: DependencyMonitor) {}

  /** False while operations would fail at once (open, or a probe is already out). */
  get admits(): boolean {
    return !this.monitor.isDown || (Date.now() >= this.retryAt && !this.probing);
  }

  async run<T>(operation: () => Promise<T>): Promise<T> {
    if (!this.admits) throw new DependencyUnavailableError(this.monitor.name);
    const probe = this.monitor.isDown;
    if (probe) this.probing = true;
    try {
      const result = await withTimeout(operation(), OPERATION_TIMEOUT_MS);
      this.monitor.up();
      return result;
    } catch (error) {
      this.retryAt = Date.now() + RETRY_AFTER_MS;
      this.monitor.down(error);
      throw new DependencyUnavailableError(this.monitor.name, { cause: error });
    } finally {
      if (probe) this.probing = false;
    }
  }
}
