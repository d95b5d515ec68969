import { Counter, Gauge, Registry, collectDefaultMetrics, type CounterConfiguration } from 'prom-client';

/** Whether a backend answers now (a DependencyMonitor is one). */
export interface Reachability {
  readonly name: string;
  readonly isDown: boolean;
}

/**
 * One Prometheus registry per app (tests build several apps in one process), with the counters
 * modules report to. The health module serves it at /metrics.
 */
export interface Metrics {
  registry: Registry;
  /** Reads through a cache by result: HIT, MISS or STALE. */
  cacheReads: Counter<'cache' | 'result'>;
  /** Search jobs run by this process, by outcome: success, timeout, database-unavailable, ... */
  searchJobs: Counter<'outcome'>;
  /** Search status requests waiting for their task to finish (`?wait=` long polls) on this process. */
  searchWaits: Gauge;
  /** Real-time streams open on this process, by transport (sse, longpoll, ws). */
  openStreams: Gauge<'transport'>;
  /**
   * Events written to streams, by event type: counted in a plain map on the fan-out path (once per
   * stream and event) and added up when scraped.
   */
  eventsSent: { inc(labels: { type: string }): void };
  /** Durable events read back from the database for a stream (resume, open, join). */
  eventsReplayed: Counter;
  /** Durable events read from the database for all of a chat's streams (the bus dropped or delayed them). */
  eventsFilled: Counter;
  /** Streams closed because their client read too slowly. */
  slowDisconnects: Counter;
  /** Reports `messenger_dependency_up` for each backend `list()` names, read at scrape time. */
  watchDependencies(list: () => Reachability[]): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let dependencies: () => Reachability[] = () => [];
  new Gauge({
    name: 'messenger_dependency_up',
    help: 'Whether a backend (database, cache, rate limits, search results, message broker) is reachable: 1 or 0',
    labelNames: ['dependency'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const dependency of dependencies())
        this.set({ dependency: dependency.name }, dependency.isDown ? 0 : 1);
    },
  });
  return {
    registry,
    cacheReads: new Counter({
      name: 'messenger_cache_reads_total',
      help: 'Reads through the cache by cache (history, sessions) and result (HIT, MISS, STALE)',
      labelNames: ['cache', 'result'] as const,
      registers: [registry],
    }),
    searchJobs: new Counter({
      name: 'messenger_search_jobs_total',
      help: 'Search jobs run by this process by outcome (success, timeout, database-unavailable, internal-error)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    searchWaits: new Gauge({
      name: 'messenger_search_status_waits',
      help: 'Search status long polls (?wait=) waiting for their task to finish on this process',
      registers: [registry],
    }),
    openStreams: new Gauge({
      name: 'messenger_event_streams_open',
      help: 'Real-time event streams open on this process by transport (sse, longpoll, ws)',
      labelNames: ['transport'] as const,
      registers: [registry],
    }),
    eventsSent: bufferedCounter({
      name: 'messenger_events_sent_total',
      help: 'Events written to real-time streams by event type',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    eventsReplayed: new Counter({
      name: 'messenger_events_replayed_total',
      help: 'Durable events read back from the database for one stream (resume, a stream behind the others)',
      registers: [registry],
    }),
    eventsFilled: new Counter({
      name: 'messenger_events_filled_total',
      help: 'Durable events read from the database once for all streams of a chat (the event bus dropped or delayed them)',
      registers: [registry],
    }),
    slowDisconnects: new Counter({
      name: 'messenger_event_stream_slow_disconnects_total',
      help: 'Real-time streams closed because their client read too slowly',
      registers: [registry],
    }),
    watchDependencies(list) {
      dependencies = list;
    },
  };
}

/**
 * A counter by one label for a hot path: increments go to a plain map (prom-client's own `inc`
 * hashes the labels each time) and are added to the counter when it is collected (scraped).
 */
function bufferedCounter(configuration: CounterConfiguration<'type'>): {
  inc(labels: { type: string }): void;
} {
  const pending = new Map<string, number>();
  new Counter({
    ...configuration,
    collect() {
      for (const [type, count] of pending) this.inc({ type }, count);
      pending.clear();
    },
  });
  return {
    inc({ type }) {
      pending.set(type, (pending.get(type) ?? 0) + 1);
    },
  };
}
