import fs from 'node:fs';
import net from 'node:net';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './infra/logger.js';
import { withTimeout } from './infra/timeout.js';

type Role = 'api' | 'consumer' | 'migrate';

/**
 * Settings from a file fill in what the environment does not set (real variables win): `ENV_FILE`
 * names it, by default `.env` in the working directory when there is one; `ENV_FILE=none` reads none.
 * Returns the file read, if any.
 */
function loadEnvFile(): string | undefined {
  const named = process.env.ENV_FILE?.trim();
  if (named === 'none') return undefined;
  const file = named || '.env';
  if (!named && !fs.existsSync(file)) return undefined;
  try {
    process.loadEnvFile(file);
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    process.stderr.write(`configuration error: ENV_FILE ${file}: ${reason}\n`);
    process.exit(1);
  }
  return file;
}

/** How long a signal waits for the start to finish (opening an embedded database on a busy machine is slow). */
const START_WAIT_MS = 60_000;

async function main(role: string | undefined): Promise<void> {
  const envFile = loadEnvFile();
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel, config.logFormat);
  if (envFile) logger.info({ file: envFile }, 'settings read from a file (the environment wins)');

  // Each role loads only its own code (imported below): a consumer has no HTTP stack, a migration neither.
  switch (role as Role) {
    case 'migrate': {
      const { createDatabase, ensureDatabaseExists } = await import('./infra/db.js');
      if (config.database.kind === 'url' && (await ensureDatabaseExists(config.database.url))) {
        logger.info('database created');
      }
      const db = await createDatabase(config, logger);
      try {
        const applied = await db.migrate();
        logger.info({ applied }, applied.length ? 'migrations applied' : 'schema already up to date');
      } finally {
        await db.close();
      }
      return;
    }
    case 'consumer': {
      const stopOnceStarted = onSignal(logger, config.shutdownTimeoutMs);
      logger.info({ role }, 'starting');
      const { startConsumer } = await import('./consumer.js');
      const started = startConsumer(config, logger).then((consumer) => () => consumer.stop());
      stopOnceStarted(started);
      await started;
      return;
    }
    case 'api': {
      // Checked before the database is opened, so a taken port costs one line, not a start-up.
      const taken = listenFailure(await tryListen(config.host, config.port), config.host, config.port);
      if (taken) {
        process.stderr.write(`${taken}\n`);
        process.exit(1);
      }
      const stopOnceStarted = onSignal(logger, config.shutdownTimeoutMs);
      logger.info({ role }, 'starting');
      const started = startApi(config, logger);
      stopOnceStarted(started);
      await started;
      return;
    }
    default:
      process.stderr.write(`usage: main.js <api|consumer|migrate>, got "${role ?? ''}"\n`);
      process.exit(2);
  }
}

/** The error binding host:port gives right now, if any (the port is released again at once). */
function tryListen(host: string, port: number): Promise<unknown> {
  if (port === 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', resolve);
    probe.listen(port, host, () => probe.close(() => resolve(undefined)));
  });
}

/** One line for the listen errors a user causes and fixes by a setting; undefined for the rest. */
function listenFailure(error: unknown, host: string, port: number): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `PORT ${port} is in use`;
  if (code === 'EACCES')
    return `PORT ${port} needs privileges this process does not have (pick a port above 1023)`;
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
    return `HOST ${host} is not an address of this machine`;
  return undefined;
}

/** Starts the API and resolves how to stop it once it listens. */
async function startApi(config: Config, logger: Logger): Promise<() => Promise<void>> {
  const { createService } = await import('./app.js');
  const service = await createService(config, logger);
  let server;
  try {
    server = await service.listen();
  } catch (error) {
    // Taken between the check and now: still one line.
    const reason = listenFailure(error, config.host, config.port);
    if (!reason) throw error;
    await withTimeout(service.close(), config.shutdownTimeoutMs + 5000).catch(() => undefined);
    process.stderr.write(`${reason}\n`);
    process.exit(1);
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info(
    { port, modules: config.apps, database: service.db.kind },
    `listening on http://localhost:${port}`,
  );
  return () => service.close();
}

/**
 * SIGTERM or SIGINT: stop gracefully once, exit 0 (1 if stopping failed). Installed before the role
 * logs its first line, so a signal at any point of the start is a normal stop too: the start is let
 * finish, then what it opened is closed. Returns where to hand the start (resolving how to stop).
 */
function onSignal(
  logger: Logger,
  shutdownTimeoutMs: number,
): (started: Promise<() => Promise<void>>) => void {
  let stopOnceStarted!: (started: Promise<() => Promise<void>>) => void;
  const started = new Promise<() => Promise<void>>((resolve) => (stopOnceStarted = resolve));
  // A start that fails is reported by main(); this only stops one that succeeded.
  started.catch(() => undefined);
  let stopping = false;
  const handle = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Bounded: a dependency that stops answering must not keep the process from exiting.
    withTimeout(started, START_WAIT_MS)
      .then((stop) => withTimeout(stop(), shutdownTimeoutMs + 5000))
      .then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', () => handle('SIGINT'));
  return stopOnceStarted;
}

main(process.argv[2]).catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
