import { randomUUID } from 'node:crypto';
import type { Reachability } from './metrics.js';

/** What a bus was asked to resync: some topics, or everything it carries. */
export type ResyncScope = readonly string[] | 'all';

/**
 * Publish/subscribe between the instances of the API. A message is published on one or more topics
 * (a chat, a user): it is handed at once to this instance's handlers, and to the handlers of every
 * other instance that hears one of its topics (an instance listening to several of them may get it
 * more than once). Delivery is best effort (Redis pub/sub drops what is sent while a subscriber is
 * away): `onResync` hears which topics may have lost messages once they are heard again, so that
 * readers can catch up from durable storage.
 */
export interface Bus<T> {
  readonly backend: 'memory' | 'redis';
  /**
   * True when an instance hears only the topics it listens to (sharded pub/sub on a Redis Cluster,
   * one channel per topic); false when every instance hears every message (one channel) and
   * `listen` changes nothing.
   */
  readonly perTopic: boolean;
  publish(topics: readonly string[], message: T): void;
  subscribe(handler: (message: T) => void): void;
  /**
   * Starts hearing `topic` from the other instances. Resolves once it does, or once it gave up
   * waiting (an outage): the topic is then resynced when it is heard.
   */
  listen(topic: string): Promise<void>;
  unlisten(topic: string): void;
  /** Called when topics are heard again after messages may have been missed (an outage, a start). */
  onResync(handler: (scope: ResyncScope) => void): void;
  readonly monitor?: Reachability;
  close(): Promise<void>;
}

/** The base of every bus: the local handlers, which every publish reaches first. */
export abstract class LocalBus<T> {
  protected readonly handlers: ((message: T) => void)[] = [];
  protected readonly resyncs: ((scope: ResyncScope) => void)[] = [];

  subscribe(handler: (message: T) => void): void {
    this.handlers.push(handler);
  }
  onResync(handler: (scope: ResyncScope) => void): void {
    this.resyncs.push(handler);
  }
  protected deliver(message: T): void {
    for (const handler of this.handlers) handler(message);
  }
  protected resync(scope: ResyncScope): void {
    for (const resync of this.resyncs) resync(scope);
  }
}

/** A message as it travels between instances: who sent it, so that the sender skips its own. */
export class Envelopes<T> {
  readonly origin = randomUUID();

  wrap(message: T): string {
    return JSON.stringify({ origin: this.origin, message });
  }

  /** The message of another instance, or undefined for this one's own (or an unreadable one). */
  unwrap(raw: string): T | undefined {
    try {
      const envelope = JSON.parse(raw) as { origin: string; message: T };
      return envelope.origin === this.origin ? undefined : envelope.message;
    } catch {
      return undefined;
    }
  }
}
