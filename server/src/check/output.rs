//! How `check` prints findings. The JSON form is a public contract documented in the README:
//! change it only with a CHANGELOG entry.

use std::io::{self, Write};

use serde::Serialize;

use super::{Change, FileReport};
use crate::analysis::rules::ALL;
use crate::analysis::Severity;

/// The project's home page, for SARIF's `informationUri`: the repository the docs live in.
const INFORMATION_URI: &str = "https://github.com/django-orm-lsp/django-orm-lsp";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    /// GitHub Actions workflow commands: one annotation per finding.
    Github,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    path: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    code: &'a str,
    name: &'a str,
    message: &'a str,
    severity: &'a str,
    fix: Option<JsonFix<'a>>,
}

#[derive(Serialize)]
struct JsonFix<'a> {
    applicability: &'a str,
    message: &'a str,
    edits: Vec<JsonEdit<'a>>,
}

#[derive(Serialize)]
struct JsonEdit<'a> {
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    content: &'a str,
}

/// What a run did not check that the user may want to know of.
pub struct LeftOut {
    /// Test files, left out unless `include-tests`.
    pub test_files: usize,
}

impl LeftOut {
    /// `2 test files not checked: --include-tests`, or `None` when nothing was left out.
    pub fn note(&self) -> Option<String> {
        let n = self.test_files;
        (n > 0).then(|| {
            let noun = if n == 1 { "file" } else { "files" };
            format!("{n} test {noun} not checked: --include-tests")
        })
    }
}

pub fn write(
    out: &mut impl Write,
    format: OutputFormat,
    reports: &[&FileReport],
    files: usize,
    left_out: &LeftOut,
) -> io::Result<()> {
    match format {
        OutputFormat::Text => write_text(out, reports, files, left_out),
        OutputFormat::Json => write_json(out, reports),
        OutputFormat::Github => write_github(out, reports),
        OutputFormat::Sarif => write_sarif(out, reports),
    }
}

fn write_text(
    out: &mut impl Write,
    reports: &[&FileReport],
    files: usize,
    left_out: &LeftOut,
) -> io::Result<()> {
    let mut total = 0;
    let mut fixable = 0;
    for report in reports {
        for d in &report.diagnostics {
            let at = report.locate(&d.range);
            let marker = if d.fix.as_ref().is_some_and(|f| f.is_safe()) {
                " [*]"
            } else {
                ""
            };
            writeln!(
                out,
                "{}:{}:{}: {} {}{marker}",
                report.path.display(),
                at.line,
                at.column,
                d.code(),
                d.message
            )?;
            total += 1;
            fixable += usize::from(!marker.is_empty());
        }
    }
    let noun = if files == 1 { "file" } else { "files" };
    let note = left_out.note();
    if total == 0 {
        let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
        writeln!(out, "No ORM issues found in {files} {noun}{note}.")
    } else {
        let note = note.map(|n| format!("; {n}")).unwrap_or_default();
        writeln!(
            out,
            "Found {total} ORM issue{} in {files} {noun} ({fixable} with a safe fix, marked [*]{note}).",
            if total == 1 { "" } else { "s" }
        )
    }
}

fn write_json(out: &mut impl Write, reports: &[&FileReport]) -> io::Result<()> {
    let mut items = Vec::new();
    for report in reports {
        for d in &report.diagnostics {
            let at = report.locate(&d.range);
            let fix = d.fix.as_ref().map(|f| JsonFix {
                applicability: f.applicability.as_str(),
                message: &f.title,
                edits: f
                    .edits
                    .iter()
                    .map(|e| {
                        let at = report.locate(&e.range);
                        JsonEdit {
                            line: at.line,
                            column: at.column,
                            end_line: at.end_line,
                            end_column: at.end_column,
                            content: &e.content,
                        }
                    })
                    .collect(),
            });
            items.push(JsonDiagnostic {
                path: report.path.display().to_string(),
                line: at.line,
                column: at.column,
                end_line: at.end_line,
                end_column: at.end_column,
                code: d.code(),
                name: d.rule.name,
                message: &d.message,
                severity: d.severity.as_str(),
                fix,
            });
        }
    }
    serde_json::to_writer_pretty(&mut *out, &items)?;
    writeln!(out)
}

/// `Fixed 3 issues in 2 files.` (or `Would fix ...` for `--diff`).
pub fn fixed_summary(verb: &str, applied: usize, files: usize) -> String {
    format!(
        "{verb} {applied} issue{} in {files} file{}.",
        if applied == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" }
    )
}

/// A unified diff of one file's fixes, with the path as given in both headers (`patch -p0`).
pub fn write_diff(out: &mut impl Write, path: &std::path::Path, change: &Change) -> io::Result<()> {
    let name = path.display().to_string();
    let diff = similar::TextDiff::from_lines(&change.before, &change.after);
    write!(
        out,
        "{}",
        diff.unified_diff().context_radius(3).header(&name, &name)
    )
}

/// Findings per rule, most frequent first: count, code, name and how many have a fix that
/// `--fix` would apply (with `--unsafe-fixes`, unsafe ones too).
pub fn write_statistics(
    out: &mut impl Write,
    format: OutputFormat,
    reports: &[&FileReport],
    fix: Option<crate::analysis::FixMode>,
    left_out: &LeftOut,
) -> io::Result<()> {
    let mode = fix.unwrap_or_default();
    let mut rows: Vec<(&'static str, &'static str, usize, usize)> = Vec::new();
    for d in reports.iter().flat_map(|r| &r.diagnostics) {
        let fixable = usize::from(d.fix.as_ref().is_some_and(|f| mode.applies(f)));
        match rows.iter_mut().find(|row| row.0 == d.code()) {
            Some(row) => {
                row.2 += 1;
                row.3 += fixable;
            }
            None => rows.push((d.code(), d.rule.name, 1, fixable)),
        }
    }
    rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    if format == OutputFormat::Json {
        let items: Vec<_> = rows
            .iter()
            .map(|(code, name, count, fixable)| {
                serde_json::json!({"code": code, "name": name, "count": count, "fixable": fixable})
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &items)?;
        return writeln!(out);
    }
    let width = rows
        .iter()
        .map(|r| r.2.to_string().len())
        .max()
        .unwrap_or(1);
    let name_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (code, name, count, fixable) in &rows {
        writeln!(
            out,
            "{count:>width$}  {code}  {name:<name_width$}  {fixable} fixable"
        )?;
    }
    match left_out.note() {
        Some(note) => writeln!(out, "{note}"),
        None => Ok(()),
    }
}

/// `::warning file=...,line=..,col=..,endLine=..,endColumn=..,title=ORM101 (len-queryset)::message`
fn write_github(out: &mut impl Write, reports: &[&FileReport]) -> io::Result<()> {
    for report in reports {
        let path = report.path.display().to_string();
        let file = escape_property(path.trim_start_matches("./"));
        for d in &report.diagnostics {
            let at = report.locate(&d.range);
            let command = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info | Severity::Hint => "notice",
            };
            let title = escape_property(&format!("{} ({})", d.code(), d.rule.name));
            writeln!(
                out,
                "::{command} file={file},line={},col={},endLine={},endColumn={},title={title}::{}",
                at.line,
                at.column,
                at.end_line,
                at.end_column,
                escape_data(&d.message)
            )?;
        }
    }
    Ok(())
}

/// A workflow command's message: `%`, CR and LF are percent-encoded.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`, which delimit properties.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info | Severity::Hint => "note",
    }
}

/// A path as a SARIF artifact URI: relative paths stay relative (to the directory `check` ran
/// in), with `/` separators and anything outside RFC 3986's unreserved set percent-encoded.
fn artifact_uri(path: &std::path::Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let text = text.trim_start_matches("./");
    let mut uri = String::new();
    if path.is_absolute() {
        uri.push_str("file://");
    }
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// SARIF 2.1.0: one run whose driver lists every rule; one result per finding, columns in
/// Unicode code points (as in the JSON output), fixes as replacements.
fn write_sarif(out: &mut impl Write, reports: &[&FileReport]) -> io::Result<()> {
    use serde_json::json;
    let rules: Vec<_> = ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.meta.code,
                "name": r.meta.name,
                "shortDescription": {"text": r.meta.name.replace('-', " ")},
                "helpUri": r.meta.docs_url(),
                "defaultConfiguration": {"level": sarif_level(r.meta.severity)},
            })
        })
        .collect();
    let region = |report: &FileReport, range: &std::ops::Range<usize>| {
        let at = report.locate(range);
        json!({
            "startLine": at.line,
            "startColumn": at.column,
            "endLine": at.end_line,
            "endColumn": at.end_column,
        })
    };
    let mut results = Vec::new();
    for report in reports {
        let uri = artifact_uri(&report.path);
        for d in &report.diagnostics {
            let mut result = json!({
                "ruleId": d.code(),
                "level": sarif_level(d.severity),
                "message": {"text": d.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": region(report, &d.range),
                    }
                }],
            });
            if let Some(index) = ALL.iter().position(|r| r.meta.code == d.code()) {
                result["ruleIndex"] = json!(index);
            }
            if let Some(fix) = &d.fix {
                let replacements: Vec<_> = fix
                    .edits
                    .iter()
                    .map(|e| {
                        json!({
                            "deletedRegion": region(report, &e.range),
                            "insertedContent": {"text": e.content},
                        })
                    })
                    .collect();
                result["fixes"] = json!([{
                    "description": {"text": fix.title},
                    "artifactChanges": [{
                        "artifactLocation": {"uri": uri},
                        "replacements": replacements,
                    }],
                }]);
            }
            results.push(result);
        }
    }
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "django-orm-lsp",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_information_uri_is_where_the_rule_docs_live() {
        assert!(crate::analysis::rules::DOCS_BASE_URL.starts_with(INFORMATION_URI));
    }

    #[test]
    fn escapes_workflow_commands_and_uris() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
        assert_eq!(
            artifact_uri(std::path::Path::new("./my app/views.py")),
            "my%20app/views.py"
        );
        assert_eq!(
            artifact_uri(std::path::Path::new("/srv/x.py")),
            "file:///srv/x.py"
        );
    }
}
