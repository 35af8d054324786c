// The dashboard over a real mesh: `trellis up` on a copy of examples/bookinfo (free ports), traffic through the ingress gateway, then headless Chromium on the page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { meshTargets } from '../../src/cli/commands/dashboard.js';
import { MeshSource } from '../../src/dashboard/mesh-source.js';
import { startDashboardServer, type DashboardServer } from '../../src/dashboard/dashboard-server.js';
import { copyBookinfo, freePortBase, startTrellisUp, stopTrellisUp } from '../e2e/trellis-up.js';
import { artifacts, chromiumSkip, openChromiumPage } from './chromium.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE = join(REPO, 'examples/bookinfo');
const skip = chromiumSkip;

let dir = '';
let up: ChildProcess | undefined;
let output = '';
let gatewayPort = 0;
let dashboard: DashboardServer | undefined;

before(async () => {
  if (skip) return;
  // reviews v3 calls ratings: route all of reviews there, so productpage -> reviews -> ratings carries traffic.
  const walkthrough = (f: string): string => readFileSync(join(EXAMPLE, 'walkthrough', f), 'utf8');
  ({ dir, gatewayPort } = await copyBookinfo('trellis-dashboard-bookinfo-', {
    config: { 'destination-rule-all.yaml': walkthrough('destination-rule-all.yaml'), 'virtual-service-reviews-v3.yaml': walkthrough('virtual-service-reviews-v3.yaml') },
  }));
  const base = await freePortBase(dir);
  up = await startTrellisUp(dir, base, (c) => (output += c));
  // As `trellis dashboard --mesh DIR` finds them.
  const targets = await meshTargets(dir);
  dashboard = await startDashboardServer(new MeshSource({ ...targets, windowSeconds: 60 }), { refreshMs: 1_000 });
});

after(async () => {
  await dashboard?.close();
  await stopTrellisUp(up, dir);
});

test('Bookinfo in the dashboard: productpage→reviews→ratings with non-zero rates after traffic, reviews shows its VirtualService, screenshot', { skip }, async (t) => {
  // Traffic through the ingress gateway while the dashboard scrapes.
  let ok = 0;
  for (let i = 0; i < 40; i++) {
    const res = await fetch(`http://127.0.0.1:${gatewayPort}/productpage`).catch(() => undefined);
    if (res?.status === 200) ok++;
    await res?.text();
  }
  assert.ok(ok >= 30, `${ok} of 40 product pages answered 200`);

  const page = await openChromiumPage(t);
  await page.goto(`${dashboard!.url}/`);
  for (const edge of ['productpage->reviews', 'reviews->ratings']) {
    try {
      await page.waitForFunction(`Number(document.querySelector('g.edge[data-edge="${edge}"]')?.getAttribute('data-rps') ?? 0) > 0`, undefined, { timeout: 20_000 });
    } catch (err) {
      const state = await (await fetch(`${dashboard!.url}/api/state`)).text();
      assert.fail(`${edge} has no rate in the page: ${(err as Error).message}\n/api/state: ${state.slice(0, 3000)}`);
    }
    assert.match((await page.locator(`g.edge[data-edge="${edge}"] text`).textContent()) ?? '', /^\d+(\.\d+)? rps/);
  }
  await page.locator('g.node[data-service="reviews"]').click();
  await page.locator('#detail [data-resource="VirtualService default/reviews"]').waitFor({ timeout: 10_000 });
  // The gateway's VirtualService (hosts "*", gateways [bookinfo-gateway]) does not apply to reviews.
  assert.equal(await page.locator('#detail [data-resource="VirtualService default/bookinfo"]').count(), 0);
  assert.match((await page.locator('#detail').textContent()) ?? '', /versions v3/);
  assert.ok((await page.locator('#sync tr[data-proxy]').count()) >= 7, 'every sidecar and the gateway in the sync table');
  mkdirSync(artifacts, { recursive: true });
  const shot = join(artifacts, 'dashboard-bookinfo.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.diagnostic(`screenshot: ${shot}`);
});
