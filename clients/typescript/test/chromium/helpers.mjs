// What the Chromium tests share: whether Chromium is there (skip, or fail under $CI), a small
// loopback server for the test page, the served bundle and any extra routes, and a headless
// page (puppeteer-core, the system's browser: $CHROMIUM or /usr/bin/chromium) that has loaded
// it, with cleanups run after the test file.
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { after } from "node:test";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const BUNDLE = path.resolve(here, "..", "..", "..", "..", "src", "api", "dashboard", "client.js");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const missing = !existsSync(CHROMIUM);
if (missing && process.env.CI) throw new Error(`no Chromium at ${CHROMIUM} (CI is set): apt-get install chromium, or set CHROMIUM`);
/** The `skip` option of a Chromium test. */
export const skip = missing ? `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM) to run this test` : false;

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Runs `cleanup` after the test file. */
export function onCleanup(cleanup) {
  cleanups.push(cleanup);
}

/** Serves the test page, the bundle and `routes` (path -> (request, response) handler) on a
 * loopback port; returns its origin. */
export async function pageServer(routes = {}) {
  const files = { "/": ["text/html", path.join(here, "page.html")], "/client.js": ["text/javascript", BUNDLE] };
  const server = createServer((request, response) => {
    const route = routes[request.url];
    if (route) return route(request, response);
    const file = files[request.url];
    if (!file) return response.writeHead(404).end();
    response.writeHead(200, { "content-type": file[0] }).end(readFileSync(file[1]));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

/** A headless page on `origin`, once its module set the title to "ready"; `failures` collects
 * the page's uncaught errors. */
export async function openPage(origin) {
  const { default: puppeteer } = await import("puppeteer-core");
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--headless=new"] });
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const failures = [];
  page.on("pageerror", (error) => failures.push(error.message));
  await page.goto(origin);
  await page.waitForFunction(() => document.title === "ready", { timeout: 20_000 });
  return { page, failures };
}

/** Reads the page client's state of one account. */
export const pageState = (page) => (id) => page.evaluate((id) => window.testClient.stream.state(id) ?? null, id);
/** The page client's resets, by account. */
export const pageResets = (page) => page.evaluate(() => window.testClient.resets);
