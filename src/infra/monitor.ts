import type { Logger } from './logger.js';

/**
 * Remembers whether a dependency is reachable and logs exactly one line when an outage starts
 * and one when it ends, however many requests notice it in between.
 */
export class DependencyMonitor {
  private downSince: number | undefined;

  constructor(
    readonly name: string,
    private readonly logger: Logger,
  ) {}

  get isDown(): boolean {
    return this.downSince !== undefined;
  }

  /** `summary`, when given, is the log line instead of "unreachable" (e.g. what to fix). */
  down(error: unknown, summary?: string): void {
    if (this.downSince !== undefined) return;
    this.downSince = Date.now();
    const reason = error instanceof Error ? error.message : String(error);
    this.logger.error(
      { dependency: this.name, reason },
      summary ?? `${this.name} unreachable: outage started`,
    );
  }

  up(): void {
    if (this.downSince === undefined) return;
    const outageMs = Date.now() - this.downSince;
    this.downSince = undefined;
    this.logger.warn({ dependency: this.name, outageMs }, `${this.name} reachable again: outage ended`);
  }
}
