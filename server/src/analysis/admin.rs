//! A `ModelAdmin`'s changelist as the analyzer reads it: what its QuerySet joins and prefetches
//! (`list_select_related`, `get_list_select_related()`, `get_queryset()`, the model's managers),
//! and what each `list_display` entry reads per row (ORM412).
//!
//! What Django joins (`ChangeList.get_queryset`, measured with query counts on Django 5.2):
//! `list_select_related = False` (the default) makes a bare `select_related()` when
//! `list_display` names a foreign key (not `x_id`, not `x__y`); `True` always does; a bare
//! `select_related()` follows non-null keys only, recursively. A tuple or list joins exactly its
//! lookups (nullable too), an empty one nothing; `get_list_select_related()` overrides the
//! attribute. A `select_related(...)` already on the QuerySet (`get_queryset()`, the default
//! manager) turns all of that off. A `prefetch_related` in `get_queryset()` answers `.all()`,
//! `.count()`, `.exists()` and slices of the relation from its cache, not `.filter()`.

use tree_sitter::Node;

use super::index::{string_value, ClassFacts, FieldKind, FileFacts, MethodFacts, ModelId, Symbol};
use super::infer::{ModelRef, Semantics};
use super::loops::covers;
use super::serializers::{parameter_chains, ChainRead};
use super::syntax::{
    field::{self, FieldOf},
    method_call, simple_assignment, strip_parens, undecorated, walk, KindOf,
};
use crate::settings::Settings;

/// Django lets `list_display` name `x__y` lookups since 5.1 (before, the admin's checks refuse
/// them).
const LOOKUPS_IN_LIST_DISPLAY_SINCE: (u32, u32) = (5, 1);

/// Django's admin classes a changelist's behaviour is read from.
const DJANGO_MODEL_ADMINS: &[&str] = &[
    "django.contrib.admin.ModelAdmin",
    "django.contrib.admin.options.ModelAdmin",
    "django.contrib.gis.admin.GISModelAdmin",
];

/// Whether `attribute` (`obj.items`) is read on the row of a function that an admin's
/// `list_display` in this file names: a method of the admin (or of a base it has in this file),
/// a function of the module, a method of a model. Decided from the file's facts (which hold each
/// class's `list_display`), so that the cached lint of the function changes with them.
pub fn read_on_a_listed_row<'a>(sem: &Semantics<'a>, attribute: Node<'a>) -> bool {
    let Some(object) = attribute
        .field(&field::OBJECT)
        .filter(|o| o.kind_name() == "identifier")
    else {
        return false;
    };
    let mut function = attribute;
    while function.kind_name() != "function_definition" {
        match function.parent() {
            Some(parent) => function = parent,
            None => return false,
        }
    }
    let Some(name) = function.field(&field::NAME).map(|n| sem.text(n)) else {
        return false;
    };
    let class = function
        .parent()
        .map(|p| match p.kind_name() {
            "decorated_definition" => p.parent(),
            _ => Some(p),
        })
        .and_then(|block| block?.parent())
        .filter(|c| c.kind_name() == "class_definition");
    let module = &sem.file_facts().module;
    let is_model = |class: Node| {
        let class_name = class.field(&field::NAME).map(|n| sem.text(n));
        sem.index()
            .models()
            .iter()
            .any(|m| &m.module == module && Some(m.name.as_str()) == class_name)
    };
    // The entry that names it, and the class an admin naming it must be or derive from.
    let (position, named, declaring) = match class {
        None => (0, name.to_string(), None),
        Some(class) if is_model(class) => (0, format!("{name:?}"), None),
        Some(class) => (
            usize::from(!is_static(sem, function)),
            format!("{name:?}"),
            class.field(&field::NAME).map(|n| sem.text(n)),
        ),
    };
    if parameter_name(sem, function, position) != Some(sem.text(object)) {
        return false;
    }
    let facts = sem.file_facts();
    facts.classes.iter().any(|admin| {
        let names_it = admin
            .list_display
            .iter()
            .any(|entry| entry.replace('\'', "\"") == named);
        names_it
            && facts_reach(sem, admin, &mut |base| match base {
                Base::Django => true,
                Base::Class(_) => false,
            })
            && declaring.is_none_or(|declaring| {
                admin.name == declaring
                    || facts_reach(
                        sem,
                        admin,
                        &mut |base| matches!(base, Base::Class(c) if c.name == declaring),
                    )
            })
    })
}

/// A base class as the file's facts say it.
enum Base<'f> {
    Django,
    Class(&'f ClassFacts),
}

/// Whether a base of `class` (through classes of this file) is one `wanted` accepts: Django's
/// `ModelAdmin`, or a class of this file.
fn facts_reach(sem: &Semantics, class: &ClassFacts, wanted: &mut dyn FnMut(Base) -> bool) -> bool {
    let facts = sem.file_facts();
    let mut pending = vec![(class, 0)];
    while let Some((class, depth)) = pending.pop() {
        for base in &class.bases {
            match sem.index().resolve(facts, base) {
                Symbol::External(q)
                    if DJANGO_MODEL_ADMINS.contains(&q.as_str()) && wanted(Base::Django) =>
                {
                    return true;
                }
                Symbol::Class { module, name } if module == facts.module && depth < 6 => {
                    if let Some(base) = facts.classes.iter().find(|c| c.name == name) {
                        if wanted(Base::Class(base)) {
                            return true;
                        }
                        pending.push((base, depth + 1));
                    }
                }
                _ => {}
            }
        }
    }
    false
}

/// What a changelist renders per row.
pub enum Entry<'a> {
    /// A field of the model, or an `x__y` lookup: the keys it reads (`["author"]`), and the
    /// model whose `__str__` renders the cell when it shows a related object.
    Column {
        at: Node<'a>,
        hops: Vec<String>,
        shows: Option<ModelId>,
    },
    /// A method or property of a model declared in another file, as the index read it.
    ModelMethod {
        at: Node<'a>,
        file: &'a FileFacts,
        method: &'a MethodFacts,
    },
    /// A function called with each row: an admin method, a module's function, a model method.
    Callable {
        what: String,
        function: Node<'a>,
        /// The row's place among its parameters.
        position: usize,
    },
}

/// What the changelist's QuerySet joins.
pub enum Joins {
    /// A bare `select_related()`: every non-null forward key, recursively.
    NonNullKeys,
    /// Exactly these lookups (none for an empty tuple).
    Lookups(Vec<String>),
}

/// Where a lookup that the changelist does not join is added.
pub enum KeyFixSite<'a> {
    /// The `select_related(...)` call of `get_queryset()`.
    SelectRelated(Node<'a>),
    /// The tuple or list `list_select_related` is set to in the admin itself.
    Literal(Node<'a>),
    /// `list_select_related = False` in the admin: the value replaced.
    False(Node<'a>),
    /// No `list_select_related` anywhere: a line added after this statement.
    After(Node<'a>),
    /// No fix: `True`, a bare `select_related()`, `get_list_select_related()`.
    Unfixable,
}

/// What `get_queryset()` adds to the model's QuerySet.
#[derive(Default)]
struct Customized<'a> {
    /// The lookups of its `select_related(...)` calls (`"*"` for a bare one), if it calls it.
    select_related: Option<Vec<String>>,
    /// Its last `select_related(...)` call.
    select_call: Option<Node<'a>>,
    prefetched: Vec<String>,
    annotated: Vec<String>,
    /// The expression it returns, to which a `prefetch_related` is chained.
    returned: Option<Node<'a>>,
}

pub struct Changelist<'a> {
    pub class: Node<'a>,
    pub admin_name: &'a str,
    pub model: ModelId,
    pub entries: Vec<Entry<'a>>,
    pub joins: Joins,
    pub prefetched: Vec<String>,
    pub annotated: Vec<String>,
    pub key_fix_site: KeyFixSite<'a>,
    /// `get_queryset()`'s returned expression; `None` when the admin does not define it.
    pub get_queryset: Option<Node<'a>>,
}

impl<'a> Changelist<'a> {
    /// The changelist of `class`, when it is a `ModelAdmin` of an indexed model whose
    /// `list_display` and QuerySet the analyzer can read; `None` when unsure.
    pub fn read(sem: &Semantics<'a>, settings: &Settings, class: Node<'a>) -> Option<Self> {
        if !sem.text(class).contains("list_display") {
            return None;
        }
        let classes = admin_classes(sem, class)?;
        let model = match sem
            .model_of_class(class)
            .or_else(|| registered_model(sem, class))?
        {
            ModelRef::Indexed(model) => model,
            ModelRef::Named(_) => return None,
        };
        let body = class.field(&field::BODY)?;
        // Hooks that change what the changelist shows or loads in ways not read here.
        if method(sem, body, "get_list_display").is_some() || default_manager_customized(sem, model)
        {
            return None;
        }
        let list_display = attribute(sem, body, "list_display")?;
        let list_display_value = strip_parens(list_display.1);
        if !matches!(list_display_value.kind_name(), "tuple" | "list") {
            return None;
        }
        let get_queryset = method(sem, body, "get_queryset");
        let customized = match get_queryset {
            Some(function) => read_get_queryset(sem, function)?,
            None => Customized::default(),
        };
        let admin_name = sem.text(class.field(&field::NAME)?);
        let mut entries = Vec::new();
        let mut lists_a_key = false;
        let mut fully_read = !changed_in_body(sem, body, "list_display");
        let mut cursor = list_display_value.walk();
        for element in list_display_value.named_children(&mut cursor) {
            if element.kind_name() == "comment" {
                continue;
            }
            let entry = entry(sem, settings, &classes, model, element);
            match &entry {
                Some(Entry::Column { hops, at, shows }) => {
                    let written = string_value(*at, sem.source).unwrap_or_default();
                    lists_a_key |= hops.len() == 1 && !written.contains("__");
                    fully_read &= shows.is_none_or(|shown| str_is_known(sem, shown));
                }
                Some(_) => {}
                None => fully_read &= is_plain_column(sem, model, element),
            }
            entries.extend(entry);
        }
        let (select_related, key_fix_site) = list_select_related(sem, body, list_display.0)?;
        let (joins, key_fix_site) = match (&customized.select_related, customized.select_call) {
            (Some(lookups), _) if lookups.iter().any(|l| l == "*") => {
                (Joins::NonNullKeys, KeyFixSite::Unfixable)
            }
            (Some(lookups), Some(call)) => (
                Joins::Lookups(lookups.clone()),
                KeyFixSite::SelectRelated(call),
            ),
            _ => {
                // Entries added in the class body (`list_display.append("author")`) may turn
                // Django's join on: then only what it would not join either is sure.
                let lists_a_key = lists_a_key || changed_in_body(sem, body, "list_display");
                // A tuple replacing Django's join would drop what it joined for reads the rule
                // cannot see.
                let key_fix_site = match (key_fix_site, lists_a_key && !fully_read) {
                    (KeyFixSite::After(_) | KeyFixSite::False(_), true) => KeyFixSite::Unfixable,
                    (site, _) => site,
                };
                let joins = match select_related {
                    ListSelectRelated::True => Joins::NonNullKeys,
                    ListSelectRelated::False if lists_a_key => Joins::NonNullKeys,
                    ListSelectRelated::False => Joins::Lookups(Vec::new()),
                    ListSelectRelated::Lookups(lookups) => Joins::Lookups(lookups),
                };
                (joins, key_fix_site)
            }
        };
        Some(Self {
            class,
            admin_name,
            model,
            entries,
            joins,
            prefetched: customized.prefetched,
            annotated: customized.annotated,
            key_fix_site,
            get_queryset: customized.returned,
        })
    }

    /// Whether the forward keys `hops` (from the model) are joined.
    pub fn joins(&self, sem: &Semantics, hops: &[String]) -> bool {
        match &self.joins {
            Joins::Lookups(lookups) => covers(lookups, &hops.join("__")),
            Joins::NonNullKeys => {
                let index = sem.index();
                let mut current = self.model;
                hops.iter().all(|hop| {
                    match index.model(current).field(hop) {
                        Some(field)
                            if matches!(
                                field.kind,
                                FieldKind::ForeignKey | FieldKind::OneToOne
                            ) && !field.may_be_null =>
                        {
                            // A field without a known target ends the walk: nothing more to ask.
                            if let Some(target) = field.target {
                                current = target;
                            }
                            true
                        }
                        _ => false,
                    }
                })
            }
        }
    }

    pub fn callable_reads(
        &self,
        sem: &Semantics<'a>,
        function: Node<'a>,
    ) -> Option<Vec<ChainRead<'a>>> {
        let position = self.entries.iter().find_map(|e| match e {
            Entry::Callable {
                function: f,
                position,
                ..
            } if f.id() == function.id() => Some(*position),
            _ => None,
        })?;
        parameter_chains(sem.source, function, position)
    }

    /// What a read of the row loads (`None`: nothing per row here, see `shape`); a name the
    /// QuerySet annotates is no relation.
    pub fn row_shape(&self, sem: &Semantics, read: &ChainRead) -> Option<Shape> {
        if read
            .path
            .first()
            .is_some_and(|first| self.annotated.contains(first))
        {
            return None;
        }
        shape(
            sem,
            self.model,
            &read.path,
            read.call.as_deref(),
            read.narrowed_by.as_deref(),
        )
    }

    /// The forward keys every entry reads.
    pub fn key_reads(&self, sem: &Semantics<'a>) -> Vec<Vec<String>> {
        let mut keys = Vec::new();
        for entry in &self.entries {
            match entry {
                Entry::Column { hops, shows, .. } => {
                    keys.push(hops.clone());
                    let shown = shows
                        .and_then(|shown| Some((shown, model_method(sem, shown, "__str__")?.1)));
                    if let Some((shown, method)) = shown {
                        keys.extend(method_keys(sem, shown, hops, method));
                    }
                }
                Entry::Callable { function, .. } => {
                    for read in self.callable_reads(sem, *function).unwrap_or_default() {
                        if let Some(Shape::Keys(hops)) = self.row_shape(sem, &read) {
                            keys.push(hops);
                        }
                    }
                }
                Entry::ModelMethod { method, .. } => {
                    keys.extend(method_keys(sem, self.model, &[], method));
                }
            }
        }
        keys
    }
}

pub enum Shape {
    /// Forward keys (and reverse one-to-ones) read in a row: `["author", "country"]`.
    Keys(Vec<String>),
    /// A to-many relation, through keys, with the method called on it.
    Many {
        hops: Vec<String>,
        narrowed: Option<String>,
    },
}

/// What reading `path` on an instance of `model` loads: forward keys, or a to-many relation
/// (through keys) with the method called on it. `None` for a read that costs no query here: a
/// concrete field, a key's `id` (ORM401's), a relation the index cannot follow, a to-many
/// relation not called.
pub fn shape(
    sem: &Semantics,
    model: ModelId,
    path: &[String],
    call: Option<&str>,
    narrowed_by: Option<&str>,
) -> Option<Shape> {
    let index = sem.index();
    let mut current = model;
    let mut hops = Vec::new();
    for (i, name) in path.iter().enumerate() {
        let declared = index.model(current);
        let last = i + 1 == path.len();
        let (target, many) = match declared.field(name) {
            Some(f) => match (f.kind, f.target) {
                (FieldKind::ForeignKey | FieldKind::OneToOne, Some(t)) => (t, false),
                (FieldKind::ManyToMany, Some(t)) => (t, true),
                (FieldKind::Concrete, _) => break,
                _ => return None,
            },
            None => match declared.reverse(name) {
                Some(r) if r.many => (r.source, true),
                // A reverse one-to-one: only a `select_related` naming it joins it.
                Some(r) => (r.source, false),
                None => break,
            },
        };
        hops.push(name.clone());
        if many {
            // `obj.tags.all()`: the manager's call says what it costs.
            if !last || call.is_none() {
                return None;
            }
            return Some(Shape::Many {
                hops,
                narrowed: narrowed_by.or(call).map(str::to_string),
            });
        }
        current = target;
    }
    // `obj.author.id` reads the key the row holds: ORM401's.
    let next = path.get(hops.len()).map(String::as_str);
    if matches!(next, Some("id" | "pk")) && hops.len() + 1 == path.len() {
        return None;
    }
    (!hops.is_empty()).then_some(Shape::Keys(hops))
}

/// One `list_display` entry: a column that reads keys, or a callable run per row. `None` for a
/// concrete column, `x_id`, or an entry the analyzer cannot read.
fn entry<'a>(
    sem: &Semantics<'a>,
    settings: &Settings,
    classes: &[Node<'a>],
    model: ModelId,
    element: Node<'a>,
) -> Option<Entry<'a>> {
    let class = *classes.first()?;
    let index = sem.index();
    let declared = index.model(model);
    if element.kind_name() == "identifier" {
        // A function of the module: called with the row.
        let function = module_function(class, sem, sem.text(element))?;
        return callable(sem, sem.text(element).to_string(), function, 0);
    }
    let name = string_value(element, sem.source)?;
    // `author__name`, not `__str__`.
    let is_lookup = name.contains("__") && name.split("__").all(|part| !part.is_empty());
    if is_lookup {
        if settings.target_django < LOOKUPS_IN_LIST_DISPLAY_SINCE {
            return None;
        }
        let parts: Vec<&str> = name.split("__").collect();
        let mut hops = Vec::new();
        let mut current = model;
        let mut shows = None;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let field = index.model(current).field(part)?;
            match (field.kind, field.target) {
                (FieldKind::ForeignKey | FieldKind::OneToOne, Some(target)) => {
                    hops.push(part.to_string());
                    current = target;
                    shows = last.then_some(target);
                }
                _ if last => {}
                _ => return None,
            }
        }
        return Some(Entry::Column {
            at: element,
            hops,
            shows,
        });
    }
    // Django looks for a field first, then the admin's attribute, then the model's.
    if let Some(field) = declared.field(&name) {
        return match (field.kind, field.target) {
            (FieldKind::ForeignKey | FieldKind::OneToOne, Some(target)) => Some(Entry::Column {
                at: element,
                hops: vec![name],
                shows: Some(target),
            }),
            _ => None,
        };
    }
    let in_admin = classes.iter().find_map(|c| {
        let function = method(sem, c.field(&field::BODY)?, &name)?;
        Some((*c, function))
    });
    if let Some((declaring, function)) = in_admin {
        let what = format!("{}.{name}", sem.text(declaring.field(&field::NAME)?));
        let position = if is_static(sem, function) { 0 } else { 1 };
        return callable(sem, what, function, position);
    }
    // A method or property of the model: read in the tree when its class is in this file,
    // else as the index has it.
    if declared.module != sem.file_facts().module {
        let (file, method) = model_method(sem, model, &name)?;
        return Some(Entry::ModelMethod {
            at: element,
            file,
            method,
        });
    }
    let model_class = module_class(class, sem, &declared.name)?;
    let function = method(sem, model_class.field(&field::BODY)?, &name)?;
    callable(sem, format!("{}.{name}", declared.name), function, 0)
}

/// A callable whose parameter at `position` is the row.
fn callable<'a>(
    sem: &Semantics<'a>,
    what: String,
    function: Node<'a>,
    position: usize,
) -> Option<Entry<'a>> {
    parameter_name(sem, function, position)?;
    Some(Entry::Callable {
        what,
        function,
        position,
    })
}

/// The method `name` of `model`'s class as the index read it (its own, not a base's), with the
/// facts of its file. The file being linted is read from its text, not from the index's copy.
pub fn model_method<'a>(
    sem: &Semantics<'a>,
    model: ModelId,
    name: &str,
) -> Option<(&'a FileFacts, &'a MethodFacts)> {
    let declared = sem.index().model(model);
    let file = if declared.module == sem.file_facts().module {
        sem.file_facts()
    } else {
        sem.index().facts(&declared.module)?.as_ref()
    };
    let class = file.classes.iter().find(|c| c.name == declared.name)?;
    let method = class.methods.iter().rev().find(|m| m.name == name)?;
    Some((file, method))
}

/// The keys a method of `model` reads on `self`, from the rows through `prefix`.
fn method_keys(
    sem: &Semantics,
    model: ModelId,
    prefix: &[String],
    method: &MethodFacts,
) -> Vec<Vec<String>> {
    method
        .self_reads
        .iter()
        .filter_map(
            |read| match shape(sem, model, &read.path, read.call.as_deref(), None)? {
                Shape::Keys(hops) => Some(prefix.iter().chain(&hops).cloned().collect()),
                Shape::Many { .. } => None,
            },
        )
        .collect()
}

/// Whether what `model`'s `__str__` reads is known: its class defines it (the index has its
/// reads), or takes Django's, which reads no relation.
fn str_is_known(sem: &Semantics, model: ModelId) -> bool {
    if model_method(sem, model, "__str__").is_some() {
        return true;
    }
    let index = sem.index();
    let declared = index.model(model);
    let Some(file) = index.facts(&declared.module) else {
        return false;
    };
    file.classes
        .iter()
        .find(|c| c.name == declared.name)
        .is_some_and(|class| {
            class.bases.iter().all(|base| {
                matches!(index.resolve(file, base), Symbol::External(q) if q.starts_with("django."))
            })
        })
}

/// A `list_display` string naming a column that reads no relation: a concrete field or a key's
/// column (`author_id`).
fn is_plain_column(sem: &Semantics, model: ModelId, element: Node) -> bool {
    let Some(name) = string_value(element, sem.source) else {
        return false;
    };
    let declared = sem.index().model(model);
    let concrete = declared
        .field(&name)
        .is_some_and(|f| f.kind == FieldKind::Concrete);
    let key_column = name
        .strip_suffix("_id")
        .and_then(|key| declared.field(key))
        .is_some_and(|f| matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne));
    concrete || key_column || name == "pk"
}

/// `class` and the bases it has in this file (its mixins), nearest first, when it derives from
/// Django's `ModelAdmin` through them. `None` for a base the analyzer cannot read (a package's
/// admin may load or show anything), or a base of this file that changes what the changelist
/// loads (its findings would be cached with the class that reads it).
fn admin_classes<'a>(sem: &Semantics<'a>, class: Node<'a>) -> Option<Vec<Node<'a>>> {
    let mut classes = vec![class];
    let mut pending = vec![(class, 0)];
    let mut reaches_django = false;
    while let Some((current, depth)) = pending.pop() {
        let Some(bases) = current.field(&field::SUPERCLASSES) else {
            continue;
        };
        let mut cursor = bases.walk();
        let bases: Vec<Node<'a>> = bases.named_children(&mut cursor).collect();
        for base in bases {
            let written = sem.text(base);
            if written == "object" {
                continue;
            }
            match sem.index().resolve(sem.file_facts(), written) {
                Symbol::External(q) if DJANGO_MODEL_ADMINS.contains(&q.as_str()) => {
                    reaches_django = true;
                }
                Symbol::Class { module, name }
                    if module == sem.file_facts().module && depth < 6 =>
                {
                    let base = module_class(class, sem, &name)?;
                    let body = base.field(&field::BODY)?;
                    let loads = LOADING_HOOKS.iter().any(|hook| {
                        method(sem, body, hook).is_some() || attribute(sem, body, hook).is_some()
                    });
                    if loads {
                        return None;
                    }
                    classes.push(base);
                    pending.push((base, depth + 1));
                }
                _ => return None,
            }
        }
    }
    reaches_django.then_some(classes)
}

/// What an admin says about its changelist's rows and QuerySet.
const LOADING_HOOKS: &[&str] = &[
    "list_display",
    "get_list_display",
    "list_select_related",
    "get_list_select_related",
    "get_queryset",
];

/// `admin.site.register(Model, ThisAdmin)` at the top level of the module.
fn registered_model<'a>(sem: &Semantics<'a>, class: Node<'a>) -> Option<ModelRef> {
    let name = sem.text(class.field(&field::NAME)?);
    let root = top(class);
    let mut found = None;
    walk(root, |n| {
        if n.kind_name() == "call" {
            let registers = n
                .field(&field::FUNCTION)
                .is_some_and(|f| sem.text(f).ends_with("site.register"));
            let arguments = n.field(&field::ARGUMENTS);
            if let (true, Some(arguments)) = (registers, arguments) {
                let second = arguments.named_child(1);
                if second.is_some_and(|s| sem.text(s) == name) {
                    if let Some(crate::analysis::infer::Ty::ModelClass(model)) =
                        arguments.named_child(0).map(|m| sem.ty(m))
                    {
                        found = Some(model);
                    }
                }
            }
            return false;
        }
        matches!(
            n.kind_name(),
            "module" | "expression_statement" | "if_statement" | "block"
        )
    });
    found
}

/// Whether `function` is decorated with `@staticmethod`: the row is its first parameter.
fn is_static(sem: &Semantics, function: Node) -> bool {
    let Some(decorated) = function
        .parent()
        .filter(|d| d.kind_name() == "decorated_definition")
    else {
        return false;
    };
    let mut cursor = decorated.walk();
    let found = decorated
        .named_children(&mut cursor)
        .any(|d| d.kind_name() == "decorator" && sem.text(d) == "@staticmethod");
    found
}

/// The module node above `node`.
fn top(node: Node) -> Node {
    let mut root = node;
    while let Some(parent) = root.parent() {
        root = parent;
    }
    root
}

fn module_class<'a>(anywhere: Node<'a>, sem: &Semantics<'a>, name: &str) -> Option<Node<'a>> {
    let root = top(anywhere);
    let mut cursor = root.walk();
    let found = root.named_children(&mut cursor).map(undecorated).find(|c| {
        c.kind_name() == "class_definition"
            && c.field(&field::NAME).is_some_and(|n| sem.text(n) == name)
    });
    found
}

fn module_function<'a>(anywhere: Node<'a>, sem: &Semantics<'a>, name: &str) -> Option<Node<'a>> {
    let root = top(anywhere);
    let mut cursor = root.walk();
    let found = root.named_children(&mut cursor).map(undecorated).find(|f| {
        f.kind_name() == "function_definition"
            && f.field(&field::NAME).is_some_and(|n| sem.text(n) == name)
    });
    found
}

/// The method `name` defined in a class body (the last definition wins, as in Python).
fn method<'a>(sem: &Semantics<'a>, body: Node<'a>, name: &str) -> Option<Node<'a>> {
    let mut cursor = body.walk();
    let found = body
        .named_children(&mut cursor)
        .map(undecorated)
        .filter(|f| {
            f.kind_name() == "function_definition"
                && f.field(&field::NAME).is_some_and(|n| sem.text(n) == name)
        })
        .last();
    found
}

/// The statement `name = value` in a class body, with its value (the last one wins).
fn attribute<'a>(sem: &Semantics<'a>, body: Node<'a>, name: &str) -> Option<(Node<'a>, Node<'a>)> {
    let mut cursor = body.walk();
    let found = body
        .named_children(&mut cursor)
        .filter_map(|statement| {
            let (left, right) = simple_assignment(statement)?;
            (sem.text(left) == name).then_some((statement, right))
        })
        .last();
    found
}

/// Whether a statement of the class body other than an assignment changes `name`:
/// `name.append(...)`, `name += (...)`.
fn changed_in_body(sem: &Semantics, body: Node, name: &str) -> bool {
    let mut cursor = body.walk();
    let changed = body.named_children(&mut cursor).any(|statement| {
        let Some(expression) = statement
            .named_child(0)
            .filter(|_| statement.kind_name() == "expression_statement")
        else {
            return false;
        };
        match expression.kind_name() {
            "augmented_assignment" => expression
                .field(&field::LEFT)
                .is_some_and(|l| sem.text(l) == name),
            "call" => method_call(expression, sem.source)
                .is_some_and(|(receiver, _)| sem.text(receiver) == name),
            _ => false,
        }
    });
    changed
}

fn parameter_name<'a>(sem: &Semantics<'a>, function: Node<'a>, position: usize) -> Option<&'a str> {
    let parameter = function.field(&field::PARAMETERS)?.named_child(position)?;
    let parameter = match parameter.kind_name() {
        "identifier" => parameter,
        "typed_parameter" => parameter.named_child(0)?,
        _ => return None,
    };
    Some(sem.text(parameter))
}

enum ListSelectRelated {
    True,
    False,
    Lookups(Vec<String>),
}

/// What the admin's `list_select_related` (or `get_list_select_related()`) says, and where a
/// lookup would be added to it. `None` when it is something else than a literal.
fn list_select_related<'a>(
    sem: &Semantics<'a>,
    body: Node<'a>,
    list_display: Node<'a>,
) -> Option<(ListSelectRelated, KeyFixSite<'a>)> {
    if let Some(function) = method(sem, body, "get_list_select_related") {
        let mut returned = Vec::new();
        walk(function, |n| {
            if n.kind_name() == "return_statement" {
                returned.push(n.named_child(0));
            }
            n.id() == function.id() || !matches!(n.kind_name(), "function_definition" | "lambda")
        });
        let [Some(value)] = returned.as_slice() else {
            return None;
        };
        return Some((literal_select_related(sem, *value)?, KeyFixSite::Unfixable));
    }
    let Some((_, value)) = attribute(sem, body, "list_select_related") else {
        return Some((ListSelectRelated::False, KeyFixSite::After(list_display)));
    };
    let value = strip_parens(value);
    let read = literal_select_related(sem, value)?;
    let site = match read {
        ListSelectRelated::True => KeyFixSite::Unfixable,
        ListSelectRelated::False => KeyFixSite::False(value),
        ListSelectRelated::Lookups(_) => KeyFixSite::Literal(value),
    };
    Some((read, site))
}

fn literal_select_related(sem: &Semantics, value: Node) -> Option<ListSelectRelated> {
    let value = strip_parens(value);
    match value.kind_name() {
        "true" => Some(ListSelectRelated::True),
        "false" => Some(ListSelectRelated::False),
        "tuple" | "list" => {
            let mut cursor = value.walk();
            let lookups = value
                .named_children(&mut cursor)
                .filter(|c| c.kind_name() != "comment")
                .map(|c| string_value(c, sem.source))
                .collect::<Option<Vec<String>>>()?;
            Some(ListSelectRelated::Lookups(lookups))
        }
        _ => None,
    }
}

/// Whether the model's managers may join something of their own, which turns Django's joins
/// for the changelist off: a project manager class (or a base of it) whose `get_queryset()`
/// calls `select_related` or returns something else than a chain on `super()`, or a manager
/// class of a package the analyzer cannot read.
fn default_manager_customized(sem: &Semantics, model: ModelId) -> bool {
    let index = sem.index();
    let declared = index.model(model);
    let project_classes = declared
        .managers
        .iter()
        .flat_map(|m| &m.classes)
        .any(|(module, name)| manager_class_joins(sem, module, name, 0));
    let declaring = index
        .facts(&declared.module)
        .and_then(|f| Some((f, f.classes.iter().find(|c| c.name == declared.name)?)));
    let package_managers = declaring.is_some_and(|(file, class)| {
        class.managers.iter().any(|manager| {
            manager.class.as_deref().is_some_and(|written| {
                matches!(index.resolve(file, written), Symbol::External(q) if !q.starts_with("django."))
            })
        })
    });
    project_classes || package_managers
}

/// Whether the manager class `module.name` (or a base of it) may join in `get_queryset()`.
fn manager_class_joins(sem: &Semantics, module: &str, name: &str, depth: usize) -> bool {
    let index = sem.index();
    let Some((file, class)) = index
        .facts(module)
        .and_then(|f| Some((f, f.classes.iter().find(|c| c.name == name)?)))
    else {
        return true;
    };
    let own = class
        .methods
        .iter()
        .any(|m| m.name == "get_queryset" && (m.calls_select_related || !m.returns_queryset));
    own || class
        .bases
        .iter()
        .any(|base| match index.resolve(file, base) {
            Symbol::External(q) => !q.starts_with("django."),
            Symbol::Class { module, name } if depth < 6 => {
                manager_class_joins(sem, &module, &name, depth + 1)
            }
            _ => true,
        })
}

/// What `get_queryset()` adds: one `return` of a chain from `super().get_queryset(request)`,
/// directly or through a name assigned in order at the top of its body. `None` when it is
/// written some other way.
fn read_get_queryset<'a>(sem: &Semantics<'a>, function: Node<'a>) -> Option<Customized<'a>> {
    let body = function.field(&field::BODY)?;
    let mut customized = Customized::default();
    let mut name: Option<&'a str> = None;
    let mut cursor = body.walk();
    let statements: Vec<Node<'a>> = body
        .named_children(&mut cursor)
        .filter(|s| s.kind_name() != "comment")
        .collect();
    let (last, before) = statements.split_last()?;
    for statement in before {
        // A docstring.
        if statement.kind_name() == "expression_statement"
            && statement
                .named_child(0)
                .is_some_and(|s| s.kind_name() == "string")
        {
            continue;
        }
        let (left, right) = simple_assignment(*statement)?;
        if left.kind_name() != "identifier" {
            return None;
        }
        let assigned = sem.text(left);
        read_chain(sem, right, name, &mut customized)?;
        name = Some(assigned);
    }
    if last.kind_name() != "return_statement" {
        return None;
    }
    let returned = strip_parens(last.named_child(0)?);
    read_chain(sem, returned, name, &mut customized)?;
    customized.returned = Some(returned);
    Some(customized)
}

/// Reads a chain of QuerySet calls starting at `super().get_queryset(...)` or at `name` (the
/// QuerySet built so far), into `customized`.
fn read_chain<'a>(
    sem: &Semantics<'a>,
    expr: Node<'a>,
    name: Option<&str>,
    customized: &mut Customized<'a>,
) -> Option<()> {
    let mut calls = Vec::new();
    let mut node = strip_parens(expr);
    loop {
        if node.kind_name() == "identifier" {
            if Some(sem.text(node)) != name {
                return None;
            }
            break;
        }
        let (receiver, method) = method_call(node, sem.source)?;
        if method == "get_queryset"
            && strip_parens(receiver).kind_name() == "call"
            && strip_parens(receiver)
                .field(&field::FUNCTION)
                .is_some_and(|f| sem.text(f) == "super")
        {
            break;
        }
        calls.push((node, method));
        node = strip_parens(receiver);
    }
    for (call, method) in calls.into_iter().rev() {
        let arguments = call.field(&field::ARGUMENTS)?;
        let mut cursor = arguments.walk();
        let args: Vec<Node> = arguments
            .named_children(&mut cursor)
            .filter(|a| a.kind_name() != "comment")
            .collect();
        match method {
            // Django keeps the last bare call, or the lookups named since it.
            "select_related" => {
                let lookups = customized.select_related.get_or_insert_with(Vec::new);
                if args.is_empty() || lookups.iter().any(|l| l == "*") {
                    lookups.clear();
                }
                if args.is_empty() {
                    lookups.push("*".to_string());
                }
                for arg in args {
                    lookups.push(string_value(arg, sem.source)?);
                }
                customized.select_call = Some(call);
            }
            "prefetch_related" => {
                for arg in args {
                    let lookup = match string_value(arg, sem.source) {
                        Some(lookup) => lookup,
                        // `Prefetch("rel", queryset=...)`
                        None => arg
                            .field(&field::ARGUMENTS)
                            .and_then(|a| a.named_child(0))
                            .and_then(|a| string_value(a, sem.source))?,
                    };
                    customized.prefetched.push(lookup);
                }
            }
            "annotate" | "alias" => {
                for arg in args {
                    if arg.kind_name() != "keyword_argument" {
                        return None;
                    }
                    let key = arg.field(&field::NAME)?;
                    customized.annotated.push(sem.text(key).to_string());
                }
            }
            "filter" | "exclude" | "order_by" | "distinct" | "only" | "defer" | "all" | "using" => {
            }
            _ => return None,
        }
    }
    Some(())
}
