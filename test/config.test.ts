import assert from 'node:assert/strict';
import { ALL_MODULES, loadConfig } from '../src/config.js';
import { configError } from './support/config.js';

describe('config', () => {
  describe('defaults', () => {
    it('when nothing is set, then it listens on port 8080', () => {
      assert.equal(loadConfig({}).port, 8080);
    });

    it('when nothing is set, then sessions last 86400 seconds', () => {
      assert.equal(loadConfig({}).sessionTtlSeconds, 86_400);
    });

    it('when nothing is set, then request bodies are limited to 1 MiB', () => {
      assert.equal(loadConfig({}).maxBodyBytes, 1_048_576);
    });

    it('when nothing is set, then every module is enabled in mount order', () => {
      const { apps } = loadConfig({});
      assert.deepEqual(apps, [...ALL_MODULES]);
      for (const name of ['health', 'auth', 'chats', 'messages', 'search', 'throttling', 'cache', 'docs']) {
        assert.ok((apps as string[]).includes(name), `${name} missing from APPS`);
      }
    });

    it('when no database is configured, then the embedded database is used', () => {
      const { database } = loadConfig({});
      assert.equal(database.kind, 'embedded');
    });

    it('when nothing is set, then authentication is on and bcrypt cost is 12', () => {
      const config = loadConfig({});
      assert.equal(config.authDisabled, false);
      assert.equal(config.bcryptCost, 12);
    });

    it('when APPS is "all", then every module is enabled', () => {
      assert.deepEqual(loadConfig({ APPS: 'all' }).apps, [...ALL_MODULES]);
    });
  });

  describe('PORT', () => {
    it('when PORT is a number, then it is used', () => {
      assert.equal(loadConfig({ PORT: '3000' }).port, 3000);
    });

    it('when PORT is not a number, then a ConfigError names PORT', () => {
      assert.match(configError({ PORT: 'abc' }).message, /\bPORT\b/);
    });

    it('when PORT is out of range, then a ConfigError names PORT', () => {
      assert.match(configError({ PORT: '70000' }).message, /\bPORT\b/);
    });
  });

  describe('APPS', () => {
    it('when APPS names an unknown module, then the error names it', () => {
      const error = configError({ APPS: 'auth,bogus' });
      assert.match(error.message, /APPS/);
      assert.match(error.message, /bogus/);
    });

    it('when APPS lists modules in any order, then they come back in the fixed mount order', () => {
      const { apps } = loadConfig({ APPS: 'docs, messages,auth ,health,chats' });
      assert.deepEqual(apps, ['health', 'auth', 'chats', 'messages', 'docs']);
    });

    it('when APPS lists a module twice, then it is enabled once', () => {
      assert.deepEqual(loadConfig({ APPS: 'auth,health,auth' }).apps, ['health', 'auth']);
    });
  });

  describe('database', () => {
    it('when DATABASE_URL is a postgres URL, then it is used', () => {
      const url = 'postgres://u:p@db.example:5433/app';
      assert.deepEqual(loadConfig({ DATABASE_URL: url }).database, { kind: 'url', url });
    });

    it('when DATABASE_URL is not a postgres URL, then a ConfigError names DATABASE_URL', () => {
      assert.match(configError({ DATABASE_URL: 'mysql://x' }).message, /DATABASE_URL/);
    });

    it('when DATABASE_URL is not a URL at all, then a ConfigError names DATABASE_URL', () => {
      assert.match(configError({ DATABASE_URL: 'not a url' }).message, /DATABASE_URL/);
    });

    it('when POSTGRES_HOSTS and its companions are set, then they are parsed into a hosts database', () => {
      const { database } = loadConfig({
        POSTGRES_HOSTS: 'a, b',
        POSTGRES_DB: 'messenger',
        POSTGRES_USER: 'svc',
        POSTGRES_PWD: 's3cret',
        POSTGRES_PORT: '6432',
      });
      assert.deepEqual(database, {
        kind: 'hosts',
        hosts: ['a', 'b'],
        port: 6432,
        database: 'messenger',
        user: 'svc',
        password: 's3cret',
      });
    });

    it('when POSTGRES_PORT is not given, then the hosts database uses 5432', () => {
      const { database } = loadConfig({ POSTGRES_HOSTS: 'a', POSTGRES_DB: 'd', POSTGRES_USER: 'u' });
      assert.ok(database.kind === 'hosts', `expected a hosts database, got ${database.kind}`);
      assert.equal(database.port, 5432);
    });

    it('when POSTGRES_PORT is not a number, then a ConfigError names POSTGRES_PORT', () => {
      assert.match(configError({ POSTGRES_HOSTS: 'a', POSTGRES_PORT: 'x' }).message, /POSTGRES_PORT/);
    });
  });

  describe('brokers', () => {
    it('when AMQP_URL is set without REDIS_URL, then it is a ConfigError', () => {
      const error = configError({ AMQP_URL: 'amqp://guest:guest@localhost:5672' });
      assert.match(error.message, /AMQP_URL/);
      assert.match(error.message, /REDIS_URL/);
    });

    it('when AMQP_URL and REDIS_URL are both set (with a shared database), then both are kept', () => {
      const config = loadConfig({
        AMQP_URL: 'amqp://localhost',
        REDIS_URL: 'redis://localhost:6379',
        DATABASE_URL: 'postgres://localhost/messenger',
      });
      assert.equal(config.amqpUrl, 'amqp://localhost');
      assert.equal(config.redisUrl, 'redis://localhost:6379');
    });
  });

  describe('AUTH_DISABLED', () => {
    it('when AUTH_DISABLED is "true", then authentication is off', () => {
      assert.equal(loadConfig({ AUTH_DISABLED: 'true' }).authDisabled, true);
    });

    it('when AUTH_DISABLED is "maybe", then a ConfigError names AUTH_DISABLED', () => {
      assert.match(configError({ AUTH_DISABLED: 'maybe' }).message, /AUTH_DISABLED/);
    });
  });
});

describe('config of the HTTP server and the login bounds', () => {
  it('when nothing is set, then requests get 30 s, headers 10 s, and one address 256 connections', () => {
    assert.deepEqual(loadConfig({}).http, {
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      maxConnectionsPerIp: 256,
    });
  });

  it('when nothing is set, then the client address is one hop from the right and logins are bounded', () => {
    const config = loadConfig({});
    assert.equal(config.trustProxyHops, 1);
    assert.equal(config.hashing.queueMax, 4);
    assert.equal(config.hashing.perClientMax, 2);
    assert.ok(config.hashing.concurrency >= 1);
    assert.equal(config.rateLimit.loginMax, 20);
    assert.equal(config.rateLimit.loginFailNameMax, 100);
    assert.equal(config.rateLimit.loginFailDelayMs, 1000);
  });

  it('when HTTP_HEADERS_TIMEOUT_MS is above HTTP_REQUEST_TIMEOUT_MS, then it is a ConfigError naming both', () => {
    const error = configError({ HTTP_REQUEST_TIMEOUT_MS: '1000', HTTP_HEADERS_TIMEOUT_MS: '2000' });
    assert.match(error.message, /HTTP_HEADERS_TIMEOUT_MS.*HTTP_REQUEST_TIMEOUT_MS/);
  });

  it('when TRUST_PROXY_HOPS is 0, then a ConfigError names it', () => {
    assert.match(configError({ TRUST_PROXY_HOPS: '0' }).message, /TRUST_PROXY_HOPS/);
  });
});
