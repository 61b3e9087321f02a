"""Hot-path writes written out: what the ORM would send, without its per-call Python.

`insert` is `Model.save(force_insert=True)` for a new row as one `INSERT ... RETURNING`
built once per model: each field prepares its own value (`pre_save`, `get_db_prep_save`:
`auto_now_add`, JSON, binary), the primary key comes back and the instance is marked
saved. With `unless_conflict_on`, a row whose unique column is taken is not inserted
(`ON CONFLICT (column) DO NOTHING`; PostgreSQL and SQLite alike) and the caller reads the
one that is, with no savepoint to survive an IntegrityError. No signals are sent: only
for models nothing listens to on save (bench/purchase measured save() at twice the Python
of the statement on every purchase).

`columns` and `load` are the read side, for written-out statements that return whole rows
(`SELECT {columns} ...`, `UPDATE ... RETURNING {columns}`): every concrete column in the
model's field order, turned into instances as the ORM would (each field's converters,
`from_db`), without `RawQuerySet`'s per-query mapping of a cursor's columns onto fields
(py-spy on bench/settlement's worker: a tenth of its CPU on the outbox's three reads).
SQL is kept per model and database vendor, converters per model and connection."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.sql import Query

_SQL: dict[tuple[type[Model], str, str | None], tuple[str, list]] = {}
_COLUMNS: dict[tuple[type[Model], str], str] = {}
_CONVERTERS: WeakKeyDictionary[BaseDatabaseWrapper, dict[type[Model], list]] = WeakKeyDictionary()


def columns(model: type[Model], connection: BaseDatabaseWrapper) -> str:
    """Every concrete column of `model`, quoted, in field order: what `load` reads (for a
    statement on the model's table alone)."""
    key = (model, connection.vendor)
    found = _COLUMNS.get(key)
    if found is None:
        quote = connection.ops.quote_name
        found = _COLUMNS[key] = ", ".join(quote(str(f.column)) for f in model._meta.concrete_fields)
    return found


def load(model: type[Model], connection: BaseDatabaseWrapper, fetched) -> list:
    """Instances of `model` from rows fetched by a statement that returned `columns`."""
    connection = connections[connection.alias]  # this thread's own, not `django.db.connection`'s proxy
    known = _CONVERTERS.setdefault(connection, {})  # a backend's converters are its ops' methods
    converters = known.get(model)
    if converters is None:
        compiler = connection.ops.compiler("SQLCompiler")(Query(model), connection, connection.alias)
        table = model._meta.db_table
        expressions: list = [f.get_col(table) for f in model._meta.concrete_fields]
        converters = known[model] = list(compiler.get_converters(expressions).items())
    names = [f.attname for f in model._meta.concrete_fields]
    found = []
    for fetched_values in fetched:
        values = list(fetched_values)
        for position, (convert_all, expression) in converters:
            for convert in convert_all:
                values[position] = convert(values[position], expression, connection)
        found.append(model.from_db(connection.alias, names, values))
    return found


def _insert_sql(
    model: type[Model], connection: BaseDatabaseWrapper, unless_conflict_on: str | None
) -> tuple[str, list]:
    """The statement as the ORM writes it (quoted names, `RETURNING "table"."id"`), so
    tools that read captured SQL (bench/trading's pgbench replay) see the same shape."""
    key = (model, connection.vendor, unless_conflict_on)
    found = _SQL.get(key)
    if found is None:
        quote, meta = connection.ops.quote_name, model._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        table = quote(meta.db_table)
        sql = (
            f"INSERT INTO {table} ({', '.join(quote(str(f.column)) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))})"
        )
        if unless_conflict_on is not None:
            column = next(str(f.column) for f in fields if f.name == unless_conflict_on)
            sql += f" ON CONFLICT ({quote(column)}) DO NOTHING"
        found = _SQL[key] = (
            f"{sql} RETURNING {table}.{quote(str(meta.pk.column))}",
            fields,
        )
    return found


def insert(row: Model, *, unless_conflict_on: str | None = None) -> bool:
    """Insert the new `row`: True, its pk set; False when `unless_conflict_on` (a unique
    field's name) is taken by another row (nothing written)."""
    alias = router.db_for_write(type(row), instance=row)
    connection = connections[alias]
    sql, fields = _insert_sql(type(row), connection, unless_conflict_on)
    values = [f.get_db_prep_save(f.pre_save(row, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    row.pk = inserted[0]
    row._state.adding, row._state.db = False, alias
    return True
