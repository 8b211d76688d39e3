// What the VS Code drivers share: a fresh code-server with the packaged extension installed,
// the workbench opened on a folder in headless Chromium, and the keys a user presses.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import puppeteer from "puppeteer-core";

// Every wait is bounded so that a broken extension fails the test rather than hanging it.
export const WAIT = 90_000;

export function log(message) {
  console.log(`[drive] ${message}`);
}

// Starts code-server with the extension from VSIX (running SERVER_BINARY), user settings
// SETTINGS added to the ones every driver needs, and opens FOLDER in Chromium. Returns the page
// and `close()`, which must run whatever happens (it also takes the screenshot).
export async function openWorkbench({ codeServer, vsix, serverBinary, folder, screenshot, settings }) {
  const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
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
    // settings.json is edited by typing: no auto-closing or suggestions to get in between.
    "[jsonc]": {
      "editor.autoClosingBrackets": "never",
      "editor.autoClosingQuotes": "never",
      "editor.autoIndent": "none",
      "editor.formatOnType": false,
      "editor.quickSuggestions": { "other": "off", "comments": "off", "strings": "off" },
      "editor.suggestOnTriggerCharacters": false,
      "editor.acceptSuggestionOnCommitCharacter": false,
    },
    ...settings,
  };
  fs.writeFileSync(path.join(userData, "User", "settings.json"), JSON.stringify(baseSettings));

  let server;
  let browser;
  let page;
  const close = async () => {
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
  };
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
    return { page, close };
  } catch (error) {
    await close();
    throw error;
  }
}

// Opens FILE through Quick Open, which takes an absolute path as is, without the file-search
// index.
export async function openFile(page, file) {
  await chord(page, ["Control"], "p");
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
}

export async function chord(page, modifiers, key) {
  for (const modifier of modifiers) {
    await page.keyboard.down(modifier);
  }
  await page.keyboard.press(key);
  for (const modifier of [...modifiers].reverse()) {
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
