//! The workspace model index: every Django model in the workspace (and the ones Django ships),
//! with fields, relations both ways, managers, overrides and signal receivers, resolved across
//! files from each file's `FileFacts`.
//!
//! Resolution is deliberately conservative: a name that could mean two things resolves to
//! nothing, and the rules then stay silent.

mod facts;
mod prefetches;

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use rustc_hash::{FxHashMap, FxHasher};

pub use facts::{
    extract, extract_memoised, import_facts, module_name, string_value, ClassFacts, FactsMemo,
    FieldFacts, FileFacts, Import, InclusionTagFacts, MethodFacts, Reference,
};
pub use prefetches::mentions_prefetch;
use prefetches::WorkspacePrefetches;

pub type ModelId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Concrete,
    ForeignKey,
    OneToOne,
    ManyToMany,
    /// `GenericForeignKey`: a content type and an object id. Each read loads its row with a
    /// query of its own, which `prefetch_related` batches (`select_related` cannot); the row's
    /// model is known only at run time.
    GenericForeignKey,
    /// `GenericRelation` and other relations the index does not follow.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub target: Option<ModelId>,
    pub to_field: Option<String>,
    pub auto_now: bool,
    /// A built-in Django field whose attribute is the column's value as `values_list()`
    /// returns it (not a `FieldFile`, not a third-party field with its own descriptor).
    pub plain_value: bool,
    /// The model whose table holds the column: the model itself, or for multi-table
    /// inheritance the concrete parent that declares it (abstract bases' fields are copied).
    pub table_of: ModelId,
    /// `auto_now=True`: every `save()` sets it to the current time; `update()` does not.
    pub auto_now_on_save: bool,
    /// The field's class as written (`models.IntegerField`).
    pub class: String,
    /// A many-to-many field with its own `through=` model.
    pub custom_through: bool,
    /// `related_query_name` as written (empty when the index cannot read it).
    pub related_query_name: Option<String>,
    /// `null=True` (or a value the index cannot read): the column may hold NULL.
    pub may_be_null: bool,
    /// `db_column="..."` as written (empty when the index cannot read it).
    pub db_column: Option<String>,
    /// `db_table="..."` of a many-to-many as written (empty when the index cannot read it).
    pub db_table: Option<String>,
    /// `primary_key=True`.
    pub primary_key: bool,
}

/// The accessor a relation adds to its target model (`blog.entry_set`, `user.profile`).
#[derive(Clone, Debug)]
pub struct Reverse {
    pub name: String,
    pub source: ModelId,
    pub field: String,
    /// Reverse of a ForeignKey or ManyToManyField: a manager. Reverse one-to-one: an instance.
    pub many: bool,
}

#[derive(Clone, Debug)]
pub struct Manager {
    pub name: String,
    /// Methods of its custom QuerySet or manager class that return a QuerySet.
    pub queryset_methods: Vec<String>,
    /// The project's classes behind it (its manager class, its QuerySet class), as
    /// `Symbol::Class` keys: `self` in their methods is this model's manager or QuerySet.
    pub classes: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub module: String,
    pub name: String,
    pub app_label: String,
    pub is_abstract: bool,
    pub proxy: bool,
    /// Concrete model bases: multi-table inheritance.
    pub concrete_parents: Vec<ModelId>,
    pub fields: Vec<Field>,
    pub reverse: Vec<Reverse>,
    pub managers: Vec<Manager>,
    pub overrides_save: bool,
    pub overrides_delete: bool,
    /// Signals with a receiver for this model: `post_save`, `pre_delete`, `m2m_changed`, ...
    pub signals: Vec<String>,
    /// `Meta.db_table` as written in the class itself (empty when the index cannot read it).
    pub db_table: Option<String>,
    /// `Meta.ordering` as written in the class itself (`None` for an entry it cannot read).
    pub ordering: Option<Vec<Option<String>>>,
    /// `Meta.managed` written and not `True`.
    pub unmanaged: bool,
    /// Whether the class derives from another model of the project (abstract or not), whose
    /// `Meta` it may inherit.
    pub has_model_bases: bool,
}

impl Model {
    pub fn label(&self) -> String {
        format!("{}.{}", self.app_label, self.name)
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().rev().find(|f| f.name == name)
    }

    pub fn reverse(&self, name: &str) -> Option<&Reverse> {
        self.reverse.iter().find(|r| r.name == name)
    }

    pub fn manager(&self, name: &str) -> Option<&Manager> {
        self.managers.iter().find(|m| m.name == name)
    }
}

/// What a dotted name means in some module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Symbol {
    Class {
        module: String,
        name: String,
    },
    Module(String),
    /// Something in a module outside the index, by qualified name (`django.db.models.Model`).
    External(String),
    Unknown,
}

/// Classes every model derives from: Django's `Model` (also as GeoDjango re-exports it), and the
/// model bases of widely used packages, which are abstract models themselves (their own fields
/// are not known, the project's are).
pub const MODEL_ROOTS: &[&str] = &[
    "django.db.models.Model",
    "django.db.models.base.Model",
    "django.contrib.gis.db.models.Model",
    "mptt.models.MPTTModel",
    "treebeard.mp_tree.MP_Node",
    "treebeard.ns_tree.NS_Node",
    "treebeard.al_tree.AL_Node",
    "polymorphic.models.PolymorphicModel",
    "model_utils.models.TimeStampedModel",
    "model_utils.models.StatusModel",
    "model_utils.models.SoftDeletableModel",
    "django_extensions.db.models.TimeStampedModel",
    "django_extensions.db.models.TitleSlugDescriptionModel",
    "modelcluster.models.ClusterableModel",
];
const MAX_DEPTH: usize = 8;

#[derive(Default)]
pub struct ModelIndex {
    modules: FxHashMap<String, Arc<FileFacts>>,
    /// Module names by last component, for imports written relative to another source root.
    by_last_component: FxHashMap<String, Vec<String>>,
    models: Vec<Model>,
    by_class: FxHashMap<(String, String), ModelId>,
    fingerprint: u64,
    /// The workspace's Django templates (ORM410 follows views into them).
    templates: Arc<crate::analysis::templates::TemplateIndex>,
    /// The model built on each project manager or QuerySet class, when exactly one is
    /// (`None` when several share it).
    manager_class_users: FxHashMap<(String, String), Option<ModelId>>,
    /// What the program's prefetches load; `None` when the index does not hold the whole
    /// program (Django's models alone, a workspace not scanned yet).
    prefetches: Option<WorkspacePrefetches>,
    /// `AUTH_USER_MODEL`'s model, settled once the models are known (see `find_user_model`).
    user_model: Option<ModelId>,
    /// `DATABASES["default"]["ENGINE"]`, when the settings modules say it statically (SQL on
    /// hover renders that backend's SQL).
    database_engine: Option<String>,
    /// The (major, minor) release of the Django installed in the project's virtualenv, when
    /// one is found (SQL on hover renders as that release prints it).
    django_version: Option<(u32, u32)>,
}

static BUILTIN: LazyLock<Vec<Arc<FileFacts>>> = LazyLock::new(|| {
    let source = include_str!("builtin.py");
    source
        .split("# --- module: ")
        .skip(1)
        .map(|chunk| {
            let (module, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            let tree = crate::store::parse_python(body).expect("the built-in models parse");
            Arc::new(extract(body, &tree, module.trim(), false))
        })
        .collect()
});

impl ModelIndex {
    /// An index of the models Django ships, for code analysed without a workspace.
    pub fn builtin() -> Arc<ModelIndex> {
        static INDEX: LazyLock<Arc<ModelIndex>> =
            LazyLock::new(|| Arc::new(ModelIndex::build(Vec::new()).partial()));
        INDEX.clone()
    }

    /// The index of only some of a program's files (a workspace not scanned yet): what the
    /// rest of the program prefetches is unknown.
    pub fn partial(mut self) -> Self {
        self.prefetches = None;
        let mut hasher = FxHasher::default();
        (self.fingerprint, "partial").hash(&mut hasher);
        self.fingerprint = hasher.finish();
        self
    }

    pub fn build(files: Vec<Arc<FileFacts>>) -> Self {
        let mut index = ModelIndex::default();
        let mut hasher = FxHasher::default();
        let mut all: Vec<Arc<FileFacts>> = BUILTIN.iter().cloned().chain(files).collect();
        all.sort_by(|a, b| a.module.cmp(&b.module));
        for facts in all {
            facts.hash(&mut hasher);
            let last = facts
                .module
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string();
            index
                .by_last_component
                .entry(last)
                .or_default()
                .push(facts.module.clone());
            index.modules.insert(facts.module.clone(), facts);
        }
        index.fingerprint = hasher.finish();
        index.prefetches = Some(WorkspacePrefetches::new(
            index.modules.values().flat_map(|f| &f.prefetch_lookups),
        ));
        index.resolve_models();
        index
    }

    /// What an instance loaded out of the analyzer's sight (a parameter, an attribute) may have
    /// prefetched below its to-many relation `relation`, relative to the related rows: the
    /// lookups some prefetch of the program loads through `relation`; `*` (anything) when some
    /// prefetch cannot be read, or the index does not hold the whole program.
    pub fn prefetched_below(&self, relation: &str) -> Vec<String> {
        match &self.prefetches {
            Some(prefetches) => prefetches.below(relation),
            None => vec!["*".to_string()],
        }
    }

    /// Whether an instance loaded out of the analyzer's sight may have its relation `relation`
    /// prefetched: some prefetch of the program loads a relation of that name (of whichever
    /// model), or some prefetch cannot be read, or the index does not hold the whole program.
    pub fn may_prefetch(&self, relation: &str) -> bool {
        self.prefetches
            .as_ref()
            .is_none_or(|prefetches| prefetches.may_load(relation))
    }

    /// Changes whenever any file's facts change: part of the analysis cache key.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The index with the workspace's templates; `fingerprint` (of what they read) joins the
    /// index's own, so findings that depend on a template follow its edits.
    pub fn with_templates(
        mut self,
        templates: Arc<crate::analysis::templates::TemplateIndex>,
        fingerprint: u64,
    ) -> Self {
        let mut hasher = FxHasher::default();
        (self.fingerprint, fingerprint).hash(&mut hasher);
        self.fingerprint = hasher.finish();
        self.templates = templates;
        self
    }

    /// The index with the engine the workspace's settings modules name, if they agree.
    pub fn with_database_engine(mut self, engine: Option<String>) -> Self {
        self.database_engine = engine;
        self
    }

    pub fn database_engine(&self) -> Option<&str> {
        self.database_engine.as_deref()
    }

    /// The index with the Django release the workspace's virtualenv holds, if found.
    pub fn with_django_version(mut self, version: Option<(u32, u32)>) -> Self {
        self.django_version = version;
        self
    }

    pub fn django_version(&self) -> Option<(u32, u32)> {
        self.django_version
    }

    pub fn templates(&self) -> &crate::analysis::templates::TemplateIndex {
        &self.templates
    }

    pub fn facts(&self, module: &str) -> Option<&Arc<FileFacts>> {
        self.modules.get(module)
    }

    pub fn models(&self) -> &[Model] {
        &self.models
    }

    pub fn model(&self, id: ModelId) -> &Model {
        &self.models[id]
    }

    pub fn model_of(&self, symbol: &Symbol) -> Option<ModelId> {
        match symbol {
            Symbol::Class { module, name } => {
                self.by_class.get(&(module.clone(), name.clone())).copied()
            }
            _ => None,
        }
    }

    /// A module by dotted name: exact, or the only indexed module ending with `.name` (the
    /// workspace may hold the project below its root, e.g. in `src/`).
    fn module(&self, name: &str) -> Option<&Arc<FileFacts>> {
        if let Some(facts) = self.modules.get(name) {
            return Some(facts);
        }
        let last = name.rsplit('.').next()?;
        let suffix = format!(".{name}");
        let mut candidates = self
            .by_last_component
            .get(last)?
            .iter()
            .filter(|m| m.ends_with(&suffix));
        let only = candidates.next()?;
        candidates.next().is_none().then(|| &self.modules[only])
    }

    fn module_exists(&self, name: &str) -> bool {
        self.module(name).is_some()
    }

    /// Walks a class's bases, written in `file`, through the workspace's own classes (six
    /// levels at most): `visit` is shown each base that resolves outside the workspace, with how
    /// many workspace classes led there, and each workspace class on the way, and says how to
    /// go on.
    pub fn walk_bases<'i>(
        &'i self,
        file: &'i FileFacts,
        written: impl IntoIterator<Item = String>,
        mut visit: impl FnMut(BaseStep<'_>) -> Walk,
    ) {
        let mut pending: Vec<(&FileFacts, String, usize)> =
            written.into_iter().map(|b| (file, b, 0)).collect();
        while let Some((file, base, depth)) = pending.pop() {
            match self.resolve(file, &base) {
                Symbol::External(qualified)
                    if visit(BaseStep::External(&qualified, depth)) == Walk::Stop =>
                {
                    return;
                }
                Symbol::Class { module, name } if depth < MAX_BASE_DEPTH => {
                    let declaring = if module == file.module {
                        Some(file)
                    } else {
                        self.facts(&module).map(|f| f.as_ref())
                    };
                    let Some((declaring, class)) = declaring
                        .and_then(|f| f.classes.iter().find(|c| c.name == name).map(|c| (f, c)))
                    else {
                        continue;
                    };
                    match visit(BaseStep::Class(class)) {
                        Walk::Stop => return,
                        Walk::Descend => pending.extend(
                            class
                                .bases
                                .iter()
                                .map(|b| (declaring, b.clone(), depth + 1)),
                        ),
                        Walk::Next => {}
                    }
                }
                _ => {}
            }
        }
    }

    /// What `dotted` means in the file described by `facts`.
    pub fn resolve(&self, facts: &FileFacts, dotted: &str) -> Symbol {
        self.resolve_at(facts, dotted, 0)
    }

    fn resolve_at(&self, facts: &FileFacts, dotted: &str, depth: usize) -> Symbol {
        if depth > MAX_DEPTH {
            return Symbol::Unknown;
        }
        let mut parts = dotted.split('.');
        let head = parts.next().unwrap_or_default();
        let mut symbol = self.resolve_name(facts, head, depth);
        for part in parts {
            symbol = match symbol {
                Symbol::Module(module) => self.member(&module, part, depth + 1),
                Symbol::External(q) => Symbol::External(format!("{q}.{part}")),
                _ => Symbol::Unknown,
            };
        }
        symbol
    }

    fn resolve_name(&self, facts: &FileFacts, name: &str, depth: usize) -> Symbol {
        // Import cycles (`from .models import *` in models.py itself) end here.
        if depth > MAX_DEPTH {
            return Symbol::Unknown;
        }
        if facts.classes.iter().any(|c| c.name == name) {
            return Symbol::Class {
                module: facts.module.clone(),
                name: name.to_string(),
            };
        }
        for import in facts.imports.iter().rev() {
            match import {
                Import::Module { module, alias } if alias == name => {
                    return Symbol::Module(module.clone())
                }
                Import::From {
                    module,
                    name: imported,
                    alias,
                } if alias == name => {
                    return self.member(module, imported, depth + 1);
                }
                _ => {}
            }
        }
        for import in &facts.imports {
            if let Import::Star { module } = import {
                let found = self.member(module, name, depth + 1);
                if matches!(found, Symbol::Class { .. } | Symbol::Module(_)) {
                    return found;
                }
            }
        }
        Symbol::Unknown
    }

    /// `module.name`: a class defined or imported there, or a submodule.
    fn member(&self, module: &str, name: &str, depth: usize) -> Symbol {
        if depth > MAX_DEPTH {
            return Symbol::Unknown;
        }
        let submodule = format!("{module}.{name}");
        match self.module(module) {
            Some(facts) => {
                let found = self.resolve_name(facts, name, depth + 1);
                if found != Symbol::Unknown {
                    found
                } else if self.module_exists(&submodule) {
                    Symbol::Module(submodule)
                } else {
                    Symbol::Unknown
                }
            }
            None if self.module_exists(&submodule) => Symbol::Module(submodule),
            None => Symbol::External(submodule),
        }
    }

    fn is_model_root(symbol: &Symbol) -> bool {
        match symbol {
            Symbol::External(q) => MODEL_ROOTS.contains(&q.as_str()),
            Symbol::Class { module, name } => {
                name == "Model" && module.ends_with("django.db.models.base")
            }
            _ => false,
        }
    }

    fn resolve_models(&mut self) {
        // Every class with its resolved bases.
        let mut classes: Vec<(Arc<FileFacts>, usize, Vec<Symbol>)> = Vec::new();
        for facts in self.modules.values() {
            for (i, class) in facts.classes.iter().enumerate() {
                let bases = class.bases.iter().map(|b| self.resolve(facts, b)).collect();
                classes.push((facts.clone(), i, bases));
            }
        }
        classes.sort_by(|a, b| (&a.0.module, a.1).cmp(&(&b.0.module, b.1)));
        let key =
            |facts: &FileFacts, i: usize| (facts.module.clone(), facts.classes[i].name.clone());
        // A class is a model if a base is Django's Model or a model: repeat until stable.
        let mut is_model: FxHashMap<(String, String), bool> = FxHashMap::default();
        loop {
            let mut changed = false;
            for (facts, i, bases) in &classes {
                let k = key(facts, *i);
                if is_model.get(&k).copied().unwrap_or(false) {
                    continue;
                }
                let model = bases.iter().any(|b| {
                    Self::is_model_root(b)
                        || matches!(b, Symbol::Class { module, name } if is_model.get(&(module.clone(), name.clone())).copied().unwrap_or(false))
                }) || declares_fields_on_a_package_base(&facts.classes[*i], bases);
                if model {
                    is_model.insert(k, true);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let app_configs: Vec<(&str, &str)> = self
            .modules
            .values()
            .flat_map(|f| &f.app_configs)
            .filter_map(|c| Some((c.name.as_deref()?, c.label.as_deref()?)))
            .collect();
        for (facts, i, _) in &classes {
            if is_model.get(&key(facts, *i)).copied().unwrap_or(false) {
                let class = &facts.classes[*i];
                let id = self.models.len();
                self.by_class.insert(key(facts, *i), id);
                self.models.push(Model {
                    module: facts.module.clone(),
                    name: class.name.clone(),
                    app_label: class
                        .meta
                        .app_label
                        .clone()
                        .unwrap_or_else(|| app_label_for(&app_configs, &facts.module)),
                    is_abstract: class.meta.is_abstract,
                    proxy: class.meta.proxy,
                    concrete_parents: Vec::new(),
                    fields: Vec::new(),
                    reverse: Vec::new(),
                    managers: Vec::new(),
                    overrides_save: false,
                    overrides_delete: false,
                    signals: Vec::new(),
                    db_table: class.meta.db_table.clone(),
                    ordering: class.meta.ordering.clone(),
                    unmanaged: class.meta.unmanaged,
                    has_model_bases: false,
                });
            }
        }
        let order: Vec<(Arc<FileFacts>, usize, Vec<Symbol>)> = classes
            .into_iter()
            .filter(|(f, i, _)| self.by_class.contains_key(&key(f, *i)))
            .collect();
        let model_bases: Vec<Vec<ModelId>> = order
            .iter()
            .map(|(_, _, bases)| bases.iter().filter_map(|b| self.model_of(b)).collect())
            .collect();
        for (id, (_, _, _)) in order.iter().enumerate() {
            self.models[id].has_model_bases = !model_bases[id].is_empty();
            self.models[id].concrete_parents = model_bases[id]
                .iter()
                .copied()
                .filter(|b| !self.models[*b].is_abstract)
                .collect();
        }
        self.user_model = self.find_user_model(&model_bases);
        let user_model = self.user_model;
        for id in 0..self.models.len() {
            let mut visiting = Vec::new();
            self.inherit(id, &order, &model_bases, user_model, &mut visiting);
        }
        self.add_reverse_relations(&order);
        self.record_manager_class_users();
        self.add_receivers();
    }

    /// Fills `id`'s fields, managers and overrides from its bases, then its own class body.
    fn inherit(
        &mut self,
        id: ModelId,
        order: &[(Arc<FileFacts>, usize, Vec<Symbol>)],
        model_bases: &[Vec<ModelId>],
        user_model: Option<ModelId>,
        visiting: &mut Vec<ModelId>,
    ) {
        if visiting.contains(&id)
            || !self.models[id].fields.is_empty()
            || visiting.len() > MAX_DEPTH
        {
            return;
        }
        visiting.push(id);
        let (mut fields, mut managers, mut saves, mut deletes) =
            (Vec::new(), Vec::new(), false, false);
        for &base in &model_bases[id] {
            self.inherit(base, order, model_bases, user_model, visiting);
            let base = &self.models[base];
            let copied = base.is_abstract;
            fields.extend(base.fields.iter().cloned().map(|f| {
                if copied {
                    Field { table_of: id, ..f }
                } else {
                    f
                }
            }));
            managers.extend(base.managers.iter().cloned());
            saves |= base.overrides_save;
            deletes |= base.overrides_delete;
        }
        let (facts, i, _) = &order[id];
        let class = &facts.classes[*i];
        for field in &class.fields {
            let kind = field_kind(&field.class);
            let target = match (&field.to, kind) {
                (
                    Some(reference),
                    FieldKind::ForeignKey | FieldKind::OneToOne | FieldKind::ManyToMany,
                ) => self.resolve_reference(facts, reference, id, user_model),
                _ => None,
            };
            fields.retain(|f: &Field| f.name != field.name);
            fields.push(Field {
                name: field.name.clone(),
                kind,
                target,
                to_field: field.to_field.clone(),
                auto_now: field.auto_now,
                plain_value: kind == FieldKind::Concrete && is_plain_value(&field.class),
                table_of: id,
                auto_now_on_save: field.auto_now_on_save,
                class: field.class.clone(),
                custom_through: field.custom_through,
                related_query_name: field.related_query_name.clone(),
                may_be_null: field.may_be_null,
                db_column: field.db_column.clone(),
                db_table: field.db_table.clone(),
                primary_key: field.primary_key,
            });
        }
        let own_managers: Vec<Manager> = class
            .managers
            .iter()
            .filter(|m| !m.name.is_empty())
            .map(|m| self.manager(facts, m))
            .collect();
        if !own_managers.is_empty() {
            managers.retain(|m: &Manager| own_managers.iter().all(|o| o.name != m.name));
            managers.extend(own_managers);
        }
        if managers.is_empty() {
            managers.push(Manager {
                name: "objects".into(),
                queryset_methods: Vec::new(),
                classes: Vec::new(),
            });
        }
        saves |= class.methods.iter().any(|m| m.name == "save");
        deletes |= class.methods.iter().any(|m| m.name == "delete");
        // A plain mixin's `save()`/`delete()` runs like the model's own; a package's base
        // (parler's `TranslatableModel` saves its translations) may override either.
        let (mixin_saves, mixin_deletes) = self.non_model_overrides(&order[id].2, 0);
        saves |= mixin_saves;
        deletes |= mixin_deletes;
        let model = &mut self.models[id];
        model.fields = fields;
        model.managers = managers;
        model.overrides_save = saves;
        model.overrides_delete = deletes;
        visiting.pop();
    }

    /// Whether bases that are not the project's models define `save()` / `delete()`: project
    /// classes (and their bases) by their methods; a package's model base or mixin
    /// (`MPTTModel`, parler's `TranslatableModel`) is assumed to.
    fn non_model_overrides(&self, bases: &[Symbol], depth: usize) -> (bool, bool) {
        let (mut saves, mut deletes) = (false, false);
        if depth > MAX_DEPTH {
            return (saves, deletes);
        }
        for base in bases {
            if self.model_of(base).is_some() {
                continue;
            }
            match base {
                Symbol::External(q) if q.starts_with("django.") => {}
                Symbol::External(q) => {
                    let last = q.rsplit('.').next().unwrap_or(q);
                    if q.contains(".models") || last.ends_with("Model") || last.ends_with("Mixin") {
                        (saves, deletes) = (true, true);
                    }
                }
                Symbol::Class { module, name } => {
                    let Some(defining) = self.module(module).cloned() else {
                        continue;
                    };
                    let Some(class) = defining.classes.iter().find(|c| &c.name == name) else {
                        continue;
                    };
                    saves |= class.methods.iter().any(|m| m.name == "save");
                    deletes |= class.methods.iter().any(|m| m.name == "delete");
                    let bases: Vec<Symbol> = class
                        .bases
                        .iter()
                        .map(|b| self.resolve(&defining, b))
                        .collect();
                    let (s, d) = self.non_model_overrides(&bases, depth + 1);
                    saves |= s;
                    deletes |= d;
                }
                _ => {}
            }
        }
        (saves, deletes)
    }

    fn manager(&self, facts: &FileFacts, manager: &facts::ManagerFacts) -> Manager {
        let mut methods = Vec::new();
        let mut classes = Vec::new();
        for class in [&manager.queryset, &manager.class].into_iter().flatten() {
            self.queryset_methods(facts, class, &mut methods, 0);
            if let Symbol::Class { module, name } = self.resolve(facts, class) {
                classes.push((module, name));
            }
        }
        Manager {
            name: manager.name.clone(),
            queryset_methods: methods,
            classes,
        }
    }

    /// The one model whose managers are built on the class `module.name` (a custom manager
    /// or QuerySet), if exactly one is.
    pub fn only_model_using(&self, module: &str, name: &str) -> Option<ModelId> {
        *self
            .manager_class_users
            .get(&(module.to_string(), name.to_string()))?
    }

    fn record_manager_class_users(&mut self) {
        let mut users: FxHashMap<(String, String), Option<ModelId>> = FxHashMap::default();
        for (id, model) in self.models.iter().enumerate() {
            for class in model.managers.iter().flat_map(|m| &m.classes) {
                users
                    .entry(class.clone())
                    .and_modify(|u| {
                        if *u != Some(id) {
                            *u = None;
                        }
                    })
                    .or_insert(Some(id));
            }
        }
        self.manager_class_users = users;
    }

    /// Methods returning a QuerySet of a custom QuerySet or manager class and of its bases.
    fn queryset_methods(
        &self,
        facts: &FileFacts,
        class: &str,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let Symbol::Class { module, name } = self.resolve(facts, class) else {
            return;
        };
        let Some(defining) = self.module(&module).cloned() else {
            return;
        };
        let Some(class) = defining.classes.iter().find(|c| c.name == name) else {
            return;
        };
        out.extend(
            class
                .methods
                .iter()
                .filter(|m| m.returns_queryset && !m.name.starts_with('_'))
                .map(|m| m.name.clone()),
        );
        for manager in class.managers.iter().filter(|m| m.name.is_empty()) {
            if let Some(queryset) = &manager.queryset {
                self.queryset_methods(&defining, queryset, out, depth + 1);
            }
        }
        for base in &class.bases {
            self.queryset_methods(&defining, base, out, depth + 1);
        }
    }

    /// The inclusion tag registered under `name`, when exactly one module registers one.
    pub fn inclusion_tag(&self, name: &str) -> Option<&InclusionTagFacts> {
        let mut found = self
            .modules
            .values()
            .flat_map(|f| &f.inclusion_tags)
            .filter(|t| t.name == name);
        match (found.next(), found.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// `"blog.Entry"`: the model with that app label and class name, if exactly one.
    pub fn model_by_label(&self, label: &str) -> Option<ModelId> {
        label
            .contains('.')
            .then(|| self.by_label(label, None))
            .flatten()
    }

    /// The project's user model: `AUTH_USER_MODEL`'s, see `find_user_model`.
    pub fn user_model(&self) -> Option<ModelId> {
        self.user_model
    }

    /// `AUTH_USER_MODEL` when some module sets it. Else the project's one concrete model built on
    /// `AbstractBaseUser`: Django uses a custom user model only when the setting names it, so a
    /// project that defines exactly one sets it somewhere the index cannot read (a settings file
    /// run with `exec`, the environment). Else (none, or several to choose from) Django's own.
    fn find_user_model(&self, model_bases: &[Vec<ModelId>]) -> Option<ModelId> {
        let setting = self
            .modules
            .values()
            .find_map(|f| f.auth_user_model.clone());
        if let Some(label) = setting {
            return self.by_label(&label, None);
        }
        let class = |module: &str, name: &str| {
            self.by_class
                .get(&(module.to_string(), name.to_string()))
                .copied()
        };
        let builtin = class("django.contrib.auth.models", "User");
        let Some(base_user) = class("django.contrib.auth.base_user", "AbstractBaseUser") else {
            return builtin;
        };
        let mut custom = (0..self.models.len()).filter(|&id| {
            let model = &self.models[id];
            !model.is_abstract
                && !model.proxy
                && !BUILTIN.iter().any(|f| f.module == model.module)
                && derives_from(model_bases, id, base_user, 0)
        });
        match (custom.next(), custom.next()) {
            (Some(only), None) => Some(only),
            _ => builtin,
        }
    }

    /// Django's own `auth.User` when `AUTH_USER_MODEL` names another model: it is not installed,
    /// so its relations add no accessors.
    fn swapped_user(&self) -> Option<ModelId> {
        let builtin = self
            .by_class
            .get(&("django.contrib.auth.models".to_string(), "User".to_string()))
            .copied()?;
        (self.user_model() != Some(builtin)).then_some(builtin)
    }

    fn resolve_reference(
        &self,
        facts: &FileFacts,
        reference: &Reference,
        from: ModelId,
        user_model: Option<ModelId>,
    ) -> Option<ModelId> {
        match reference {
            Reference::UserModel => user_model,
            Reference::String(s) if s == "self" => Some(from),
            Reference::String(s) => self.by_label(s, Some(&self.models[from].app_label)),
            Reference::Name(name) => self.model_of(&self.resolve(facts, name)),
        }
    }

    /// `"app.Model"`, or `"Model"` in `default_app` (then anywhere, if unique).
    fn by_label(&self, label: &str, default_app: Option<&str>) -> Option<ModelId> {
        let (app, name) = match label.split_once('.') {
            Some((app, name)) => (Some(app), name),
            None => (default_app, label),
        };
        let unique = |mut it: Box<dyn Iterator<Item = ModelId> + '_>| {
            let first = it.next()?;
            it.next().is_none().then_some(first)
        };
        let named = move || {
            self.models
                .iter()
                .enumerate()
                .filter(move |(_, m)| m.name == name)
                .map(|(i, _)| i)
        };
        if let Some(app) = app {
            if let Some(found) = unique(Box::new(
                named().filter(|i| self.models[*i].app_label == app),
            )) {
                return Some(found);
            }
            if label.contains('.') {
                return None;
            }
        }
        unique(Box::new(named()))
    }

    fn add_reverse_relations(&mut self, order: &[(Arc<FileFacts>, usize, Vec<Symbol>)]) {
        let mut reverse: Vec<(ModelId, Reverse)> = Vec::new();
        let swapped_user = self.swapped_user();
        for (id, model) in self.models.iter().enumerate() {
            if model.is_abstract || Some(id) == swapped_user {
                continue;
            }
            let (facts, i, _) = &order[id];
            let default_related = facts.classes[*i].meta.default_related_name.clone();
            for field in model.fields.iter().filter(|f| f.table_of == id) {
                let (Some(target), many) = (field.target, field.kind != FieldKind::OneToOne) else {
                    continue;
                };
                let written = self
                    .related_name_of(id, &field.name, order)
                    .or_else(|| default_related.clone());
                let lower = model.name.to_lowercase();
                let name = match written {
                    Some(n) => n
                        .replace("%(class)s", &lower)
                        .replace("%(app_label)s", &model.app_label.to_lowercase()),
                    None if many => format!("{lower}_set"),
                    None => lower,
                };
                if name.ends_with('+') {
                    continue;
                }
                reverse.push((
                    target,
                    Reverse {
                        name,
                        source: id,
                        field: field.name.clone(),
                        many,
                    },
                ));
            }
        }
        for (target, r) in reverse {
            self.models[target].reverse.push(r);
        }
    }

    /// The `related_name` written on field `field` of `id` or of the base that declares it.
    fn related_name_of(
        &self,
        id: ModelId,
        field: &str,
        order: &[(Arc<FileFacts>, usize, Vec<Symbol>)],
    ) -> Option<String> {
        let mut pending = vec![id];
        let mut seen = 0;
        while let Some(current) = pending.pop() {
            seen += 1;
            if seen > 64 {
                return None;
            }
            let (facts, i, bases) = &order[current];
            if let Some(f) = facts.classes[*i].fields.iter().find(|f| f.name == field) {
                return f.related_name.clone();
            }
            pending.extend(bases.iter().filter_map(|b| self.model_of(b)));
        }
        None
    }

    /// Whether some `m2m_changed` receiver may listen to the many-to-many field `field`: one
    /// connected with `sender=M.field.through`, or with a sender the index cannot place (a
    /// custom through model, a name it does not resolve).
    pub fn m2m_receivers_for(&self, field: &str) -> bool {
        self.has_any_sender_receivers("m2m_changed")
            || self.modules.values().any(|facts| {
                facts.receivers.iter().any(|r| {
                    r.signal == "m2m_changed"
                        && match &r.sender {
                            Reference::Name(name) => name
                                .strip_suffix(".through")
                                .is_none_or(|relation| relation.rsplit('.').next() == Some(field)),
                            _ => true,
                        }
                })
            })
    }

    /// Whether some module connects a receiver of `signal` for every sender (no `sender=`).
    pub fn has_any_sender_receivers(&self, signal: &str) -> bool {
        self.modules
            .values()
            .any(|facts| facts.any_sender_signals.iter().any(|s| s == signal))
    }

    fn add_receivers(&mut self) {
        let user_model = self.user_model();
        let mut found: Vec<(ModelId, String)> = Vec::new();
        for facts in self.modules.values() {
            for receiver in &facts.receivers {
                let model = match &receiver.sender {
                    Reference::UserModel => user_model,
                    Reference::String(label) => self.by_label(label, None),
                    Reference::Name(name) => self.model_of(&self.resolve(facts, name)),
                };
                if let Some(model) = model {
                    found.push((model, receiver.signal.clone()));
                }
            }
        }
        for (model, signal) in found {
            if !self.models[model].signals.contains(&signal) {
                self.models[model].signals.push(signal);
            }
        }
    }
}

/// The app label of a module's models: the `label` of the `AppConfig` (`name`, `label`) whose
/// package holds it (the innermost), else the package before `models`. Module names are
/// relative to the workspace root, which may sit above the source root (`src/`), so the app's
/// package may follow other packages in them.
fn app_label_for(app_configs: &[(&str, &str)], module: &str) -> String {
    let dotted = format!(".{module}.");
    let configured = app_configs
        .iter()
        .filter(|(name, _)| dotted.contains(&format!(".{name}.")))
        .max_by_key(|(name, _)| name.len());
    match configured {
        Some((_, label)) => label.to_string(),
        None => app_label_of(module),
    }
}

/// Whether `id` has `ancestor` among its model bases, directly or through other models.
fn derives_from(
    model_bases: &[Vec<ModelId>],
    id: ModelId,
    ancestor: ModelId,
    depth: usize,
) -> bool {
    depth <= MAX_DEPTH
        && model_bases[id]
            .iter()
            .any(|&base| base == ancestor || derives_from(model_bases, base, ancestor, depth + 1))
}

/// A class on a base from some installed package (`TranslatableModel`, a package's abstract
/// model) that declares Django model fields (`models.CharField(...)`, `models.ForeignKey(...)`):
/// only a model class can, so its base is a model whatever package it comes from.
fn declares_fields_on_a_package_base(class: &ClassFacts, bases: &[Symbol]) -> bool {
    let on_package_base = bases.iter().any(|b| match b {
        Symbol::External(q) => !q.starts_with("django.") && !q.starts_with("rest_framework."),
        _ => false,
    });
    on_package_base && class.fields.iter().any(|f| f.class.starts_with("models."))
}

/// `blog.models` -> `blog`; `apps.shop.models.order` -> `shop`; `blog` -> `blog`.
fn app_label_of(module: &str) -> String {
    let parts: Vec<&str> = module.split('.').collect();
    match parts.iter().rposition(|p| *p == "models") {
        Some(i) if i > 0 => parts[i - 1].to_string(),
        _ => parts[parts.len().saturating_sub(2)].to_string(),
    }
}

fn field_kind(class: &str) -> FieldKind {
    let last = class.rsplit('.').next().unwrap_or(class);
    match last {
        "ForeignKey" | "ParentalKey" => FieldKind::ForeignKey,
        "OneToOneField" => FieldKind::OneToOne,
        "ManyToManyField" | "ParentalManyToManyField" => FieldKind::ManyToMany,
        "GenericRelation" => FieldKind::Unknown,
        _ if last.ends_with("GenericForeignKey") => FieldKind::GenericForeignKey,
        // django-taggit: a many-to-many through its tagged-item rows, which `prefetch_related`
        // loads (and `select_related` cannot).
        "TaggableManager" => FieldKind::ManyToMany,
        // Subclasses named after what they extend (`TreeForeignKey`, `UnsavedForeignKey`,
        // `SortedManyToManyField`) keep the descriptor, and so the query per access.
        _ if last.ends_with("ForeignKey") => FieldKind::ForeignKey,
        _ if last.ends_with("OneToOneField") => FieldKind::OneToOne,
        _ if last.ends_with("ManyToManyField") => FieldKind::ManyToMany,
        _ if last.ends_with("Relation") => FieldKind::Unknown,
        _ => FieldKind::Concrete,
    }
}

fn is_plain_value(class: &str) -> bool {
    let last = class.rsplit('.').next().unwrap_or(class);
    matches!(
        last,
        "AutoField"
            | "BigAutoField"
            | "SmallAutoField"
            | "BigIntegerField"
            | "BinaryField"
            | "BooleanField"
            | "CharField"
            | "DateField"
            | "DateTimeField"
            | "DecimalField"
            | "DurationField"
            | "EmailField"
            | "FloatField"
            | "GenericIPAddressField"
            | "IntegerField"
            | "JSONField"
            | "NullBooleanField"
            | "PositiveBigIntegerField"
            | "PositiveIntegerField"
            | "PositiveSmallIntegerField"
            | "SlugField"
            | "SmallIntegerField"
            | "TextField"
            | "TimeField"
            | "URLField"
            | "UUIDField"
    )
}

/// How many levels of the workspace's own classes `ModelIndex::walk_bases` follows.
const MAX_BASE_DEPTH: usize = 6;

/// What `ModelIndex::walk_bases` meets: a base outside the workspace (its qualified name, and
/// how many workspace classes led there), or a class of the workspace.
pub enum BaseStep<'a> {
    External(&'a str, usize),
    Class(&'a ClassFacts),
}

/// How `ModelIndex::walk_bases` goes on after a step.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// To the next pending base (past a class: not into its bases).
    Next,
    /// Into the class's bases too.
    Descend,
    /// Nowhere: the walk is over.
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::parse_python;

    fn file(path: &str, source: &str) -> Arc<FileFacts> {
        let (module, package) = module_name(std::path::Path::new(path));
        Arc::new(extract(
            source,
            &parse_python(source).unwrap(),
            &module,
            package,
        ))
    }

    fn project() -> ModelIndex {
        ModelIndex::build(vec![
            file("src/core/models.py", "from django.db import models\n\nclass Stamped(models.Model):\n    created = models.DateTimeField(auto_now_add=True)\n    owner = models.ForeignKey('auth.User', models.CASCADE, related_name='%(class)s_owned')\n    class Meta:\n        abstract = True\n"),
            file("src/blog/models.py", "from django.db import models\nfrom core.models import Stamped\nfrom django.conf import settings\nfrom .querysets import EntryQuerySet\n\nclass Blog(Stamped):\n    name = models.CharField(max_length=10)\n\nclass Entry(Stamped):\n    blog = models.ForeignKey(Blog, models.CASCADE)\n    author = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name='entries')\n    tags = models.ManyToManyField('Tag')\n    objects = EntryQuerySet.as_manager()\n    def save(self, *a, **k):\n        super().save(*a, **k)\n\nclass Tag(models.Model):\n    name = models.CharField(max_length=10)\n\nclass Special(Entry):\n    extra = models.TextField()\n"),
            file("src/blog/querysets.py", "from django.db import models\n\nclass EntryQuerySet(models.QuerySet):\n    def published(self):\n        return self.filter(status='p')\n    def _private(self):\n        return self.all()\n    def count_all(self):\n        return 3\n    def has_any(self):\n        return self.filter(a=1).exists()\n    def names(self):\n        return self.values_list('name', flat=True)\n    def total(self):\n        return self.count()\n"),
            file("src/shop/models.py", "from django.db import models\n\nclass Blog(models.Model):\n    title = models.CharField(max_length=10)\n"),
            file("src/blog/signals.py", "from django.db.models.signals import post_save\nfrom django.dispatch import receiver\nfrom .models import Tag\n\n@receiver(post_save, sender=Tag)\ndef on_tag(sender, **kwargs):\n    pass\n"),
        ])
    }

    fn model<'i>(index: &'i ModelIndex, label: &str) -> &'i Model {
        index
            .models()
            .iter()
            .find(|m| m.label() == label)
            .unwrap_or_else(|| panic!("{label} not indexed"))
    }

    #[test]
    fn finds_models_through_abstract_bases_and_imports() {
        let index = project();
        let entry = model(&index, "blog.Entry");
        let names: Vec<_> = entry.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["created", "owner", "blog", "author", "tags"]);
        assert!(entry.field("created").unwrap().auto_now);
        // `auto_now_add` is set on the first save only: later saves leave it alone.
        assert!(!entry.field("created").unwrap().auto_now_on_save);
        assert_eq!(
            index
                .model(entry.field("blog").unwrap().target.unwrap())
                .label(),
            "blog.Blog"
        );
        assert_eq!(
            index
                .model(entry.field("author").unwrap().target.unwrap())
                .label(),
            "auth.User"
        );
        assert_eq!(
            index
                .model(entry.field("tags").unwrap().target.unwrap())
                .label(),
            "blog.Tag"
        );
        assert!(entry.overrides_save);
        assert_eq!(entry.managers[0].queryset_methods, ["published"]);
        assert!(model(&index, "core.Stamped").is_abstract);
        let special = model(&index, "blog.Special");
        assert_eq!(special.concrete_parents.len(), 1);
        assert!(special.overrides_save, "inherited from Entry");
    }

    #[test]
    fn reverse_relations_and_receivers() {
        let index = project();
        let blog = model(&index, "blog.Blog");
        let reverse: Vec<_> = blog.reverse.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(reverse, ["entry_set"]);
        let user = model(&index, "auth.User");
        assert!(user.reverse("entries").is_some());
        assert!(
            user.reverse("blog_owned").is_some(),
            "%(class)s is replaced per concrete model"
        );
        assert!(user.reverse("groups").is_none());
        assert!(user
            .field("groups")
            .is_some_and(|f| f.kind == FieldKind::ManyToMany));
        assert_eq!(model(&index, "blog.Tag").signals, ["post_save"]);
        assert!(model(&index, "blog.Tag").reverse("entry_set").is_some());
    }

    #[test]
    fn import_cycles_resolve_to_nothing() {
        let index = ModelIndex::build(vec![
            file("blog/models.py", "from django.db import models\nfrom .models import *\nfrom shop.models import Base\n\nclass Entry(TimeStamped):\n    title = models.CharField(max_length=10)\n"),
            file("shop/models.py", "from blog.models import Base\n"),
            file("app/a.py", "from .b import *\n"),
            file("app/b.py", "from .a import *\nclass B(Missing):\n    pass\n"),
        ]);
        let views = file("blog/views.py", "from .models import Entry, Base\n");
        assert_eq!(index.resolve(&views, "Base"), Symbol::Unknown);
        assert_eq!(index.model_of(&index.resolve(&views, "Entry")), None);
    }

    #[test]
    fn same_class_name_in_two_apps_resolves_by_import() {
        let index = project();
        let views = file(
            "src/shop/views.py",
            "from .models import Blog\nfrom blog import models as blog_models\n",
        );
        let shop_blog = index.model_of(&index.resolve(&views, "Blog")).unwrap();
        assert_eq!(index.model(shop_blog).label(), "shop.Blog");
        let blog_blog = index
            .model_of(&index.resolve(&views, "blog_models.Blog"))
            .unwrap();
        assert_eq!(index.model(blog_blog).label(), "blog.Blog");
        assert_eq!(index.resolve(&views, "Missing"), Symbol::Unknown);
    }
}
