import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Middleware } from 'koa';
import { notFound } from '../../errors.js';
import type { AppModule } from '../types.js';

const require = createRequire(import.meta.url);

// What the Swagger UI page asks for, served from swagger-ui-dist: the docs work with no internet.
const ASSETS: Record<string, { file: string; type: string }> = {
  'swagger-ui.min.css': { file: 'swagger-ui.css', type: 'text/css' },
  'swagger-ui-bundle.js': { file: 'swagger-ui-bundle.js', type: 'application/javascript' },
  'swagger-ui-standalone-preset.js': {
    file: 'swagger-ui-standalone-preset.js',
    type: 'application/javascript',
  },
};

/**
 * Swagger UI's page and favicon. koa2-swagger-ui (with its template engine and lodash) is loaded on
 * the first request for them, not at start: most API processes never serve the docs.
 */
function swaggerUi(): Middleware {
  let ui: Promise<Middleware> | undefined;
  const load = async (): Promise<Middleware> => {
    const { koaSwagger } = await import('koa2-swagger-ui');
    return koaSwagger({
      title: 'Messenger API',
      routePrefix: '/docs',
      swaggerCdnUrl: '/docs',
      swaggerVersion: 'assets',
      swaggerOptions: { url: '/swagger.yml', persistAuthorization: true },
    });
  };
  return async (ctx, next) => {
    // A failed load is tried again by the next request.
    ui ??= load().catch((error: unknown) => {
      ui = undefined;
      throw error;
    });
    const middleware = await ui;
    await middleware(ctx, next);
  };
}

/** Swagger UI at /docs and the raw OpenAPI contract (the text of swagger.yml) at /swagger.yml. */
export function docsModule(spec: string): AppModule {
  const assetsDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const ui = swaggerUi();

  return {
    name: 'docs',
    routes(router) {
      router.get('/swagger.yml', (ctx) => {
        ctx.type = 'application/yaml';
        ctx.body = spec;
      });
      router.get('/docs', ui);
      router.get('/favicon.png', ui);
      router.get('/docs/assets/:file', (ctx) => {
        const asset = ASSETS[ctx.params.file ?? ''];
        if (!asset) throw notFound();
        ctx.type = asset.type;
        ctx.set('Cache-Control', 'public, max-age=86400');
        ctx.body = fs.createReadStream(path.join(assetsDir, asset.file));
      });
    },
  };
}
