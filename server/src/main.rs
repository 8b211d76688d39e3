use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use django_orm_lsp::analysis::FixMode;
use django_orm_lsp::check::{self, CheckOptions, OutputFormat};
use django_orm_lsp::settings::options::{migration_rules_argument, rule_code, MigrationRules};
use django_orm_lsp::settings::Options;

#[derive(Parser)]
#[command(
    name = "django-orm-lsp",
    version,
    about = "Finds Django ORM performance anti-patterns and rewrites them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the language server over stdin/stdout.
    Serve {
        /// Accepted and ignored: stdio is the only transport (VS Code's client appends it).
        #[arg(long)]
        stdio: bool,
    },
    /// Lint files and folders, as in CI. Settings come from `[tool.django-orm-lsp]` in the
    /// nearest pyproject.toml; the options below override its keys.
    Check {
        /// Files or folders (folders are walked, respecting .gitignore).
        #[arg(required_unless_present = "show_settings")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output_format: OutputFormat,
        /// Only these codes or code prefixes, comma-separated (e.g. ORM101,ORM2).
        #[arg(long, value_delimiter = ',', value_parser = rule_code)]
        select: Option<Vec<String>>,
        /// Never these codes or code prefixes, comma-separated.
        #[arg(long, value_delimiter = ',', value_parser = rule_code)]
        ignore: Option<Vec<String>>,
        /// These codes or code prefixes in addition to `select`, comma-separated.
        #[arg(long, value_delimiter = ',', value_parser = rule_code)]
        extend_select: Option<Vec<String>>,
        /// Read `[tool.django-orm-lsp]` from this file instead of the nearest pyproject.toml;
        /// its folder is the project root that `exclude` and `per-file-ignores` are relative to.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Report findings in test code too (`test_*.py`, `*_test.py`, `tests.py`,
        /// `conftest.py`, `tests/` and `test/` folders), as `include-tests = true` does.
        #[arg(long)]
        include_tests: bool,
        /// Which rules report in data migrations (`migrations/*.py`): `per-row` (the default:
        /// the rules whose findings cost a query or a write per row), `all` or `none`.
        #[arg(long, value_name = "RULES", value_parser = migration_rules_argument)]
        migrations: Option<MigrationRules>,
        /// Print the effective settings and exit without linting.
        #[arg(long)]
        show_settings: bool,
        /// Apply every safe fix in place, then report the findings that remain.
        #[arg(long)]
        fix: bool,
        /// With --fix or --diff: apply unsafe fixes too (they may change behaviour).
        #[arg(long)]
        unsafe_fixes: bool,
        /// Print what --fix would change as a unified diff, without writing; exit 1 if it would
        /// change something.
        #[arg(long)]
        diff: bool,
        /// Print the number of findings per rule instead of the findings.
        #[arg(long, conflicts_with = "diff")]
        statistics: bool,
        /// Write `# noqa: CODE` on the line of every current finding (a baseline) instead of
        /// reporting them.
        #[arg(long, conflicts_with_all = ["fix", "diff", "statistics"])]
        add_noqa: bool,
        /// Neither read nor write the result cache (`.django-orm-lsp-cache/` in the project
        /// root), which lets a run reuse the findings of files unchanged since the last one.
        #[arg(long)]
        no_cache: bool,
    },
}

/// Rule panics are caught and reported once by the analysis; the default hook would print a
/// backtrace for every one. Print each distinct panic location once instead.
fn install_panic_hook() {
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    std::panic::set_hook(Box::new(move |info| {
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        if seen
            .lock()
            .map(|mut s| s.insert(location.clone()))
            .unwrap_or(true)
        {
            eprintln!("django-orm-lsp: internal error at {location}: {info}");
        }
    }));
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are successes; everything else is a usage error.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Serve { stdio: _ } => ExitCode::from(django_orm_lsp::lsp::serve() as u8),
        Command::Check {
            paths,
            output_format,
            select,
            ignore,
            extend_select,
            config,
            include_tests,
            migrations,
            show_settings,
            fix,
            unsafe_fixes,
            diff,
            statistics,
            add_noqa,
            no_cache,
        } => {
            let overrides = Options {
                select,
                ignore,
                extend_select,
                // Without the flag, the file's setting holds.
                include_tests: include_tests.then_some(true),
                migrations,
                ..Options::default()
            };
            let code = check::run(&CheckOptions {
                paths,
                format: output_format,
                config,
                overrides,
                show_settings,
                fix: (fix || diff).then_some(if unsafe_fixes {
                    FixMode::SafeAndUnsafe
                } else {
                    FixMode::Safe
                }),
                diff,
                statistics,
                add_noqa,
                no_cache,
            });
            ExitCode::from(code as u8)
        }
    }
}
