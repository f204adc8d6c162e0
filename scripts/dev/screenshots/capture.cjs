// Take the README's screenshots in Debian's Chromium through playwright-core.
//
// Run by scripts/screenshots (which prepared Home Assistant with prepare.py):
//   NODE_PATH=<cache>/node_modules node capture.cjs PLAN.json OUT_DIR PROFILE_DIR
// PLAN.json is prepare.py's output. It logs in through the login page like a user, then
// saves setup-flow.png, device-page.png, server-device.png and automation-trigger.png in
// OUT_DIR.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const CHROMIUM = "/usr/bin/chromium";
const VIEWPORT = { width: 1280, height: 860 };
const DEVICE_PAGE_HEIGHT = 1000;
const SERVER_PAGE_HEIGHT = 660;
const STEP_TIMEOUT = 30000;

async function logIn(page, plan) {
  await page.goto(plan.url);
  await page.waitForURL(/\/auth\/authorize/, { timeout: STEP_TIMEOUT });
  // Playwright's CSS locators reach into the frontend's open shadow roots.
  await page.locator('input[name="username"]').fill(plan.username);
  await page.locator('input[name="password"]').fill(plan.password);
  await page.locator('input[name="password"]').press("Enter");
  await page.waitForURL((url) => !url.pathname.startsWith("/auth/"), {
    timeout: STEP_TIMEOUT,
  });
  await page.locator("home-assistant-main").waitFor({ timeout: STEP_TIMEOUT });
}

// Let lazy panels, icons and fonts settle before a picture.
async function settle(page) {
  await page.waitForLoadState("networkidle", { timeout: STEP_TIMEOUT }).catch(() => {});
  await page.evaluate(() => document.fonts.ready);
  await page.waitForTimeout(1500);
}

async function setupFlow(page, plan, out) {
  // The page a "my" link to start a config flow leads to: it opens the flow's first step.
  await page.goto(`${plan.url}/config/integrations/dashboard/add?domain=sip_endpoint`);
  // "Do you want to set up SIP Endpoint?"
  await page.getByRole("button", { name: "OK", exact: true }).click();
  const dialog = page.locator("dialog-data-entry-flow");
  await dialog.locator("ha-form").first().waitFor({ timeout: STEP_TIMEOUT });
  await settle(page);
  // The whole window: the dialog over the integrations page, as a user sees it.
  await page.screenshot({ path: path.join(out, "setup-flow.png") });
  await page.keyboard.press("Escape");
}

async function devicePage(page, plan, out) {
  await page.goto(`${plan.url}/config/devices/device/${plan.page_device_id}`);
  await page.getByText("Registration", { exact: true }).first().waitFor({
    timeout: STEP_TIMEOUT,
  });
  await settle(page);
  // The frontend scrolls inside its own panel: a taller window shows every card.
  await page.setViewportSize({ width: VIEWPORT.width, height: DEVICE_PAGE_HEIGHT });
  await settle(page);
  await page.screenshot({ path: path.join(out, "device-page.png") });
  await page.setViewportSize(VIEWPORT);
}

async function serverDevice(page, plan, out) {
  await page.goto(`${plan.url}/config/devices/device/${plan.server_device_id}`);
  await page.getByText("Registered extensions", { exact: true }).first().waitFor({
    timeout: STEP_TIMEOUT,
  });
  await settle(page);
  await page.setViewportSize({ width: VIEWPORT.width, height: SERVER_PAGE_HEIGHT });
  await settle(page);
  await page.screenshot({ path: path.join(out, "server-device.png") });
  await page.setViewportSize(VIEWPORT);
}

async function automationTrigger(page, plan, out) {
  await page.goto(`${plan.url}/config/automation/edit/${plan.automation_id}`);
  const trigger = page.locator("ha-automation-trigger-row").first();
  await trigger.waitFor({ timeout: STEP_TIMEOUT });
  await settle(page);
  const picker = page.locator("ha-device-trigger-picker");
  if (!(await picker.isVisible())) {
    await trigger.locator("ha-expansion-panel").first().click();  // a collapsed row
  }
  await picker.waitFor({ timeout: STEP_TIMEOUT });
  await picker.click();
  await page.locator("ha-device-trigger-picker mwc-list-item, ha-device-trigger-picker ha-list-item")
    .first()
    .waitFor({ timeout: STEP_TIMEOUT });
  await page.waitForTimeout(800);  // the menu's opening animation
  await page.screenshot({ path: path.join(out, "automation-trigger.png") });
  await page.keyboard.press("Escape");
}

async function main() {
  const [planFile, out, profile] = process.argv.slice(2);
  if (!planFile || !out || !profile) {
    throw new Error("usage: capture.cjs PLAN.json OUT_DIR PROFILE_DIR");
  }
  const plan = JSON.parse(fs.readFileSync(planFile, "utf8"));
  fs.mkdirSync(out, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: VIEWPORT,
    locale: "en-US",
    colorScheme: "light",
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  try {
    await logIn(page, plan);
    await setupFlow(page, plan, out);
    await devicePage(page, plan, out);
    await serverDevice(page, plan, out);
    await automationTrigger(page, plan, out);
  } catch (error) {
    await page.screenshot({ path: path.join(out, "failed.png") }).catch(() => {});
    throw error;
  } finally {
    await context.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
