// Headless Debian Chromium driven by playwright-core, shared by the dashboard's browser tests: where it is, why a test
// skips, where screenshots go, and a page in a throwaway profile that is closed and removed after the test.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
/** `false`, or why the browser tests skip. */
export const chromiumSkip: false | string = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium) to run the dashboard browser test`;
/** Where screenshots go: $TRELLIS_TEST_ARTIFACTS, else dist/test-artifacts/ (gitignored). */
export const artifacts = process.env['TRELLIS_TEST_ARTIFACTS'] ?? join(fileURLToPath(new URL('../../../', import.meta.url)), 'dist', 'test-artifacts');

/** A page in a fresh profile; the browser is closed and its profile removed when the test ends. */
export async function openChromiumPage(t: { after(fn: () => Promise<void>): void }): Promise<Page> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'trellis-dashboard-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
    timeout: 30_000,
  });
  // Chromium writes its profile until it exits: close it, then remove the profile.
  t.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
  });
  return context.pages()[0] ?? (await context.newPage());
}
