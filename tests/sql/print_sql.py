"""Prints, as JSON, what Django's `str(qs.query)` gives for every expression statement of a
corpus module: {line number: SQL} (or "error: ..." where Django raises).

Usage: python print_sql.py PROJECT_DIR CORPUS_FILE DIALECT, DIALECT being sqlite or
postgresql. `str()` needs no database server: the compiler alone is used.
"""

import ast
import json
import sys

import django
from django.conf import settings

project, corpus, dialect = sys.argv[1:4]
sys.path.insert(0, project)
engine = {"sqlite": "django.db.backends.sqlite3", "postgresql": "django.db.backends.postgresql"}
settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", "library"],
    DATABASES={"default": {"ENGINE": engine[dialect], "NAME": "corpus"}},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
)
django.setup()

with open(corpus) as f:
    source = f.read()
module = ast.parse(source)
namespace = {}
printed = {}
for statement in module.body:
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        exec(compile(ast.Module([statement], []), corpus, "exec"), namespace)
    elif isinstance(statement, ast.Expr):
        expression = ast.get_source_segment(source, statement.value)
        try:
            printed[statement.lineno] = str(eval(expression, namespace).query)
        except Exception as error:  # the corpus test reports it as a difference
            printed[statement.lineno] = f"error: {type(error).__name__}: {error}"
print(json.dumps(printed))
