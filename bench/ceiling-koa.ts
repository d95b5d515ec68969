/**
 * The ceiling for the HTTP scenarios: a bare Koa 3 app answering `{}` to everything, served the way
 * the API serves (node:http, same keep-alive timeout). `PORT` and `HOST` as for the API. With
 * `PAGE_DIR` (a directory of JSON files), `GET /<name>` answers the object of `<name>.json` instead,
 * serialized on every request as the API serializes a page it reads: the ceiling for that payload.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Koa from 'koa';

const payloads = new Map<string, unknown>();
const dir = process.env.PAGE_DIR;
for (const file of dir ? fs.readdirSync(dir) : []) {
  if (file.endsWith('.json'))
    payloads.set(
      `/${path.basename(file, '.json')}`,
      JSON.parse(fs.readFileSync(path.join(dir!, file), 'utf8')),
    );
}

const app = new Koa();
app.use((ctx) => {
  ctx.body = payloads.get(ctx.path) ?? {};
});

const handle = app.callback();
const server = http.createServer((req, res) => void handle(req, res));
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 8090), process.env.HOST ?? '127.0.0.1', () => {
  process.stdout.write(`bare koa listening on ${process.env.PORT ?? 8090}\n`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
