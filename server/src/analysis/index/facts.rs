//! What one Python file says about models, read from its syntax tree alone: classes with their
//! bases, fields, managers, methods and `Meta`; imports; signal receivers; `AUTH_USER_MODEL`.
//! Names stay unresolved text here; `ModelIndex` resolves them across files.

use rustc_hash::{FxHashMap, FxHashSet};
use tree_sitter::{Node, Tree};

use crate::analysis::syntax::{
    field::{self, FieldOf},
    text, undecorated, KindOf,
};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileFacts {
    /// Dotted module path (`blog.models`), from the file's path.
    pub module: String,
    pub is_package: bool,
    pub imports: Vec<Import>,
    pub classes: Vec<ClassFacts>,
    pub receivers: Vec<ReceiverFacts>,
    /// Signals with a receiver for every sender (no `sender=`, or one the index cannot read).
    pub any_sender_signals: Vec<String>,
    /// `AUTH_USER_MODEL = "app.Model"` at module level.
    pub auth_user_model: Option<String>,
    /// Classes that may be REST framework serializers (ORM411 reads them across files).
    pub serializers: Vec<crate::analysis::serializers::SerializerFacts>,
    /// The file's path, when the workspace read it (related information points into it).
    pub path: Option<std::path::PathBuf>,
    /// `class BlogConfig(AppConfig)`: the app's module and the label its models take.
    pub app_configs: Vec<AppConfigFacts>,
    /// The lookups the file's prefetches may load, whatever their QuerySet (`*`: one the
    /// analyzer cannot read). See `prefetches.rs`.
    pub prefetch_lookups: Vec<String>,
    /// `@register.inclusion_tag("t.html")` functions: ORM410 follows templates into them.
    pub inclusion_tags: Vec<InclusionTagFacts>,
}

/// `@register.inclusion_tag("list.html", name="post_list")` on `def post_list(posts):
/// return {"posts": posts}`: `{% post_list rows %}` renders `list.html` with `posts` = `rows`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct InclusionTagFacts {
    /// The tag's name in templates: `name=`, else the function's.
    pub name: String,
    pub template: String,
    /// The keys of the returned dict literal that are parameters passed through as they are,
    /// with the position of the tag argument each takes (after `context` with `takes_context`).
    pub passed: Vec<(String, usize)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AppConfigFacts {
    /// `name = "shop.core"`: the app's package.
    pub name: Option<String>,
    /// `label = "shop"`: the app label of its models (default: the package's last part).
    pub label: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Import {
    /// `import a.b` binds `a` to module `a`; `import a.b as c` binds `c` to module `a.b`.
    Module { module: String, alias: String },
    /// `from a import b as c` (relative modules already made absolute).
    From {
        module: String,
        name: String,
        alias: String,
    },
    /// `from a import *`.
    Star { module: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClassFacts {
    pub name: String,
    /// Base class expressions as dotted text (`models.Model`), subscripts dropped.
    pub bases: Vec<String>,
    pub fields: Vec<FieldFacts>,
    pub managers: Vec<ManagerFacts>,
    pub methods: Vec<MethodFacts>,
    pub meta: MetaFacts,
    /// `list_display = (...)` as written, entry by entry: which functions an admin's changelist
    /// calls per row (the lint of those functions depends on it).
    pub list_display: Vec<String>,
    /// `list_select_related = ...` as written: what the changelists of admins deriving from the
    /// class join (their lint depends on it).
    pub list_select_related: Option<String>,
    /// Which of `GENERIC_VIEW_ATTRIBUTES` the class assigns: a view deriving from it inherits
    /// them, and with them which template renders which rows.
    pub view_attributes: Vec<String>,
}

/// Attributes of Django's generic views that decide which template renders which rows.
pub const GENERIC_VIEW_ATTRIBUTES: &[&str] = &[
    "template_name",
    "template_name_suffix",
    "context_object_name",
    "paginate_by",
    "queryset",
    "model",
];

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldFacts {
    pub name: String,
    /// The field class as written: `models.ForeignKey`, `CharField`.
    pub class: String,
    /// The related model as written: a dotted name or a string literal's content.
    pub to: Option<Reference>,
    pub to_field: Option<String>,
    pub related_name: Option<String>,
    /// `related_query_name="..."`: the name queries use for the reverse side, when written.
    pub related_query_name: Option<String>,
    pub auto_now: bool,
    /// `auto_now=True` alone: the field is set again by every `save()` (not by `update()`).
    pub auto_now_on_save: bool,
    /// A many-to-many field with its own `through=` model, whose columns are the project's.
    pub custom_through: bool,
    /// `null=` anything but `False`: the column may hold NULL.
    pub may_be_null: bool,
    /// `db_column="..."`: the column's name when it is not the field's (SQL on hover); empty
    /// when the index cannot read it, so that nobody guesses it.
    pub db_column: Option<String>,
    /// `db_table="..."` of a many-to-many: its join table's name when it is not Django's
    /// (SQL on hover); empty when the index cannot read it.
    pub db_table: Option<String>,
    /// `primary_key=True`: the model has no implicit `id`.
    pub primary_key: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    /// `Blog`, `blog.models.Blog`
    Name(String),
    /// `"blog.Blog"`, `"Blog"`, `"self"`
    String(String),
    /// `settings.AUTH_USER_MODEL`, `get_user_model()`
    UserModel,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ManagerFacts {
    pub name: String,
    /// The manager class (`PublishedManager`, `models.Manager`), when it is instantiated.
    pub class: Option<String>,
    /// The QuerySet class behind it: `Qs.as_manager()`, `Manager.from_queryset(Qs)()`.
    pub queryset: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MethodFacts {
    pub name: String,
    /// Every `return` gives `self` or a call chain on `self` or `super()`: a custom QuerySet or
    /// manager method that returns a QuerySet.
    pub returns_queryset: bool,
    /// The attribute chains a method taking only `self` reads on it (`self.author.name`): what
    /// a model's `__str__`, method or property shown in an admin changelist reads per row.
    pub self_reads: Vec<crate::analysis::serializers::ObjectRead>,
    /// Calls `select_related`: a manager's `get_queryset()` doing so turns off the joins Django
    /// makes for an admin's changelist.
    pub calls_select_related: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MetaFacts {
    pub is_abstract: bool,
    pub proxy: bool,
    pub app_label: Option<String>,
    pub default_related_name: Option<String>,
    /// `db_table = "..."`: the table's name when it is not `<app_label>_<model>`; empty when
    /// the index cannot read it.
    pub db_table: Option<String>,
    /// `ordering = [...]`: the default ORDER BY; an entry the index cannot read (an
    /// expression, a constant) is kept as `None` so that nobody guesses it.
    pub ordering: Option<Vec<Option<String>>>,
    /// `managed = ` anything but `True`: Django creates no table for it, and PostgreSQL's
    /// compiler does not shorten a GROUP BY to its primary key (SQL on hover).
    pub unmanaged: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverFacts {
    /// `post_save`, `pre_delete`, `m2m_changed`, ...
    pub signal: String,
    pub sender: Reference,
}

/// `blog/models.py` -> (`blog.models`, false); `blog/__init__.py` -> (`blog`, true).
pub fn module_name(relative_path: &std::path::Path) -> (String, bool) {
    let mut parts: Vec<String> = relative_path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => s.to_str().map(str::to_string),
            _ => None,
        })
        .collect();
    let Some(last) = parts.pop() else {
        return (String::new(), false);
    };
    let stem = last
        .strip_suffix(".pyi")
        .or_else(|| last.strip_suffix(".py"))
        .unwrap_or(&last)
        .to_string();
    let is_package = stem == "__init__";
    if !is_package {
        parts.push(stem);
    }
    (parts.join("."), is_package)
}

pub fn extract(source: &str, tree: &Tree, module: &str, is_package: bool) -> FileFacts {
    // Each method is read once, for the class's facts and for its prefetches.
    let mut read: FxHashMap<usize, MethodPart> = FxHashMap::default();
    extract_with(tree, module, is_package, &mut |statement, facts| {
        extract_top_level(source, statement, facts, &mut |method| {
            read.entry(method.id())
                .or_insert_with(|| method_part(source, method))
                .clone()
        })
    })
}

/// `extract`, reusing what `memo` knows of classes and functions whose text did not change:
/// their bodies are most of a file, and the linter extracts facts on every keystroke.
pub fn extract_memoised(
    source: &str,
    tree: &Tree,
    module: &str,
    is_package: bool,
    memo: &mut FactsMemo,
) -> FileFacts {
    let mut seen = FxHashSet::default();
    let mut seen_methods = FxHashSet::default();
    let FactsMemo {
        statements,
        methods,
    } = memo;
    let mut read_method = |method: Node| {
        let key = crate::analysis::syntax::parse_hash(method, method.byte_range(), source);
        seen_methods.insert(key);
        methods
            .entry(key)
            .or_insert_with(|| method_part(source, method))
            .clone()
    };
    let facts = extract_with(tree, module, is_package, &mut |statement, facts| {
        if !matches!(
            statement.kind_name(),
            "class_definition" | "decorated_definition" | "function_definition"
        ) {
            return extract_top_level(source, statement, facts, &mut read_method);
        }
        let key = crate::analysis::syntax::parse_hash(statement, statement.byte_range(), source);
        let line = statement.start_position().row;
        seen.insert(key);
        let known = statements
            .get(&key)
            .filter(|m| m.line == line || !m.has_lines);
        if known.is_none() {
            let mut part = FileFacts::default();
            extract_top_level(source, statement, &mut part, &mut read_method);
            let has_lines = !part.serializers.is_empty();
            statements.insert(
                key,
                Memoised {
                    line,
                    has_lines,
                    part,
                },
            );
        }
        facts.absorb(&statements[&key].part);
    });
    statements.retain(|key, _| seen.contains(key));
    methods.retain(|key, _| seen_methods.contains(key));
    facts
}

/// Facts of single definitions, by `syntax::parse_hash` of their text: top-level statements,
/// and the methods of the classes among them, so that a keystroke in a class of thousands of
/// lines reads again only the method it is in.
#[derive(Default)]
pub struct FactsMemo {
    statements: FxHashMap<u64, Memoised>,
    methods: FxHashMap<u64, MethodPart>,
}

/// What a method of a class tells, read from its text alone: its facts (but `self_reads`,
/// which only a model's methods have) and the lookups its prefetches may load.
#[derive(Clone)]
struct MethodPart {
    facts: MethodFacts,
    prefetch_lookups: Vec<String>,
}

/// `method`: a member of a class body that is a function, decorated or not.
fn method_part(source: &str, method: Node) -> MethodPart {
    let function = undecorated(method);
    MethodPart {
        facts: MethodFacts {
            name: function
                .field(&field::NAME)
                .map_or("", |n| text(n, source))
                .to_string(),
            returns_queryset: returns_queryset(source, function),
            self_reads: Vec::new(),
            calls_select_related: text(function, source).contains("select_related"),
        },
        prefetch_lookups: super::prefetches::extract(source, method),
    }
}

/// Reads a class's methods (`method_part`), memoised or not.
type ReadMethod<'r, 't> = dyn FnMut(Node<'t>) -> MethodPart + 'r;

pub struct Memoised {
    /// Where the definition started.
    line: usize,
    /// Whether its facts hold line numbers (a serializer's fields, shown as related
    /// information): then they stand only at the same line.
    has_lines: bool,
    part: FileFacts,
}

fn extract_with(
    tree: &Tree,
    module: &str,
    is_package: bool,
    each: &mut dyn FnMut(Node, &mut FileFacts),
) -> FileFacts {
    let mut facts = FileFacts {
        module: module.to_string(),
        is_package,
        ..FileFacts::default()
    };
    let root = tree.root_node();
    let mut cursor = root.walk();
    let statements: Vec<Node> = root.named_children(&mut cursor).collect();
    for statement in statements {
        each(statement, &mut facts);
    }
    facts
}

impl FileFacts {
    /// Adds what one statement's facts say, as if extracted in place.
    fn absorb(&mut self, part: &FileFacts) {
        self.imports.extend(part.imports.iter().cloned());
        self.classes.extend(part.classes.iter().cloned());
        self.receivers.extend(part.receivers.iter().cloned());
        self.serializers.extend(part.serializers.iter().cloned());
        self.app_configs.extend(part.app_configs.iter().cloned());
        self.prefetch_lookups
            .extend(part.prefetch_lookups.iter().cloned());
        self.inclusion_tags
            .extend(part.inclusion_tags.iter().cloned());
        for signal in &part.any_sender_signals {
            if !self.any_sender_signals.contains(signal) {
                self.any_sender_signals.push(signal.clone());
            }
        }
        if part.auth_user_model.is_some() {
            self.auth_user_model = part.auth_user_model.clone();
        }
    }
}

/// The facts of a top-level statement: what it declares, and the prefetches anywhere inside.
fn extract_top_level<'t>(
    source: &str,
    statement: Node<'t>,
    facts: &mut FileFacts,
    read_method: &mut ReadMethod<'_, 't>,
) {
    extract_statement(source, statement, facts, read_method);
    // A class's prefetches are its members', a method's read with its other facts.
    let class = undecorated(statement);
    let body = (class.kind_name() == "class_definition")
        .then(|| class.field(&field::BODY))
        .flatten();
    let Some(body) = body.filter(|_| super::prefetches::mentions_prefetch(text(statement, source)))
    else {
        facts
            .prefetch_lookups
            .extend(super::prefetches::extract(source, statement));
        return;
    };
    let mut cursor = body.walk();
    for member in body.named_children(&mut cursor) {
        let lookups = match undecorated(member).kind_name() {
            "function_definition" => read_method(member).prefetch_lookups,
            _ => super::prefetches::extract(source, member),
        };
        facts.prefetch_lookups.extend(lookups);
    }
}

fn extract_statement<'t>(
    source: &str,
    statement: Node<'t>,
    facts: &mut FileFacts,
    read_method: &mut ReadMethod<'_, 't>,
) {
    match statement.kind_name() {
        "import_statement" | "import_from_statement" => extract_import(source, statement, facts),
        "class_definition" => {
            let class = extract_class(source, statement, read_method);
            if class.bases.iter().any(|b| b.ends_with("AppConfig")) {
                facts
                    .app_configs
                    .push(extract_app_config(source, statement));
            }
            facts.classes.push(class);
            facts
                .serializers
                .extend(crate::analysis::serializers::extract(source, statement));
        }
        "decorated_definition" => {
            let Some(definition) = statement.field(&field::DEFINITION) else {
                return;
            };
            let mut cursor = statement.walk();
            for decorator in statement
                .named_children(&mut cursor)
                .filter(|n| n.kind_name() == "decorator")
            {
                extract_receiver_decorator(source, decorator, facts);
                facts
                    .inclusion_tags
                    .extend(inclusion_tag(source, decorator, definition));
            }
            extract_statement(source, definition, facts, read_method);
        }
        "expression_statement" => {
            let Some(expr) = statement.named_child(0) else {
                return;
            };
            if expr.kind_name() == "assignment" {
                let left = expr.field(&field::LEFT).map(|l| text(l, source));
                let right = expr.field(&field::RIGHT);
                if left == Some("AUTH_USER_MODEL") {
                    facts.auth_user_model = right.and_then(|r| string_value(r, source));
                }
            } else if expr.kind_name() == "call" {
                extract_connect(source, expr, facts);
            }
        }
        // `if TYPE_CHECKING:` / `try: import ...` blocks hold imports, and models defined only
        // under a setting (`if settings.X:`, `try:`/`except ImportError:`).
        "if_statement" | "try_statement" | "with_statement" => {
            let mut cursor = statement.walk();
            let blocks: Vec<Node> = statement
                .named_children(&mut cursor)
                .flat_map(|n| match n.kind_name() {
                    "block" => vec![n],
                    _ if n.kind_name().ends_with("_clause") => {
                        let mut cursor = n.walk();
                        let blocks: Vec<Node> = n
                            .named_children(&mut cursor)
                            .filter(|b| b.kind_name() == "block")
                            .collect();
                        blocks
                    }
                    _ => Vec::new(),
                })
                .collect();
            for block in blocks {
                let mut cursor = block.walk();
                let inner: Vec<Node> = block.named_children(&mut cursor).collect();
                for statement in inner {
                    extract_statement(source, statement, facts, read_method);
                }
            }
        }
        _ => {}
    }
}

/// The names one import statement binds (one inside a function, say), as the facts of a file
/// that holds only it.
pub fn import_facts(source: &str, statement: Node, module: &str, is_package: bool) -> FileFacts {
    let mut facts = FileFacts {
        module: module.to_string(),
        is_package,
        ..FileFacts::default()
    };
    extract_import(source, statement, &mut facts);
    facts
}

fn extract_import(source: &str, statement: Node, facts: &mut FileFacts) {
    let mut cursor = statement.walk();
    if statement.kind_name() == "import_statement" {
        for name in statement.children_by_field_name("name", &mut cursor) {
            match name.kind_name() {
                "dotted_name" => {
                    let module = text(name, source).to_string();
                    let alias = module.split('.').next().unwrap_or_default().to_string();
                    facts.imports.push(Import::Module {
                        module: alias.clone(),
                        alias,
                    });
                }
                "aliased_import" => {
                    let (Some(module), Some(alias)) =
                        (name.field(&field::NAME), name.field(&field::ALIAS))
                    else {
                        continue;
                    };
                    facts.imports.push(Import::Module {
                        module: text(module, source).into(),
                        alias: text(alias, source).into(),
                    });
                }
                _ => {}
            }
        }
        return;
    }
    let Some(module_node) = statement.field(&field::MODULE_NAME) else {
        return;
    };
    let module = absolute_module(text(module_node, source), &facts.module, facts.is_package);
    if statement
        .named_children(&mut cursor)
        .any(|n| n.kind_name() == "wildcard_import")
    {
        facts.imports.push(Import::Star { module });
        return;
    }
    for name in statement.children_by_field_name("name", &mut cursor) {
        let (imported, alias) = match name.kind_name() {
            "dotted_name" => (text(name, source), text(name, source)),
            "aliased_import" => match (name.field(&field::NAME), name.field(&field::ALIAS)) {
                (Some(n), Some(a)) => (text(n, source), text(a, source)),
                _ => continue,
            },
            _ => continue,
        };
        facts.imports.push(Import::From {
            module: module.clone(),
            name: imported.into(),
            alias: alias.into(),
        });
    }
}

/// `..models` seen from `blog.views` -> `models`; from package `blog` `.models` -> `blog.models`.
fn absolute_module(written: &str, current: &str, is_package: bool) -> String {
    let dots = written.chars().take_while(|c| *c == '.').count();
    if dots == 0 {
        return written.to_string();
    }
    let mut base: Vec<&str> = current.split('.').filter(|s| !s.is_empty()).collect();
    // A module's own package is one level up; a package is its own.
    let up = if is_package { dots - 1 } else { dots };
    for _ in 0..up {
        base.pop();
    }
    let rest = &written[dots..];
    if !rest.is_empty() {
        base.push(rest);
    }
    base.join(".")
}

fn extract_app_config(source: &str, class: Node) -> AppConfigFacts {
    let mut config = AppConfigFacts::default();
    let Some(body) = class.field(&field::BODY) else {
        return config;
    };
    let mut cursor = body.walk();
    for statement in body.named_children(&mut cursor) {
        let Some((left, right)) = crate::analysis::syntax::simple_assignment(statement) else {
            continue;
        };
        match text(left, source) {
            "name" => config.name = string_value(right, source),
            "label" => config.label = string_value(right, source),
            _ => {}
        }
    }
    config
}

fn extract_class<'t>(
    source: &str,
    class: Node<'t>,
    read_method: &mut ReadMethod<'_, 't>,
) -> ClassFacts {
    let mut facts = ClassFacts {
        name: class
            .field(&field::NAME)
            .map_or("", |n| text(n, source))
            .to_string(),
        ..ClassFacts::default()
    };
    if let Some(superclasses) = class.field(&field::SUPERCLASSES) {
        let mut cursor = superclasses.walk();
        for base in superclasses.named_children(&mut cursor) {
            let base = if base.kind_name() == "subscript" {
                base.field(&field::VALUE).unwrap_or(base)
            } else {
                base
            };
            if matches!(base.kind_name(), "identifier" | "attribute") {
                facts.bases.push(text(base, source).to_string());
            } else if base.kind_name() == "call" {
                // `models.Manager.from_queryset(Qs)` as a base: the manager and its QuerySet.
                if let Some((class, queryset)) = from_queryset(source, base) {
                    facts.bases.push(class);
                    facts.managers.push(ManagerFacts {
                        name: String::new(),
                        class: None,
                        queryset: Some(queryset),
                    });
                }
            }
        }
    }
    let Some(body) = class.field(&field::BODY) else {
        return facts;
    };
    let mut cursor = body.walk();
    let mut methods = Vec::new();
    for member in body.named_children(&mut cursor) {
        let statement = undecorated(member);
        match statement.kind_name() {
            "expression_statement" => {
                let Some(assignment) = statement
                    .named_child(0)
                    .filter(|a| a.kind_name() == "assignment")
                else {
                    continue;
                };
                extract_class_assignment(source, assignment, &mut facts);
                extract_view_attributes(source, assignment, &mut facts);
            }
            "function_definition" => {
                methods.push(statement);
                facts.methods.push(read_method(member).facts);
            }
            "class_definition"
                if statement
                    .field(&field::NAME)
                    .is_some_and(|n| text(n, source) == "Meta") =>
            {
                facts.meta = extract_meta(source, statement);
            }
            _ => {}
        }
    }
    // Only a model's methods are shown in a changelist. Reading every test method's
    // `self.<chain>` into the facts would change them, and with them the context of every
    // statement of the file, at most keystrokes typed in a test.
    if may_be_model(&facts) {
        for (method, facts) in methods.into_iter().zip(&mut facts.methods) {
            facts.self_reads = self_reads(source, method);
        }
    }
    facts
}

/// Whether a class may be a model, as far as its own text tells: it declares fields or a
/// `Meta`, or a base's name says `Model` (`models.Model`, `TimeStampedModel`, `MPTTModel`).
fn may_be_model(class: &ClassFacts) -> bool {
    !class.fields.is_empty()
        || class.meta != MetaFacts::default()
        || class.bases.iter().any(|b| b.contains("Model"))
}

/// What a view or an admin says in its class attributes: the generic view attributes it sets,
/// and its changelist's columns and joins.
fn extract_view_attributes(source: &str, assignment: Node, facts: &mut ClassFacts) {
    let (Some(left), Some(value)) = (
        assignment.field(&field::LEFT),
        assignment.field(&field::RIGHT),
    ) else {
        return;
    };
    let left_is_name = left.kind_name() == "identifier";
    let left = text(left, source);
    if left_is_name && GENERIC_VIEW_ATTRIBUTES.contains(&left) {
        facts.view_attributes.push(left.to_string());
    }
    match left {
        "list_display" => {
            let mut cursor = value.walk();
            facts.list_display = value
                .named_children(&mut cursor)
                .filter(|e| e.kind_name() != "comment")
                .map(|e| text(e, source).to_string())
                .collect();
        }
        "list_select_related" => facts.list_select_related = Some(text(value, source).to_string()),
        _ => {}
    }
}

fn extract_class_assignment(source: &str, assignment: Node, facts: &mut ClassFacts) {
    let (Some(left), Some(right)) = (
        assignment.field(&field::LEFT),
        assignment.field(&field::RIGHT),
    ) else {
        return;
    };
    if left.kind_name() != "identifier" || right.kind_name() != "call" {
        return;
    }
    let name = text(left, source).to_string();
    let Some(function) = right.field(&field::FUNCTION) else {
        return;
    };
    // `Qs.as_manager()`, `Manager.from_queryset(Qs)()`
    if function.kind_name() == "attribute"
        && function
            .field(&field::ATTRIBUTE)
            .is_some_and(|a| text(a, source) == "as_manager")
    {
        let queryset = function
            .field(&field::OBJECT)
            .map(|o| text(o, source).to_string());
        facts.managers.push(ManagerFacts {
            name,
            class: None,
            queryset,
        });
        return;
    }
    if function.kind_name() == "call" {
        if let Some((class, queryset)) = from_queryset(source, function) {
            facts.managers.push(ManagerFacts {
                name,
                class: Some(class),
                queryset: Some(queryset),
            });
        }
        return;
    }
    if !matches!(function.kind_name(), "identifier" | "attribute") {
        return;
    }
    let class = text(function, source).to_string();
    let last = class.rsplit('.').next().unwrap_or_default();
    if last.ends_with("Manager") && last != "TaggableManager" {
        facts.managers.push(ManagerFacts {
            name,
            class: Some(class),
            queryset: None,
        });
        return;
    }
    if !(last.ends_with("Field")
        || last == "ForeignKey"
        || last.ends_with("ForeignKey")
        || last.ends_with("Relation")
        || last == "TaggableManager")
    {
        return;
    }
    let args = right.field(&field::ARGUMENTS);
    let keyword = |key: &str| args.and_then(|a| keyword_argument(source, a, key));
    let positional = args.and_then(|a| {
        let mut cursor = a.walk();
        let first = a
            .named_children(&mut cursor)
            .find(|n| n.kind_name() != "comment");
        first.filter(|n| n.kind_name() != "keyword_argument")
    });
    let to = keyword("to")
        .or(positional)
        .and_then(|n| reference(source, n))
        // django-taggit's manager relates to its own `Tag` unless told otherwise (a custom tag
        // model comes through `through=`, whose lookups read the same way).
        .or_else(|| (last == "TaggableManager").then(|| Reference::String("taggit.Tag".into())));
    facts.fields.push(FieldFacts {
        name,
        class,
        to,
        to_field: keyword("to_field").and_then(|n| string_value(n, source)),
        related_name: keyword("related_name").and_then(|n| string_value(n, source)),
        related_query_name: keyword("related_query_name").map(|n| {
            // One the index cannot read (a `%(class)s` pattern, a constant) is still not the
            // default: an empty name makes the query-name users stay silent.
            string_value(n, source).unwrap_or_default()
        }),
        auto_now: ["auto_now", "auto_now_add"]
            .iter()
            .any(|k| keyword(k).is_some_and(|v| text(v, source) == "True")),
        auto_now_on_save: keyword("auto_now").is_some_and(|v| text(v, source) == "True"),
        custom_through: keyword("through").is_some(),
        may_be_null: keyword("null").is_some_and(|v| text(v, source) != "False"),
        db_column: keyword("db_column").map(|n| string_value(n, source).unwrap_or_default()),
        db_table: keyword("db_table").map(|n| string_value(n, source).unwrap_or_default()),
        primary_key: keyword("primary_key").is_some_and(|v| text(v, source) == "True"),
    });
}

fn keyword_argument<'a>(source: &str, args: Node<'a>, key: &str) -> Option<Node<'a>> {
    let mut cursor = args.walk();
    let found = args.named_children(&mut cursor).find(|n| {
        n.kind_name() == "keyword_argument"
            && n.field(&field::NAME)
                .is_some_and(|k| text(k, source) == key)
    });
    found.and_then(|n| n.field(&field::VALUE))
}

/// `Manager.from_queryset(Qs)` -> (`Manager`, `Qs`).
fn from_queryset(source: &str, call: Node) -> Option<(String, String)> {
    let function = call.field(&field::FUNCTION)?;
    if function.kind_name() != "attribute"
        || function.field(&field::ATTRIBUTE).map(|a| text(a, source)) != Some("from_queryset")
    {
        return None;
    }
    let class = text(function.field(&field::OBJECT)?, source).to_string();
    let args = call.field(&field::ARGUMENTS)?;
    let queryset = args
        .named_child(0)
        .filter(|n| matches!(n.kind_name(), "identifier" | "attribute"))?;
    Some((class, text(queryset, source).to_string()))
}

fn reference(source: &str, node: Node) -> Option<Reference> {
    match node.kind_name() {
        "identifier" | "attribute" => {
            let name = text(node, source);
            if name.ends_with("AUTH_USER_MODEL") {
                Some(Reference::UserModel)
            } else {
                Some(Reference::Name(name.to_string()))
            }
        }
        "string" => string_value(node, source).map(Reference::String),
        "call"
            if node
                .field(&field::FUNCTION)
                .is_some_and(|f| text(f, source).ends_with("get_user_model")) =>
        {
            Some(Reference::UserModel)
        }
        // swapper's `get_model_name("geo", "Location")`: the label of the (swappable) model.
        "call"
            if node
                .field(&field::FUNCTION)
                .is_some_and(|f| text(f, source).ends_with("get_model_name")) =>
        {
            let args = node.field(&field::ARGUMENTS)?;
            let mut cursor = args.walk();
            let parts: Vec<String> = args
                .named_children(&mut cursor)
                .map(|a| string_value(a, source))
                .collect::<Option<_>>()?;
            (parts.len() == 2).then(|| Reference::String(parts.join(".")))
        }
        _ => None,
    }
}

/// The content of a plain string literal (no f-string, no concatenation).
/// `@register.inclusion_tag("t.html", name=..., takes_context=True)` on `definition`, when its
/// one `return` is a dict literal.
fn inclusion_tag(source: &str, decorator: Node, definition: Node) -> Option<InclusionTagFacts> {
    let call = decorator
        .named_child(0)
        .filter(|c| c.kind_name() == "call")?;
    let function = call.field(&field::FUNCTION)?;
    if function.kind_name() != "attribute"
        || function
            .field(&field::ATTRIBUTE)
            .is_none_or(|a| text(a, source) != "inclusion_tag")
        || definition.kind_name() != "function_definition"
    {
        return None;
    }
    let arguments = call.field(&field::ARGUMENTS)?;
    let mut cursor = arguments.walk();
    let mut template = None;
    let mut name = None;
    let mut takes_context = false;
    for (i, argument) in arguments.named_children(&mut cursor).enumerate() {
        if argument.kind_name() != "keyword_argument" {
            if i == 0 {
                template = string_value(argument, source);
            }
            continue;
        }
        let (Some(key), Some(value)) =
            (argument.field(&field::NAME), argument.field(&field::VALUE))
        else {
            continue;
        };
        match text(key, source) {
            "filename" => template = string_value(value, source),
            "name" => name = Some(string_value(value, source)?),
            "takes_context" => takes_context = text(value, source) == "True",
            _ => {}
        }
    }
    let parameters = plain_parameters(source, definition)?;
    let parameters = &parameters[usize::from(takes_context).min(parameters.len())..];
    let only = crate::analysis::syntax::only_return(definition)?;
    let dict = only
        .named_child(0)
        .filter(|d| d.kind_name() == "dictionary")?;
    let mut cursor = dict.walk();
    let passed = dict
        .named_children(&mut cursor)
        .filter(|p| p.kind_name() == "pair")
        .filter_map(|pair| {
            let key = string_value(pair.field(&field::KEY)?, source)?;
            let value = pair.field(&field::VALUE)?;
            let position = parameters.iter().position(|p| *p == text(value, source))?;
            (value.kind_name() == "identifier").then_some((key, position))
        })
        .collect();
    Some(InclusionTagFacts {
        name: name.unwrap_or_else(|| {
            definition
                .field(&field::NAME)
                .map_or_else(String::new, |n| text(n, source).to_string())
        }),
        template: template?,
        passed,
    })
}

/// The names of a function's parameters in order, when all are plain (with or without an
/// annotation or default); `None` with `*args`, `**kwargs` or `/`, `*` markers.
fn plain_parameters<'s>(source: &'s str, definition: Node) -> Option<Vec<&'s str>> {
    let parameters = definition.field(&field::PARAMETERS)?;
    let mut cursor = parameters.walk();
    let names = parameters
        .named_children(&mut cursor)
        .filter(|p| p.kind_name() != "comment")
        .map(|p| {
            let name = match p.kind_name() {
                "identifier" => Some(p),
                "typed_parameter" => p.named_child(0),
                "default_parameter" | "typed_default_parameter" => p.field(&field::NAME),
                _ => None,
            };
            name.filter(|n| n.kind_name() == "identifier")
                .map(|n| text(n, source))
        })
        .collect();
    names
}

pub fn string_value(node: Node, source: &str) -> Option<String> {
    if node.kind_name() != "string" {
        return None;
    }
    let mut cursor = node.walk();
    let mut content = String::new();
    for child in node.named_children(&mut cursor) {
        match child.kind_name() {
            "string_start" | "string_end" => {}
            "string_content" => content.push_str(text(child, source)),
            _ => return None,
        }
    }
    Some(content)
}

fn extract_meta(source: &str, meta: Node) -> MetaFacts {
    let mut facts = MetaFacts::default();
    let Some(body) = meta.field(&field::BODY) else {
        return facts;
    };
    let mut cursor = body.walk();
    for statement in body.named_children(&mut cursor) {
        let Some((left, right)) = crate::analysis::syntax::simple_assignment(statement) else {
            continue;
        };
        match text(left, source) {
            "abstract" => facts.is_abstract = text(right, source) == "True",
            "proxy" => facts.proxy = text(right, source) == "True",
            "managed" => facts.unmanaged = text(right, source) != "True",
            "app_label" => facts.app_label = string_value(right, source),
            "default_related_name" => facts.default_related_name = string_value(right, source),
            "db_table" => facts.db_table = Some(string_value(right, source).unwrap_or_default()),
            "ordering" => {
                let mut cursor = right.walk();
                facts.ordering = Some(if matches!(right.kind_name(), "list" | "tuple") {
                    right
                        .named_children(&mut cursor)
                        .filter(|n| n.kind_name() != "comment")
                        .map(|n| string_value(n, source))
                        .collect()
                } else {
                    vec![None]
                });
            }
            _ => {}
        }
    }
    facts
}

fn self_reads(source: &str, function: Node) -> Vec<crate::analysis::serializers::ObjectRead> {
    let only_self = function
        .field(&field::PARAMETERS)
        .is_some_and(|p| p.named_child_count() == 1);
    if !only_self {
        return Vec::new();
    }
    crate::analysis::serializers::object_reads(source, function, 0).unwrap_or_default()
}

fn returns_queryset(source: &str, function: Node) -> bool {
    let Some(body) = function.field(&field::BODY) else {
        return false;
    };
    // Most methods (every test of a test case) return nothing, or something else: skip their
    // walk.
    if !may_return_self(text(body, source)) {
        return false;
    }
    let mut returns = Vec::new();
    crate::analysis::syntax::walk(body, |n| {
        if matches!(
            n.kind_name(),
            "function_definition" | "class_definition" | "lambda"
        ) {
            return false;
        }
        if n.kind_name() == "return_statement" {
            returns.push(n);
        }
        true
    });
    !returns.is_empty()
        && returns.iter().all(|r| {
            r.named_child(0)
                .is_some_and(|value| is_queryset_of_self(source, value))
        })
}

/// Whether some `return` in `text` is followed by `self` or `super`, as every return of a
/// method returning its own rows is (`is_queryset_of_self`: the chain's root starts the value).
fn may_return_self(text: &str) -> bool {
    text.match_indices("return").any(|(at, word)| {
        let value = text[at + word.len()..].trim_start_matches([' ', '\t', '\\', '\n', '\r']);
        value.starts_with("self") || value.starts_with("super")
    })
}

/// `self`, or a chain on `self`/`super()` whose last call returns model rows as a QuerySet:
/// `self.filter(...)`, `super().get_queryset().order_by(...)`. Not `self.filter().exists()` (a
/// bool), nor `values()` (rows are dicts), nor any call the analyzer does not know.
fn is_queryset_of_self(source: &str, value: Node) -> bool {
    if text(value, source) == "self" {
        return true;
    }
    let Some((receiver, method)) = crate::analysis::syntax::method_call(value, source) else {
        return false;
    };
    let returns_rows = method == "get_queryset"
        || (crate::analysis::infer::QUERYSET_METHODS.contains(&method)
            && !matches!(method, "values" | "values_list" | "dates" | "datetimes"));
    if !returns_rows {
        return false;
    }
    let mut root = receiver;
    while let Some((inner, _)) = crate::analysis::syntax::method_call(root, source) {
        root = inner;
    }
    let root_text = text(root, source);
    root_text == "self" || root_text == "super()"
}

const SIGNALS: &[&str] = &[
    "pre_save",
    "post_save",
    "pre_delete",
    "post_delete",
    "m2m_changed",
    "pre_init",
    "post_init",
];

fn signal_name<'s>(source: &'s str, node: Node) -> Option<&'s str> {
    let name = text(node, source).rsplit('.').next()?;
    SIGNALS.contains(&name).then_some(name)
}

/// `@receiver(post_save, sender=Entry)` and `@receiver([pre_save, post_save], sender=Entry)`.
fn extract_receiver_decorator(source: &str, decorator: Node, facts: &mut FileFacts) {
    let Some(call) = decorator.named_child(0).filter(|c| c.kind_name() == "call") else {
        return;
    };
    if !call
        .field(&field::FUNCTION)
        .is_some_and(|f| text(f, source).ends_with("receiver"))
    {
        return;
    }
    let Some(args) = call.field(&field::ARGUMENTS) else {
        return;
    };
    let sender = keyword_argument(source, args, "sender").and_then(|s| reference(source, s));
    let Some(first) = args.named_child(0) else {
        return;
    };
    let signals: Vec<Node> = if matches!(first.kind_name(), "list" | "tuple") {
        let mut cursor = first.walk();
        first.named_children(&mut cursor).collect()
    } else {
        vec![first]
    };
    for signal in signals {
        if let Some(name) = signal_name(source, signal) {
            add_receiver(facts, name, sender.clone());
        }
    }
}

/// `post_save.connect(handler, sender=Entry)`.
fn extract_connect(source: &str, call: Node, facts: &mut FileFacts) {
    let Some(function) = call
        .field(&field::FUNCTION)
        .filter(|f| f.kind_name() == "attribute")
    else {
        return;
    };
    if function.field(&field::ATTRIBUTE).map(|a| text(a, source)) != Some("connect") {
        return;
    }
    let Some(signal) = function
        .field(&field::OBJECT)
        .and_then(|o| signal_name(source, o))
    else {
        return;
    };
    let Some(args) = call.field(&field::ARGUMENTS) else {
        return;
    };
    let sender = keyword_argument(source, args, "sender").and_then(|s| reference(source, s));
    add_receiver(facts, signal, sender);
}

/// A receiver of `signal` from `sender`, or from every sender when there is none to read.
fn add_receiver(facts: &mut FileFacts, signal: &str, sender: Option<Reference>) {
    match sender {
        Some(sender) => facts.receivers.push(ReceiverFacts {
            signal: signal.to_string(),
            sender,
        }),
        None if !facts.any_sender_signals.iter().any(|s| s == signal) => {
            facts.any_sender_signals.push(signal.to_string())
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::parse_python;

    fn facts(source: &str, module: &str) -> FileFacts {
        extract(source, &parse_python(source).unwrap(), module, false)
    }

    #[test]
    fn memoised_facts_equal_fresh_ones_across_edits() {
        let first = "from django.db import models\nfrom django.dispatch import receiver\n\nclass A(models.Model):\n    x = models.IntegerField()\n\n    def __str__(self):\n        return self.b.name\n\n@receiver(models.signals.post_save)\ndef on_save(sender, **kw):\n    pass\n\nAUTH_USER_MODEL = 'a.A'\n\nclass Rows(models.QuerySet):\n    def live(self):\n        return self.filter(live=True)\n\n    @property\n    def loaded(self):\n        return self.prefetch_related('tags')\n\n    rows = Entry.objects.prefetch_related('blog')\n";
        let edits = [
            first.to_string(),
            first.replace("x = models.IntegerField()", "y = models.CharField()"),
            first.replace("'a.A'", "'b.B'"),
            first.replace("@receiver(models.signals.post_save)\n", ""),
            // A method changes, or moves into another class.
            first.replace("self.b.name", "self.b.title"),
            first.replace("return self.filter(live=True)", "return [1]"),
            first.replace("'tags'", "'tags__owner'"),
            first.replace("    @property\n", ""),
            first.replace("    rows = Entry.objects.prefetch_related('blog')\n", ""),
            first.replace("'a.A'\n\nclass Rows(models.QuerySet):\n", "'a.A'\n"),
        ];
        let mut memo = FactsMemo::default();
        for source in &edits {
            let tree = parse_python(source).unwrap();
            assert_eq!(
                extract_memoised(source, &tree, "a.models", false, &mut memo),
                extract(source, &tree, "a.models", false)
            );
        }
    }

    #[test]
    fn reads_models_fields_managers_and_meta() {
        let f = facts(
            r#"
from django.db import models
from .querysets import EntryQuerySet
import shop.models as shop_models

class Entry(TimeStamped):
    blog = models.ForeignKey("blog.Blog", on_delete=models.CASCADE, related_name="entries")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, to_field="uuid")
    title = models.CharField(max_length=10)
    changed = models.DateTimeField(auto_now=True)
    objects = EntryQuerySet.as_manager()
    live = models.Manager.from_queryset(EntryQuerySet)()

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)

    class Meta:
        abstract = True
        default_related_name = "entries"
"#,
            "blog.models",
        );
        assert_eq!(
            f.imports[1],
            Import::From {
                module: "blog.querysets".into(),
                name: "EntryQuerySet".into(),
                alias: "EntryQuerySet".into()
            }
        );
        assert_eq!(
            f.imports[2],
            Import::Module {
                module: "shop.models".into(),
                alias: "shop_models".into()
            }
        );
        let entry = &f.classes[0];
        assert_eq!(entry.bases, ["TimeStamped"]);
        assert_eq!(entry.fields.len(), 4);
        assert_eq!(
            entry.fields[0].to,
            Some(Reference::String("blog.Blog".into()))
        );
        assert_eq!(entry.fields[0].related_name.as_deref(), Some("entries"));
        assert_eq!(entry.fields[1].to, Some(Reference::UserModel));
        assert_eq!(entry.fields[1].to_field.as_deref(), Some("uuid"));
        assert!(entry.fields[3].auto_now);
        assert!(entry.fields[3].auto_now_on_save);
        assert_eq!(entry.managers[0].queryset.as_deref(), Some("EntryQuerySet"));
        assert_eq!(entry.managers[1].class.as_deref(), Some("models.Manager"));
        assert!(entry.methods.iter().any(|m| m.name == "save"));
        assert!(entry.meta.is_abstract);
        assert_eq!(entry.meta.default_related_name.as_deref(), Some("entries"));
    }

    #[test]
    fn reads_receivers_and_user_model_setting() {
        let f = facts(
            "AUTH_USER_MODEL = 'accounts.User'\n@receiver([pre_save, signals.post_save], sender=Order)\ndef f(**kw): pass\npost_delete.connect(g, sender='shop.Order')\n",
            "demo.settings",
        );
        assert_eq!(f.auth_user_model.as_deref(), Some("accounts.User"));
        let signals: Vec<_> = f.receivers.iter().map(|r| r.signal.as_str()).collect();
        assert_eq!(signals, ["pre_save", "post_save", "post_delete"]);
    }

    #[test]
    fn receivers_without_a_sender_listen_to_every_model() {
        let f = facts(
            "@receiver(post_save)\ndef audit(**kw): pass\npre_delete.connect(g)\nm2m_changed.connect(h, sender=make())\n",
            "audit.signals",
        );
        assert!(f.receivers.is_empty());
        assert_eq!(
            f.any_sender_signals,
            ["post_save", "pre_delete", "m2m_changed"]
        );
    }

    #[test]
    fn relative_imports_and_module_names() {
        assert_eq!(
            absolute_module("..core.models", "shop.views.api", false),
            "shop.core.models"
        );
        assert_eq!(absolute_module(".models", "blog", true), "blog.models");
        assert_eq!(
            module_name(std::path::Path::new("blog/models/__init__.py")),
            ("blog.models".into(), true)
        );
    }

    #[test]
    fn a_method_returns_its_own_rows_only_if_a_return_starts_with_self_or_super() {
        assert!(may_return_self("x = 1\n    return self.filter(live=True)"));
        assert!(may_return_self("return \\\n        super().get_queryset()"));
        assert!(!may_return_self("return qs.filter(live=True)"));
        assert!(!may_return_self("self.x = 1"));
    }
}
