//! The Zed extension: runs `django-orm-lsp serve` from the user's PATH (or `lsp.django-orm-lsp.
//! binary.path` in Zed's settings) for Python files, and passes Zed's `lsp.django-orm-lsp`
//! initialization options and settings through to the server unchanged.

use zed_extension_api::{self as zed, serde_json::Value, settings::LspSettings};

const SERVER: &str = "django-orm-lsp";

struct DjangoOrmLsp;

impl zed::Extension for DjangoOrmLsp {
    fn new() -> Self {
        DjangoOrmLsp
    }

    fn language_server_command(
        &mut self,
        _id: &zed::LanguageServerId,
        worktree: &zed::Worktree,
    ) -> zed::Result<zed::Command> {
        let binary = LspSettings::for_worktree(SERVER, worktree)
            .ok()
            .and_then(|settings| settings.binary);
        let configured = binary.as_ref().and_then(|b| b.path.clone());
        // `which` searches the worktree's shell PATH, so a project's activated virtualenv (direnv,
        // a venv in the shell profile) is found as it is in a terminal.
        let command = configured
            .or_else(|| worktree.which(SERVER))
            .ok_or_else(|| {
                format!(
                    "`{SERVER}` is not on PATH: install it (`cargo install --path server` in its \
                     repository) or set lsp.{SERVER}.binary.path in Zed's settings"
                )
            })?;
        let args = binary
            .and_then(|b| b.arguments)
            .unwrap_or_else(|| vec!["serve".to_string()]);
        Ok(zed::Command {
            command,
            args,
            env: worktree.shell_env(),
        })
    }

    fn language_server_initialization_options(
        &mut self,
        _id: &zed::LanguageServerId,
        worktree: &zed::Worktree,
    ) -> zed::Result<Option<Value>> {
        Ok(LspSettings::for_worktree(SERVER, worktree)
            .ok()
            .and_then(|settings| settings.initialization_options))
    }

    fn language_server_workspace_configuration(
        &mut self,
        _id: &zed::LanguageServerId,
        worktree: &zed::Worktree,
    ) -> zed::Result<Option<Value>> {
        Ok(LspSettings::for_worktree(SERVER, worktree)
            .ok()
            .and_then(|settings| settings.settings))
    }
}

zed::register_extension!(DjangoOrmLsp);
