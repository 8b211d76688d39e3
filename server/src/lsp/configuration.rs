//! The workspace's settings in layers: pyproject.toml at the workspace root, then the client's
//! `initializationOptions`, then the settings of the latest `workspace/didChangeConfiguration`.
//! Each layer overrides only the keys it sets.

use std::path::PathBuf;

use serde_json::Value;
use tower_lsp_server::ls_types::Uri;

use crate::settings::{options, pyproject, KeyStyle, Options, ProjectSettings, Settings};

/// The section clients may wrap our settings in.
const SECTION: &str = "django-orm-lsp";

#[derive(Default)]
pub struct Configuration {
    root: Option<PathBuf>,
    pyproject: Options,
    initialization: Options,
    client: Options,
    project: ProjectSettings,
    /// Bumped on every change, so that work started under older settings can tell.
    generation: u64,
}

impl Configuration {
    /// The configuration of the workspace at `root` (if the client named one) with the client's
    /// `initializationOptions`, and a warning for each source that had unusable keys.
    pub fn new(root: Option<PathBuf>, initialization: Option<&Value>) -> (Self, Vec<String>) {
        let (initialization, initialization_warning) = initialization
            .map_or_else(Default::default, |v| {
                client_options(v, "initializationOptions")
            });
        let mut configuration = Self {
            root,
            initialization,
            ..Self::default()
        };
        let pyproject_warning = configuration.reload_pyproject();
        let warnings = pyproject_warning
            .into_iter()
            .chain(initialization_warning)
            .collect();
        (configuration, warnings)
    }

    /// Reads the root's pyproject.toml again (no file means no settings from it).
    pub fn reload_pyproject(&mut self) -> Option<String> {
        let path = self
            .root
            .as_deref()
            .map(|root| root.join(pyproject::FILE_NAME))
            .filter(|path| path.is_file());
        let (options, warning) = path.map_or_else(Default::default, |p| pyproject::load(&p));
        self.pyproject = options;
        self.resolve();
        warning
    }

    /// Replaces the settings of the previous `workspace/didChangeConfiguration`.
    pub fn change(&mut self, settings: &Value) -> Option<String> {
        let (options, warning) = client_options(settings, "workspace/didChangeConfiguration");
        self.client = options;
        self.resolve();
        warning
    }

    fn resolve(&mut self) {
        let options = self
            .pyproject
            .clone()
            .merged(self.initialization.clone())
            .merged(self.client.clone());
        self.project = ProjectSettings::new(options);
        self.generation += 1;
    }

    /// Whether test code is reported (`include-tests`).
    pub fn includes_tests(&self) -> bool {
        self.project.includes_tests()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The settings for the document at `uri`, `None` when it is not checked (excluded, test
    /// code, a migration under `migrations = "none"`). Files not under the root get the base
    /// settings, as test code or migrations by their name; documents that are not files get
    /// them as they are.
    pub fn for_uri(&self, uri: &Uri) -> Option<Settings> {
        match (self.root.as_deref(), file_path(uri)) {
            (Some(root), Some(path)) => self.project.for_path(root, &path),
            (None, Some(path)) => self.project.for_outside_root(&path),
            (_, None) => Some(self.project.base().clone()),
        }
    }
}

/// The absolute path of a `file:` URI.
pub fn file_path(uri: &Uri) -> Option<PathBuf> {
    if !uri.scheme().as_str().eq_ignore_ascii_case("file") {
        return None;
    }
    uri.to_file_path()
        .map(|p| p.into_owned())
        .filter(|p| p.is_absolute())
}

/// Options from the client, either the keys themselves or wrapped in `{"django-orm-lsp": ...}`.
fn client_options(value: &Value, source: &str) -> (Options, Option<String>) {
    match value.get(SECTION).unwrap_or(value) {
        Value::Null => (Options::default(), None),
        Value::Object(table) => {
            let (options, problems) = Options::from_table(table, KeyStyle::KebabOrCamel);
            (options, options::warning(source, &problems))
        }
        other => (
            Options::default(),
            Some(format!(
                "{source}: expected an object of settings, got {other}"
            )),
        ),
    }
}
