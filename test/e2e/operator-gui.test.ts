/**
 * The operator GUI in a real browser (Debian's Chromium under playwright-core, no browser
 * download), driven with the keyboard only through the HTTP bridge of a real `station gui`
 * with simulated devices: sign in, pick a work order by scanning it, provision three devices
 * (PASS on each), inject a simulator fault and read its reason, retry, reprint a label as an
 * operator (refused) and as a supervisor (done). axe-core must report no violation on any
 * screen; screenshots of each state go to test-artifacts/gui/.
 * If Chromium cannot start, the test fails with the reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, STATION_BIN, cleanEnv, runStation, testDir } from '../helpers/station-cli';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildRenderer } = require('../../renderer/build.js') as { buildRenderer: (outDir?: string) => string };

const CHROMIUM = process.env.STATION_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(REPO, 'test-artifacts/gui');
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let dir: string;
let gui: ChildProcess | undefined;
let guiLog = '';
let url: string;
let browser: Browser | undefined;
let page: Page;
const consoleProblems: string[] = [];

async function startGui(): Promise<string> {
  gui = spawn(process.execPath, [STATION_BIN, '--data-dir', join(dir, 'data'), 'gui', '--simulate', '3', '--out', dir], { env: cleanEnv(), cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  gui.stderr!.on('data', (d: Buffer) => (guiLog += d.toString()));
  const lines = createInterface({ input: gui.stdout! });
  return new Promise((resolve, reject) => {
    gui!.once('exit', (code) => reject(new Error(`station gui exited with ${code}: ${guiLog}`)));
    lines.once('line', (line) => resolve(line.trim()));
  });
}

async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: install the Debian package chromium (make test does this when run as root), or set STATION_CHROMIUM`);
  try {
    return await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  } catch (err) {
    throw new Error(`Chromium (${CHROMIUM}) could not start: ${(err as Error).message}`);
  }
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** axe-core on the page as it is; the source is evaluated over CDP (the page's CSP forbids injected scripts). */
async function expectNoAxeViolations(screen: string): Promise<void> {
  if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.evaluate(AXE_SOURCE);
  const violations = (await page.evaluate(
    'axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations.map((v) => v.id + ": " + v.help + " -> " + v.nodes.map((n) => n.target.join(" ")).join(" | ")))',
  )) as string[];
  expect(violations, `axe violations on the ${screen} screen`).toEqual([]);
}

/** Press Tab until the focused element matches `selector` (keyboard-only reachability). */
async function tabTo(selector: string, max = 80): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate(`!!document.activeElement && document.activeElement.matches(${JSON.stringify(selector)})`)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`${selector} cannot be reached with Tab`);
}

async function press(selector: string): Promise<void> {
  await tabTo(selector);
  await page.keyboard.press('Enter');
}

/** A barcode scanner: fast keystrokes ending in Enter. */
async function scan(text: string): Promise<void> {
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

async function screenTo(name: string): Promise<void> {
  await press(`nav button[data-screen="${name}"]`);
}

async function tileBoxes(): Promise<string> {
  return JSON.stringify(await page.$$eval('.tile', (els) => els.map((e) => e.getBoundingClientRect()).map((r) => [r.x, r.y, r.width, r.height])));
}

async function waitTiles(states: string[]): Promise<void> {
  // a function, not a string: the page's CSP forbids eval (the test's TypeScript has no DOM library)
  await page.waitForFunction(
    (want: string[]) => {
      const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ dataset: { state?: string } }> } }).document;
      const got = Array.from(doc.querySelectorAll('.tile')).map((e) => e.dataset.state);
      return got.length === want.length && got.every((s, i) => s === want[i]);
    },
    states,
    { timeout: 30_000 },
  );
}

/** waitForSelector that says what the screen's message line said when it times out. */
async function waitFor(selector: string, timeout = 20_000): Promise<void> {
  try {
    await page.waitForSelector(selector, { timeout });
  } catch (err) {
    const signIn = (await page.$('#sign-in-message')) ? await page.textContent('#sign-in-message') : null;
    throw new Error(`${selector} did not appear; the message line says: "${await message()}"${signIn !== null ? `; sign-in says: "${signIn}"` : ''}; station log: ${guiLog.slice(-500)}`, { cause: err });
  }
}

async function message(): Promise<string> {
  return (await page.$('#message')) ? ((await page.textContent('#message')) ?? '') : '(no message line on this screen)';
}

describe('operator GUI in Chromium through the HTTP bridge', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    buildRenderer();
    dir = testDir('gui');
    const env = cleanEnv({ OLIVE_PIN: '2468', SAM_PIN: '97531' });
    for (const [name, role, pinEnv] of [['olive', 'operator', 'OLIVE_PIN'], ['sam', 'supervisor', 'SAM_PIN']] as const) {
      const r = await runStation(['--data-dir', join(dir, 'data'), 'user', 'add', name, '--role', role, '--pin-env', pinEnv], { env });
      expect(r.code, r.stderr).toBe(0);
    }
    url = await startGui();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => {
      if (m.type() === 'error') consoleProblems.push(m.text());
    });
    page.on('pageerror', (e) => consoleProblems.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    if (gui && gui.exitCode === null) {
      const exited = new Promise((r) => gui!.once('exit', r));
      gui.kill('SIGTERM');
      await exited;
    }
  });

  it('serves the page only with the token, under a strict CSP', async () => {
    const anonymous = await fetch(url.replace(/\?token=.*$/, ''));
    expect(anonymous.status).toBe(401);
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    expect(page.url()).not.toContain('token='); // traded for an HttpOnly cookie
    const csp = (await response?.headerValue('content-security-policy')) ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    await page.waitForSelector('#username:focus');
    await shot('01-sign-in');
    await expectNoAxeViolations('sign-in');
  });

  it('signs in and picks the work order by scanning its label, keyboard only', async () => {
    await page.keyboard.type('olive');
    await page.keyboard.press('Tab');
    await page.keyboard.type('2468');
    await page.keyboard.press('Enter');
    await waitFor('#who:has-text("olive (operator)")');
    await page.waitForSelector('.wo-button:focus');
    await shot('02-work-order');
    await expectNoAxeViolations('work order');
    await scan('WO-DEMO-1');
    await page.waitForSelector('#wo-badge:has-text("WO-DEMO-1")');
    await page.waitForSelector('#start-run:focus');
  });

  it('provisions three devices and shows PASS on each, without moving a tile', async () => {
    await waitTiles(['idle', 'idle', 'idle']);
    await shot('03-line-idle');
    await expectNoAxeViolations('line');
    const before = await tileBoxes();
    await page.keyboard.press('Enter'); // Start run has the focus
    await waitTiles(['passed', 'passed', 'passed']);
    expect(await page.$$eval('.tile .verdict', (els) => els.map((e) => e.textContent))).toEqual(['PASS', 'PASS', 'PASS']);
    const verdictPx = Number.parseFloat((await page.evaluate('getComputedStyle(document.querySelector(".tile .verdict")).fontSize')) as string);
    expect(verdictPx).toBeGreaterThanOrEqual(48);
    expect(await tileBoxes()).toBe(before);
    await page.waitForSelector('#shift-counts:has-text("Passed 3")');
    await shot('04-three-passed');
    await expectNoAxeViolations('line with results');
  });

  it('shows the reason of an injected simulator fault and retries the device', async () => {
    await screenTo('status');
    await tabTo('#sim-faults');
    await page.keyboard.type('1=csr-wrong-serial');
    await page.keyboard.press('Enter');
    await waitFor('#sim-faults-now:has-text("csr-wrong-serial")', 30_000);
    await shot('05-status');
    await expectNoAxeViolations('status');

    await screenTo('line');
    await page.waitForSelector('#start-run:focus');
    const before = await tileBoxes();
    await page.keyboard.press('Enter');
    await waitTiles(['passed', 'failed', 'passed']);
    const failed = page.locator('.tile[data-state="failed"]');
    expect(await failed.locator('.verdict').textContent()).toBe('FAIL');
    expect(await failed.locator('.failure-code').textContent()).toContain('CSR_SERIAL_MISMATCH');
    expect(await failed.locator('.failure-action').textContent()).toContain('wrong serial number');
    expect(await tileBoxes()).toBe(before);
    await shot('06-device-failed');
    await expectNoAxeViolations('line with a failure');

    await screenTo('status');
    await tabTo('#sim-faults');
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Backspace');
    await page.keyboard.press('Enter');
    await waitFor('#sim-faults-now:has-text("none")', 30_000);
    await screenTo('line');
    await press('.tile[data-state="failed"] button.retry');
    await waitTiles(['passed', 'passed', 'passed']);
    await page.waitForSelector('#shift-counts:has-text("Passed 6")');
    await shot('07-retried');
  });

  it('refuses a reprint to an operator and lets a supervisor reprint', async () => {
    const serial = ((await page.locator('.tile').first().locator('.tile-serial').textContent()) ?? '').replace(/^Serial /, '');
    expect(serial).toMatch(/^DEMO-\d{6}$/);
    await screenTo('devices');
    await page.waitForSelector('#device-search:focus');
    await scan(serial); // the scanner types into the focused search field
    await waitFor(`#record-title ~ .record-body dd:has-text("${serial}")`);
    await page.waitForSelector('.label-img');
    await tabTo('#action-reason');
    await page.keyboard.type('label damaged');
    await press('#reprint-label');
    await page.waitForSelector('#message:has-text("SUPERVISOR_REQUIRED")');
    expect(await message()).toContain('Only a supervisor can reprint a label');
    await shot('08-reprint-refused');
    await expectNoAxeViolations('device record');

    await press('#sign-out');
    await page.waitForSelector('#username:focus');
    await page.keyboard.type('sam');
    await page.keyboard.press('Tab');
    await page.keyboard.type('97531');
    await page.keyboard.press('Enter');
    await waitFor('#who:has-text("(supervisor)")');
    await screenTo('devices');
    await page.waitForSelector('#device-search:focus');
    await scan(serial);
    await waitFor(`#record-title ~ .record-body dd:has-text("${serial}")`);
    await tabTo('#action-reason');
    await page.keyboard.type('label damaged');
    await press('#reprint-label');
    await page.waitForSelector(`#message:has-text("Label of ${serial} reprinted")`);
    await page.waitForSelector('.prints li:has-text("reprint printed by sam")');
    await shot('09-reprinted');
    await expectNoAxeViolations('device record after reprint');

    await screenTo('audit');
    await page.waitForSelector('#audit-chain.ok');
    const audit = (await page.textContent('#audit-table')) ?? '';
    expect(audit).toContain('label.reprint.printed');
    expect(audit).toContain('access.denied');
    await shot('10-audit');
    await expectNoAxeViolations('audit');
    expect(consoleProblems).toEqual([]);
  });
});
