//! A Django template open in the editor. ORM410 reports in the views (where the fix goes); the
//! template shows the same findings at the lines that read the relations, so they are seen
//! where the loop is written. They come from linting the workspace's Python files that name
//! this template, or a template that includes or extends it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::analysis::index::{module_name, ModelIndex};
use crate::analysis::{lint, Diagnostic, FileContext, Place, Related};
use crate::settings::file_kind::{kind_of, FileKind};
use crate::settings::Settings;
use crate::store::{parse_python, MAX_PARSED_BYTES};

/// A template document: its name, and the workspace folder whose Python files may render it.
#[derive(Clone, Debug)]
pub struct TemplateDocument {
    pub name: String,
    pub root: PathBuf,
    /// Whether test code that renders it counts (`include-tests`).
    pub include_tests: bool,
}

/// ORM410 findings whose template line is in `template`, as diagnostics of the template's text.
pub fn diagnostics(
    template: &Path,
    document: &TemplateDocument,
    text: &str,
    index: &Arc<ModelIndex>,
    settings: &Settings,
) -> Vec<Diagnostic> {
    let (name, root) = (&document.name, &document.root);
    let mut names = index.templates().names_using(name);
    names.push(name.clone());
    // Django's default names for list and detail views are not written in the view.
    let default_named = name.ends_with("_list.html") || name.ends_with("_detail.html");
    let mut out = Vec::new();
    for file in crate::files::python_files(root) {
        let relative = file.strip_prefix(root).unwrap_or(&file);
        if !document.include_tests && kind_of(relative) == FileKind::Test {
            continue;
        }
        let Some(source) = std::fs::read_to_string(&file)
            .ok()
            .filter(|s| s.len() <= MAX_PARSED_BYTES)
        else {
            continue;
        };
        let renders = names.iter().any(|n| source.contains(n.as_str()))
            || (default_named && (source.contains("ListView") || source.contains("DetailView")));
        if !renders {
            continue;
        }
        let Some(tree) = parse_python(&source) else {
            continue;
        };
        let (module, is_package) = module_name(relative);
        let context = FileContext::new(index.clone(), module, is_package);
        for finding in lint(&source, &tree, settings, &context) {
            if finding.code() != "ORM410" {
                continue;
            }
            for place in finding.related.iter().filter(|r| r.path == template) {
                out.push(in_template(text, &source, &file, relative, &finding, place));
            }
        }
    }
    out.sort_by_key(|d| (d.range.start, d.range.end));
    out.dedup_by(|a, b| a.range == b.range && a.message == b.message);
    out
}

/// The view's finding at the template place it points to, pointing back at the view.
fn in_template(
    text: &str,
    view_source: &str,
    view: &Path,
    relative: &Path,
    finding: &Diagnostic,
    place: &Related,
) -> Diagnostic {
    let range = byte_range(text, place.place.line, place.place.bytes.clone());
    let view_place = Place::new(view_source, finding.range.start, finding.range.end);
    Diagnostic {
        rule: finding.rule,
        range,
        message: format!(
            "{} (the view: {}:{})",
            finding.message,
            relative.display(),
            view_place.line + 1
        ),
        severity: finding.severity,
        fix: None,
        related: vec![Related {
            path: view.to_path_buf(),
            place: view_place,
            message: "the queryset to extend".to_string(),
        }],
    }
}

/// Byte offsets of a line and byte columns in `text`, clamped to the text (it may have changed
/// since the place was read).
fn byte_range(text: &str, line: u32, columns: std::ops::Range<u32>) -> std::ops::Range<usize> {
    let line_start = text
        .split_inclusive('\n')
        .take(line as usize)
        .map(str::len)
        .sum::<usize>()
        .min(text.len());
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let clamp = |c: u32| {
        let mut at = (line_start + c as usize).min(line_end);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    clamp(columns.start)..clamp(columns.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_clamped_to_the_current_text() {
        let text = "a\n{{ p.author }}\né";
        assert_eq!(byte_range(text, 1, 3..11), 5..13);
        assert_eq!(byte_range(text, 1, 3..99), 5..16);
        assert_eq!(byte_range(text, 2, 1..2), 17..19);
        assert_eq!(byte_range(text, 9, 0..4), 19..19);
    }
}
