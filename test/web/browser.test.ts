import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSync } from 'otplib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../../src/identity/rpc/transports/plain-http.js';
import { ManualClock } from '../../src/shared/clock.js';
import { startTestIdentity, TEST_PASSWORD, uniqueEmail, type TestIdentity } from '../helpers/identity.js';

/**
 * examples/web in Debian's Chromium, driven by playwright-core (no browser is downloaded), against
 * Latch in browser refresh-cookie mode, through CORS from another origin.
 *
 * Origins: the app is served from http://localhost:<app port> and Latch is called at
 * http://localhost:<latch port>. Different ports make them different origins (so every call is
 * cross-origin and needs CORS), while the site (scheme + host, ports ignored) is the same, so the
 * default SameSite=Strict cookie is sent: the deployment this default is for (app and API under
 * one registrable domain). http://localhost counts as a secure context, so the Secure cookie is
 * kept over plain HTTP. The same app served from http://127.0.0.1:<app port> is an origin Latch
 * does not allow: its calls must fail.
 *
 * WEB_APP_SCREENSHOT=1 also writes docs/images/web-app.png.
 */

const CHROMIUM = '/usr/bin/chromium';
const repo = fileURLToPath(new URL('../..', import.meta.url));
const haveChromium = existsSync(CHROMIUM);
// Under CI=true a missing browser fails the suite (chromium.launch throws) instead of skipping it.
const suite = haveChromium || process.env.CI === 'true' ? describe : describe.skip;
const title = haveChromium || process.env.CI === 'true' ? 'browser app (examples/web)' : `browser app (examples/web) [skipped: Chromium not installed at ${CHROMIUM}]`;

const COOKIE = 'latch_refresh';

const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };

/** Serves the built app; any unknown path is a 404. */
function staticServer(dir: string): http.Server {
  return http.createServer((req, res) => {
    const rel = (req.url ?? '/').split('?', 1)[0] === '/' ? 'index.html' : (req.url ?? '').split('?', 1)[0]!.slice(1);
    const file = path.join(dir, path.normalize(rel));
    if (!file.startsWith(dir + path.sep)) return void res.writeHead(404).end();
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404).end(),
    );
  });
}

suite(title, () => {
  let t: TestIdentity;
  let server: http.Server;
  let outDir: string;
  let browser: Browser;
  let appPort: number;
  const clock = new ManualClock();

  beforeAll(async () => {
    outDir = await mkdtemp(path.join(os.tmpdir(), 'latch-web-'));
    server = staticServer(outDir);
    appPort = await listen(server, 0, '127.0.0.1');
    t = await startTestIdentity({
      clock,
      env: { BROWSER_REFRESH_COOKIE: 'true', CORS_ORIGINS: `http://localhost:${appPort}` },
    });
    const latchUrl = `http://localhost:${t.app.httpPort}`;
    await build({
      configFile: path.join(repo, 'examples/web/vite.config.ts'),
      logLevel: 'warn',
      define: { 'import.meta.env.VITE_LATCH_URL': JSON.stringify(latchUrl) },
      build: { outDir, emptyOutDir: true },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    await t?.stop();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  /** What page scripts can read must never hold the refresh token. */
  async function assertNoReadableRefreshToken(page: Page, context: BrowserContext): Promise<void> {
    const readable = await page.evaluate(() => ({
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
      cookie: document.cookie,
    }));
    expect(readable).toEqual({ local: '{}', session: '{}', cookie: '' });
    for (const c of await context.cookies()) {
      if (c.name !== COOKIE) continue;
      expect(c.httpOnly).toBe(true);
      expect(c.secure).toBe(true);
      expect(c.sameSite).toBe('Strict');
      expect(JSON.stringify(readable)).not.toContain(c.value);
    }
  }

  const refreshCookies = async (context: BrowserContext) => (await context.cookies()).filter((c) => c.name === COOKIE);

  /** TOTP code for the manual clock's current step, computed by otplib from the URI the app shows. */
  function totpFrom(uri: string): string {
    const u = new URL(uri);
    expect(u.protocol).toBe('otpauth:');
    expect(u.searchParams.get('algorithm') ?? 'SHA1').toBe('SHA1');
    expect(u.searchParams.get('digits') ?? '6').toBe('6');
    expect(u.searchParams.get('period') ?? '30').toBe('30');
    return generateSync({ secret: u.searchParams.get('secret')!, epoch: Math.floor(clock.nowMs() / 1000) });
  }

  it('registers, signs in, enrols TOTP, signs in with MFA, revokes another session, refreshes and signs out', async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
    const page = await context.newPage();
    const email = uniqueEmail('web');
    await page.goto(`http://localhost:${appPort}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await assertNoReadableRefreshToken(page, context);

    // Register and sign in.
    await page.fill('#register-form [name=email]', email);
    await page.fill('#register-form [name=password]', TEST_PASSWORD);
    await page.click('#register-form button');
    await expect.poll(() => page.textContent('#status')).toContain('Account created');
    await page.fill('#login-form [name=email]', email);
    await page.fill('#login-form [name=password]', TEST_PASSWORD);
    await page.click('#login-form button');
    await page.waitForSelector('#signed-in:not([hidden])');
    expect(await page.textContent('#who')).toBe(email);
    expect(await refreshCookies(context)).toHaveLength(2);
    await assertNoReadableRefreshToken(page, context);

    // Enrol TOTP: the QR code and the key come from BeginTotpEnrollment's otpauth URI.
    await page.fill('#totp-begin-form [name=password]', TEST_PASSWORD);
    await page.click('#totp-begin-form button');
    await page.waitForSelector('#totp-confirm-form:not([hidden])');
    const uri = (await page.getAttribute('#totp-secret', 'data-otpauth-uri'))!;
    expect(await page.getAttribute('#totp-qr', 'src')).toMatch(/^data:image\/png;base64,/);
    expect(new URL(uri).searchParams.get('secret')).toBe(await page.textContent('#totp-secret'));
    await page.fill('#totp-confirm-form [name=code]', totpFrom(uri));
    await page.click('#totp-confirm-form button');
    await page.waitForSelector('#backup-codes:not([hidden])');
    expect(await page.locator('#backup-codes li').count()).toBeGreaterThan(0);

    // Sign out: the cookies go.
    await page.click('#logout');
    await page.waitForSelector('#signed-out:not([hidden])');
    expect(await refreshCookies(context)).toEqual([]);

    // Another device signs in (each TOTP step is accepted once, so the clock moves on first).
    clock.advance(30_000);
    const other = await t.connect.auth.login({ email, password: TEST_PASSWORD });
    if (other.result.case !== 'mfaChallenge') throw new Error('expected an MFA challenge');
    const otherSession = (
      await t.connect.auth.completeMfa({ challengeToken: other.result.value.challengeToken, code: { case: 'totpCode', value: totpFrom(uri) } })
    ).session!;

    // Sign in again in the browser, now with the MFA step.
    clock.advance(30_000);
    await page.fill('#login-form [name=email]', email);
    await page.fill('#login-form [name=password]', TEST_PASSWORD);
    await page.click('#login-form button');
    await page.waitForSelector('#mfa:not([hidden])');
    await page.fill('#mfa-form [name=code]', totpFrom(uri));
    await page.click('#mfa-form button');
    await page.waitForSelector('#signed-in:not([hidden])');
    await assertNoReadableRefreshToken(page, context);

    // Sessions: this one and the other device's; revoke the other.
    await expect.poll(() => page.locator('#sessions tr').count()).toBe(2);
    expect(await page.locator('#sessions tr', { hasText: 'this session' }).count()).toBe(1);
    if (process.env.WEB_APP_SCREENSHOT) {
      await mkdir(path.join(repo, 'docs/images'), { recursive: true });
      await page.screenshot({ path: path.join(repo, 'docs/images/web-app.png'), fullPage: true });
    }

    await page.click('#sessions button.revoke');
    await expect.poll(() => page.locator('#sessions tr').count()).toBe(1);
    const revoked = await t.connect.auth.refresh({ refreshToken: otherSession.refreshToken }).catch((e: unknown) => e);
    expect(revoked).toBeInstanceOf(Error);

    // Refresh: a new access token (later expiry) and a rotated cookie, from the cookie alone.
    const before = (await refreshCookies(context))[0]!.value;
    const expiryBefore = await page.textContent('#expiry');
    clock.advance(60_000);
    await page.click('#refresh');
    await expect.poll(() => page.textContent('#expiry')).not.toBe(expiryBefore);
    const after = await refreshCookies(context);
    expect(after).toHaveLength(2);
    expect(after[0]!.value).not.toBe(before);
    expect(await page.isHidden('#error')).toBe(true);
    await assertNoReadableRefreshToken(page, context);

    // A reload stays signed in: the app refreshes from the cookie it cannot read.
    await page.reload();
    await page.waitForSelector('#signed-in:not([hidden])');
    expect(await page.textContent('#who')).toBe(email);

    // Sign out: the session ends server-side and the cookies go.
    const last = (await refreshCookies(context))[0]!.value;
    await page.click('#logout');
    await page.waitForSelector('#signed-out:not([hidden])');
    expect(await refreshCookies(context)).toEqual([]);
    expect(await t.connect.auth.refresh({ refreshToken: last }).catch((e: unknown) => e)).toBeInstanceOf(Error);
    await assertNoReadableRefreshToken(page, context);
    await context.close();
  });

  it('refuses the same app served from an origin Latch does not allow', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const email = uniqueEmail('web-refused');
    // Same app, same Latch URL; only the page's origin differs.
    await page.goto(`http://127.0.0.1:${appPort}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill('#register-form [name=email]', email);
    await page.fill('#register-form [name=password]', TEST_PASSWORD);
    await page.click('#register-form button');
    // Whichever comes first: the error, or the success message a wrongly allowed call would show.
    await page.waitForSelector('#error:not([hidden]), #status:not(:empty)');
    expect(await page.textContent('#status')).toBe('');
    expect(await page.textContent('#error')).toMatch(/fetch/i);
    // The preflight was refused, so the call itself never reached Latch.
    const login = await t.connect.auth.login({ email, password: TEST_PASSWORD }).catch((e: unknown) => e);
    expect(login).toBeInstanceOf(Error);
    expect(await refreshCookies(context)).toEqual([]);
    await context.close();
  });
});
