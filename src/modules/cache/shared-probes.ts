/**
 * Probes that concurrent reads share without weakening what each read is told. A read takes a
 * ticket when it begins; it may use the answer of a probe started after that (so the probe sees
 * everything committed before the read began), never of one started before. A read that finds
 * only an older probe in flight waits for the one that starts when that ends, shared by every
 * read waiting meanwhile: under load one probe at a time per key, instead of one per read.
 */
export class SharedProbes<T> {
  private started = 0;
  private readonly inFlight = new Map<string, { number: number; result: Promise<T>; next?: Promise<T> }>();

  /** Taken when a read begins: probes started after it are current for that read. */
  ticket(): number {
    return this.started;
  }

  /** The answer of `run` for `key`, from a probe started after `ticket` was taken. */
  probe(key: string, ticket: number, run: () => Promise<T>): Promise<T> {
    const current = this.inFlight.get(key);
    if (!current) return this.start(key, run);
    if (current.number > ticket) return current.result;
    current.next ??= current.result.then(
      () => this.start(key, run),
      () => this.start(key, run),
    );
    return current.next;
  }

  private start(key: string, run: () => Promise<T>): Promise<T> {
    const number = ++this.started;
    const result = run();
    this.inFlight.set(key, { number, result });
    const settled = () => {
      if (this.inFlight.get(key)?.number === number) this.inFlight.delete(key);
    };
    result.then(settled, settled);
    return result;
  }
}
