/**
 * The one error type of the API. `code` is the stable `message` clients match on (swagger.yml,
 * Error); with the optional human-readable `detail` it is all the error middleware exposes.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly headers: Record<string, string> = {},
    readonly detail?: string,
  ) {
    super(code);
    this.name = 'AppError';
  }
}

/** `detail` names the parameter and the rule it broke, e.g. "message must be 4..1000 characters". */
export const badParameters = (detail?: string) => new AppError(400, 'bad-parameters', {}, detail);
export const badCursor = () => new AppError(400, 'bad-cursor');
export const authFailed = () => new AppError(401, 'auth-failed');
export const invalidSession = () => new AppError(401, 'invalid-session-id');
export const sessionExpired = () => new AppError(401, 'session-id-expired');
export const invalidCredentials = () => new AppError(401, 'invalid-credentials');
export const chatNotFound = () => new AppError(404, 'chat-not-found');
export const userNotFound = () => new AppError(404, 'user-not-found');
export const taskNotFound = () => new AppError(404, 'task-not-found');
export const messageNotFound = () => new AppError(404, 'message-not-found');
export const notFound = () => new AppError(404, 'not-found');
export const methodNotAllowed = (allow: string) => new AppError(405, 'method-not-allowed', { Allow: allow });
export const userAlreadyExists = () => new AppError(409, 'user-already-exists');
export const taskNotComplete = () => new AppError(409, 'task-not-complete');
export const taskFailed = () => new AppError(409, 'task-failed');
export const idempotencyKeyReused = () => new AppError(422, 'idempotency-key-reused');
export const payloadTooLarge = () => new AppError(413, 'payload-too-large');
export const unsupportedMediaType = () => new AppError(415, 'unsupported-media-type');
export const tooManyRequests = (retryAfterSeconds: number) =>
  new AppError(429, 'request-limit-exceeded', { 'Retry-After': String(retryAfterSeconds) });
export const serviceUnavailable = () => new AppError(503, 'service-unavailable');
export const internalError = () => new AppError(500, 'internal-error');

/**
 * Thrown by adapters when their backend (database, broker, result store) cannot be reached;
 * the error middleware answers 503 for it.
 */
export class DependencyUnavailableError extends Error {
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} unavailable`, options);
    this.name = 'DependencyUnavailableError';
  }
}
