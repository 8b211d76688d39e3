"""Runs the executable fixtures on real Django, before and after their fixes.

Driven by tests/execution.rs, once per Django version, with a manifest naming three copies of
each fixture app: as written, after `check --fix`, and one copy per unsafe fix with that fix
alone applied. For every seed (a function of the app's `seeds.py`) and every entry point (a
public function without parameters of a module in the app's `cases/`), it observes what the code
does: its return value, what it printed, the warnings it raised, the exception it raised, and
every row of the app's tables afterwards. Each run starts from the database as the seed left it.

- A safe fix must have landed (the function or class it was offered in changed), change the
  observation on no seed, and be cheaper on the seed named `many`, where its entry points must
  not raise: fewer queries, else fewer cells fetched, else fewer SQLite virtual-machine steps
  (the lighter SQL of COUNT / EXISTS / LIMIT 1 and fewer columns). A fix in an entry point
  answers for that entry point; one elsewhere (a view, a serializer, a ModelAdmin) for all the
  module's entry points together. Counts, not times: the same every run.
- An unsafe fix must show a difference on some seed, in what the code does or, failing that, in
  more queries or more cells fetched: what makes it unsafe.
- A case module's `NO_FIX = {function: why}` names functions that must be offered no fix;
  `NEEDS_POSTGRESQL = {function: why}` names functions not run here, the reason printed.

Prints one line per rule (safe fixes, executed, equal, cheaper; unsafe fixes, difference shown)
and exits 1 on any failure.
"""

import ast
import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import os
import sqlite3
import sys
import types
import warnings

MANIFEST = json.load(open(sys.argv[1]))
sys.path.insert(0, MANIFEST["original_root"])

import django  # noqa: E402
from django.conf import settings  # noqa: E402

APPS = [app["name"] for app in MANIFEST["apps"]]
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django.contrib.admin",
        "rest_framework",
        *APPS,
    ],
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
    SECRET_KEY="execution",
    TEMPLATES=[
        {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
    ],
)
django.setup()

from django.apps import apps as registry  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.backends.utils import CursorWrapper  # noqa: E402
from django.db.models import Model, QuerySet  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

call_command("migrate", run_syncdb=True, verbosity=0)
connection.ensure_connection()

# What a run costs besides its number of queries: the cells it fetched (rows times columns) and
# the virtual-machine steps SQLite ran (a COUNT visits every row, an EXISTS stops at the first).
COST = {"cells": 0, "steps": 0}


def _fetchone(self):
    row = self.cursor.fetchone()
    if row is not None:
        COST["cells"] += len(row)
    return row


def _fetchmany(self, *size):
    rows = self.cursor.fetchmany(*size)
    COST["cells"] += sum(len(row) for row in rows)
    return rows


def _fetchall(self):
    rows = self.cursor.fetchall()
    COST["cells"] += sum(len(row) for row in rows)
    return rows


# Django's cursor wrapper hands these to the database's cursor through __getattr__.
CursorWrapper.fetchone = _fetchone
CursorWrapper.fetchmany = _fetchmany
CursorWrapper.fetchall = _fetchall


# SQLite calls the handler every STEP virtual-machine instructions: coarse enough to cost little,
# fine enough to tell an EXISTS that stops at the first row from a COUNT over twenty.
STEP = 10


def _step():
    COST["steps"] += 1
    return 0


def app_tables(app):
    return list(registry.get_app_config(app).get_models(include_auto_created=True))


def reset(app):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys = OFF")
        for model in app_tables(app):
            cursor.execute(f'DELETE FROM "{model._meta.db_table}"')
        cursor.execute("DELETE FROM sqlite_sequence")
        cursor.execute("PRAGMA foreign_keys = ON")


def normalise(value):
    if isinstance(value, Model):
        fields = tuple(normalise(getattr(value, f.attname)) for f in value._meta.concrete_fields)
        return ("row", value._meta.label, fields)
    if isinstance(value, HttpResponse):
        return ("response", value.status_code, value.content.decode())
    if isinstance(value, dict):
        return ("dict", sorted((repr(normalise(k)), normalise(v)) for k, v in value.items()))
    if isinstance(value, tuple):
        return ("tuple", [normalise(v) for v in value])
    if isinstance(value, (list, QuerySet)):
        return [normalise(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return ("set", sorted(repr(normalise(v)) for v in value))
    return repr(value)


def snapshot(app):
    tables = {}
    for model in app_tables(app):
        rows = model._base_manager.order_by("pk").values_list()
        tables[model._meta.db_table] = [repr(row) for row in rows]
    return tables


# A copy of the database as each seed left it: restoring it is much cheaper than seeding again.
SEEDED = {}


def restore(app, seed):
    copy = SEEDED.get((app, seed))
    if copy is None:
        reset(app)
        seed()
        copy = SEEDED[(app, seed)] = sqlite3.connect(":memory:")
        connection.connection.backup(copy)
    else:
        copy.backup(connection.connection)


def observe(app, seed, function):
    """What `function` does on `seed`, and what it cost."""
    restore(app, seed)
    printed = io.StringIO()
    COST.update(cells=0, steps=0)
    connection.connection.set_progress_handler(_step, STEP)
    try:
        with (
            CaptureQueriesContext(connection) as queries,
            contextlib.redirect_stdout(printed),
            warnings.catch_warnings(record=True) as warned,
        ):
            warnings.simplefilter("always")
            try:
                value = function()
                # Lazy results are evaluated here, where their queries are counted.
                if isinstance(value, (types.GeneratorType, QuerySet)):
                    value = list(value)
                outcome = ("returned", value)
            except Exception as error:  # noqa: BLE001 - the exception is what is observed
                outcome = ("raised", type(error).__qualname__)
    finally:
        connection.connection.set_progress_handler(None, 1)
    cost = (len(queries.captured_queries), COST["cells"], COST["steps"])
    if outcome[0] == "returned":
        outcome = ("returned", normalise(outcome[1]))
    seen = {
        "outcome": repr(outcome),
        "printed": printed.getvalue(),
        "warnings": sorted({w.category.__name__ for w in warned}),
        "rows": snapshot(app),
    }
    return seen, cost


# The code as written is run once per seed, however many fixes of it are compared.
ORIGINAL_RUNS = {}


def observe_original(app, seed, module, function):
    key = (module.__name__, function, seed)
    if key not in ORIGINAL_RUNS:
        ORIGINAL_RUNS[key] = observe(app, seed, getattr(module, function))
    return ORIGINAL_RUNS[key]


def difference(before, after):
    for key in ["outcome", "printed", "warnings"]:
        if before[key] != after[key]:
            return f"{key}: {str(before[key])[:150]} -> {str(after[key])[:150]}"
    for table, rows in before["rows"].items():
        if rows != after["rows"][table]:
            return f"rows of {table}: {str(rows)[:150]} -> {str(after['rows'][table])[:150]}"
    return None


def load(app, module, root, variant):
    """`app.cases.module` as found under `root`, loaded under a name of its own."""
    path = os.path.join(root, app, "cases", module + ".py")
    name = f"{app}.cases.{module}__{variant}"
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def public_functions(module):
    return {
        name: f
        for name, f in inspect.getmembers(module, inspect.isfunction)
        if not name.startswith("_") and f.__module__ == module.__name__
    }


def function_spans(source):
    """Top-level function or class name -> (first line, last line, its syntax tree dumped)."""
    return {
        node.name: (node.lineno, node.end_lineno, ast.dump(node))
        for node in ast.parse(source).body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }


def entry_points(module, skipped):
    """The public functions of `module` that run with no arguments: what the harness calls."""
    return [
        name
        for name, function in public_functions(module).items()
        if name not in skipped
        and all(
            p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in inspect.signature(function).parameters.values()
        )
    ]


def compare(app, label, function, seeds, original, fixed, fixes):
    """Runs `function` as written and as fixed on every seed; reports any difference."""
    equal = True
    before_cost = after_cost = None
    raised = None
    for seed_name, seed in seeds.items():
        before, cost_before = observe_original(app, seed, original, function)
        after, cost_after = observe(app, seed, getattr(fixed, function))
        changed = difference(before, after)
        if changed:
            equal = False
            codes = "/".join(sorted({f["code"] for f in fixes}))
            fail(f"{label}.{function} (safe {codes} fixes, seed {seed_name}): "
                 f"the fixed code changed {changed}")
        if seed_name == "many":
            before_cost, after_cost = cost_before, cost_after
            if before["outcome"].startswith("('raised'"):
                raised = before["outcome"]
    return equal, before_cost, after_cost, raised


def enclosing(spans, line):
    return next((n for n, (first, last, _) in spans.items() if first <= line <= last), None)


class Table:
    def __init__(self):
        self.rows = {}

    def rule(self, code):
        return self.rows.setdefault(
            code, {"fixes": 0, "executed": 0, "equal": 0, "cheaper": 0, "unsafe": 0, "shown": 0}
        )


# Rules whose fix edits a comment: behaviour is still compared, cost is not claimed.
COMMENT_ONLY = {"ORM900"}
FAILURES = []
TABLE = Table()


def fail(message):
    FAILURES.append(message)
    print(f"FAIL {message}")


def check_app(app):
    seeds_module = importlib.import_module(f"{app['name']}.seeds")
    seeds = public_functions(seeds_module)
    assert "many" in seeds, f"{app['name']}/seeds.py needs a `many` seed"
    by_file = {}
    for finding in app["findings"]:
        by_file.setdefault(finding["module"], []).append(finding)
    unsafe_by_file = {}
    for variant in app["unsafe"]:
        unsafe_by_file.setdefault(variant["module"], []).append(variant)
    for module_name in app["modules"]:
        check_module(app, module_name, seeds, by_file.get(module_name, []),
                     unsafe_by_file.get(module_name, []))


def check_module(app, module_name, seeds, findings, unsafe_variants):
    name = app["name"]
    original_path = os.path.join(MANIFEST["original_root"], name, "cases", module_name + ".py")
    fixed_path = os.path.join(MANIFEST["fixed_root"], name, "cases", module_name + ".py")
    original_spans = function_spans(open(original_path).read())
    fixed_spans = function_spans(open(fixed_path).read())
    label = f"{name}.cases.{module_name}"
    original = load(name, module_name, MANIFEST["original_root"], "original")
    try:
        fixed = load(name, module_name, MANIFEST["fixed_root"], "fixed")
    except SyntaxError as error:
        fail(f"{label}: the module after --fix does not compile: {error!r}")
        return
    postgresql_only = getattr(original, "NEEDS_POSTGRESQL", {})
    for function, why in getattr(original, "NO_FIX", {}).items():
        offered = [
            f for f in findings
            if f["applicability"] and enclosing(original_spans, f["line"]) == function
        ]
        if offered:
            fail(f"{label}.{function}: a fix is offered ({offered[0]['code']}), but {why}")
    for function, why in postgresql_only.items():
        print(f"skipped on SQLite: {label}.{function} needs PostgreSQL: {why}")

    # Safe fixes: each must have landed where it was offered (a function, or a class such as a
    # view or a ModelAdmin), and the module's entry points must behave the same, cheaper.
    entries = entry_points(original, postgresql_only)
    safe = [f for f in findings if f["applicability"] == "safe"]
    observed = {}  # entry point -> (equal, cost on `many` before, after, what it raised there)
    if safe:
        for function in entries:
            observed[function] = compare(name, label, function, seeds, original, fixed, safe)
    for finding in safe:
        code = finding["code"]
        row = TABLE.rule(code)
        row["fixes"] += 1
        where = enclosing(original_spans, finding["line"])
        unchanged = where is None or original_spans[where][2] == fixed_spans.get(where, (0, 0, ""))[2]
        if code in COMMENT_ONLY:
            # It removes a comment: the code must stay the same.
            if not unchanged:
                fail(f"{label}.{where}: {code}'s fix changed code")
        elif unchanged:
            fail(f"{label}:{finding['line']}: the safe {code} fix was not applied by --fix")
            continue
        # A fix in an entry point answers for it; one elsewhere (a view, a class) for them all.
        runs = [where] if where in observed else list(observed)
        if not runs:
            fail(f"{label}:{finding['line']}: no entry point runs the {code} fix")
            continue
        # Code that fails on the richest data set proves nothing about the fix.
        failing = [f"{f}: {observed[f][3]}" for f in runs if observed[f][3]]
        if failing:
            fail(f"{label}:{finding['line']} ({code}): the original raises on `many`: {failing}")
            continue
        row["executed"] += 1
        row["equal"] += all(observed[f][0] for f in runs)
        before = tuple(map(sum, zip(*(observed[f][1] for f in runs))))
        after = tuple(map(sum, zip(*(observed[f][2] for f in runs))))
        if code in COMMENT_ONLY:
            continue
        if after < before:
            row["cheaper"] += 1
        else:
            fail(f"{label}:{finding['line']} ({code}): not cheaper on `many`: "
                 f"(queries, cells, steps) {before} -> {after} in {', '.join(runs)}")

    # Unsafe fixes, each alone: some seed must show what the label warns about.
    for variant in unsafe_variants:
        row = TABLE.rule(variant["code"])
        row["unsafe"] += 1
        try:
            alone = load(name, module_name, variant["root"], f"unsafe{variant['index']}")
        except SyntaxError as error:
            fail(f"{label}:{variant['line']}: the unsafe {variant['code']} fix leaves code that "
                 f"does not compile: {error!r}")
            continue
        # What the code does counts first; otherwise more queries (ORM203's deferred columns)
        # or more cells fetched (ORM412's prefetch of every related row).
        shown, costlier = None, None
        for function in entry_points(original, postgresql_only):
            for seed_name, seed in seeds.items():
                before, before_cost = observe_original(name, seed, original, function)
                after, after_cost = observe(name, seed, getattr(alone, function))
                changed = difference(before, after)
                if changed:
                    shown = shown or f"{function}, seed {seed_name}: {changed}"
                elif after_cost[0] > before_cost[0] or after_cost[1] > before_cost[1]:
                    costlier = costlier or (
                        f"{function}, seed {seed_name}: (queries, cells) "
                        f"{before_cost[:2]} -> {after_cost[:2]}"
                    )
        shown = shown or costlier
        if shown:
            row["shown"] += 1
            print(f"unsafe {variant['code']} at {label}:{variant['line']} shows a difference: {shown}")
        else:
            fail(f"{label}:{variant['line']}: the unsafe {variant['code']} fix changed nothing "
                 f"observable on any seed ({variant['message']})")


def main():
    print(f"Django {django.get_version()}")
    for app in MANIFEST["apps"]:
        check_app(app)
    print(f"{'rule':<8} {'safe fixes':>10} {'executed':>9} {'equal':>6} {'cheaper':>8} "
          f"{'unsafe':>7} {'shown':>6}")
    for code, row in sorted(TABLE.rows.items()):
        cheaper = "n/a" if code in COMMENT_ONLY else row["cheaper"]
        print(f"{code:<8} {row['fixes']:>10} {row['executed']:>9} {row['equal']:>6} "
              f"{cheaper:>8} {row['unsafe']:>7} {row['shown']:>6}")
    if FAILURES:
        print(f"{len(FAILURES)} failures")
        sys.exit(1)


main()
