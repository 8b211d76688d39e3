"""Prints, as JSON, the queries each loop function of the fixture app's `loops` module runs
with 2 and with 5 rows seeded: {"counts": {function: [queries at 2, queries at 5]} (a string
where the function raised), "sql": {function: [the SQL it ran at 5 rows, parameters in]}}. Each function runs inside a transaction rolled back afterwards, on a database
seeded by the app's `seeds.seed(n)`; Django's `CaptureQueriesContext` counts the queries.

Usage: python count_queries.py PROJECT_DIR APP
"""

import contextlib
import importlib
import inspect
import io
import json
import sys

import django
from django.conf import settings

project, app = sys.argv[1:3]
sys.path.insert(0, project)
settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", app],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

call_command("migrate", run_syncdb=True, verbosity=0)
loops = importlib.import_module(f"{app}.loops")
seeds = importlib.import_module(f"{app}.seeds")

functions = [
    (name, function)
    for name, function in inspect.getmembers(loops, inspect.isfunction)
    if function.__module__ == loops.__name__
    and not name.startswith("_")
    and not inspect.signature(function).parameters
]
counts = {name: [] for name, _ in functions}
sql = {name: [] for name, _ in functions}
for rows in (2, 5):
    for name, function in functions:
        with transaction.atomic():
            seeds.seed(rows)
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    with CaptureQueriesContext(connection) as captured:
                        function()
                counts[name].append(len(captured))
                sql[name] = [query["sql"] for query in captured.captured_queries]
            except Exception as error:
                counts[name] = f"{type(error).__name__}: {error}"
            transaction.set_rollback(True)
print(json.dumps({"counts": counts, "sql": sql}))
