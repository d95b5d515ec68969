import net from 'node:net';

/**
 * A TCP proxy the test controls, to stage a database outage: `cut()` closes the listener and destroys
 * every open connection (the app sees its sockets drop and new connections refused); `restore()`
 * listens again on the same port. `freeze()` stages the nastier outage of a network partition: connections
 * stay open (and new ones are accepted) but no byte goes through any more, so nothing fails fast.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private listenPort = 0;
  private frozen = false;
  /** Connections accepted while frozen: they reach the server only on `thaw()`. */
  private readonly held = new Set<net.Socket>();

  constructor(
    readonly target: { host: string; port: number },
    readonly host = '127.0.0.1',
  ) {}

  /** The port the proxy listens on (0 before `start`). */
  get port(): number {
    return this.listenPort;
  }

  /** `postgres://…` with host and port replaced by the proxy's. */
  proxiedUrl(url: string): string {
    const proxied = new URL(url);
    proxied.hostname = this.host;
    proxied.port = String(this.port);
    return proxied.toString();
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  get connections(): number {
    return this.sockets.size;
  }

  /** Listens on `port` (0: any free port) and resolves the port. */
  async start(port = 0): Promise<number> {
    if (this.server) throw new Error('proxy already listening');
    const server = net.createServer((client) => this.pipe(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    this.listenPort = typeof address === 'object' && address ? address.port : port;
    this.server = server;
    return this.listenPort;
  }

  /** Keeps every connection open but forwards nothing any more, in either direction. */
  freeze(): void {
    this.frozen = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /**
   * Ends a freeze: what was written meanwhile (held by the proxy, as a partitioned network holds
   * packets in flight) is delivered, late, and traffic flows again on every connection.
   */
  thaw(): void {
    this.frozen = false;
    for (const { client, upstream } of this.pairs) {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      upstream.resume();
    }
    const held = [...this.held];
    this.held.clear();
    for (const client of held) {
      client.removeAllListeners('error');
      client.removeAllListeners('close');
      this.sockets.delete(client);
      this.pipe(client);
      client.resume();
    }
  }

  /** Stops listening and drops every open connection at once. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.frozen = false;
    this.pairs.clear();
    this.held.clear();
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  /** Listens again on the same port. */
  async restore(): Promise<void> {
    await this.start(this.listenPort);
  }

  async close(): Promise<void> {
    await this.cut();
  }

  private pipe(client: net.Socket): void {
    this.sockets.add(client);
    if (this.frozen) {
      // Accepted, never answered.
      client.pause();
      this.held.add(client);
      client.on('error', () => client.destroy());
      client.on('close', () => {
        this.sockets.delete(client);
        this.held.delete(client);
      });
      return;
    }
    const upstream = net.connect(this.target);
    const pair = { client, upstream };
    this.pairs.add(pair);
    this.sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      this.pairs.delete(pair);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
