// A browser that opened the bridge's connect URL, then visits other pages on this machine.
// node side_doors.mjs <connect url> <page url>...  -> JSON: the browser's own URL, its cookies, and for each
// page what it managed to do against the bridge (the page writes its findings into document.title as JSON).
import { chromium } from 'playwright-core';

const [url, ...pages] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext();
const page = await context.newPage();
page.setDefaultTimeout(60000);
try {
  await page.goto(url);
  await page.waitForURL(/\/lab/);
  const lab = page.url();
  const findings = {};
  for (const other of pages) {
    const visit = await context.newPage();
    await visit.goto(other);
    await visit.waitForFunction(() => document.title.startsWith('{'), null, { timeout: 30000 });
    findings[other] = JSON.parse(await visit.title());
    await visit.close();
  }
  await page.reload();  // reload keeps working on the cookie
  await page.locator('.jp-LabShell').waitFor();
  const cookies = (await context.cookies()).map(c => ({ name: c.name, domain: c.domain, httpOnly: c.httpOnly }));
  console.log(JSON.stringify({ lab, reloaded: page.url(), cookies, findings }));
} finally {
  await browser.close();
}
