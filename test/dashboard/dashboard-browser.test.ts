// End to end in headless Chromium (Debian's `chromium` package, driven by playwright-core): the graph, a click on a service, the sync table, a screenshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshSource } from '../../src/dashboard/mesh-source.js';
import { startDashboardServer } from '../../src/dashboard/dashboard-server.js';
import { startFakeMesh } from './fake-mesh.js';
import { artifacts, chromiumSkip, openChromiumPage } from './chromium.js';


test('the dashboard in Chromium: productpage→reviews→ratings with rates, a click shows reviews\' VirtualService, sync status, screenshot', { skip: chromiumSkip }, async (t) => {
  const mesh = await startFakeMesh();
  t.after(() => mesh.close());
  const source = new MeshSource({ monitoringUrl: mesh.monitoringUrl, proxyAdminUrls: [mesh.adminUrl], windowSeconds: 30 });
  const dashboard = await startDashboardServer(source, { refreshMs: 250 });
  t.after(() => dashboard.close());

  const page = await openChromiumPage(t);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${dashboard.url}/`);

  // The page polls every 2 s; the edges have a rate once two scrapes are apart.
  for (const edge of ['productpage->reviews', 'reviews->ratings']) {
    // A string runs in the page (this file is compiled without the DOM's types).
    await page.waitForFunction(`Number(document.querySelector('g.edge[data-edge="${edge}"]')?.getAttribute('data-rps') ?? 0) > 0`, undefined, { timeout: 20_000 });
    const label = await page.locator(`g.edge[data-edge="${edge}"] text`).textContent();
    assert.match(label ?? '', /^\d+(\.\d+)? rps · \d+\.\d% err · p99 \d+ ms$/, `${edge} label`);
    assert.equal(await page.locator(`g.edge[data-edge="${edge}"] g.lock`).count(), 1, `${edge} has the mTLS lock`);
  }
  assert.equal(await page.locator('g.edge[data-edge="productpage->details"] g.lock').count(), 0, 'a plaintext edge has no lock');
  assert.match((await page.locator('g.edge[data-edge="productpage->reviews"] text').textContent()) ?? '', /5\.0% err/);
  assert.equal(await page.locator('g.node').count(), 4);

  await page.locator('g.node[data-service="reviews"]').click();
  const vs = page.locator('#detail [data-resource="VirtualService default/reviews-route"]');
  await vs.waitFor({ timeout: 10_000 });
  await vs.locator('summary').click();
  assert.match((await vs.locator('pre').textContent()) ?? '', /"subset": "v2"/);
  assert.match((await page.locator('#detail').textContent()) ?? '', /DestinationRule default\/reviews/);
  assert.match((await page.locator('#detail').textContent()) ?? '', /Inbound.*productpage.*Outbound.*ratings/s);

  const nackRow = page.locator('#sync tr[data-proxy*="reviews-v2"]');
  assert.match((await nackRow.textContent()) ?? '', /reviews-v2\.default.*NACKED.*STALE.*NOT SENT.*LDS: listener 0\.0\.0\.0_9080: unknown filter/);

  mkdirSync(artifacts, { recursive: true });
  const shot = join(artifacts, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.deepEqual([...readFileSync(shot).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  t.diagnostic(`screenshot: ${shot}`);
  assert.deepEqual(errors, []);
});
