// Driven by tests/editors.rs. Opens FOLDER in a fresh code-server with the packaged extension,
// opens FILE and, with no edit, waits for the rule code CODE in the Problems panel (a finding
// that needs the model index), printing how long after opening it showed; then rewrites MODELS
// on disk (OLD replaced by NEW), as another program would, and waits for CODE to leave the panel.
//
// node index_finding.mjs CODE_SERVER VSIX SERVER_BINARY FOLDER FILE SCREENSHOT CODE MODELS OLD NEW

import fs from "node:fs";

import { chord, log, openFile, openWorkbench } from "./workbench.mjs";

const [codeServer, vsix, serverBinary, folder, file, screenshot, code, models, old, replacement] =
  process.argv.slice(2);

let page;
let close;
try {
  ({ page, close } = await openWorkbench({ codeServer, vsix, serverBinary, folder, screenshot, settings: {} }));
  const opened = Date.now();
  await openFile(page, file);
  await chord(page, ["Control", "Shift"], "m");
  const shows = (code) =>
    [...document.querySelectorAll(".markers-panel .monaco-list-row")].some((row) =>
      row.textContent.includes(code),
    );
  await page.waitForFunction(shows, {}, code);
  log(`found ${code} ${Date.now() - opened} ms after opening the file`);

  const text = fs.readFileSync(models, "utf8");
  if (!text.includes(old)) {
    throw new Error(`no ${old} in ${models}`);
  }
  const changed = Date.now();
  fs.writeFileSync(models, text.replace(old, replacement));
  await page.waitForFunction((code) => {
    const rows = [...document.querySelectorAll(".markers-panel .monaco-list-row")];
    return !rows.some((row) => row.textContent.includes(code));
  }, {}, code);
  log(`gone ${code} ${Date.now() - changed} ms after the models changed on disk`);
} finally {
  await close?.();
}
