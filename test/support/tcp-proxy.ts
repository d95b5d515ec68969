import net from 'node:net';

/**
 * A TCP proxy the test controls, to stage a database outage: `cut()` closes the listener and destroys
 * every open connection (the app sees its sockets drop and new connections refused); `restore()`
 * listens again on the same port. `freeze()` stages the nastier outage of a network partition: connections
 * stay open (and new ones are accepted) but no byte goes through any more, so nothing fails fast;
 * `thaw()` delivers, late, what was written meanwhile.
 */
const DEFAULT_PORTS: Record<string, string> = {
  'redis:': '6379',
  'amqp:': '5672',
  'postgres:': '5432',
  'postgresql:': '5432',
};

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly pairs = new Set<Pair>();
  private listenPort = 0;
  private frozen: false | FreezeOptions = false;
  /** Connections accepted while frozen (without `delivered`): they reach the server only on `thaw()`. */
  private readonly held = new Set<net.Socket>();

  constructor(
    readonly target: { host: string; port: number },
    readonly host = '127.0.0.1',
  ) {}

  /** A proxy in front of the server `url` names (its scheme's default port when it names none). */
  static to(url: string): TcpProxy {
    const target = new URL(url);
    const port = target.port || DEFAULT_PORTS[target.protocol];
    if (!port) throw new Error(`no default port for ${target.protocol}`);
    return new TcpProxy({ host: target.hostname, port: Number(port) });
  }

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

  /**
   * Keeps every connection open but forwards nothing any more, in either direction. With
   * `delivered`, what the client writes meanwhile counts as already out of its hands (as if in the
   * server's receive buffer while the server stalls): `thaw()` delivers it even if the client has
   * closed or reset its connection since.
   */
  freeze(options: FreezeOptions = {}): void {
    this.frozen = options;
    for (const pair of this.pairs) this.hold(pair);
  }

  /** Ends a freeze: what was held is delivered, late, and traffic flows again. */
  thaw(): void {
    this.frozen = false;
    for (const pair of this.pairs) this.release(pair);
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

  private hold(pair: Pair): void {
    const { client, upstream } = pair;
    client.unpipe(upstream);
    upstream.unpipe(client);
    upstream.pause();
    if (this.frozen && this.frozen.delivered) {
      pair.written = [];
      client.on('data', pair.collect);
      client.resume();
    } else {
      client.pause();
    }
  }

  private release(pair: Pair): void {
    const { client, upstream } = pair;
    if (pair.written) {
      client.off('data', pair.collect);
      for (const chunk of pair.written) upstream.write(chunk);
      pair.written = undefined;
    }
    if (pair.clientGone) {
      upstream.end();
      upstream.resume();
      return;
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
    upstream.resume();
  }

  private pipe(client: net.Socket): void {
    this.sockets.add(client);
    if (this.frozen && !this.frozen.delivered) {
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
    const pair: Pair = {
      client,
      upstream,
      clientGone: false,
      collect: (chunk: Buffer) => pair.written?.push(chunk),
    };
    this.pairs.add(pair);
    this.sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      this.pairs.delete(pair);
    };
    const clientEnded = () => {
      // What the client wrote before it went is still on its way: the server gets it on thaw.
      if (pair.written) {
        pair.clientGone = true;
        this.sockets.delete(client);
      } else drop();
    };
    client.on('error', clientEnded);
    client.on('close', clientEnded);
    upstream.on('error', drop);
    upstream.on('close', drop);
    if (this.frozen) {
      this.hold(pair);
      return;
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

interface FreezeOptions {
  delivered?: boolean;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** While frozen with `delivered`: what the client wrote, for the server on thaw. */
  written?: Buffer[];
  clientGone: boolean;
  collect: (chunk: Buffer) => void;
}
