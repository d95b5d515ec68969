/**
 * The ceiling for the HTTP scenarios: a bare Koa 3 app answering `{}` to everything, served the way
 * the API serves (node:http, same keep-alive timeout). `PORT` and `HOST` as for the API. With
 * `PAGE_FILE` (a JSON file), `GET /page` answers that object instead, serialized on every request as
 * the API serializes a history page: the ceiling for the page's payload.
 */
import fs from 'node:fs';
import http from 'node:http';
import Koa from 'koa';

const page: unknown = process.env.PAGE_FILE ? JSON.parse(fs.readFileSync(process.env.PAGE_FILE, 'utf8')) : {};

const app = new Koa();
app.use((ctx) => {
  ctx.body = ctx.path === '/page' ? page : {};
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
