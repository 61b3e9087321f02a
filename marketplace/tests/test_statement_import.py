"""Bank statement import (camt.053 and CSV), matching by payment reference, the review
queue, the command and the back office (docs/funding.md)."""

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from django.urls import reverse

from accounts.tests.factories import UserFactory
from compliance.models import AuditEntry
from marketplace.funding import statement_import, statement_line_assign, statement_line_return
from marketplace.ledger_proofs import ledger_verify
from marketplace.models import BankStatement, BankStatementLine, Deposit, LedgerAccount, PaymentReference
from marketplace.services import deposit_record

from .factories import StaffFactory, verified_investor

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "statements"
REF_ALICE = "RF11K5MBKVQ75MMP"
REF_BOB = "RF098D5KR4M3N8HQ"
REF_DANA = "RF82CCRDNHMUG4V4"
LS = BankStatementLine.Status


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def available(user, currency="EUR") -> int:
    account = LedgerAccount.objects.filter(user=user, kind="investor_available", currency=currency).first()
    return account.balance if account else 0


def bank(currency="EUR") -> int:
    account = LedgerAccount.objects.filter(user=None, kind="bank", currency=currency).first()
    return account.balance if account else 0


def staff_with(*codenames):
    user = UserFactory(roles=[], is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="marketplace", codename__in=codenames))
    return user


@pytest.fixture
def alice():
    user = verified_investor(email="alice@example.com")
    PaymentReference.objects.create(investor=user, reference=REF_ALICE)
    return user


@pytest.fixture
def bob():
    user = verified_investor(email="bob@example.com")
    PaymentReference.objects.create(investor=user, reference=REF_BOB)
    return user


@pytest.fixture
def dana():
    user = verified_investor(email="dana@example.com")
    PaymentReference.objects.create(investor=user, reference=REF_DANA)
    return user


def do_import(name, actor, *, content=None):
    return statement_import(file_name=name, content=read(name) if content is None else content, actor=actor)


def line(entry_reference) -> BankStatementLine:
    return BankStatementLine.objects.get(entry_reference=entry_reference)


def assert_ledger_clean():
    report = ledger_verify()
    assert not report.problems, report.problems


# -- camt.053: matching ------------------------------------------------------------------------


def test_camt053_matched_lines_become_deposits_and_the_rest_waits(
    staff, alice, bob, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        statement = do_import("camt053_matched.xml", staff)
    assert statement.format == BankStatement.Format.CAMT053
    assert statement.statement_id == "STMT-2025-05-02" and statement.account_iban == "NL91ABNA0417164300"
    assert (statement.lines_total, statement.lines_matched, statement.lines_review, statement.lines_skipped) == (
        5,
        2,
        1,
        2,  # the debit and the pending credit
    )
    assert available(alice) == 125_050 and available(bob) == 30_000
    assert bank() == -155_050

    first = line("BANK-0001")
    assert first.status == LS.MATCHED and first.investor == alice and first.payment_reference == REF_ALICE
    assert first.deposit.bank_reference == "BANK-0001" and first.deposit.recorded_by == staff
    assert first.remitter_name == "Alice Investor" and first.remitter_iban == "DE89370400440532013000"
    assert str(first.booking_date) == "2025-05-02" and first.amount_minor == 125_050
    assert line("BANK-0002").payment_reference == REF_BOB  # from Strd/CdtrRefInf/Ref
    unmatched = line("BANK-0005")
    assert unmatched.status == LS.REVIEW and "No payment reference" in unmatched.reason
    assert unmatched.deposit is None and unmatched.remitter_name == "Carol Sender"
    assert not BankStatementLine.objects.filter(entry_reference__in=["BANK-FEE-0003", "BANK-0004"]).exists()

    # The deposit mail of deposit_record, once per booked deposit, after the commit.
    subjects = sorted((m.to[0], m.subject) for m in mail.outbox)
    assert subjects == [
        ("alice@example.com", "[RWA Marketplace] 1,250.50 EUR received"),
        ("bob@example.com", "[RWA Marketplace] 300.00 EUR received"),
    ]
    assert AuditEntry.objects.filter(action="funding.statement_imported", actor_id=staff.pk).count() == 1
    assert AuditEntry.objects.filter(action="cash.deposit_recorded", actor_id=staff.pk).count() == 2
    assert_ledger_clean()


def test_camt053_review_reasons_typo_unknown_and_ambiguous(staff, alice, bob):
    statement = do_import("camt053_review.xml", staff)
    assert (statement.lines_matched, statement.lines_review) == (0, 3)
    typo = line("BANK-0101")
    assert typo.status == LS.REVIEW and "fails its checksum" in typo.reason
    assert typo.payment_reference == "RF11K5MBKVX75MMP"
    assert "Unknown reference RF18539007547034" in line("BANK-0102").reason
    ambiguous = line("BANK-0103")
    assert "Several different references" in ambiguous.reason
    assert REF_ALICE in ambiguous.reason and REF_BOB in ambiguous.reason
    assert not Deposit.objects.exists() and available(alice) == 0 and available(bob) == 0


def test_camt053_amount_and_currency_mismatch_wait_for_review(staff, alice):
    statement = do_import("camt053_mismatch.xml", staff)
    assert (statement.lines_total, statement.lines_matched, statement.lines_review) == (4, 0, 4)
    assert "Currency mismatch" in line("BANK-0201").reason and line("BANK-0201").currency == "USD"
    assert "Amount mismatch" in line("BANK-0202").reason
    assert "33.00 EUR" in line("BANK-0202").reason and "30.00 EUR" in line("BANK-0202").reason
    jpy = line("BANK-0203")
    assert "We do not settle in JPY" in jpy.reason and jpy.amount_minor == 150_000
    assert "bundles 2 transfers" in line("BANK-0204").reason
    assert not Deposit.objects.exists() and available(alice) == 0


def test_camt053_v08_without_bank_references_books_identical_transfers_each_once(staff, alice):
    statement = do_import("camt053_v08.xml", staff)
    assert statement.lines_matched == 2 and available(alice) == 2_000
    refs = list(BankStatementLine.objects.values_list("entry_reference", flat=True))
    assert len(set(refs)) == 2 and all(r.startswith("sha256:") for r in refs)
    assert set(BankStatementLine.objects.values_list("remitter_name", flat=True)) == {"Alice Investor"}
    # The same entries in a re-export (another file) hash the same: nothing new.
    again = do_import("v08-again.xml", staff, content=read("camt053_v08.xml").replace(b"MSG-V08", b"MSG-V08-2"))
    assert (again.lines_matched, again.lines_skipped) == (0, 2) and available(alice) == 2_000


# -- exactly once ----------------------------------------------------------------------------------


def test_the_same_file_twice_is_refused_and_books_nothing_new(staff, alice, bob):
    do_import("camt053_matched.xml", staff)
    with pytest.raises(ValidationError, match="already imported"):
        do_import("renamed.xml", staff, content=read("camt053_matched.xml"))
    assert BankStatement.objects.count() == 1 and Deposit.objects.count() == 2
    assert available(alice) == 125_050


def test_an_entry_already_imported_from_another_file_is_skipped(staff, alice, bob):
    do_import("camt053_matched.xml", staff)
    overlap = do_import("camt053_overlap.xml", staff)
    assert (overlap.lines_total, overlap.lines_matched, overlap.lines_skipped) == (2, 1, 1)
    assert overlap.skipped_entries == ["BANK-0001"]
    assert Deposit.objects.filter(bank_reference="BANK-0001").count() == 1
    assert available(alice) == 125_050 + 2_500
    assert line("BANK-0001").statement.statement_id == "STMT-2025-05-02"
    assert_ledger_clean()


def test_an_entry_typed_in_by_hand_before_is_not_booked_again(staff, alice, bob):
    other = StaffFactory()
    deposit_record(investor=alice, amount_minor=125_050, currency="EUR", bank_reference="BANK-0001", actor=other)
    statement = do_import("camt053_matched.xml", staff)
    assert statement.lines_matched == 1 and statement.lines_skipped == 3
    assert Deposit.objects.filter(bank_reference="BANK-0001").count() == 1 and available(alice) == 125_050


def test_a_concurrent_import_of_the_same_entry_is_skipped_on_the_unique_index(staff, alice, bob, monkeypatch):
    """The race: another import committed the entry after this one read the existing
    lines. The insert hits the unique constraint; the line is skipped, not booked."""
    from marketplace import funding

    real_decide = funding._decide

    def decide_then_other_import_commits(entry, *, actor):
        if (
            entry.entry_reference == "BANK-0002"
            and not BankStatementLine.objects.filter(entry_reference="BANK-0002").exists()
        ):
            other = BankStatement.objects.create(format="csv", file_name="other.csv", file_sha256="f" * 64)
            BankStatementLine.objects.create(
                statement=other,
                entry_reference="BANK-0002",
                amount_minor=30_000,
                currency="EUR",
                status=LS.REVIEW,
                reason="imported elsewhere",
            )
        return real_decide(entry, actor=actor)

    monkeypatch.setattr(funding, "_decide", decide_then_other_import_commits)
    statement = do_import("camt053_matched.xml", staff)
    assert statement.lines_matched == 1 and statement.lines_skipped == 3
    assert statement.skipped_entries == ["BANK-0002"]
    assert available(bob) == 0 and not Deposit.objects.filter(bank_reference="BANK-0002").exists()


def test_a_failure_in_the_middle_books_nothing(staff, alice, bob, monkeypatch):
    from marketplace import funding

    calls = []

    def book_then_fail(**kwargs):
        calls.append(kwargs["bank_reference"])
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real_book(**kwargs)

    real_book = funding.deposit_book
    monkeypatch.setattr(funding, "deposit_book", book_then_fail)
    with pytest.raises(RuntimeError):
        do_import("camt053_matched.xml", staff)
    assert calls == ["BANK-0001", "BANK-0002"]
    assert not BankStatement.objects.exists() and not Deposit.objects.exists() and available(alice) == 0
    assert not AuditEntry.objects.filter(action__startswith="funding.").exists()


# -- refused files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("billion_laughs.xml", "DTD, entities or external references"),
        ("external_entity.xml", "DTD, entities or external references"),
        ("dtd_only.xml", "DTD, entities or external references"),
        ("malformed.xml", "not well-formed XML"),
        ("not_camt.xml", "not an ISO 20022 camt.053 statement"),
        ("decimal_comma.csv", "not a number with a decimal point"),
    ],
)
def test_hostile_and_malformed_files_are_refused_and_nothing_is_booked(staff, alice, name, message):
    with pytest.raises(ValidationError, match=message):
        do_import(name, staff)
    assert not BankStatement.objects.exists() and not BankStatementLine.objects.exists()
    assert not Deposit.objects.exists() and available(alice) == 0


def test_the_external_entity_is_never_read(staff, alice):
    with pytest.raises(ValidationError):
        do_import("external_entity.xml", staff)
    assert not BankStatementLine.objects.filter(remittance_info__contains="root:").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"date,amount\n2025-01-01,1.00\n", "lacks the column"),
        (b"date,amount,currency,reference\n01/05/2025,1.00,EUR,x\n", "is not YYYY-MM-DD"),
        (b"date,amount,currency,reference\n2025-05-01,0.00,EUR,x\n", "greater than zero"),
        (b"date,amount,currency,reference\n2025-05-01,1.001,EUR,x\n", "two decimal places"),
        (b"date,amount,currency,reference\n2025-05-01,1e5,EUR,x\n", "decimal point"),
        (b"date,amount,currency,reference\n2025-05-01,10.00,EURO,x\n", "three-letter currency"),
        (b"\xff\xfe\x00d\x00a", "not UTF-8"),
    ],
)
def test_bad_csv_is_refused(staff, content, message):
    with pytest.raises(ValidationError, match=message):
        do_import("bad.csv", staff, content=content)
    assert not BankStatement.objects.exists()


@override_settings(BANK_STATEMENT_MAX_BYTES=100)
def test_a_file_over_the_size_cap_is_refused(staff):
    with pytest.raises(ValidationError, match="larger than 100 bytes"):
        do_import("camt053_matched.xml", staff)


def test_importing_needs_the_permissions(alice):
    for actor in (alice, staff_with("import_bankstatement"), staff_with("add_deposit"), None):
        with pytest.raises(PermissionDenied):
            do_import("camt053_matched.xml", actor)
    assert not BankStatement.objects.exists()
    importer = staff_with("import_bankstatement", "add_deposit")
    assert do_import("camt053_matched.xml", importer).lines_matched == 1


def test_the_importers_own_reference_waits_for_another_staff_member(alice):
    importer = StaffFactory(email="importer@example.com")
    PaymentReference.objects.create(investor=importer, reference=REF_BOB)
    statement = do_import("camt053_matched.xml", importer)
    assert statement.lines_matched == 1
    own = line("BANK-0002")
    assert own.status == LS.REVIEW and "Four eyes" in own.reason and available(importer) == 0


def test_a_deactivated_investor_is_not_credited_automatically(staff, alice, bob):
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    do_import("camt053_matched.xml", staff)
    assert line("BANK-0002").status == LS.REVIEW and "deactivated" in line("BANK-0002").reason


# -- CSV -----------------------------------------------------------------------------------------


def test_csv_statement(staff, dana):
    statement = do_import("statement.csv", staff)
    assert statement.format == BankStatement.Format.CSV
    assert (statement.lines_total, statement.lines_matched, statement.lines_review, statement.lines_skipped) == (
        5,
        2,
        2,
        1,
    )
    assert available(dana, "EUR") == 50_000 and available(dana, "USD") == 8_050
    first = line("CSV-0001")
    assert first.status == LS.MATCHED and first.remitter_iban == "DE89370400440532013000"
    assert line("CSV-0003").currency == "USD"  # lower case in the file
    assert "No payment reference" in line("CSV-0004").reason
    assert "We do not settle in SEK" in line("CSV-0005").reason
    assert_ledger_clean()


def test_csv_with_semicolons_and_without_entry_ids(staff, dana):
    content = (
        "Date;Amount;Currency;Reference;Remitter name\n"
        f"2025-05-07;19.99;EUR;{REF_DANA};Dana\n"
        f"2025-05-07;19.99;EUR;{REF_DANA};Dana\n"
    ).encode()
    statement = do_import("plain.csv", staff, content=content)
    assert statement.lines_matched == 2 and available(dana) == 3_998
    again = do_import("plain-again.csv", staff, content=content + b"\n")
    assert again.lines_skipped == 2 and available(dana) == 3_998


# -- the review queue -----------------------------------------------------------------------------


def test_assign_a_line_books_it_once_and_audits(staff, alice, bob, django_capture_on_commit_callbacks):
    do_import("camt053_matched.xml", staff)
    waiting = line("BANK-0005")
    reviewer = StaffFactory()
    mail.outbox.clear()
    with pytest.raises(ValidationError, match="Say why"):
        statement_line_assign(line=waiting, investor=alice, actor=reviewer, reason=" ")
    with django_capture_on_commit_callbacks(execute=True):
        assigned = statement_line_assign(line=waiting, investor=alice, actor=reviewer, reason="Carol is Alice's broker")
    assert assigned.status == LS.ASSIGNED and assigned.decided_by == reviewer and assigned.investor == alice
    assert assigned.deposit.bank_reference == "BANK-0005" and assigned.deposit.recorded_by == reviewer
    assert available(alice) == 125_050 + 9_900
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    entry = AuditEntry.objects.get(action="funding.statement_line_assigned")
    assert entry.actor_id == reviewer.pk and entry.reason == "Carol is Alice's broker"
    with pytest.raises(ValidationError, match="already assigned"):
        statement_line_assign(line=waiting, investor=bob, actor=reviewer, reason="again")
    with pytest.raises(ValidationError, match="already assigned"):
        statement_line_return(line=waiting, actor=reviewer, reason="again")
    assert available(bob) == 30_000
    assert_ledger_clean()


def test_four_eyes_staff_never_assign_a_line_to_themselves(staff, alice):
    do_import("camt053_matched.xml", staff)
    reviewer = StaffFactory()
    with pytest.raises(PermissionDenied, match="Four eyes"):
        statement_line_assign(line=line("BANK-0005"), investor=reviewer, actor=reviewer, reason="mine")
    assert line("BANK-0005").status == LS.REVIEW and available(reviewer) == 0


def test_assign_needs_the_review_permission(staff, alice):
    do_import("camt053_matched.xml", staff)
    for actor in (staff_with("add_deposit"), staff_with("review_bankstatementline"), alice):
        with pytest.raises(PermissionDenied):
            statement_line_assign(line=line("BANK-0005"), investor=alice, actor=actor, reason="x")
    assert line("BANK-0005").status == LS.REVIEW


def test_a_currency_we_do_not_settle_can_only_be_returned(staff, alice):
    do_import("camt053_mismatch.xml", staff)
    jpy = line("BANK-0203")
    with pytest.raises(ValidationError, match="JPY"):
        statement_line_assign(line=jpy, investor=alice, actor=staff, reason="x")
    returned = statement_line_return(line=jpy, actor=staff, reason="Sent back: we take no JPY")
    assert returned.status == LS.RETURNED and returned.reason == "Sent back: we take no JPY"
    assert returned.deposit is None and not Deposit.objects.exists()
    assert AuditEntry.objects.filter(action="funding.statement_line_returned", reason__contains="JPY").exists()
    with pytest.raises(ValidationError, match="already returned"):
        statement_line_return(line=jpy, actor=staff, reason="twice")


# -- the command ----------------------------------------------------------------------------------


def test_command_imports_and_prints_the_counts(staff, alice, bob):
    out = StringIO()
    call_command("import_bank_statement", str(FIXTURES / "camt053_matched.xml"), actor=staff.email, stdout=out)
    text = out.getvalue()
    assert "5 entries, 2 matched, 1 to review, 2 skipped" in text
    assert available(alice) == 125_050
    out = StringIO()
    call_command("import_bank_statement", str(FIXTURES / "camt053_overlap.xml"), actor=staff.email, stdout=out)
    assert "skipped (already imported): BANK-0001" in out.getvalue()


def test_command_exits_non_zero_on_a_refused_file(staff, alice):
    call_command("import_bank_statement", str(FIXTURES / "camt053_matched.xml"), actor=staff.email, stdout=StringIO())
    for name, message in [
        ("camt053_matched.xml", "already imported"),
        ("billion_laughs.xml", "DTD"),
        ("missing.xml", "Cannot read"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("import_bank_statement", str(FIXTURES / name), actor=staff.email, stdout=StringIO())
    with pytest.raises(CommandError, match="--actor"):
        call_command("import_bank_statement", str(FIXTURES / "camt053_review.xml"), stdout=StringIO())
    with pytest.raises(CommandError, match="Refused"):
        call_command(
            "import_bank_statement", str(FIXTURES / "camt053_review.xml"), actor=alice.email, stdout=StringIO()
        )
    assert BankStatement.objects.count() == 1


def test_command_exit_status_from_the_shell(staff, alice):
    """manage.py's exit status: CommandError -> 1."""
    from django.core.management import ManagementUtility

    utility = ManagementUtility(
        ["manage.py", "import_bank_statement", str(FIXTURES / "billion_laughs.xml"), "--actor", staff.email]
    )
    with pytest.raises(SystemExit) as exc:
        utility.execute()
    assert exc.value.code == 1


# -- the back office ------------------------------------------------------------------------------


def upload(name, content=None, content_type="text/xml"):
    return SimpleUploadedFile(name, read(name) if content is None else content, content_type=content_type)


def test_back_office_upload_lists_and_counts(client, staff, alice, bob):
    client.force_login(staff)
    add = reverse("admin:marketplace_bankstatement_add")
    assert client.get(add).status_code == 200
    response = client.post(add, {"file": upload("camt053_matched.xml")}, follow=True)
    html = response.content.decode()
    assert "2 booked as deposits, 1 to review" in html
    assert available(alice) == 125_050
    changelist = client.get(reverse("admin:marketplace_bankstatement_changelist")).content.decode()
    assert "camt053_matched.xml" in changelist
    queue = client.get(reverse("admin:marketplace_bankstatementline_changelist")).content.decode()
    assert "BANK-0005" in queue and "BANK-0001" not in queue  # the queue shows lines waiting for review
    everything = client.get(reverse("admin:marketplace_bankstatementline_changelist") + "?status=all")
    assert "BANK-0001" in everything.content.decode()
    # The same file again: refused with the reason, nothing new.
    response = client.post(add, {"file": upload("camt053_matched.xml")})
    assert response.status_code == 400 and "already imported" in response.content.decode()
    assert Deposit.objects.count() == 2


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("statement.pdf", b"%PDF-1.4", "camt.053 .xml file or a .csv"),
        ("statement.xml", b"date,amount,currency,reference\n", "does not match the extension"),
        ("statement.csv", b"<Document/>", "does not match the extension"),
        ("billion_laughs.xml", None, "DTD, entities or external references"),
    ],
)
def test_back_office_upload_checks_the_content(client, staff, name, content, message):
    client.force_login(staff)
    response = client.post(reverse("admin:marketplace_bankstatement_add"), {"file": upload(name, content)})
    assert response.status_code == 400 and message in response.content.decode()
    assert not BankStatement.objects.exists()


@override_settings(BANK_STATEMENT_MAX_BYTES=200)
def test_back_office_upload_size_cap(client, staff):
    client.force_login(staff)
    response = client.post(reverse("admin:marketplace_bankstatement_add"), {"file": upload("camt053_matched.xml")})
    assert response.status_code == 400 and "larger than 200 bytes" in response.content.decode()


def test_back_office_assign_and_return(client, staff, alice, bob):
    do_import("camt053_matched.xml", staff)
    do_import("camt053_review.xml", staff)
    reviewer = StaffFactory()
    client.force_login(reviewer)
    waiting = line("BANK-0101")
    url = reverse("admin:marketplace_bankstatementline_review", args=[waiting.pk])
    page = client.get(url).content.decode()
    assert "fails its checksum" in page and "RF11K5MBKVX75MMP" in page
    # Four eyes: the reviewer is not even offered as the investor, and a forged post fails.
    response = client.post(url, {"assign-investor": reviewer.pk, "assign-reason": "mine", "_assign": "1"})
    assert response.status_code == 400 and line("BANK-0101").status == LS.REVIEW
    response = client.post(url, {"assign-investor": alice.pk, "assign-reason": "typo of Alice's", "_assign": "1"})
    assert response.status_code == 302
    assert line("BANK-0101").status == LS.ASSIGNED and available(alice) == 125_050 + 7_700
    # Decided lines cannot be decided again.
    response = client.post(url, {"return-reason": "late", "_return": "1"})
    assert response.status_code == 400 and line("BANK-0101").status == LS.ASSIGNED

    other = line("BANK-0102")
    url = reverse("admin:marketplace_bankstatementline_review", args=[other.pk])
    response = client.post(url, {"return-reason": "", "_return": "1"})
    assert response.status_code == 400 and line("BANK-0102").status == LS.REVIEW
    response = client.post(url, {"return-reason": "Nobody has this reference", "_return": "1"})
    assert response.status_code == 302 and line("BANK-0102").status == LS.RETURNED
    assert_ledger_clean()


def test_back_office_four_eyes_the_service_refuses_a_self_assignment(client, alice):
    """Even when the form would offer it (the choice list excludes the reviewer), the
    service refuses: tested by asking the service directly with a reviewer who is also
    the only candidate."""
    reviewer = staff_with("review_bankstatementline", "add_deposit", "view_bankstatementline")
    importer = staff_with("import_bankstatement", "add_deposit")
    do_import("camt053_matched.xml", importer)
    with pytest.raises(PermissionDenied):
        statement_line_assign(line=line("BANK-0005"), investor=reviewer, actor=reviewer, reason="x")
    client.force_login(reviewer)
    response = client.get(reverse("admin:marketplace_bankstatementline_review", args=[line("BANK-0005").pk]))
    assert response.status_code == 200
    assert f'value="{reviewer.pk}"' not in response.content.decode()


def test_back_office_needs_the_permissions(client, staff, alice):
    do_import("camt053_matched.xml", staff)
    waiting = line("BANK-0005")
    review = reverse("admin:marketplace_bankstatementline_review", args=[waiting.pk])
    add = reverse("admin:marketplace_bankstatement_add")
    viewer = staff_with("view_bankstatement", "view_bankstatementline", "add_deposit")
    client.force_login(viewer)
    assert client.get(reverse("admin:marketplace_bankstatementline_changelist")).status_code == 200
    assert client.get(review).status_code == 403
    assert client.post(review, {"return-reason": "x", "_return": "1"}).status_code == 403
    assert client.get(add).status_code == 403
    assert client.post(add, {"file": upload("camt053_review.xml")}).status_code == 403
    nobody = staff_with()
    client.force_login(nobody)
    assert client.get(reverse("admin:marketplace_bankstatement_changelist")).status_code == 403
    assert client.get(review).status_code == 403
    client.force_login(alice)  # not staff: to the back office's login
    assert client.get(review).status_code == 302
    assert line("BANK-0005").status == LS.REVIEW and BankStatement.objects.count() == 1


def test_back_office_needs_csrf(staff, alice):
    do_import("camt053_matched.xml", staff)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(StaffFactory())
    review = reverse("admin:marketplace_bankstatementline_review", args=[line("BANK-0005").pk])
    assert csrf_client.post(review, {"return-reason": "x", "_return": "1"}).status_code == 403
    assert line("BANK-0005").status == LS.REVIEW
    add = reverse("admin:marketplace_bankstatement_add")
    assert csrf_client.post(add, {"file": upload("camt053_review.xml")}).status_code == 403
    assert BankStatement.objects.count() == 1


def test_operations_role_can_import_and_review():
    from accounts.roles import OPERATIONS_PERMISSIONS

    for perm in (
        "marketplace.import_bankstatement",
        "marketplace.review_bankstatementline",
        "marketplace.view_bankstatement",
        "marketplace.view_bankstatementline",
    ):
        assert perm in OPERATIONS_PERMISSIONS


# -- the ledger after everything ---------------------------------------------------------------------


def test_ledger_check_is_clean_after_imports_and_reviews(staff, alice, bob, dana):
    for name in ("camt053_matched.xml", "camt053_review.xml", "camt053_mismatch.xml", "camt053_overlap.xml"):
        do_import(name, staff)
    do_import("statement.csv", staff)
    reviewer = StaffFactory()
    statement_line_assign(line=line("BANK-0103"), investor=bob, actor=reviewer, reason="Bob confirmed by phone")
    statement_line_return(line=line("BANK-0102"), actor=reviewer, reason="unknown")
    booked = sum(Deposit.objects.filter(currency="EUR").values_list("amount_minor", flat=True))
    assert bank("EUR") == -booked
    out = StringIO()
    call_command("ledger_check", stdout=out)
    assert "0 problem(s)" in out.getvalue()
