// Driven by tests/editors.rs. Installs the packaged extension into a fresh code-server (the VS
// Code workbench in a browser), opens FOLDER in Chromium, opens FILE, waits for django-orm-lsp's
// diagnostic in the Problems panel, applies its quick fix from the Ctrl+. menu, saves, and
// prints what the user saw, then the code lenses shown above LENS_LINE, the queries clicking
// the N+1 one shows, and the hover at HOVER_AT (`line:column`), left open for the screenshot. The caller asserts on the file on disk.
//
// node drive.mjs CODE_SERVER VSIX SERVER_BINARY FOLDER FILE LINE COLUMN SCREENSHOT SETTINGS LATER GONE LENS_LINE HOVER_AT
//
// SETTINGS: a JSON object of user settings added to the ones the driver needs; LATER: settings
// added in settings.json after the fix is saved, after which the driver waits for the rule code
// GONE to leave the Problems panel and prints the codes left.

import path from "node:path";

import { chord as press, log, openFile, openWorkbench } from "./workbench.mjs";

const [
  codeServer,
  vsix,
  serverBinary,
  folder,
  file,
  line,
  column,
  screenshot,
  settings,
  later,
  gone,
  lensLine,
  hoverAt,
] = process.argv.slice(2);

let page;
let close;
const chord = (modifiers, key) => press(page, modifiers, key);
try {
  ({ page, close } = await openWorkbench({
    codeServer,
    vsix,
    serverBinary,
    folder,
    screenshot,
    settings: JSON.parse(settings ?? "{}"),
  }));
  await openFile(page, file);

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
  // On a loaded machine the workbench can drop a Ctrl+. pressed while the editor is still taking
  // focus back from the Go to Line box; a user presses it again, and so does the driver.
  let offered;
  for (let attempt = 1; !offered; attempt++) {
    await chord(["Control"], ".");
    try {
      offered = await page.waitForFunction(
        () => {
          const rows = [...document.querySelectorAll(".action-widget .monaco-list-row")];
          const titles = rows.map((row) => row.textContent.trim()).filter(Boolean);
          return titles.some((title) => title.startsWith("Replace with")) && titles;
        },
        { timeout: 30000 },
      );
    } catch (error) {
      if (attempt === 3) throw error;
      log(`no quick-fix menu after Ctrl+. (attempt ${attempt}); pressing it again`);
      await page.keyboard.press("Escape");
    }
  }
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

  // The code lens above the loop on LENS_LINE, as the editor draws it (the screenshot shows it).
  await showTab(path.basename(file));
  await chord(["Control"], "g");
  await page.waitForSelector(".quick-input-widget input");
  await page.keyboard.type(`${lensLine}`);
  await page.keyboard.press("Enter");
  const lenses = await page.waitForFunction(() => {
    const shown = [...document.querySelectorAll(".codelens-decoration")]
      .map((lens) => lens.textContent.trim())
      .filter((title) => /quer(y|ies)$/.test(title));
    return shown.length > 0 && shown;
  });
  log(`lenses: ${(await lenses.jsonValue()).join(" | ")}`);

  // Clicking the N+1 lens opens the queries it counts in a tab of their own.
  // The lenses drawn first may be the editor's cached copies, labels without their command: wait
  // for the server's, whose titles are links. A real mouse click: the editor takes lens clicks
  // from its mouse-down handler.
  const link = await page.waitForFunction(() =>
    [...document.querySelectorAll(".codelens-decoration a")].find((a) => / \+ /.test(a.textContent)),
  );
  const box = await link.asElement().boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForFunction(() => document.querySelector(".tab.active")?.textContent.includes(".sql"));
  const queries = await page.waitForFunction(() => {
    const editor = document.activeElement?.closest(".monaco-editor");
    const text = editor?.querySelector(".view-lines")?.innerText ?? "";
    return text.includes("SELECT") && text;
  });
  log(`queries: ${(await queries.jsonValue()).replace(/\s+/g, " ")}`);
  await showTab(path.basename(file));

  // Hover on the QuerySet the loop iterates, two lines up: its type and SQL (in the screenshot).
  await chord(["Control"], "g");
  await page.waitForSelector(".quick-input-widget input");
  await page.keyboard.type(hoverAt);
  await page.keyboard.press("Enter");
  await chord(["Control"], "k");
  await chord(["Control"], "i");
  const hover = await page.waitForFunction(() => {
    const shown = document.querySelector(".monaco-hover-content")?.textContent ?? "";
    return shown.includes("SELECT") && shown;
  });
  log(`hover: ${(await hover.jsonValue()).replace(/\s+/g, " ")}`);
} finally {
  await close?.();
}

// Brings the open editor tab NAME to the front with a click on it, as a user would.
async function showTab(name) {
  const tab = await page.waitForFunction(
    (name) => [...document.querySelectorAll(".tab")].find((tab) => tab.textContent.includes(name)),
    {},
    name,
  );
  await tab.asElement().click();
  await page.waitForFunction(
    (name) => document.querySelector(".tab.active")?.textContent.includes(name),
    {},
    name,
  );
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
