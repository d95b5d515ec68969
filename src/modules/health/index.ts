import type { Middleware } from 'koa';
import { Counter, Histogram } from 'prom-client';
import { serviceUnavailable } from '../../errors.js';
import { toAppError } from '../../http/middleware.js';
import type { AppModule, ModuleContext } from '../types.js';

/**
 * Liveness (`/ping`, never touches the database), the database check (`/ping_db`), readiness for
 * load balancers (`/ready`: `/v1` can serve, `schemaReady` telling whether the schema is in place)
 * and Prometheus `/metrics`.
 */
export function healthModule({ db, metrics }: ModuleContext, schemaReady: () => boolean): AppModule {
  const { registry } = metrics;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  const measure: Middleware = async (ctx, next) => {
    const end = duration.startTimer();
    // A thrown error has no status yet (the error middleware, outside this one, sets it): label the
    // status it will answer.
    let status: number | undefined;
    try {
      await next();
    } catch (error) {
      status = toAppError(error, (e) => db.isUnavailable(e)).status;
      throw error;
    } finally {
      // The matched route pattern, never the raw path: ids would make the label set unbounded.
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      const labels = { method: ctx.method, route: typeof route === 'string' ? route : 'unmatched' };
      end(labels);
      requests.inc({ ...labels, status: String(status ?? ctx.status) });
    }
  };

  return {
    name: 'health',
    middleware: [measure],
    dependencies: [db.monitor],
    routes(router) {
      router.get('/ping', (ctx) => {
        ctx.body = { status: 'ok' };
      });
      router.get('/ping_db', async (ctx) => {
        if (!(await db.ping())) throw serviceUnavailable();
        ctx.body = { status: 'ok' };
      });
      router.get('/ready', async (ctx) => {
        if (!schemaReady() || !(await db.ping())) throw serviceUnavailable();
        ctx.body = { status: 'ok' };
      });
      router.get('/metrics', async (ctx) => {
        ctx.type = registry.contentType;
        ctx.body = await registry.metrics();
      });
    },
  };
}
