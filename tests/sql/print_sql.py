"""Prints, as JSON, what Django's `str(qs.query)` gives for every expression statement of a
corpus module: {line number: SQL} (or "error: ..." where Django raises).

Usage: python print_sql.py PROJECT_DIR CORPUS_FILE DIALECT, DIALECT being sqlite, postgresql,
mysql or oracle. `str()` needs no database server: the compiler alone is used. What the MySQL
and Oracle backends would ask the server is stated instead: MySQL 8.0.36 in its default SQL mode
(the pure-Python `pymysql` driver stands in for `MySQLdb`), Oracle 19 (`oracledb`, which Django
4.2 imports as `cx_Oracle`).
"""

import ast
import json
import sys

import django
from django.conf import settings

project, corpus, dialect = sys.argv[1:4]
sys.path.insert(0, project)
engine = {
    "sqlite": "django.db.backends.sqlite3",
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
    "oracle": "django.db.backends.oracle",
}
if dialect == "mysql":
    import pymysql

    pymysql.install_as_MySQLdb()
elif dialect == "oracle":
    import oracledb

    sys.modules.setdefault("cx_Oracle", oracledb)
settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", "library"],
    DATABASES={"default": {"ENGINE": engine[dialect], "NAME": "corpus"}},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
)
django.setup()

from django.db import connections  # noqa: E402 (after setup)

connection = connections["default"]

# The backends' cached properties that would otherwise ask the server.
if dialect == "mysql":
    connection.__dict__["mysql_server_data"] = {
        "version": "8.0.36",
        "sql_mode": "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
        "default_storage_engine": "InnoDB",
        "sql_auto_is_null": False,
        "lower_case_table_names": False,
        "has_zoneinfo_database": True,
    }
elif dialect == "oracle":
    connection.__dict__["oracle_version"] = (19,)
    # The LIKE operators a connection picks after testing the server: the standard ones, which
    # Oracle 19 accepts.
    connection.operators = connection._standard_operators
    connection.pattern_ops = connection._standard_pattern_ops

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
