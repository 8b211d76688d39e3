// Driven by tests/editors.rs. Installs the packaged extension into a fresh code-server (the VS
// Code workbench in a browser), opens FOLDER in Chromium, opens FILE, waits for django-orm-lsp's
// diagnostic in the Problems panel, applies its quick fix from the Ctrl+. menu, saves, and
// prints what the user saw. The caller asserts on the file on disk.
//
// node drive.mjs CODE_SERVER VSIX SERVER_BINARY FOLDER FILE LINE COLUMN SCREENSHOT SETTINGS LATER GONE
//
// SETTINGS: a JSON object of user settings added to the ones the driver needs; LATER: settings
// added in settings.json after the fix is saved, after which the driver waits for the rule code
// GONE to leave the Problems panel and prints the codes left.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import puppeteer from "puppeteer-core";

const [codeServer, vsix, serverBinary, folder, file, line, column, screenshot, settings, later, gone] =
  process.argv.slice(2);
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
// Every wait is bounded so that a broken extension fails the test rather than hanging it.
const WAIT = 90_000;

// code-server is a node script: run it with the node running this driver (Node 24).
const env = {
  ...process.env,
  PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}`,
};
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "django-orm-lsp-vscode-"));
// code-server writes a default config under XDG_CONFIG_HOME: keep it out of the user's home.
env.XDG_CONFIG_HOME = path.join(scratch, "config");
env.XDG_DATA_HOME = path.join(scratch, "data");
const userData = path.join(scratch, "user-data");
const extensions = path.join(scratch, "extensions");
fs.mkdirSync(path.join(userData, "User"), { recursive: true });
const settingsFile = path.join(userData, "User", "settings.json");
const baseSettings = {
  // The absolute path: the extension host's PATH is not the test's.
  "django-orm-lsp.path": serverBinary,
  "workbench.startupEditor": "none",
  "security.workspace.trust.enabled": false,
  "workbench.tips.enabled": false,
  "extensions.ignoreRecommendations": true,
  "telemetry.telemetryLevel": "off",
  "chat.disableAIFeatures": true,
  // VS Code in a browser saves after a delay by default; off, as on the desktop, so the test
  // sees the fix as unsaved changes and then saves it.
  "files.autoSave": "off",
  // Newer workbenches open settings.json in a modal without a tab; a tab shows its dirty state.
  "workbench.editor.useModal": "off",
  // settings.json is edited by typing (below): no auto-closing or suggestions to get in between.
  "[jsonc]": {
    "editor.autoClosingBrackets": "never",
    "editor.autoClosingQuotes": "never",
    "editor.autoIndent": "none",
    "editor.formatOnType": false,
    "editor.quickSuggestions": { "other": "off", "comments": "off", "strings": "off" },
    "editor.suggestOnTriggerCharacters": false,
    "editor.acceptSuggestionOnCommitCharacter": false,
  },
  ...JSON.parse(settings ?? "{}"),
};
fs.writeFileSync(settingsFile, JSON.stringify(baseSettings));

function log(message) {
  console.log(`[drive] ${message}`);
}

let server;
let browser;
let page;
try {
  const install = spawnSync(
    codeServer,
    ["--install-extension", vsix, "--extensions-dir", extensions, "--user-data-dir", userData],
    { env, encoding: "utf8" },
  );
  log(`install: ${install.stdout.trim()} ${install.stderr.trim()}`);
  if (install.status !== 0) {
    throw new Error(`code-server --install-extension failed (${install.status})`);
  }

  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

  // Its own process group, so that the extension hosts and our server go down with it.
  server = spawn(
    codeServer,
    [
      "--auth", "none",
      "--bind-addr", `127.0.0.1:${port}`,
      "--user-data-dir", userData,
      "--extensions-dir", extensions,
      "--disable-telemetry",
      "--disable-update-check",
      "--disable-workspace-trust",
    ],
    { env, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  const serverLog = fs.createWriteStream(path.join(path.dirname(screenshot), "code-server.log"));
  server.stdout.pipe(serverLog);
  server.stderr.pipe(serverLog);

  await waitForHttp(`http://127.0.0.1:${port}/healthz`);
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    // Root in a container: Chromium's sandbox cannot start.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    defaultViewport: { width: 1400, height: 900 },
  });
  page = await browser.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}`);
  await page.waitForSelector(".monaco-workbench .part.editor");
  log("workbench loaded");

  // Quick Open takes an absolute path as is, without the file-search index.
  await chord(["Control"], "p");
  await page.waitForSelector(".quick-input-widget input");
  await page.keyboard.type(file);
  await page.waitForFunction(
    (name) =>
      [...document.querySelectorAll(".quick-input-list .monaco-list-row")].some((row) =>
        row.textContent.includes(name),
      ),
    {},
    path.basename(file),
  );
  await page.keyboard.press("Enter");
  await page.waitForFunction(
    (name) => document.querySelector(".tab.active")?.textContent.includes(name),
    {},
    path.basename(file),
  );
  log(`opened ${file}`);

  // The Problems panel lists what the server published, as the user reads it.
  await chord(["Control", "Shift"], "m");
  const problem = await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll(".markers-panel .monaco-list-row")];
    const row = rows.find((row) => /ORM\d{3}/.test(row.textContent));
    // The row's icon is how the user tells an error from a warning.
    const icon = row?.querySelector(".codicon-error, .codicon-warning, .codicon-info");
    const severity = icon?.className.match(/codicon-(error|warning|info)/)[1];
    return row && `${severity}: ${row.textContent}`;
  });
  log(`problem ${await problem.jsonValue()}`);

  // Back to the editor, cursor on the finding, then the quick-fix menu.
  await chord(["Control"], "1");
  await chord(["Control"], "g");
  await page.waitForSelector(".quick-input-widget input");
  await page.keyboard.type(`${line}:${column}`);
  await page.keyboard.press("Enter");
  await chord(["Control"], ".");
  const offered = await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll(".action-widget .monaco-list-row")];
    const titles = rows.map((row) => row.textContent.trim()).filter(Boolean);
    return titles.some((title) => title.startsWith("Replace with")) && titles;
  });
  log(`offered: ${(await offered.jsonValue()).join(" | ")}`);
  const rows = await page.$$(".action-widget .monaco-list-row");
  for (const row of rows) {
    const text = await row.evaluate((node) => node.textContent.trim());
    if (text.startsWith("Replace with")) {
      await row.click();
      break;
    }
  }
  // Applied once the tab shows unsaved changes; then save it as a user would.
  await page.waitForSelector(".tab.active.dirty");
  await chord(["Control"], "s");
  await page.waitForFunction(() => !document.querySelector(".tab.active.dirty"));
  log("fix applied and saved");

  await page.evaluate(() => {
    // The codes of the Problems panel's rendered rows: the list is virtual, so only the first
    // rows are there. The caller makes GONE an error, and errors sort first.
    window.ormCodes = () =>
      [...document.querySelectorAll(".markers-panel .monaco-list-row")]
        .map((row) => row.textContent.match(/ORM\d{3}/)?.[0])
        .filter(Boolean);
  });
  log(`codes before the settings change: ${await page.evaluate(() => window.ormCodes())}`);
  await addUserSettings(JSON.parse(later));
  const after = await page.waitForFunction(
    (gone) => {
      const now = window.ormCodes();
      return now.length > 0 && !now.includes(gone) && now;
    },
    {},
    gone,
  );
  log(`codes after the settings change: ${await after.jsonValue()}`);
} finally {
  if (page) {
    await page.screenshot({ path: screenshot }).catch((error) => log(`screenshot: ${error}`));
  }
  await browser?.close();
  try {
    if (server) {
      process.kill(-server.pid, "SIGTERM");
    }
  } catch {
    // Already gone.
  }
  fs.rmSync(scratch, { recursive: true, force: true });
}

// Typed into the settings.json editor, as a user would: code-server does not notice the file
// being rewritten behind its back.
async function addUserSettings(settings) {
  await chord(["Control", "Shift"], "p");
  await page.waitForSelector(".quick-input-widget input");
  await page.keyboard.type("Preferences: Open User Settings (JSON)");
  await page.waitForFunction(() =>
    [...document.querySelectorAll(".quick-input-list .monaco-list-row")].some((row) =>
      row.textContent.includes("Open User Settings (JSON)"),
    ),
  );
  await page.keyboard.press("Enter");
  await page.waitForFunction(() =>
    document.querySelector(".tab.active")?.textContent.includes("settings.json"),
  );
  // Keys go to the editor only once it has focus.
  await page.waitForFunction(() => document.activeElement?.closest(".monaco-editor"));
  // The file is the one-line object written above: add the keys before its closing brace.
  await chord(["Control"], "End");
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.type(`,${JSON.stringify(settings).slice(1, -1)}`);
  await page.waitForSelector(".tab.active.dirty");
  await chord(["Control"], "s");
  await page.waitForFunction(() => !document.querySelector(".tab.active.dirty"));
}

async function chord(modifiers, key) {
  for (const modifier of modifiers) {
    await page.keyboard.down(modifier);
  }
  await page.keyboard.press(key);
  for (const modifier of modifiers.reverse()) {
    await page.keyboard.up(modifier);
  }
}

async function waitForHttp(url) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.ok) {
        return;
      }
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      throw new Error(`code-server did not answer on ${url}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
