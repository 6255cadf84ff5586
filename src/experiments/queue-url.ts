/**
 * The --queue value of `hugevisor sweep` and `hugevisor worker` (src/experiments/queue.ts),
 * checked without loading the queue's client library.
 */
import { ConfigError } from '../api/index.ts';

/** Check a --queue value: a redis:// (or rediss://) URL with a host. */
export function checkQueueUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`--queue: '${url}' is not a URL (expected redis://HOST:PORT)`);
  }
  if ((u.protocol !== 'redis:' && u.protocol !== 'rediss:') || !u.hostname) throw new ConfigError(`--queue: '${url}' is not a redis://HOST:PORT URL`);
  return url;
}
