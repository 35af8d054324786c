// A control plane on a temporary config directory with one SotW sidecar client (client.default) connected to it, for
// tests that read its monitoring port; both stop, and the directory goes, when the test ends.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startControlPlane } from '../../src/control/server/main.js';
import { XdsClient } from '../../src/xds/client/index.js';

export interface PlaneWithClient {
  readonly plane: Awaited<ReturnType<typeof startControlPlane>>;
  readonly client: XdsClient;
  readonly dir: string;
  /** The monitoring port's /metrics text. */
  scrape(): Promise<string>;
}

export async function startPlaneWithClient(t: TestContext, configYaml: string, debounceMaxMs: number): Promise<PlaneWithClient> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-plane-'));
  writeFileSync(join(dir, 'config.yaml'), configYaml);
  const plane = await startControlPlane({ configDir: dir, xdsAddress: '127.0.0.1:0', monitoringAddress: '127.0.0.1:0', debounceAfterMs: 10, debounceMaxMs, logger: { info: () => undefined, warn: () => undefined } });
  const client = new XdsClient({
    server: `127.0.0.1:${plane.xdsPort}`,
    node: { id: 'sidecar~127.0.0.1~client.default~default.svc.cluster.local', cluster: 'client.default', metadata: { fields: { NAMESPACE: { string_value: 'default' } } } },
    mode: 'sotw',
    backoff: { baseMs: 20, maxMs: 200 },
  });
  t.after(async () => {
    client.close();
    await plane.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { plane, client, dir, scrape: async () => (await fetch(`http://127.0.0.1:${plane.monitoringPort}/metrics`)).text() };
}

/** Polls `condition` every `intervalMs` up to `tries` times; fails with `what` (and `last()`, when given) otherwise. */
export async function pollUntil(what: string, condition: () => boolean | Promise<boolean>, options: { tries?: number; intervalMs?: number; last?: () => unknown } = {}): Promise<void> {
  const { tries = 400, intervalMs = 25, last } = options;
  for (let i = 0; i < tries; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  assert.fail(`timed out waiting for ${what}${last ? `: ${JSON.stringify(last())}` : ''}`);
}
