import type { AppModule, ModuleContext } from '../types.js';
import { AuthRepository } from './repository.js';
import { authenticateMiddleware, authRoutes, identifyCaller } from './routes.js';
import { AuthService } from './service.js';

export type { LoginAttempt, LoginGuard } from './routes.js';
export type { Session, SessionCache } from './service.js';

/** Register, login, logout; and the middleware that puts the caller on ctx.state for other modules. */
export function authModule({ config, db, extensions, logger }: ModuleContext): AppModule {
  const service = new AuthService(new AuthRepository(db.knex), {
    bcryptCost: config.bcryptCost,
    sessionTtlSeconds: config.sessionTtlSeconds,
    sessionCache: extensions.sessionCache,
    hashing: config.hashing,
  });
  const authenticate = authenticateMiddleware(service);
  if (config.authDisabled) {
    logger.warn(
      'AUTH_DISABLED=true: requests without a session are served as an anonymous caller who can read, post and search in every chat',
    );
  } else {
    extensions.authenticate = authenticate;
    extensions.identify = identifyCaller(service);
  }
  return {
    name: 'auth',
    routes: (router) =>
      authRoutes(router, service, {
        maxBodyBytes: config.maxBodyBytes,
        authenticate,
        loginGuard: extensions.loginGuard,
      }),
  };
}
