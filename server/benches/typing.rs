//! Where a keystroke's time goes while a statement is typed into code, in-process: the same
//! typing as `../shared/tools/lsp_latency.py --typing code` (a new line in the function nearest
//! the middle of the file, then `found = Device.objects.filter(site__name='x').count() > 0`
//! a character at a time), done the way the editor does it (`Document::apply_changes`, then
//! `lint_typed`, which parses only if the text alone does not tell), on
//! `django/db/models/query.py` and `tests/admin_views/tests.py` of Django's sdist (or the files
//! given, under a corpus folder).
//! The workspace is the file's folder, as that script opens it. Prints each phase's mean and
//! the keystrokes over 10 ms with their phases: which keystrokes make the tail, and whether
//! tree-sitter or the lint pays for them; and how many keystrokes were answered without
//! parsing, and how many of those answers a parse then proved wrong (the server publishes
//! those again once typing pauses). Asserts nothing.
//!
//!     cargo bench --bench typing [-- FOLDER [FILE...]]

#[path = "common/corpus.rs"]
mod corpus;

use std::path::Path;
use std::time::{Duration, Instant};

use django_orm_lsp::analysis::{lint_typed, prediction_holds, FileContext, LintCache, WantedTree};
use django_orm_lsp::settings::Settings;
use django_orm_lsp::store::{Document, PositionEncoding, TextChange, TextPosition};
use django_orm_lsp::workspace::Workspace;

const STATEMENT: &str = "found = Device.objects.filter(site__name='x').count() > 0";
const KEYSTROKES: usize = 200;
const WARMUP: usize = 10;

/// One keystroke's phases: applying the edit, parsing (the tree the lint asks for, if any),
/// the lint (with what it tells from the text alone); and whether it was answered without
/// parsing, and if so whether the answer held.
#[derive(Clone, Copy, Default)]
struct Phases {
    apply: Duration,
    parse: Duration,
    lint: Duration,
    predicted: Option<bool>,
}

impl Phases {
    fn total(&self) -> Duration {
        self.apply + self.parse + self.lint
    }
}

struct Editor<'a> {
    document: Document,
    cache: LintCache,
    settings: &'a Settings,
    file: &'a FileContext,
}

impl Editor<'_> {
    /// Inserts `text` at (line, column) and lints the way the server does.
    fn type_at(&mut self, line: usize, column: usize, text: &str) -> Phases {
        let at = TextPosition::new(line as u32, column as u32);
        let started = Instant::now();
        let version = self.document.version() + 1;
        let change = TextChange {
            range: Some((at, at)),
            text: text.to_string(),
        };
        self.document
            .apply_changes(&[change], version, PositionEncoding::Utf8);
        let snapshot = self.document.snapshot();
        let applied = Instant::now();
        let mut parse = Duration::ZERO;
        let typed = lint_typed(
            snapshot.text(),
            self.settings,
            self.file,
            &mut self.cache,
            |wanted| {
                let asked = Instant::now();
                let tree = match wanted {
                    WantedTree::Current => snapshot.tree(),
                    WantedTree::Mended => snapshot.tree_mended(),
                };
                parse = asked.elapsed();
                tree
            },
        );
        let linted = Instant::now();
        // Checked off the clock, on a fresh parse (the server checks once typing pauses).
        let predicted = typed.and_then(|t| t.predicted).map(|region| {
            let tree = django_orm_lsp::store::parse_python(snapshot.text());
            tree.is_some_and(|tree| prediction_holds(snapshot.text(), &tree, &region))
        });
        // The document keeps the tree its snapshot parsed, as the server's does.
        self.document.keep_tree_of(&snapshot);
        Phases {
            apply: applied - started,
            parse,
            lint: linted - applied - parse,
            predicted,
        }
    }
}

/// The line `lsp_latency.py` types on, and its indentation: the first body line of a function
/// nearest the middle that does not continue or close a bracket.
fn typing_line(lines: &[&str]) -> Option<(usize, usize)> {
    let middle = lines.len() / 2;
    (middle..lines.len())
        .chain((1..=middle).rev())
        .find_map(|k| {
            let code = lines[k].trim_start_matches(' ');
            let depth = lines[k].len() - code.len();
            let opens = [
                "#", ")", "]", "}", "else", "elif", "except", "finally", "\"", "'",
            ];
            let continues = [',', '(', '[', '{', '\\'];
            let fits = depth >= 8
                && !code.is_empty()
                && !opens.iter().any(|p| code.starts_with(p))
                && !lines[k - 1].trim_end().ends_with(continues);
            fits.then_some((k, depth))
        })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn replay(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        println!("{}: skipped: not readable", path.display());
        return;
    };
    let root = path.parent().unwrap_or(Path::new("."));
    let workspace = Workspace::scan(root, |_, _| {});
    let file = workspace.context_for(path);
    let settings = Settings::default();
    let lines: Vec<&str> = text.split('\n').collect();
    let Some((mut line, depth)) = typing_line(&lines) else {
        println!("{}: skipped: no function body to type into", path.display());
        return;
    };
    let indent = " ".repeat(depth);
    let mut editor = Editor {
        document: Document::new(&text, 1),
        cache: LintCache::default(),
        settings: &settings,
        file: &file,
    };
    editor.type_at(line, 0, &format!("{indent}\n"));
    let keys: Vec<String> = STATEMENT
        .chars()
        .map(String::from)
        .chain([format!("\n{indent}")])
        .collect();
    let mut column = depth;
    let mut typed = String::new();
    let mut samples = Vec::new();
    for k in 0..WARMUP + KEYSTROKES {
        let key = &keys[k % keys.len()];
        let phases = editor.type_at(line, column, key);
        if key.starts_with('\n') {
            (line, column, typed) = (line + 1, depth, String::new());
        } else {
            column += key.len();
            typed.push_str(key);
        }
        if k >= WARMUP {
            samples.push((phases, typed.clone()));
        }
    }
    let mut totals: Vec<Duration> = samples.iter().map(|(p, _)| p.total()).collect();
    totals.sort();
    let at = |q: f64| ms(totals[((totals.len() - 1) as f64 * q).round() as usize]);
    let mean = |phase: fn(&Phases) -> Duration| {
        samples.iter().map(|(p, _)| ms(phase(p))).sum::<f64>() / samples.len() as f64
    };
    println!(
        "{} ({} lines): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms; mean apply {:.2}, parse {:.2}, lint {:.2} ms; {} of {} answered without parsing, {} of them wrong",
        path.display(),
        lines.len(),
        at(0.5),
        at(0.95),
        at(1.0),
        mean(|p| p.apply),
        mean(|p| p.parse),
        mean(|p| p.lint),
        samples.iter().filter(|(p, _)| p.predicted.is_some()).count(),
        samples.len(),
        samples
            .iter()
            .filter(|(p, _)| p.predicted == Some(false))
            .count(),
    );
    for (phases, typed) in samples.iter().filter(|(p, _)| ms(p.total()) > 10.0) {
        println!(
            "  {:6.1} ms = parse {:5.1} + lint {:5.1}  after `{typed}`",
            ms(phases.total()),
            ms(phases.parse),
            ms(phases.lint),
        );
    }
}

fn main() {
    let Some(corpus) = corpus::corpus() else {
        println!("skipped: scripts/corpus did not provide Django's sdist");
        return;
    };
    let given: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .skip(1)
        .collect();
    let files: Vec<String> = if given.is_empty() {
        vec![
            "django/db/models/query.py".into(),
            "tests/admin_views/tests.py".into(),
        ]
    } else {
        given
    };
    for file in files {
        replay(&corpus.join(file));
    }
}
