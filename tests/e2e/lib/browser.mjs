// One shared headless Chromium (Debian's /usr/bin/chromium through playwright-core; nothing is
// downloaded) and one browser context per participant. Flags: docs/testing.md §1.

import { chromium } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--autoplay-policy=no-user-gesture-required",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  // Pages of background contexts must keep rendering and decoding at full rate.
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];

/**
 * fakeDevice: options of the fake camera, e.g. "fps=30" (Chromium's fake camera runs at 20 fps
 * unless told otherwise, whatever frame rate getUserMedia asks for).
 */
export async function launchBrowser({ fakeDevice = "" } = {}) {
  const args = fakeDevice
    ? CHROMIUM_ARGS.map((a) => (a === "--use-fake-device-for-media-stream" ? `${a}=${fakeDevice}` : a))
    : CHROMIUM_ARGS;
  return chromium.launch({ executablePath: CHROMIUM_PATH, args, headless: true });
}

/** A new isolated context (own cookies, storage and media permissions) with a small viewport. */
export async function newPage(browser, { width = 320, height = 480 } = {}) {
  const context = await browser.newContext({
    viewport: { width, height },
    permissions: ["camera", "microphone"],
  });
  const page = await context.newPage();
  const logs = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") logs.push(`[${m.type()}] ${m.text()}`);
  });
  page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
  page.laminaLogs = logs;
  return { context, page };
}
