// Where the agent scrapes the application's own metrics: Istio's ISTIO_PROMETHEUS_ANNOTATIONS (the pod's
// prometheus.io/scrape|port|path annotations, moved there by sidecar injection when metrics merging is on).
import { ConfigError } from '../common/errors.js';

/** The environment variable pilot-agent reads, with Istio's name. */
export const PROMETHEUS_ANNOTATIONS_ENV = 'ISTIO_PROMETHEUS_ANNOTATIONS';

export interface AppScrapeTarget {
  readonly port: number;
  readonly path: string;
}

/**
 * Parses the variable's JSON `{"scrape":"true","port":"9080","path":"/metrics"}` with pilot-agent's defaults (path
 * `/metrics`, port 80); undefined when `scrape` is `"false"`. The status port itself is refused, as pilot-agent does:
 * the agent would scrape itself in a loop.
 */
export function parsePrometheusAnnotations(json: string, statusPort: number): AppScrapeTarget | undefined {
  const where = `${PROMETHEUS_ANNOTATIONS_ENV}=${json}`;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new ConfigError('TRELLIS_CONFIG_INVALID', `${where}: not JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError('TRELLIS_CONFIG_INVALID', `${where}: expected a JSON object with scrape, port, path`);
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!['scrape', 'port', 'path'].includes(key)) throw new ConfigError('TRELLIS_CONFIG_INVALID', `${where}: unknown field ${JSON.stringify(key)} (expected scrape, port, path)`);
  }
  for (const key of ['scrape', 'port', 'path']) {
    if (obj[key] !== undefined && typeof obj[key] !== 'string') throw new ConfigError('TRELLIS_CONFIG_INVALID', `${where}: ${key}: expected a string, got ${JSON.stringify(obj[key])}`);
  }
  if (obj['scrape'] === 'false') return undefined;
  const portText = (obj['port'] as string | undefined) || '80';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw new ConfigError('TRELLIS_CONFIG_INVALID', `${where}: port: expected a port number 1-65535, got ${JSON.stringify(portText)}`);
  if (port === statusPort) {
    throw new ConfigError('TRELLIS_CONFIG_INVALID', `${where}: port: the application port is the agent's status port ${statusPort}, which would make the agent scrape itself in a loop`);
  }
  const path = (obj['path'] as string | undefined) || '/metrics';
  if (!path.startsWith('/')) throw new ConfigError('TRELLIS_CONFIG_INVALID', `${where}: path: expected a path starting with /, got ${JSON.stringify(path)}`);
  return { port, path };
}
