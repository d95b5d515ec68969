import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { authFailed } from '../../http/errors.js';
import { parse, text } from '../../http/validate.js';
import type { AuthService } from './service.js';

const CREDENTIALS = /^(?:session_id|bearer)\s+(\S+)\s*$/i;

/** The session token of `Authorization: session_id <token>` (or `Bearer <token>`), else 401. */
export function tokenOf(header: string): string {
  const match = CREDENTIALS.exec(header);
  if (!match?.[1]) throw authFailed();
  return match[1];
}

/** Hooks a login attempt may pass through (the throttling module counts failures per user name). */
export interface LoginGuard {
  before(userName: string): Promise<void>;
  failed(userName: string): Promise<void>;
  succeeded(userName: string): Promise<void>;
}

export function authenticateMiddleware(service: AuthService): Middleware {
  return async (ctx, next) => {
    const userId = await service.authenticate(tokenOf(ctx.get('Authorization')));
    ctx.state.caller = { userId };
    await next();
  };
}

export function authRoutes(
  router: Router,
  service: AuthService,
  options: { maxBodyBytes: number; authenticate: Middleware; loginGuard?: LoginGuard },
): void {
  const body = jsonBody(options.maxBodyBytes);

  router.post('/v1/auth/register', body, async (ctx) => {
    const input = parse(ctx.request.body, {
      user_name: text(1, 255),
      password: text(1, 72, { minBytes: 8, maxBytes: 72 }),
    });
    const { userId } = await service.register(input.user_name, input.password);
    ctx.status = 201;
    ctx.body = { user_id: userId, user_name: input.user_name };
  });

  router.post('/v1/auth/login', body, async (ctx) => {
    const input = parse(ctx.request.body, { user_name: text(1, 255), password: text(1, 4096) });
    const guard = options.loginGuard;
    await guard?.before(input.user_name);
    try {
      const { token } = await service.login(input.user_name, input.password);
      await guard?.succeeded(input.user_name);
      ctx.body = { session_id: token };
    } catch (error) {
      if ((error as { code?: string }).code === 'invalid-credentials') await guard?.failed(input.user_name);
      throw error;
    }
  });

  router.post('/v1/auth/logout', options.authenticate, async (ctx) => {
    await service.logout(tokenOf(ctx.get('Authorization')));
    ctx.body = { status: 'ok' };
  });
}
