/**
 * Which backends the tests run on, chosen the way a user chooses them: DATABASE_URL (and later
 * REDIS_URL, AMQP_URL) present → the services profile on those servers; absent → embedded defaults.
 */
const env = {
  DATABASE_URL: process.env.DATABASE_URL,
  REDIS_URL: process.env.REDIS_URL,
  AMQP_URL: process.env.AMQP_URL,
};

export const profile = {
  name: env.DATABASE_URL ? 'services' : 'embedded',
  services: Boolean(env.DATABASE_URL),
  env,
};
