// The VS Code client of django-orm-lsp: finds the binary, starts `django-orm-lsp serve` for the
// Python files of Django workspaces, and passes the user's settings on to it.

import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";
import {
  CodeAction,
  Command,
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

const SECTION = "django-orm-lsp";
const FIX_ALL_KIND = "source.fixAll.django-orm-lsp";
const EXE = process.platform === "win32" ? "django-orm-lsp.exe" : "django-orm-lsp";

let client: LanguageClient | undefined;
let output: vscode.OutputChannel | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("Django ORM");
  context.subscriptions.push(output);
  context.subscriptions.push(
    // Also the way to start the server in a Django project the check below does not recognise.
    vscode.commands.registerCommand(`${SECTION}.restart`, async () => {
      await stop();
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!client) {
        return;
      }
      if (event.affectsConfiguration(`${SECTION}.path`)) {
        // A different binary needs a new process.
        await stop();
        await start(context);
      } else if (event.affectsConfiguration(SECTION)) {
        await client.sendNotification(DidChangeConfigurationNotification.type, {
          settings: serverSettings(),
        });
      }
    }),
  );
  // Activation events also fire for non-Django Python projects (a pyproject.toml says nothing
  // about Django until it is read), so the server starts only once Django is confirmed.
  if (await isDjangoWorkspace()) {
    await start(context);
  } else {
    output.appendLine(
      'No manage.py and no Django dependency found: not started ("Django ORM: Restart server" starts it).',
    );
  }
}

export async function deactivate(): Promise<void> {
  await stop();
}

async function start(context: vscode.ExtensionContext): Promise<void> {
  const command = await findServer(context);
  output?.appendLine(`Starting ${command} serve`);
  // TransportKind.stdio makes the client append `--stdio`; `serve` accepts and ignores it.
  const run = { command, args: ["serve"], transport: TransportKind.stdio };
  const serverOptions: ServerOptions = { run, debug: run };
  const clientOptions: LanguageClientOptions = {
    // Templates too: the server shows there what ORM410 finds in the views that render them.
    documentSelector: [
      { scheme: "file", language: "python" },
      { scheme: "file", language: "django-html" },
      { scheme: "file", language: "html", pattern: "**/templates/**" },
    ],
    initializationOptions: serverSettings(),
    outputChannel: output,
    middleware: {
      // `fixAll: false` hides the fix-all action (and so fix-on-save) without a server setting.
      provideCodeActions: async (document, range, actionContext, token, next) => {
        const actions = await next(document, range, actionContext, token);
        if (!actions || vscode.workspace.getConfiguration(SECTION).get<boolean>("fixAll", true)) {
          return actions;
        }
        return actions.filter(
          (action: vscode.CodeAction | vscode.Command | CodeAction | Command) =>
            !(action instanceof vscode.CodeAction && action.kind?.value === FIX_ALL_KIND),
        );
      },
    },
  };
  // The client id matches the settings section, so `django-orm-lsp.trace.server` sets tracing.
  client = new LanguageClient(SECTION, "Django ORM", serverOptions, clientOptions);
  try {
    await client.start();
  } catch (error) {
    vscode.window.showErrorMessage(
      `Django ORM: could not start ${command} (set "django-orm-lsp.path"): ${error}`,
    );
  }
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    await running.stop();
  }
}

/// Only the keys the server reads: unknown keys would each get a warning from it, and an unset
/// (null) key is left out so that pyproject.toml's value stays in force.
function serverSettings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const settings: Record<string, unknown> = {};
  for (const key of ["select", "ignore", "severity", "includeTests", "migrations"]) {
    const value = config.get(key);
    if (value !== null && value !== undefined) {
      settings[key] = value;
    }
  }
  return settings;
}

/// The setting, else the active Python environment's binary, else the bundled one, else PATH.
async function findServer(context: vscode.ExtensionContext): Promise<string> {
  const configured = vscode.workspace.getConfiguration(SECTION).get<string | null>("path");
  if (configured) {
    return configured;
  }
  const fromPython = await pythonEnvironmentBinary();
  if (fromPython) {
    return fromPython;
  }
  const bundled = context.asAbsolutePath(path.join("bin", EXE));
  if (fs.existsSync(bundled)) {
    return bundled;
  }
  return EXE;
}

/// `django-orm-lsp` beside the interpreter the Python extension has selected (`pip install` puts
/// it there), when that extension is installed.
async function pythonEnvironmentBinary(): Promise<string | undefined> {
  const python = vscode.extensions.getExtension("ms-python.python");
  if (!python) {
    return undefined;
  }
  try {
    const api = python.isActive ? python.exports : await python.activate();
    const folder = vscode.workspace.workspaceFolders?.[0];
    const environment = await api?.environments?.resolveEnvironment(
      api.environments.getActiveEnvironmentPath(folder?.uri),
    );
    const interpreter: string | undefined = environment?.executable?.uri?.fsPath;
    if (!interpreter) {
      return undefined;
    }
    const candidate = path.join(path.dirname(interpreter), EXE);
    return fs.existsSync(candidate) ? candidate : undefined;
  } catch {
    // An older Python extension without the environments API: fall through to the next source.
    return undefined;
  }
}

/// A `manage.py` anywhere, or Django named in a dependency file at a workspace folder's root.
async function isDjangoWorkspace(): Promise<boolean> {
  const managePy = await vscode.workspace.findFiles("**/manage.py", "**/node_modules/**", 1);
  if (managePy.length > 0) {
    return true;
  }
  const names = ["pyproject.toml", "setup.cfg", "setup.py", "Pipfile", "poetry.lock", "uv.lock"];
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const requirements = await vscode.workspace.findFiles(
      new vscode.RelativePattern(folder, "**/requirements*.txt"),
      "**/node_modules/**",
      20,
    );
    const files = names
      .map((name) => vscode.Uri.joinPath(folder.uri, name))
      .concat(requirements);
    for (const file of files) {
      try {
        const text = Buffer.from(await vscode.workspace.fs.readFile(file)).toString("utf8");
        // `django` as a whole package name, not `django-stubs` or `djangorestframework` alone.
        if (/(^|[\s"'\[])django(?![\w-])/im.test(text)) {
          return true;
        }
      } catch {
        // Missing file: try the next one.
      }
    }
  }
  return false;
}
