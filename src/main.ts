import { createService } from './app.js';
import { startConsumer } from './consumer.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createDatabase, ensureDatabaseExists } from './infra/db.js';
import { createLogger, type Logger } from './infra/logger.js';
import { withTimeout } from './infra/timeout.js';

type Role = 'api' | 'consumer' | 'migrate';

/** How long a signal waits for the start to finish (opening an embedded database on a busy machine is slow). */
const START_WAIT_MS = 60_000;

async function main(role: string | undefined): Promise<void> {
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
  const logger = createLogger(config.logLevel);

  switch (role as Role) {
    case 'migrate': {
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
      const started = startConsumer(config, logger).then((consumer) => () => consumer.stop());
      stopOnceStarted(started);
      await started;
      return;
    }
    case 'api': {
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

/** Starts the API and resolves how to stop it once it listens. */
async function startApi(config: Config, logger: Logger): Promise<() => Promise<void>> {
  const service = await createService(config, logger);
  const server = await service.listen();
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
