"""Wide writes in one statement, for PostgreSQL and SQLite: an update of many rows
(`update_from_values`) and an insert of many rows (`insert_rows`).

Django's `bulk_update` and `Case(When(…))` build one expression per row and field; for a
distribution batch of thousands of holders that costs seconds of Python and a CASE the
database evaluates row by row, and `bulk_create` builds a model instance per row. These
write the same rows as one `WITH v(…) AS (…) UPDATE table SET … FROM v WHERE table.pk =
v.k` (PostgreSQL, and SQLite since 3.33) and one `INSERT INTO table (…) …`.

The rows reach the database as one array per column on PostgreSQL (`SELECT * FROM
unnest(%s::bigint[], …)`: a handful of parameters whatever the number of rows, so the
driver does not parse a statement with thousands of placeholders), as `VALUES (…), (…)`
on SQLite. Column names come from the model, never from input; values are parameters."""

import uuid
from collections.abc import Callable, Iterable, Sequence

from django.db import connection, models
from django.db.models import Field

# Values the driver takes as they are, per internal type of the column: no
# `get_db_prep_save` call per value for them (thousands per batch).
_INTEGER_TYPES = {
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
}
_TEXT_TYPES = {"CharField", "TextField"}
# Rows per INSERT on PostgreSQL (a few array parameters whatever the rows: no driver limit;
# chunks keep each statement's text a few megabytes).
PG_INSERT_ROWS = 5_000
_DATABASE_UUID4 = object()  # insert_rows: the database makes this column's uuid


def _field(model: type[models.Model], name: str) -> Field:
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.column:
        raise ValueError(f"{name} is not a concrete column of {model.__name__}")
    return field


def _internal_type(field: Field) -> str:
    target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
    return target.get_internal_type()


def _preparer(field: Field) -> Callable[[object], object]:
    """value → what the database takes (`field.get_db_prep_save`), skipping the call for
    ints of integer columns, str of text columns, bools of boolean ones and None."""
    kind = _internal_type(field)
    plain: type | None = (
        int if kind in _INTEGER_TYPES else str if kind in _TEXT_TYPES else bool if kind == "BooleanField" else None
    )

    def prepare(value):
        if value is None or type(value) is plain:
            return value
        return field.get_db_prep_save(value, connection)

    return prepare


def _rows_source(fields: Sequence[Field], rows: Sequence[Sequence]) -> tuple[str, list]:
    """A SELECT of `rows` (one value per field each) and its parameters: `SELECT * FROM
    unnest(…)` with one array parameter per column on PostgreSQL, `VALUES (…), …`
    elsewhere."""
    preparers = [_preparer(f) for f in fields]
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{_pg_type(f)}[]" for f in fields)
        columns = [[prepare(row[j]) for row in rows] for j, prepare in enumerate(preparers)]
        return f"SELECT * FROM unnest({arrays})", columns
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [prepare(value) for row in rows for prepare, value in zip(preparers, row, strict=True)]
    return f"VALUES {', '.join([placeholder] * len(rows))}", params


def _pg_type(field: Field) -> str:
    """The column's type without its length (varchar, not varchar(200)), as Django's own
    unnest insert: a cast never truncates a value."""
    return str(field.db_type(connection)).split("(")[0]


def update_from_values(
    model: type[models.Model],
    *,
    columns: Sequence[str],
    rows: Iterable[Sequence],
    increment: Sequence[str] = (),
    constants: dict[str, object] | None = None,
) -> int:
    """`rows`: (pk, value of each of `columns`…). A column in `increment` is added to the
    current value instead of replacing it; `constants` are set on every row. Returns the
    number of rows updated."""
    rows = [tuple(r) for r in rows]
    if not rows:
        return 0
    opts = model._meta
    qn = connection.ops.quote_name
    fields = [_field(model, c) for c in columns]
    names = [qn(str(f.column)) for f in fields]
    value_names = ["k", *[f"c{i}" for i in range(len(fields))]]
    if any(len(r) != len(value_names) for r in rows):
        raise ValueError("every row is (pk, one value per column)")
    sets = []
    for i, (field, name) in enumerate(zip(fields, names, strict=True)):
        sets.append(f"{name} = {name} + v.c{i}" if field.name in increment else f"{name} = v.c{i}")
    params: list = []
    for name, value in (constants or {}).items():
        field = _field(model, name)
        sets.append(f"{qn(str(field.column))} = %s")
        params.append(field.get_db_prep_save(value, connection))
    pk_field = _field(model, opts.pk.name)
    table, pk = qn(opts.db_table), qn(str(pk_field.column))
    source, value_params = _rows_source([pk_field, *fields], rows)
    sql = (
        f"WITH v({', '.join(value_names)}) AS ({source}) "
        f"UPDATE {table} SET {', '.join(sets)} FROM v WHERE {table}.{pk} = v.k"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, value_params + params)
        return cursor.rowcount


def insert_rows(
    model: type[models.Model],
    *,
    columns: Sequence[str],
    rows: Iterable[Sequence],
    constants: dict[str, object] | None = None,
) -> int:
    """Insert `rows` (a value of each of `columns` per row; a foreign key by its pk)
    without building model instances; `constants` are the same on every row. Every other
    column gets the field's default, as `Model(…)` would: a callable default is called
    for each row (`uuid.uuid4`: by PostgreSQL's `gen_random_uuid()`, the same version 4
    uuid), the primary key and columns with a database default are left to the database.
    No signals, no pks returned. Returns the number of rows inserted."""
    rows = [tuple(r) for r in rows]
    if not rows:
        return 0
    given = [_field(model, c) for c in columns]
    if any(len(r) != len(given) for r in rows):
        raise ValueError("every row is one value per column")
    fixed = {_field(model, name): value for name, value in (constants or {}).items()}
    named = {f.name for f in [*given, *fixed]}
    for f in model._meta.concrete_fields:
        if f.name in named or f.primary_key or f.generated or f.has_db_default():
            continue
        if not (f.has_default() and callable(f.default)):
            fixed[f] = f.get_default()
        elif f.default is uuid.uuid4 and connection.vendor == "postgresql":
            fixed[f] = _DATABASE_UUID4
        else:
            given.append(f)
    per_row = given[len(columns) :]  # callable defaults, called here for each row
    # One SELECT over the rows, then the values shared by every row: the shared ones come
    # first in the statement's text, so first in its parameters.
    shared_sql, shared_params = [], []
    for f, value in fixed.items():
        if value is _DATABASE_UUID4:
            shared_sql.append("gen_random_uuid()")
        else:
            cast = f"::{_pg_type(f)}" if connection.vendor == "postgresql" else ""
            shared_sql.append(f"%s{cast}")
            shared_params.append(f.get_db_prep_save(value, connection))
    qn = connection.ops.quote_name
    names = ", ".join(qn(str(f.column)) for f in [*given, *fixed])
    select = f"SELECT u.*{''.join(', ' + s for s in shared_sql)} FROM"
    size = PG_INSERT_ROWS
    if connection.vendor != "postgresql":  # its limit on parameters per statement
        size = max(1, connection.ops.bulk_batch_size([*given, *fixed], rows))
    inserted = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            chunk = [(*r, *(f.get_default() for f in per_row)) for r in rows[start : start + size]]
            source, params = _rows_source(given, chunk)
            cursor.execute(
                f"INSERT INTO {qn(model._meta.db_table)} ({names}) {select} ({source}) AS u", shared_params + params
            )
            inserted += cursor.rowcount
    return inserted
