import assert from 'node:assert/strict';
import { loadConfig } from '../src/config.js';
import { configError } from './support/config.js';
import { clusterTarget } from '../src/infra/redis.js';

const PRIMARY = 'postgres://postgres@127.0.0.1:5432/messenger';

describe('scale-out settings', () => {
  it('when REDIS_URL names a cluster, then every node is read, with credentials', () => {
    const url = 'redis+cluster://app:s%3Acret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002';
    assert.equal(loadConfig({ REDIS_URL: url }).redisUrl, url);
    assert.deepEqual(clusterTarget(url), {
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: 'app',
      password: 's:cret',
    });
    assert.equal(clusterTarget('redis://127.0.0.1:6379/2'), undefined);
  });

  it('when a cluster node has no port or REDIS_URL has another scheme, then a ConfigError says which', () => {
    assert.match(
      configError({ REDIS_URL: 'redis+cluster://h1:7000,h2' }).message,
      /REDIS_URL cluster node "h2"/,
    );
    assert.match(configError({ REDIS_URL: 'redis+cluster://' }).message, /REDIS_URL names no cluster node/);
    assert.match(configError({ REDIS_URL: 'http://h1:7000' }).message, /REDIS_URL must start with redis:/);
  });

  it('when DATABASE_REPLICA_URLS is a comma list, then each is a replica; without a primary it is refused', () => {
    const replicas = 'postgres://r1:5432/messenger, postgresql://r2:5432/messenger';
    assert.deepEqual(loadConfig({ DATABASE_URL: PRIMARY, DATABASE_REPLICA_URLS: replicas }).replicas, {
      urls: ['postgres://r1:5432/messenger', 'postgresql://r2:5432/messenger'],
      waitMs: 100,
    });
    assert.deepEqual(loadConfig({}).replicas.urls, []);
    assert.match(configError({ DATABASE_REPLICA_URLS: 'postgres://r1/messenger' }).message, /no primary/);
    assert.match(
      configError({ DATABASE_URL: PRIMARY, DATABASE_REPLICA_URLS: 'mysql://r1/messenger' }).message,
      /DATABASE_REPLICA_URLS must start with postgres:/,
    );
  });

  it('when SEARCH_QUEUE_TYPE is unset, then classic (what existing queues are); quorum or a bad value as said', () => {
    assert.equal(loadConfig({}).search.queueType, 'classic');
    assert.equal(loadConfig({}).search.deliveryLimit, 20);
    assert.equal(loadConfig({ SEARCH_QUEUE_TYPE: 'quorum' }).search.queueType, 'quorum');
    assert.match(
      configError({ SEARCH_QUEUE_TYPE: 'stream' }).message,
      /SEARCH_QUEUE_TYPE must be one of classic, quorum/,
    );
    assert.match(
      configError({ SEARCH_DELIVERY_LIMIT: '0' }).message,
      /SEARCH_DELIVERY_LIMIT must be between 1/,
    );
  });
});
