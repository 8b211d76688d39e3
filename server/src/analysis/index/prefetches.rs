//! Every prefetch lookup the workspace writes, whatever its QuerySet: what an instance loaded
//! out of the analyzer's sight (a parameter, an attribute) may come with. A relation read on the
//! rows of `user.groups.all()` can only be loaded already if some code prefetches a lookup that
//! runs through `groups` to it (`"groups__permissions"`, or a `Prefetch("groups", queryset=...)`
//! whose QuerySet may load anything).

use rustc_hash::{FxHashMap, FxHashSet};
use tree_sitter::Node;

use super::facts::string_value;
use crate::analysis::scope::{BindingKind, ScopeIndex};
use crate::analysis::syntax::{
    enclosing_scope,
    field::{self, FieldOf},
    method_call, text, walk, KindOf, Parents,
};

/// A lookup that may load anything: a prefetch whose lookup the analyzer cannot read.
const ANYTHING: &str = "*";

/// Where Django keeps prefetched rows; code that touches it may fill it with anything.
const CACHE: &str = "_prefetched_objects_cache";

/// Whether `text` may prefetch: the workspace scan keeps (and parses) such statements whole, and
/// only they are read for lookups.
pub fn mentions_prefetch(text: &str) -> bool {
    text.contains("prefetch_related") || text.contains("Prefetch") || text.contains(CACHE)
}

/// The lookups the prefetches in `statement` (a top-level statement) may load, each relative to
/// its QuerySet's model: `prefetch_related(...)` and `prefetch_related_objects(rows, ...)`
/// arguments, `Prefetch(...)` lookups (with `lookup__*` when a QuerySet of its own may load more
/// below it), and `*` for an argument the analyzer cannot read. Reads only the statement, so
/// the facts of an unchanged definition can be reused.
pub fn extract(source: &str, statement: Node) -> Vec<String> {
    let mut lookups = Vec::new();
    if !mentions_prefetch(text(statement, source)) {
        return lookups;
    }
    // A class of thousands of lines is extracted again on each keystroke in it: walk only
    // the members that mention a prefetch.
    let class = crate::analysis::syntax::undecorated(statement);
    if class.kind_name() == "class_definition" {
        if let Some(body) = class.field(&field::BODY) {
            let mut cursor = body.walk();
            let members: Vec<Node> = body.named_children(&mut cursor).collect();
            return members
                .into_iter()
                .flat_map(|member| extract(source, member))
                .collect();
        }
    }
    if text(statement, source).contains(CACHE) {
        lookups.push(ANYTHING.to_string());
    }
    let parents = Parents::new(root_of(statement));
    walk(statement, |node| {
        if node.kind_name() != "call" {
            return true;
        }
        let function = node.field(&field::FUNCTION).map(|f| text(f, source));
        let arguments: Vec<Node> = node
            .field(&field::ARGUMENTS)
            .map(|a| {
                let mut cursor = a.walk();
                let all: Vec<Node> = a
                    .named_children(&mut cursor)
                    .filter(|n| n.kind_name() != "comment")
                    .collect();
                all
            })
            .unwrap_or_default();
        if method_call(node, source).is_some_and(|(_, name)| name == "prefetch_related") {
            lookups.extend(readable_arguments(source, &arguments, &parents));
        } else if function.is_some_and(|f| f.ends_with("prefetch_related_objects")) {
            lookups.extend(readable_arguments(
                source,
                arguments.get(1..).unwrap_or(&[]),
                &parents,
            ));
        } else if function.is_some_and(|f| f.ends_with("Prefetch")) {
            lookups.extend(prefetch_object(source, &arguments));
        }
        true
    });
    lookups
}

fn root_of(node: Node) -> Node {
    let mut root = node;
    while let Some(parent) = root.parent() {
        root = parent;
    }
    root
}

/// The lookups of `prefetch_related(...)` arguments; `*` for one the analyzer cannot read.
fn readable_arguments<'a>(
    source: &'a str,
    arguments: &[Node<'a>],
    parents: &Parents<'a>,
) -> Vec<String> {
    let mut lookups = Vec::new();
    for argument in arguments {
        match readable(source, *argument, parents, 4) {
            Some(found) => lookups.extend(found),
            None => return vec![ANYTHING.to_string()],
        }
    }
    lookups
}

/// The string lookups `value` passes to a prefetch: a string; `None` (clearing); a `Prefetch`
/// object (read where it is built, so none here); a list, tuple or `*` of those; a name that
/// only such values are assigned to in its function. `None` for anything else.
fn readable<'a>(
    source: &'a str,
    value: Node<'a>,
    parents: &Parents<'a>,
    names_left: u32,
) -> Option<Vec<String>> {
    match value.kind_name() {
        "string" => string_value(value, source).map(|s| vec![s]),
        "none" => Some(Vec::new()),
        "parenthesized_expression" | "list_splat" => {
            readable(source, value.named_child(0)?, parents, names_left)
        }
        "list" | "tuple" => {
            let mut cursor = value.walk();
            let elements: Vec<Node> = value.named_children(&mut cursor).collect();
            let mut lookups = Vec::new();
            for element in elements {
                lookups.extend(readable(source, element, parents, names_left)?);
            }
            Some(lookups)
        }
        "call" => value
            .field(&field::FUNCTION)
            .filter(|f| text(*f, source).ends_with("Prefetch"))
            .map(|_| Vec::new()),
        // At most `names_left` names are followed (`a = b`, `b = a` would never end).
        "identifier" if names_left > 0 => {
            // A name of the module could be assigned in another statement: not read here.
            let scope = enclosing_scope(value, parents);
            if scope.kind_name() == "module" {
                return None;
            }
            let index = ScopeIndex::build(scope, source, parents);
            let reaching = index.reaching(text(value, source), value, parents);
            if !reaching.complete || reaching.bindings.is_empty() {
                return None;
            }
            let mut lookups = Vec::new();
            for binding in &reaching.bindings {
                let BindingKind::Assign { value, .. } = binding.kind else {
                    return None;
                };
                lookups.extend(readable(source, value, parents, names_left - 1)?);
            }
            Some(lookups)
        }
        _ => None,
    }
}

/// What `Prefetch(lookup, queryset=None, to_attr=None)` loads. With `to_attr`, the rows land in
/// that attribute and only the hops before the last load the usual way; with a QuerySet of its
/// own, anything that QuerySet loads lies below the lookup.
fn prefetch_object(source: &str, arguments: &[Node]) -> Vec<String> {
    let (mut lookup, mut queryset, mut to_attr) = (None, false, false);
    for (i, argument) in arguments.iter().enumerate() {
        let keyword = (argument.kind_name() == "keyword_argument")
            .then(|| argument.field(&field::NAME).map(|n| text(n, source)))
            .flatten();
        match keyword {
            Some("lookup") => lookup = argument.field(&field::VALUE),
            Some("queryset") => queryset = true,
            Some("to_attr") => to_attr = true,
            Some(_) => {}
            None if i == 0 => lookup = Some(*argument),
            None if i == 1 => queryset = true,
            None if i == 2 => to_attr = true,
            None => {}
        }
    }
    let Some(lookup) = lookup.and_then(|l| string_value(l, source)) else {
        return vec![ANYTHING.to_string()];
    };
    if to_attr {
        return lookup
            .rsplit_once("__")
            .map(|(through, _)| vec![through.to_string()])
            .unwrap_or_default();
    }
    if queryset {
        vec![format!("{lookup}__{ANYTHING}")]
    } else {
        vec![lookup]
    }
}

/// The workspace's prefetch lookups, by the relations they run through.
#[derive(Debug, Default)]
pub struct WorkspacePrefetches {
    /// Some prefetch the analyzer cannot read: anything may be loaded below any relation.
    unreadable: bool,
    /// For each relation name, the lookups some prefetch loads below it: `"a__groups__perms"`
    /// puts `perms` below `groups` and `groups__perms` below `a`.
    below: FxHashMap<String, Vec<String>>,
    /// Every relation some prefetch loads: `"a__groups__perms"` loads `a`, `groups` and `perms`.
    loaded: FxHashSet<String>,
}

impl WorkspacePrefetches {
    pub fn new<'l>(lookups: impl IntoIterator<Item = &'l String>) -> Self {
        let mut prefetches = Self::default();
        for lookup in lookups {
            if lookup == ANYTHING {
                prefetches.unreadable = true;
                continue;
            }
            prefetches
                .loaded
                .extend(lookup.split("__").map(str::to_string));
            let mut rest = lookup.as_str();
            while let Some((relation, below)) = rest.split_once("__") {
                let known = prefetches.below.entry(relation.to_string()).or_default();
                if !known.iter().any(|k| k == below) {
                    known.push(below.to_string());
                }
                rest = below;
            }
        }
        prefetches
    }

    /// The lookups some prefetch of the workspace may load below `relation`, relative to its
    /// rows; `*` (anything) when some prefetch cannot be read.
    pub fn below(&self, relation: &str) -> Vec<String> {
        if self.unreadable {
            return vec![ANYTHING.to_string()];
        }
        self.below.get(relation).cloned().unwrap_or_default()
    }

    /// Whether some prefetch of the workspace may load `relation` (of whichever model).
    pub fn may_load(&self, relation: &str) -> bool {
        self.unreadable || self.loaded.contains(relation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookups(source: &str) -> Vec<String> {
        let tree = crate::store::parse_python(source).unwrap();
        let root = tree.root_node();
        let mut cursor = root.walk();
        let statements: Vec<Node> = root.named_children(&mut cursor).collect();
        statements
            .iter()
            .flat_map(|s| extract(source, *s))
            .collect()
    }

    #[test]
    fn reads_string_lookups_and_prefetch_objects() {
        let found = lookups(
            "def f(qs, rows):\n    qs.prefetch_related(\"a__b\", Prefetch(\"c\", queryset=Q.objects.all()), Prefetch(\"d__e\", to_attr=\"x\"))\n    prefetch_related_objects(rows, \"f\")\n",
        );
        assert_eq!(found, ["a__b", "c__*", "d", "f"]);
    }

    #[test]
    fn a_name_is_read_through_its_assignments_in_the_function() {
        let found = lookups(
            "def f(qs, flag):\n    tiles = Prefetch(\"tiles\")\n    names = [\"a__b\", tiles]\n    return qs.prefetch_related(*names, tiles)\n",
        );
        assert_eq!(found, ["tiles", "a__b"]);
    }

    #[test]
    fn what_cannot_be_read_may_load_anything() {
        for source in [
            "def f(qs, lookups):\n    return qs.prefetch_related(*lookups)\n",
            "LOOKUPS = ['a']\ndef f(qs):\n    return qs.prefetch_related(*LOOKUPS)\n",
            "def f(qs, name):\n    return qs.prefetch_related(Prefetch(name))\n",
            "def f(qs):\n    return qs.prefetch_related(f\"{x}__y\")\n",
            "def f(obj):\n    obj._prefetched_objects_cache = {}\n",
        ] {
            assert!(lookups(source).iter().any(|l| l == "*"), "{source}");
        }
    }

    #[test]
    fn lookups_are_found_below_every_relation_they_run_through() {
        let lookups = [
            "members__groups__permissions".to_string(),
            "groups".to_string(),
        ];
        let prefetches = WorkspacePrefetches::new(&lookups);
        assert_eq!(prefetches.below("groups"), ["permissions"]);
        assert_eq!(prefetches.below("members"), ["groups__permissions"]);
        assert!(prefetches.below("permissions").is_empty());
        assert!(prefetches.may_load("members") && prefetches.may_load("permissions"));
        assert!(!prefetches.may_load("owner"));
        let unreadable = WorkspacePrefetches::new(&["*".to_string()]);
        assert_eq!(unreadable.below("groups"), ["*"]);
        assert!(unreadable.may_load("owner"));
    }
}
