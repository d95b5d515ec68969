import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { authFailed } from '../../errors.js';
import type { RequestRules } from '../../http/validate.js';
import type { AuthService } from './service.js';

const CREDENTIALS = /^(?:session_id|bearer)\s+(\S+)\s*$/i;

/** The session token of `Authorization: session_id <token>` (or `Bearer <token>`), else 401. */
export function tokenOf(header: string): string {
  const match = CREDENTIALS.exec(header);
  if (!match?.[1]) throw authFailed();
  return match[1];
}

/** One login attempt: the name tried and the client address it came from. */
export interface LoginAttempt {
  userName: string;
  ip: string;
}

/**
 * Hooks a login attempt passes through (the throttling module: attempts per client address, failures
 * per user name and address).
 */
export interface LoginGuard {
  /** Before the password is checked; throws to refuse the attempt, or takes its time to delay it. */
  before(attempt: LoginAttempt): Promise<void>;
  succeeded(attempt: LoginAttempt): Promise<void>;
}

/** The user of the request's session, looked up once per request however many modules ask. */
function sessionUser(service: AuthService, ctx: Context): Promise<string> {
  ctx.state.sessionUser ??= (async () => service.authenticate(tokenOf(ctx.get('Authorization'))))();
  return ctx.state.sessionUser;
}

export function authenticateMiddleware(service: AuthService): Middleware {
  return async (ctx, next) => {
    ctx.state.caller = { userId: await sessionUser(service, ctx) };
    await next();
  };
}

/** The user of the request's session, or null when it has none or an unusable one. */
export function identifyCaller(service: AuthService): (ctx: Context) => Promise<string | null> {
  return async (ctx) => {
    if (!ctx.get('Authorization')) return null;
    try {
      return await sessionUser(service, ctx);
    } catch {
      return null;
    }
  };
}

interface Credentials {
  user_name: string;
  password: string;
}

export function authRoutes(
  router: Router,
  service: AuthService,
  options: {
    maxBodyBytes: number;
    rules: RequestRules;
    authenticate: Middleware;
    loginGuard?: LoginGuard;
  },
): void {
  const body = jsonBody(options.maxBodyBytes);

  router.post('/v1/auth/register', body, async (ctx) => {
    const input = options.rules.body('register', ctx.request.body) as Credentials;
    const { userId } = await service.register(input.user_name, input.password, ctx.ip);
    ctx.status = 201;
    ctx.body = { user_id: userId, user_name: input.user_name };
  });

  router.post('/v1/auth/login', body, async (ctx) => {
    const input = options.rules.body('login', ctx.request.body) as Credentials;
    const guard = options.loginGuard;
    const attempt = { userName: input.user_name, ip: ctx.ip };
    await guard?.before(attempt);
    const { token } = await service.login(input.user_name, input.password, ctx.ip);
    await guard?.succeeded(attempt);
    ctx.body = { session_id: token };
  });

  router.post('/v1/auth/logout', options.authenticate, async (ctx) => {
    await service.logout(tokenOf(ctx.get('Authorization')));
    ctx.body = { status: 'ok' };
  });
}
