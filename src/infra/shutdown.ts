import type { Logger } from './logger.js';

/** Runs one step of a shutdown; a failure is logged and the shutdown goes on. */
export async function closeQuietly(
  logger: Logger,
  what: string,
  close: () => Promise<void> | undefined,
): Promise<void> {
  try {
    await close();
  } catch (error) {
    logger.warn({ err: error, what }, 'closing failed');
  }
}
