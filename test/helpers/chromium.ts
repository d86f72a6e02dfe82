// Headless Debian Chromium for report tests (playwright-core drives /usr/bin/chromium, which
// .ci/run installs from apt): one persistent context, and pages opened with every console error,
// page error and network request (the reports are self-contained: none may happen) collected.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** The page's global object, inside page.waitForFunction callbacks (tests have no DOM types). */
declare const window: unknown;

/** Launches headless Chromium (no sandbox, no background networking). */
export function launchChromium(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'ctm-chromium-')), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1300, height: 900 },
  });
}

/**
 * Opens a report file and waits until its script says it is ready; `errors` collects console
 * errors, page errors and any network request.
 */
export async function openReport(
  context: BrowserContext,
  file: string,
): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:'))
      errors.push(`network request: ${r.url()}`);
  });
  await page.goto(`file://${file}`);
  await page.waitForFunction(
    () => (window as unknown as { ctmReport?: { ready?: boolean } }).ctmReport?.ready === true,
  );
  return { page, errors };
}
