//! Django REST framework serializers: which relations of its model a serializer reads for every
//! object it serializes. A nested serializer (`author = AuthorSerializer()`), a dotted
//! `source="author.name"`, a `StringRelatedField`/`SlugRelatedField`, or a `SerializerMethodField`
//! whose method reads `obj.author` each load the relation once per row unless the QuerySet
//! handed to the serializer joins or prefetches it.
//!
//! `extract` reads what one class says, from its syntax alone (it is stored in the file's
//! `FileFacts`, so serializers in `serializers.py` are known when `views.py` is linted);
//! `relation_reads` resolves those facts against the model index.

use tree_sitter::Node;

use super::diagnostic::Place;
use super::index::{string_value, FieldKind, FileFacts, ModelId, ModelIndex, Symbol};
use super::syntax::{
    field::{self, FieldOf},
    text, undecorated, walk, KindOf,
};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SerializerFacts {
    pub name: String,
    /// Base class expressions as dotted text.
    pub bases: Vec<String>,
    /// `Meta.model` as written.
    pub model: Option<String>,
    /// `Meta.fields`, `exclude` and `depth`: which model fields a `ModelSerializer` adds itself.
    pub meta: Option<MetaFields>,
    pub fields: Vec<DeclaredField>,
    pub methods: Vec<MethodReads>,
    /// Fields its `__init__` removes whatever the arguments (`del self.fields["x"]`,
    /// `self.fields.pop("x")` among the statements of its body, not under a condition): never
    /// serialized. One removed only under a condition is still a field.
    pub removed: Vec<String>,
}

/// The fields a `ModelSerializer` generates, as its `Meta` says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetaFields {
    /// `fields = [...]` as names; `None` for `"__all__"` (every field of the model).
    pub fields: Option<Vec<String>>,
    pub exclude: Vec<String>,
    /// `depth = N`: relations become nested serializers, N levels deep.
    pub depth: u32,
    /// Neither `fields` nor `exclude`: REST framework 2's every field.
    pub implicit_all: bool,
    /// Where `fields` (or `exclude`) is written.
    pub at: Place,
}

/// `name = SomeField(...)` or `name = OtherSerializer(...)` in the class body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeclaredField {
    pub name: String,
    /// The called class as written: `serializers.CharField`, `AuthorSerializer`.
    pub class: String,
    pub source: Source,
    pub many: bool,
    /// Only read on input: never serialized.
    pub write_only: bool,
    /// `SerializerMethodField(method_name=...)`.
    pub method_name: Option<String>,
    pub at: Place,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// No `source=`: the attribute named like the field.
    Default,
    /// `source="*"`: the whole object.
    Whole,
    /// `source="author.name"`, split on dots.
    Dotted(Vec<String>),
    /// A `source=` the analyzer cannot read.
    Unreadable,
}

/// Where a node is written (line numbers survive the index's trimming of a file; byte offsets
/// do not).
fn place_of(source: &str, node: Node) -> Place {
    Place::new(source, node.start_byte(), node.end_byte())
}

/// The attribute chains a method reads on its object parameter (`obj.author.name`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MethodReads {
    pub name: String,
    pub reads: Vec<ObjectRead>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRead {
    /// Attribute names after the parameter: `["author", "name"]`.
    pub path: Vec<String>,
    /// The method called on the chain's end, if it is called: `all` in `obj.tags.all()`.
    pub call: Option<String>,
    /// A QuerySet method called on that call's result (`order_by` in
    /// `obj.tags.all().order_by("name")`): a new query per row, which a prefetch does not answer.
    pub narrowed_by: Option<String>,
    pub at: Place,
}

/// The facts of a class that may be a serializer (by its name or a base's), else `None`.
pub fn extract(source: &str, class: Node) -> Option<SerializerFacts> {
    let name = text(class.field(&field::NAME)?, source).to_string();
    let mut bases = Vec::new();
    if let Some(superclasses) = class.field(&field::SUPERCLASSES) {
        let mut cursor = superclasses.walk();
        for base in superclasses.named_children(&mut cursor) {
            if matches!(base.kind_name(), "identifier" | "attribute") {
                bases.push(text(base, source).to_string());
            }
        }
    }
    if !name.ends_with("Serializer") && !bases.iter().any(|b| b.contains("Serializer")) {
        return None;
    }
    let mut facts = SerializerFacts {
        name,
        bases,
        ..SerializerFacts::default()
    };
    let body = class.field(&field::BODY)?;
    let mut cursor = body.walk();
    for statement in body.named_children(&mut cursor) {
        let statement = undecorated(statement);
        match statement.kind_name() {
            "class_definition"
                if statement
                    .field(&field::NAME)
                    .is_some_and(|n| text(n, source) == "Meta") =>
            {
                facts.model = meta_model(source, statement);
                facts.meta = meta_fields(source, statement);
            }
            "function_definition" => {
                facts.methods.extend(method_reads(source, statement));
                if statement
                    .field(&field::NAME)
                    .is_some_and(|n| text(n, source) == "__init__")
                {
                    facts.removed = removed_fields(source, statement);
                }
            }
            _ => facts.fields.extend(declared_field(source, statement)),
        }
    }
    Some(facts)
}

fn meta_model(source: &str, meta: Node) -> Option<String> {
    let body = meta.field(&field::BODY)?;
    let mut cursor = body.walk();
    let model = body.named_children(&mut cursor).find_map(|statement| {
        let (left, right) = super::syntax::simple_assignment(statement)?;
        (text(left, source) == "model" && matches!(right.kind_name(), "identifier" | "attribute"))
            .then(|| text(right, source).to_string())
    });
    model
}

/// `fields`/`exclude`/`depth` in `Meta`, when the fields are readable (a list or tuple of
/// strings, or `"__all__"`).
fn meta_fields(source: &str, meta: Node) -> Option<MetaFields> {
    let body = meta.field(&field::BODY)?;
    let mut fields = None;
    let mut exclude = None;
    let mut depth = 0;
    let mut at = None;
    let mut model_at = None;
    let names = |value: Node| -> Option<Vec<String>> {
        if !matches!(value.kind_name(), "list" | "tuple") {
            return None;
        }
        let mut cursor = value.walk();
        let items: Vec<Node> = value.named_children(&mut cursor).collect();
        items
            .into_iter()
            .filter(|n| n.kind_name() != "comment")
            .map(|n| string_value(n, source))
            .collect()
    };
    let mut cursor = body.walk();
    for statement in body.named_children(&mut cursor) {
        let Some((left, right)) = super::syntax::simple_assignment(statement) else {
            continue;
        };
        match text(left, source) {
            "fields" => {
                fields = Some(
                    if string_value(right, source).as_deref() == Some("__all__") {
                        None
                    } else {
                        Some(names(right)?)
                    },
                );
                at = Some(place_of(source, left));
            }
            "exclude" => {
                exclude = Some(names(right)?);
                at = at.or(Some(place_of(source, left)));
            }
            "depth" => depth = text(right, source).parse().ok()?,
            "model" => model_at = Some(place_of(source, left)),
            _ => {}
        }
    }
    // `exclude` alone means every other field. A `model` with neither is REST framework 2's
    // default, every field too (3.3 and later refuse such a serializer when it is used, so a
    // view that serializes with one runs on 2.x); without a `model` the class is an abstract
    // base whose subclasses say more.
    let implicit_all = fields.is_none() && exclude.is_none();
    let fields = match (fields, &exclude) {
        (Some(fields), _) => fields,
        (None, Some(_)) => None,
        (None, None) => {
            at = Some(model_at?);
            None
        }
    };
    Some(MetaFields {
        fields,
        exclude: exclude.unwrap_or_default(),
        depth,
        implicit_all,
        at: at?,
    })
}

fn declared_field(source: &str, statement: Node) -> Option<DeclaredField> {
    let (left, right) = super::syntax::simple_assignment(statement)?;
    if left.kind_name() != "identifier" || right.kind_name() != "call" {
        return None;
    }
    let function = right.field(&field::FUNCTION)?;
    if !matches!(function.kind_name(), "identifier" | "attribute") {
        return None;
    }
    let mut field = DeclaredField {
        name: text(left, source).to_string(),
        class: text(function, source).to_string(),
        source: Source::Default,
        many: false,
        write_only: false,
        method_name: None,
        at: place_of(source, left),
    };
    let args = right.field(&field::ARGUMENTS)?;
    let mut cursor = args.walk();
    for argument in args.named_children(&mut cursor) {
        if argument.kind_name() != "keyword_argument" {
            continue;
        }
        let (Some(key), Some(value)) =
            (argument.field(&field::NAME), argument.field(&field::VALUE))
        else {
            continue;
        };
        let is_true = text(value, source) == "True";
        match text(key, source) {
            "source" => {
                field.source = match string_value(value, source) {
                    Some(s) if s == "*" => Source::Whole,
                    Some(s) if !s.is_empty() => {
                        Source::Dotted(s.split('.').map(str::to_string).collect())
                    }
                    _ => Source::Unreadable,
                }
            }
            "many" => field.many = is_true,
            "write_only" => field.write_only = is_true,
            "method_name" => field.method_name = string_value(value, source),
            _ => {}
        }
    }
    Some(field)
}

/// The fields an `__init__` removes on every call: `del self.fields["x"]` or
/// `self.fields.pop("x", ...)` as a statement of its body itself.
fn removed_fields(source: &str, init: Node) -> Vec<String> {
    let mut removed = Vec::new();
    let Some(body) = init.field(&field::BODY) else {
        return removed;
    };
    // `self.fields["x"]`, or `self.fields.pop("x", ...)`: the name `x`.
    let named_in = |node: Node| -> Option<String> {
        let (target, key) = match node.kind_name() {
            "subscript" => (node.field(&field::VALUE)?, node.field(&field::SUBSCRIPT)?),
            "call" => {
                let function = node.field(&field::FUNCTION)?;
                if function.kind_name() != "attribute"
                    || text(function.field(&field::ATTRIBUTE)?, source) != "pop"
                {
                    return None;
                }
                (
                    function.field(&field::OBJECT)?,
                    node.field(&field::ARGUMENTS)?.named_child(0)?,
                )
            }
            _ => return None,
        };
        (text(target, source) == "self.fields")
            .then(|| string_value(key, source))
            .flatten()
    };
    let mut cursor = body.walk();
    for statement in body.named_children(&mut cursor) {
        let mut inner = statement.walk();
        let targets: Vec<Node> = match statement.kind_name() {
            "delete_statement" => statement
                .named_children(&mut inner)
                .flat_map(|t| {
                    let mut list = t.walk();
                    if t.kind_name() == "expression_list" {
                        t.named_children(&mut list).collect::<Vec<_>>()
                    } else {
                        vec![t]
                    }
                })
                .collect(),
            "expression_statement" => statement.named_children(&mut inner).collect(),
            _ => Vec::new(),
        };
        removed.extend(targets.into_iter().filter_map(named_in));
    }
    removed
}

/// The reads of a method's object parameter (its first after `self`). A method that rebinds
/// the parameter reads something else: no reads are recorded for it.
fn method_reads(source: &str, function: Node) -> Option<MethodReads> {
    let name = text(function.field(&field::NAME)?, source).to_string();
    let reads = object_reads(source, function, 1)?;
    (!reads.is_empty()).then_some(MethodReads { name, reads })
}

/// The chains `function` reads on its parameter at `position`, with their places: what the
/// index keeps of a method that other files' analysis asks about.
pub fn object_reads(source: &str, function: Node, position: usize) -> Option<Vec<ObjectRead>> {
    let reads = parameter_chains(source, function, position)?
        .into_iter()
        .map(|chain| ObjectRead {
            at: place_of(source, chain.node),
            path: chain.path,
            call: chain.call,
            narrowed_by: chain.narrowed_by,
        })
        .collect();
    Some(reads)
}

/// An attribute chain read on a function's parameter, as written in the tree.
pub struct ChainRead<'t> {
    /// The whole chain (`obj.author.name`), without the call of its last name.
    pub node: Node<'t>,
    /// Attribute names after the parameter: `["author", "name"]`.
    pub path: Vec<String>,
    /// The method called on the chain's end, if it is called: `all` in `obj.tags.all()`.
    pub call: Option<String>,
    /// A QuerySet method called on that call's result: a new query per row, prefetched or not.
    pub narrowed_by: Option<String>,
}

/// The chains `function` reads on its parameter at `position` (0 for the first), in document
/// order. `None` when the function rebinds the parameter (it then reads something else) or has
/// no plain parameter there.
pub fn parameter_chains<'t>(
    source: &str,
    function: Node<'t>,
    position: usize,
) -> Option<Vec<ChainRead<'t>>> {
    let parameters = function.field(&field::PARAMETERS)?;
    let parameter = parameters.named_child(position)?;
    let parameter = match parameter.kind_name() {
        "identifier" => parameter,
        "typed_parameter" => parameter.named_child(0)?,
        _ => return None,
    };
    let object = text(parameter, source);
    let body = function.field(&field::BODY)?;
    let mut reads = Vec::new();
    let mut rebound = false;
    walk(body, |n| {
        match n.kind_name() {
            // Nested functions and classes have their own names.
            "function_definition" | "class_definition" | "lambda" => return false,
            "assignment" | "augmented_assignment" | "for_statement" | "named_expression" => {
                let target = n.field(&field::LEFT).or_else(|| n.field(&field::NAME));
                if target
                    .is_some_and(|t| t.kind_name() == "identifier" && text(t, source) == object)
                {
                    rebound = true;
                }
            }
            "attribute" => {
                let is_chain_start = n
                    .field(&field::OBJECT)
                    .is_some_and(|o| o.kind_name() == "identifier" && text(o, source) == object);
                if is_chain_start {
                    reads.extend(object_read(source, n));
                }
            }
            _ => {}
        }
        true
    });
    (!rebound).then_some(reads)
}

/// The whole chain that starts at `first` (`obj.author` in `obj.author.name`), unless it is
/// written to (`obj.author = x` costs no query).
fn object_read<'t>(source: &str, first: Node<'t>) -> Option<ChainRead<'t>> {
    let mut path = Vec::new();
    let mut node = first;
    loop {
        path.push(text(node.field(&field::ATTRIBUTE)?, source).to_string());
        match node.parent() {
            Some(p)
                if p.kind_name() == "attribute"
                    && p.field(&field::OBJECT).is_some_and(|o| o.id() == node.id()) =>
            {
                node = p;
            }
            _ => break,
        }
    }
    let parent = node.parent();
    let written = parent.is_some_and(|p| {
        (matches!(p.kind_name(), "assignment" | "augmented_assignment")
            && p.field(&field::LEFT).is_some_and(|l| l.id() == node.id()))
            || p.kind_name() == "delete_statement"
    });
    if written {
        return None;
    }
    let called = parent.is_some_and(|p| {
        p.kind_name() == "call"
            && p.field(&field::FUNCTION)
                .is_some_and(|f| f.id() == node.id())
    });
    let call = if called { path.pop() } else { None };
    let narrowed_by = parent
        .filter(|_| called)
        .and_then(|call| call.parent())
        .filter(|p| p.kind_name() == "attribute")
        .and_then(|p| p.field(&field::ATTRIBUTE))
        .map(|method| text(method, source))
        .filter(|method| NARROWING_METHODS.contains(method))
        .map(str::to_string);
    Some(ChainRead {
        node,
        path,
        call,
        narrowed_by,
    })
}

/// QuerySet methods that make a new query of a relation's rows, prefetched or not.
pub const NARROWING_METHODS: &[&str] = &[
    "filter",
    "exclude",
    "order_by",
    "annotate",
    "values",
    "values_list",
    "distinct",
];

/// A serializer class found through the index: its facts and the file that declares it.
#[derive(Clone, Copy)]
pub struct Found<'a> {
    pub file: &'a FileFacts,
    pub serializer: &'a SerializerFacts,
}

/// The serializer a dotted name written in `file` means, when the index knows it as one.
pub fn resolve<'a>(index: &'a ModelIndex, file: &'a FileFacts, dotted: &str) -> Option<Found<'a>> {
    let Symbol::Class { module, name } = index.resolve(file, dotted) else {
        return None;
    };
    let declaring: &'a FileFacts = if module == file.module {
        file
    } else {
        index.facts(&module)?
    };
    let serializer = declaring.serializers.iter().find(|s| s.name == name)?;
    let found = Found {
        file: declaring,
        serializer,
    };
    is_serializer(index, found, 0).then_some(found)
}

const MAX_DEPTH: usize = 6;

/// Whether a class reaches one of REST framework's serializer classes through its bases (or a
/// package's class named like one).
fn is_serializer(index: &ModelIndex, found: Found, depth: usize) -> bool {
    depth <= MAX_DEPTH
        && found
            .serializer
            .bases
            .iter()
            .any(|base| match index.resolve(found.file, base) {
                // Packages extend REST framework's serializers under their names
                // (`openwisp_utils.api.serializers.ValidatedModelSerializer`).
                Symbol::External(q) => q.ends_with("Serializer"),
                _ => base_serializer(index, found, base)
                    .is_some_and(|b| is_serializer(index, b, depth + 1)),
            })
}

/// Whether a class reaches REST framework's `ModelSerializer` (or its hyperlinked variant),
/// which generates fields from `Meta`.
fn is_model_serializer(index: &ModelIndex, found: Found, depth: usize) -> bool {
    depth <= MAX_DEPTH
        && found
            .serializer
            .bases
            .iter()
            .any(|base| match index.resolve(found.file, base) {
                Symbol::External(q) => q.ends_with("ModelSerializer"),
                _ => base_serializer(index, found, base)
                    .is_some_and(|b| is_model_serializer(index, b, depth + 1)),
            })
}

fn base_serializer<'a>(index: &'a ModelIndex, found: Found<'a>, base: &str) -> Option<Found<'a>> {
    let Symbol::Class { module, name } = index.resolve(found.file, base) else {
        return None;
    };
    let file: &'a FileFacts = if module == found.file.module {
        found.file
    } else {
        index.facts(&module)?
    };
    let serializer = file.serializers.iter().find(|s| s.name == name)?;
    Some(Found { file, serializer })
}

/// The name of the REST framework field class (`PrimaryKeyRelatedField`) that the class `written`
/// in `file` is, or derives from through the project's classes.
fn framework_field(
    index: &ModelIndex,
    file: &FileFacts,
    written: &str,
    depth: usize,
) -> Option<String> {
    match index.resolve(file, written) {
        Symbol::External(q) if q.starts_with("rest_framework.") && q.ends_with("Field") => {
            q.rsplit('.').next().map(str::to_string)
        }
        Symbol::Class { module, name } if depth < MAX_DEPTH => {
            let declaring = if module == file.module {
                file
            } else {
                index.facts(&module)?
            };
            let class = declaring.classes.iter().find(|c| c.name == name)?;
            class
                .bases
                .iter()
                .find_map(|base| framework_field(index, declaring, base, depth + 1))
        }
        _ => None,
    }
}

impl<'a> Found<'a> {
    /// The model `Meta.model` names, if the index knows it.
    pub fn model(&self, index: &ModelIndex) -> Option<ModelId> {
        let written = self.serializer.model.as_deref()?;
        index.model_of(&index.resolve(self.file, written))
    }

    /// The model a `ModelSerializer` serializes: its own `Meta.model`, else the nearest base's.
    pub fn serialized_model(&self, index: &ModelIndex) -> Option<ModelId> {
        if !is_model_serializer(index, *self, 0) {
            return None;
        }
        self.nearest(index, |found| {
            found.serializer.model.is_some().then(|| found.model(index))
        })
        .flatten()
    }

    /// The first answer `f` gives walking up the first serializer base of each class.
    fn nearest<T>(&self, index: &'a ModelIndex, f: impl Fn(Found<'a>) -> Option<T>) -> Option<T> {
        let mut found = *self;
        for _ in 0..MAX_DEPTH {
            if let Some(answer) = f(found) {
                return Some(answer);
            }
            found = found
                .serializer
                .bases
                .iter()
                .find_map(|b| base_serializer(index, found, b))?;
        }
        None
    }

    /// Declared fields, the class's own first, then its serializer bases' not redeclared.
    fn fields(&self, index: &'a ModelIndex) -> Vec<(Found<'a>, &'a DeclaredField)> {
        let mut out: Vec<(Found<'a>, &'a DeclaredField)> = Vec::new();
        for found in self.with_bases(index) {
            for field in &found.serializer.fields {
                if !out.iter().any(|(_, f)| f.name == field.name) {
                    out.push((found, field));
                }
            }
        }
        out
    }

    /// The class, then its serializer bases, depth first (bounded by `MAX_DEPTH`).
    fn with_bases(&self, index: &'a ModelIndex) -> Vec<Found<'a>> {
        let mut chain = Vec::new();
        let mut pending = vec![(*self, 0)];
        while let Some((found, depth)) = pending.pop() {
            chain.push(found);
            if depth < MAX_DEPTH {
                pending.extend(
                    found
                        .serializer
                        .bases
                        .iter()
                        .filter_map(|b| base_serializer(index, found, b))
                        .map(|b| (b, depth + 1)),
                );
            }
        }
        chain
    }

    /// The fields the `__init__` of the class or of a serializer base removes. Every `__init__`
    /// of the chain is taken to run (a subclass's calls `super().__init__()`): at worst a read
    /// is missed, never one reported that does not happen.
    fn removed(&self, index: &'a ModelIndex) -> Vec<&'a str> {
        self.with_bases(index)
            .into_iter()
            .flat_map(|found| found.serializer.removed.iter().map(String::as_str))
            .collect()
    }

    fn method(&self, index: &'a ModelIndex, name: &str) -> Option<(Found<'a>, &'a MethodReads)> {
        self.nearest(index, |found| {
            let method = found.serializer.methods.iter().find(|m| m.name == name)?;
            Some((found, method))
        })
    }
}

/// One relation the serializer loads for every row, as a lookup from the serialized model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationRead<'a> {
    /// `author`, `author__profile`, `comments`.
    pub lookup: String,
    /// Whether some hop is many-valued (reverse foreign key, many-to-many): `prefetch_related`
    /// loads it, `select_related` cannot.
    pub many: bool,
    /// `EntrySerializer.author` (the field, or the method that reads it).
    pub what: String,
    /// The QuerySet method the read calls on the relation's rows, when it makes a query per row
    /// whatever the QuerySet prefetches (`order_by`): a `Prefetch` with that QuerySet is the fix.
    pub narrowed_by: Option<String>,
    /// The file that declares it, and where.
    pub file: &'a FileFacts,
    pub at: Place,
}

impl RelationRead<'_> {
    /// Where the read is written, as `blog/serializers.py:12` (the path relative to the
    /// workspace root, which the module name mirrors).
    pub fn location(&self) -> String {
        location(self.file, &self.at)
    }
}

/// Where `place` of `file` is, as `blog/serializers.py:12` (the path relative to the workspace
/// root, which the module name mirrors).
pub fn location(file: &FileFacts, place: &Place) -> String {
    let mut path = file.module.replace('.', "/");
    if file.is_package {
        path.push_str(if path.is_empty() {
            "__init__"
        } else {
            "/__init__"
        });
    }
    format!("{path}.py:{}", place.line + 1)
}

/// Field classes that read only the related row's key, which the row already holds.
const KEY_ONLY_FIELDS: &[&str] = &[
    "PrimaryKeyRelatedField",
    "HyperlinkedRelatedField",
    "HyperlinkedIdentityField",
];

/// Every relation of `model` that `serializer` reads per object, nested serializers included.
pub fn relation_reads<'a>(
    index: &'a ModelIndex,
    serializer: Found<'a>,
    model: ModelId,
) -> Vec<RelationRead<'a>> {
    let mut out = Vec::new();
    collect(index, serializer, model, &[], false, 0, &mut out);
    // A deeper lookup loads the shorter one too: `author__profile` covers `author`.
    let lookups: Vec<(String, bool)> = out.iter().map(|r| (r.lookup.clone(), r.many)).collect();
    out.retain(|r| {
        !lookups.iter().any(|(l, many)| {
            *many == r.many && l.len() > r.lookup.len() && l.starts_with(&format!("{}__", r.lookup))
        })
    });
    let mut seen = Vec::new();
    out.retain(|r| {
        let new = !seen.contains(&r.lookup);
        seen.push(r.lookup.clone());
        new
    });
    out
}

fn collect<'a>(
    index: &'a ModelIndex,
    serializer: Found<'a>,
    model: ModelId,
    prefix: &[String],
    many_before: bool,
    depth: usize,
    out: &mut Vec<RelationRead<'a>>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    // A nested serializer that names another model than the relation leads to is not understood.
    if serializer.model(index).is_some_and(|m| m != model) {
        return;
    }
    let mut push = |found: Found<'a>,
                    hops: &[String],
                    many: bool,
                    what: String,
                    at: Place,
                    narrowed_by: Option<String>| {
        if hops.is_empty() {
            return;
        }
        let lookup: Vec<String> = prefix.iter().chain(hops).cloned().collect();
        out.push(RelationRead {
            lookup: lookup.join("__"),
            many: many_before || many,
            what,
            narrowed_by,
            file: found.file,
            at,
        });
    };
    let mut nested = Vec::new();
    let removed = serializer.removed(index);
    for (found, field) in serializer.fields(index) {
        if field.write_only || removed.contains(&field.name.as_str()) {
            continue;
        }
        let what = format!("{}.{}", serializer.serializer.name, field.name);
        let class = field.class.rsplit('.').next().unwrap_or_default();
        if class == "SerializerMethodField" {
            let method = field
                .method_name
                .clone()
                .unwrap_or_else(|| format!("get_{}", field.name));
            let Some((declaring, reads)) = serializer.method(index, &method) else {
                continue;
            };
            for read in &reads.reads {
                let many_allowed = read.call.as_deref() == Some("all");
                if let Some(walked) = walk_relations(index, model, &read.path, many_allowed) {
                    let what = format!("{}.{}", serializer.serializer.name, method);
                    push(
                        declaring,
                        &walked.hops,
                        walked.many,
                        what,
                        read.at.clone(),
                        read.narrowed_by.clone(),
                    );
                }
            }
            continue;
        }
        let child = resolve(index, found.file, &field.class);
        let framework_class;
        let class = if child.is_some() || class.ends_with("Field") {
            class
        } else {
            // A project's own field class (`TemplateIds(PrimaryKeyRelatedField)`) reads what
            // the REST framework field it derives from reads.
            match framework_field(index, found.file, &field.class, 0) {
                Some(base) => {
                    framework_class = base;
                    framework_class.as_str()
                }
                None => continue,
            }
        };
        let mut path = match &field.source {
            Source::Default => vec![field.name.clone()],
            Source::Dotted(parts) => parts.clone(),
            Source::Whole => {
                if let Some(child) = child {
                    nested.push((child, Vec::new(), false, model));
                }
                continue;
            }
            Source::Unreadable => continue,
        };
        if KEY_ONLY_FIELDS.contains(&class) && !field.many {
            path.pop();
        }
        // Only a related field or a nested serializer iterates a many-valued relation.
        let many_allowed = field.many && (child.is_some() || class.ends_with("RelatedField"));
        let Some(walked) = walk_relations(index, model, &path, many_allowed) else {
            continue;
        };
        push(
            found,
            &walked.hops,
            walked.many,
            what,
            field.at.clone(),
            None,
        );
        if let (Some(child), Some(target)) = (child, walked.complete) {
            nested.push((child, walked.hops, walked.many, target));
        }
    }
    // `to_representation(self, instance)` runs once per row, like a method field's method.
    if let Some((declaring, reads)) = serializer.method(index, "to_representation") {
        for read in &reads.reads {
            let many_allowed = read.call.as_deref() == Some("all");
            if let Some(walked) = walk_relations(index, model, &read.path, many_allowed) {
                let what = format!("{}.to_representation", serializer.serializer.name);
                push(
                    declaring,
                    &walked.hops,
                    walked.many,
                    what,
                    read.at.clone(),
                    read.narrowed_by.clone(),
                );
            }
        }
    }
    implicit_reads(index, serializer, model, &mut push);
    for (child, hops, many, target) in nested {
        let prefix: Vec<String> = prefix.iter().chain(&hops).cloned().collect();
        collect(
            index,
            child,
            target,
            &prefix,
            many_before || many,
            depth + 1,
            out,
        );
    }
}

/// The relations a `ModelSerializer` serializes from `Meta.fields` without a declared field:
/// many-to-many (and listed reverse) relations as lists of keys, which reads each row's
/// `relation.all()`; with `depth`, every relation as a nested object. A foreign key alone is
/// serialized as its key, which the row holds.
fn implicit_reads<'a>(
    index: &'a ModelIndex,
    serializer: Found<'a>,
    model: ModelId,
    push: &mut impl FnMut(Found<'a>, &[String], bool, String, Place, Option<String>),
) {
    // `Meta` is looked up like any class attribute: this class's, else a base's.
    let mut found = serializer;
    let mut meta = None;
    for _ in 0..MAX_DEPTH {
        if let Some(m) = &found.serializer.meta {
            meta = Some((found, m));
            break;
        }
        match found
            .serializer
            .bases
            .iter()
            .find_map(|b| base_serializer(index, found, b))
        {
            Some(base) => found = base,
            None => break,
        }
    }
    let Some((declaring, meta)) = meta else {
        return;
    };
    // A project whose base serializer lists fields and whose subclasses name only their model
    // merges the two (awx's metaclass does): not the framework's every field.
    if meta.implicit_all && a_base_declares_meta(index, declaring, 0) {
        return;
    }
    if !is_model_serializer(index, serializer, 0) {
        return;
    }
    let declared = serializer.fields(index);
    let removed = serializer.removed(index);
    let described = index.model(model);
    let names: Vec<String> = match &meta.fields {
        Some(names) => names.clone(),
        // `__all__` (or `exclude`): the model's own fields; reverse relations only when listed.
        None => described.fields.iter().map(|f| f.name.clone()).collect(),
    };
    for name in names {
        if meta.exclude.contains(&name)
            || removed.contains(&name.as_str())
            || declared.iter().any(|(_, f)| f.name == name)
        {
            continue;
        }
        // REST framework has no field for a GenericForeignKey: listed, it is refused; under
        // `__all__`, left out.
        if described
            .field(&name)
            .is_some_and(|f| f.kind == FieldKind::GenericForeignKey)
        {
            continue;
        }
        let path = [name.clone()];
        let Some(walked) = walk_relations(index, model, &path, true) else {
            continue;
        };
        if walked.hops.is_empty() || (!walked.many && meta.depth == 0) {
            continue;
        }
        let what = format!("{}.Meta.fields ({name})", serializer.serializer.name);
        push(
            declaring,
            &walked.hops,
            walked.many,
            what,
            meta.at.clone(),
            None,
        );
    }
}

/// Whether one of the serializer bases of `found` (declared in the workspace) has a `Meta` that
/// says which fields.
fn a_base_declares_meta(index: &ModelIndex, found: Found, depth: usize) -> bool {
    depth < MAX_DEPTH
        && found
            .serializer
            .bases
            .iter()
            .filter_map(|b| base_serializer(index, found, b))
            .any(|base| {
                base.serializer.meta.is_some() || a_base_declares_meta(index, base, depth + 1)
            })
}

struct Walked {
    /// The relations read, from the start of the path.
    hops: Vec<String>,
    many: bool,
    /// The model the path ends at, when every name on it is a relation.
    complete: Option<ModelId>,
}

/// Follows `path` through `model`'s relations while they are relations. A many-valued relation
/// is followed only as the path's last name and only when `many_allowed` (the field iterates
/// it); reached anywhere else, the read is something the fix cannot help: `None`.
fn walk_relations(
    index: &ModelIndex,
    model: ModelId,
    path: &[String],
    many_allowed: bool,
) -> Option<Walked> {
    let mut walked = Walked {
        hops: Vec::new(),
        many: false,
        complete: None,
    };
    let mut current = model;
    for (i, name) in path.iter().enumerate() {
        let model = index.model(current);
        let (target, many) = match model.field(name) {
            Some(f) => match (f.kind, f.target) {
                (FieldKind::ForeignKey | FieldKind::OneToOne, Some(t)) => (t, false),
                (FieldKind::ManyToMany, Some(t)) => (t, true),
                // A GenericForeignKey loads its object with a query per row; only
                // `prefetch_related` loads it for all rows (`select_related` cannot follow it),
                // so it is read as a hop to prefetch, the last one: its model is not known.
                (FieldKind::GenericForeignKey, _) => {
                    walked.hops.push(name.clone());
                    walked.many = true;
                    return Some(walked);
                }
                _ => return Some(walked),
            },
            None => match model.reverse(name) {
                Some(r) => (r.source, r.many),
                None => return Some(walked),
            },
        };
        if many && !(many_allowed && i + 1 == path.len()) {
            return None;
        }
        walked.hops.push(name.clone());
        walked.many |= many;
        current = target;
    }
    walked.complete = Some(current);
    Some(walked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(source: &str) -> SerializerFacts {
        let tree = crate::store::parse_python(source).unwrap();
        let root = tree.root_node();
        let class = root.named_child(0).unwrap();
        extract(source, class).unwrap()
    }

    #[test]
    fn declared_fields_sources_and_method_reads() {
        let s = facts(
            "class EntrySerializer(serializers.ModelSerializer):\n    author = AuthorSerializer(read_only=True)\n    tags = serializers.SlugRelatedField(many=True, slug_field='name')\n    city = serializers.CharField(source='author.profile.city')\n    me = serializers.CharField(source='*')\n    pw = serializers.CharField(write_only=True)\n    n = serializers.SerializerMethodField()\n\n    class Meta:\n        model = Entry\n\n    def get_n(self, obj):\n        obj.blog = None\n        return [c.text for c in obj.comments.all()] + [obj.author.name]\n",
        );
        assert_eq!(s.model.as_deref(), Some("Entry"));
        let names: Vec<_> = s.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["author", "tags", "city", "me", "pw", "n"]);
        assert!(s.fields[1].many && s.fields[4].write_only);
        assert_eq!(
            s.fields[2].source,
            Source::Dotted(vec!["author".into(), "profile".into(), "city".into()])
        );
        assert_eq!(s.fields[3].source, Source::Whole);
        assert_eq!(
            (s.fields[0].at.line, s.fields[0].at.bytes.clone()),
            (1, 4..10)
        );
        let reads: Vec<_> = s.methods[0]
            .reads
            .iter()
            .map(|r| (r.path.join("."), r.call.clone()))
            .collect();
        // The write `obj.blog = None` is no read.
        assert_eq!(
            reads,
            [
                ("comments".to_string(), Some("all".to_string())),
                ("author.name".to_string(), None)
            ]
        );
    }

    #[test]
    fn fields_removed_by_init_on_every_call() {
        let s = facts("class XSerializer(Base):\n    def __init__(self, *args, **kwargs):\n        super().__init__(*args, **kwargs)\n        del self.fields['a'], self.fields['b']\n        self.fields.pop('c', None)\n        if kwargs.get('brief'):\n            del self.fields['d']\n        other.pop('e')\n");
        assert_eq!(s.removed, ["a", "b", "c"]);
    }

    #[test]
    fn a_rebound_parameter_reads_nothing_and_other_classes_are_not_serializers() {
        let s = facts("class XSerializer(Base):\n    def get_a(self, obj):\n        obj = obj.parent\n        return obj.author\n");
        assert!(s.methods.is_empty());
        let source = "class Entry(models.Model):\n    author = models.ForeignKey(Author)\n";
        let tree = crate::store::parse_python(source).unwrap();
        assert!(extract(source, tree.root_node().named_child(0).unwrap()).is_none());
    }
}
