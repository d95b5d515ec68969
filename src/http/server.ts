import http from 'node:http';
import type { Socket } from 'node:net';
import type Koa from 'koa';
import type { Config } from '../config.js';
import type { Logger } from '../infra/logger.js';

/** Idle keep-alive connections stay open this long (above the usual 60 s of proxies in front). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** A connection over its address's cap gets this long to send the request that is answered 429. */
const OVER_CAP_GRACE_MS = 1000;

/** A complete HTTP/1.1 answer carrying the JSON error of swagger.yml; the connection closes after it. */
function rawAnswer(status: number, code: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify({ message: code });
  const lines = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** What Node's parser refused, as status and error code. */
function clientFault(error: Error & { code?: string }): [number, string] {
  if (error.code === 'HPE_HEADER_OVERFLOW') return [431, 'headers-too-large'];
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'HPE_HEADERS_TIMEOUT') {
    return [408, 'request-timeout'];
  }
  return [400, 'bad-parameters'];
}

function sendJson(res: http.ServerResponse, status: number, code: string, headers: Record<string, string>) {
  const body = JSON.stringify({ message: code });
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/**
 * The HTTP server of the API. Besides Koa's answers, the ones Node writes by itself (a request it
 * cannot parse, one too slow to arrive, an Expect it does not meet) carry the JSON error body too;
 * requests and headers must arrive in time; one client address holds a bounded number of connections.
 */
export function createHttpServer(app: Koa, config: Config, logger: Logger): http.Server {
  const { requestTimeoutMs, headersTimeoutMs, maxConnectionsPerIp } = config.http;

  // Koa's default error listener prints stack traces on stderr, also for clients that went away.
  if (app.listenerCount('error') === 0) {
    app.on('error', (error: Error & { status?: number; expose?: boolean; code?: string }) => {
      const clientSide = error.expose === true || (error.status ?? 500) < 500 || error.code === 'ECONNRESET';
      if (clientSide) logger.debug({ err: error }, 'client fault');
      else logger.error({ err: error }, 'unhandled error');
    });
  }

  const overCap = new WeakSet<Socket>();
  const handle = app.callback();
  const server = http.createServer(
    {
      requestTimeout: requestTimeoutMs,
      headersTimeout: headersTimeoutMs,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // How often Node looks for requests past their timeouts: fine enough for timeouts of a second.
      connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
    },
    (req, res) => {
      if (overCap.has(req.socket)) {
        res.shouldKeepAlive = false;
        sendJson(res, 429, 'request-limit-exceeded', { 'Retry-After': '1' });
        return;
      }
      void handle(req, res);
    },
  );

  server.on('checkExpectation', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    sendJson(res, 417, 'expectation-failed', {});
  });

  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    const answering = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage;
    // Gone, or halfway through another answer: nothing sensible can be written.
    if (error.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, code] = clientFault(error);
    logger.debug({ err: { code: error.code, message: error.message }, status }, 'client error');
    socket.end(rawAnswer(status, code));
  });

  if (maxConnectionsPerIp > 0) {
    const open = new Map<string, number>();
    server.on('connection', (socket: Socket) => {
      const address = socket.remoteAddress ?? '';
      const count = (open.get(address) ?? 0) + 1;
      open.set(address, count);
      socket.once('close', () => {
        const left = (open.get(address) ?? 1) - 1;
        if (left === 0) open.delete(address);
        else open.set(address, left);
      });
      if (count > maxConnectionsPerIp) {
        // Answered 429 on its first request, or dropped if none comes soon: it holds nothing long.
        overCap.add(socket);
        socket.setTimeout(OVER_CAP_GRACE_MS, () => socket.destroy());
      }
    });
  }
  return server;
}

/** Starts `server` on the configured port and host. */
export function listen(server: http.Server, config: Config): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
