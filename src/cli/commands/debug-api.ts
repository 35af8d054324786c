// Reads the control plane's debug API (the monitoring port) for proxy-status and proxy-config.
import { DEFAULT_MONITORING_ADDRESS } from '../../control/server/ports.js';
import { parseAddress } from '../../control/server/monitoring-server.js';

export { DEFAULT_MONITORING_ADDRESS };

/** A failure the CLI prints as is and exits 1 on. */
export class CliError extends Error {}

/** GETs `path` from the monitoring address and parses JSON; errors say what to check. */
export async function fetchDebug<T>(monitoringAddress: string, path: string, timeoutMs = 10_000): Promise<T> {
  const { host, port } = parseAddress(monitoringAddress, 'monitoring address');
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let response: Response;
  try {
    response = await fetch(base + path, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const reason = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new CliError(`cannot reach the control plane's debug API at ${base}: ${reason} (is \`trellis control\` running? see --monitoring-address)`);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CliError(`${base}${path}: expected JSON, got HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
  if (!response.ok) {
    const message = typeof body === 'object' && body !== null && 'error' in body ? String((body as { error: unknown }).error) : text.slice(0, 200);
    throw new CliError(message);
  }
  return body as T;
}
