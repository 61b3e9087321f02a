"""config.rows.insert: the written-out INSERT that the purchase path uses instead of save()."""

import pytest

from chain.models import ChainTransaction
from config import rows

pytestmark = pytest.mark.django_db


def _row(key: str, amount: int = 1) -> ChainTransaction:
    return ChainTransaction(
        kind=ChainTransaction.Kind.ASSET_TRANSFER,
        payload={"asset_id": 7, "sender": "S", "receiver": "R", "amount": amount},
        idempotency_key=key,
        signed_bytes=b"\x00\x01",
    )


def test_insert_stores_every_field_as_save_would_and_marks_the_row_saved():
    row = _row("k-1")
    assert rows.insert(row) is True
    assert row.pk is not None and not row._state.adding and row._state.db == "default"
    stored = ChainTransaction.objects.get(pk=row.pk)
    assert stored.payload == {"asset_id": 7, "sender": "S", "receiver": "R", "amount": 1}  # JSON, not a string
    assert bytes(stored.signed_bytes) == b"\x00\x01" and stored.status == ChainTransaction.Status.PENDING
    assert stored.created_at is not None and stored.created_at == row.created_at  # auto_now_add applied


def test_insert_unless_conflict_writes_nothing_when_the_key_is_taken():
    first = _row("k-2")
    assert rows.insert(first, unless_conflict_on="idempotency_key")
    twin = _row("k-2", amount=99)
    assert rows.insert(twin, unless_conflict_on="idempotency_key") is False
    assert twin.pk is None and twin._state.adding
    assert list(ChainTransaction.objects.filter(idempotency_key="k-2").values_list("payload__amount", flat=True)) == [1]


def test_insert_without_conflict_target_lets_the_unique_index_refuse():
    from django.db import IntegrityError, transaction

    rows.insert(_row("k-3"))
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert(_row("k-3"))


def test_load_builds_the_instances_the_orm_would_from_a_written_out_statement():
    from django.db import connection

    row = _row("k-4", amount=5)
    rows.insert(row)
    ChainTransaction.objects.filter(pk=row.pk).update(group_txids=["A", "B"], lease_txids=["A"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.columns(ChainTransaction, connection)} FROM chain_chaintransaction WHERE id = %s", [row.pk]
        )
        (loaded,) = rows.load(ChainTransaction, connection, cursor.fetchall())
    expected = ChainTransaction.objects.get(pk=row.pk)
    for field in ChainTransaction._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert loaded.payload["amount"] == 5 and loaded.group_txids == ["A", "B"]  # JSON decoded, not text
    assert loaded.created_at.tzinfo is not None and bytes(loaded.signed_bytes) == b"\x00\x01"
    assert not loaded._state.adding and loaded._state.db == "default"
    loaded.last_error = "saved through the loaded instance"
    loaded.save(update_fields=["last_error"])
    assert ChainTransaction.objects.get(pk=row.pk).last_error == "saved through the loaded instance"
