// The browser side of `login --browser`: open the authorize URL in headless Chromium, sign in on the hub's own
// login page, press Authorize, and report the page the browser lands on (the bridge's callback).
// node oauth_sign_in.mjs <authorize url> <user> <password>  -> prints {url, text} as JSON.
import { chromium } from 'playwright-core';

const [url, user, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
// The test hub's certificate names `jupyterhub`, and the URL dials 127.0.0.1: the test trusts it as login did.
const page = await browser.newPage({ ignoreHTTPSErrors: true });
page.setDefaultTimeout(60000);
try {
  await page.goto(url);
  await page.fill('#username_input', user);
  await page.fill('#password_input', password);
  await Promise.all([page.waitForURL(/oauth2\/authorize/), page.click('#login_submit')]);
  await Promise.all([page.waitForURL(/oauth_callback/), page.click('button[type="submit"]')]);
  console.log(JSON.stringify({ url: page.url(), text: await page.locator('body').innerText() }));
} finally {
  await browser.close();
}
