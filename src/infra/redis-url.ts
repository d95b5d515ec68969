// REDIS_URL's cluster form, read without any client (the settings check it at start).

const CLUSTER_SCHEME = 'redis+cluster:';

/** A Redis Cluster named by REDIS_URL: `redis+cluster://[user:password@]host:port,host:port[,...]`. */
export interface ClusterTarget {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
}

/**
 * The cluster REDIS_URL names, or undefined for a plain redis:// or rediss:// URL. Throws an Error
 * whose message says what is wrong when the node list cannot be read.
 */
export function clusterTarget(url: string): ClusterTarget | undefined {
  if (!url.toLowerCase().startsWith(`${CLUSTER_SCHEME}//`)) return undefined;
  let rest = url.slice(CLUSTER_SCHEME.length + 2).replace(/\/.*$/, '');
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const credentials = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = credentials.indexOf(':');
    username = decodeURIComponent(colon >= 0 ? credentials.slice(0, colon) : credentials) || undefined;
    password = colon >= 0 ? decodeURIComponent(credentials.slice(colon + 1)) : undefined;
  }
  const nodes = rest
    .split(',')
    .map((node) => node.trim())
    .filter(Boolean)
    .map((node) => {
      const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(node);
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) throw new Error(`cluster node "${node}" is not host:port`);
      return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
    });
  if (!nodes.length) throw new Error('names no cluster node (redis+cluster://host:port,host:port)');
  return { nodes, username, password };
}

/** True when `url` names a Redis Cluster (sharded pub/sub and hash tags matter then). */
export const isCluster = (url: string) => clusterTarget(url) !== undefined;
