import type { Context, Middleware } from 'koa';
import { anonymous } from '../../http/caller.js';
import type { AppModule, ModuleContext } from '../types.js';
import { AuthRepository } from './repository.js';
import { authenticateMiddleware, authRoutes, identifyCaller, tokenOf, type LoginGuard } from './routes.js';
import { AuthService, type SessionCache } from './service.js';

export type { LoginAttempt, LoginGuard } from './routes.js';
export type { Session, SessionCache } from './service.js';

/** What the other modules get from auth: who the caller is. */
export interface Authentication {
  /** Puts the caller on ctx.state; every caller is anonymous when authentication is off. */
  authenticate: Middleware;
  /** The user of the request's session, or null without a valid one; never throws. */
  identify: (ctx: Context) => Promise<string | null>;
  /**
   * The user of an `Authorization` header outside Koa (a WebSocket upgrade), null for the anonymous
   * caller; throws the 401 the middleware would.
   */
  fromHeader: (authorization: string) => Promise<string | null>;
}

/** Without the auth module (or with AUTH_DISABLED) every caller is anonymous. */
export const noAuthentication: Authentication = {
  authenticate: anonymous,
  identify: () => Promise.resolve(null),
  fromHeader: () => Promise.resolve(null),
};

/** Sessions: built before the modules that need to know the caller (throttling meters by user). */
export interface Auth {
  service: AuthService;
  /** Authenticates a session whatever AUTH_DISABLED says (logout needs one). */
  authenticateSession: Middleware;
  authentication: Authentication;
}

/** Sessions are remembered in `sessionCache` when given (cache module). */
export function createAuth({ config, db, logger }: ModuleContext, sessionCache?: SessionCache): Auth {
  const service = new AuthService(new AuthRepository(db.knex), {
    bcryptCost: config.bcryptCost,
    sessionTtlSeconds: config.sessionTtlSeconds,
    sessionCache,
    hashing: config.hashing,
  });
  const authenticateSession = authenticateMiddleware(service);
  if (config.authDisabled) {
    logger.warn(
      'AUTH_DISABLED=true: requests without a session are served as an anonymous caller who can read, post and search in every chat',
    );
  }
  return {
    service,
    authenticateSession,
    authentication: config.authDisabled
      ? noAuthentication
      : {
          authenticate: authenticateSession,
          identify: identifyCaller(service),
          fromHeader: (authorization) => service.authenticate(tokenOf(authorization)),
        },
  };
}

/** Register, login, logout; `loginGuard` (throttling) meters logins. */
export function authModule({ config, rules }: ModuleContext, auth: Auth, loginGuard?: LoginGuard): AppModule {
  return {
    name: 'auth',
    routes: (router) =>
      authRoutes(router, auth.service, {
        maxBodyBytes: config.maxBodyBytes,
        rules,
        authenticate: auth.authenticateSession,
        loginGuard,
      }),
  };
}
