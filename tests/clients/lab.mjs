// JupyterLab in headless Chromium, opened at the bridge's connect URL: new notebook, run a cell.
// node lab.mjs <connect url> <screenshot.png>  -> prints the cell's output, the URL and the cookies as JSON.
import { chromium } from 'playwright-core';

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
page.setDefaultTimeout(Number(process.env.LAB_TIMEOUT_MS || 90000));
try {
  // the connect URL: the bridge sends the browser to its own host name, where it gets its cookie, then to /lab
  await page.goto(url);
  // a fresh workspace, so that a notebook left open by an earlier run does not hide the launcher
  await page.goto(new URL(`/lab/workspaces/t${Date.now()}?reset`, page.url()).href);
  await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
  const cell = page.locator('.jp-Notebook .jp-Cell').first();
  await page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').waitFor();
  await cell.locator('.cm-content').click();
  await page.keyboard.type("import os; print('lab', os.environ['JUPYTERHUB_USER'], 6*7)");
  // The status bar says idle before the session is wired to the kernel, and a cell run before that is
  // dropped silently: run it again until it has an output (bounded).
  const output = cell.locator('.jp-OutputArea-output');
  for (let attempt = 0; attempt < 20 && !(await output.count()); attempt++) {
    await cell.locator('.cm-content').click();
    await page.keyboard.press('Control+Enter');
    await output.waitFor({ timeout: 3000 }).catch(() => {});
  }
  const cookies = (await page.context().cookies()).map(c => ({ name: c.name, value: c.value }));
  console.log(JSON.stringify({ output: await output.innerText(), url: page.url(), cookies }));
} finally {
  if (screenshot) await page.screenshot({ path: screenshot });
  await browser.close();
}
