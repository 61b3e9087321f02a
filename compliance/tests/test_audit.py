import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from accounts.tests.factories import UserFactory
from compliance.audit import GENESIS_HASH, audit_chain_verify, audit_record
from compliance.models import AuditEntry

pytestmark = pytest.mark.django_db


def _fresh_chain(n=3):
    actor = UserFactory()
    return [
        audit_record(
            actor=actor, action="test.step", target=actor, before={"i": i}, after={"i": i + 1}, reason=f"step {i}"
        )
        for i in range(n)
    ]


def test_entries_are_chained_to_the_previous_one():
    entries = _fresh_chain(3)

    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + 3))
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    assert audit_chain_verify().ok


def test_entry_records_actor_target_and_changes():
    user = UserFactory(email="alice@example.com")

    entry = audit_record(
        actor=user,
        action="kyc.approved",
        target=user,
        before={"status": "submitted"},
        after={"status": "approved"},
        reason="ok",
    )

    entry.refresh_from_db()
    assert (entry.actor_id, entry.actor_label, entry.target_type, entry.target_id) == (
        user.pk,
        "alice@example.com",
        "accounts.User",
        str(user.pk),
    )
    assert entry.before == {"status": "submitted"} and entry.after == {"status": "approved"} and entry.reason == "ok"


def test_system_actor_and_no_target():
    entry = audit_record(actor=None, action="sanctions.imported", after={"entries": 3})

    assert entry.actor_id is None and entry.actor_label == "system" and entry.target_type == ""
    assert audit_chain_verify().ok


def test_non_json_values_are_stored_as_they_read_back():
    import datetime
    from decimal import Decimal

    audit_record(actor=None, action="test.types", after={"when": datetime.date(2026, 1, 2), "rate": Decimal("1.50")})

    assert audit_chain_verify().ok


def test_update_and_delete_are_rejected_by_the_database():
    entry = _fresh_chain(1)[0]

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()


def _tamper(sql, params):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditentry DISABLE TRIGGER compliance_audit_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE compliance_auditentry ENABLE TRIGGER compliance_audit_append_only")


def test_tampering_in_sql_makes_audit_verify_fail(capsys):
    entries = _fresh_chain(3)
    call_command("audit_verify")
    assert "Audit chain OK" in capsys.readouterr().out

    _tamper("UPDATE compliance_auditentry SET after = %s WHERE id = %s", ['{"i": 999}', entries[1].pk])

    with pytest.raises(CommandError, match="BROKEN"):
        call_command("audit_verify")
    assert f"#{entries[1].seq}: content does not match its hash" in capsys.readouterr().err


def test_deleting_a_row_in_sql_is_detected():
    entries = _fresh_chain(3)

    _tamper("DELETE FROM compliance_auditentry WHERE id = %s", [entries[1].pk])

    problems = audit_chain_verify().problems
    assert any("entries missing" in p for p in problems)
    assert any("does not link" in p for p in problems)


def test_deleting_the_last_row_is_detected_by_the_head():
    entries = _fresh_chain(2)

    _tamper("DELETE FROM compliance_auditentry WHERE id = %s", [entries[-1].pk])

    assert any("chain head" in p for p in audit_chain_verify().problems)


def test_an_empty_chain_verifies():
    assert GENESIS_HASH == "0" * 64
    report = audit_chain_verify()
    assert report.ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    errors = []
    barrier = threading.Barrier(4)

    def writer(n):
        try:
            barrier.wait()
            for i in range(5):
                with transaction.atomic():
                    audit_record(actor=None, action="test.race", after={"writer": n, "i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert AuditEntry.objects.filter(action="test.race").count() == 20
    assert audit_chain_verify().ok
