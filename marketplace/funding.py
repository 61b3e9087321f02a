"""Funding: investors pay into the platform's bank account with their own payment
reference, staff import the bank's statement, and matched credits become deposits
(docs/funding.md).

Payment references. Each investor has one ISO 11649 creditor reference: "RF", two
check digits (ISO 7064 MOD 97-10 over the body followed by "RF00", as IBANs do) and a
random body of 12 characters from an alphabet without look-alikes (no 0/O, 1/I/L). A
new reference is only issued when none of its single-character substitutions and
adjacent transpositions passes the checksum, so a typo of one investor's reference is
refused on import instead of crediting somebody else. References are compared in
upper case without spaces.

Statement import. `statement_import` takes an ISO 20022 camt.053 file (parsed by
defusedxml: a DTD, entity declarations or external references refuse the file) or the
CSV format documented in docs/funding.md. Booked credit entries become lines; debits,
pending entries and entries already imported from another statement are skipped and
counted. A line whose remittance information holds exactly one valid reference of a
known investor is booked through `services.deposit_book` (the body of deposit_record:
ledger, audit, four eyes, the investor's mail) with the bank's entry reference as the
deposit's bank reference; anything else waits in the review queue with the reason.
One transaction per statement: a refusal books nothing.

Review queue. Staff with marketplace.review_bankstatementline assign a line to an
investor (booked as a deposit; four eyes: never to themselves) or mark it returned (the
transfer back to the sender is made in the bank, outside the platform).

Lock order (marketplace/locks.py): the ledger accounts of every deposit a statement
books, in one call, before anything is inserted; then the statement's and the lines'
inserts (a concurrent import of the same file or entry waits on the unique index and is
then refused or skips it); then the audit head. Reviewing a line: the ledger accounts,
then the line (level 6, like a withdrawal), then the audit head."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.audit import audit_record
from config.money import CURRENCIES, currency_clean, format_money, parse_major_to_minor

from .locks import ledger_accounts_lock
from .models import BankStatement, BankStatementLine, Deposit, LedgerAccount, PaymentReference
from .services import _require_staff, deposit_book

A = LedgerAccount.Kind
LS = BankStatementLine.Status
IMPORT_PERMISSION = "marketplace.import_bankstatement"
REVIEW_PERMISSION = "marketplace.review_bankstatementline"
DEPOSIT_PERMISSION = "marketplace.add_deposit"

# -- payment references (ISO 11649) ----------------------------------------------------------

RF_BODY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RF_BODY_LENGTH = 12
RF_LENGTH = 4 + RF_BODY_LENGTH
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_RF_SHAPE = re.compile(r"RF[0-9]{2}[A-Z0-9]{1,21}")
_WHITESPACE = re.compile(r"\s+")


def rf_compact(text: str) -> str:
    """' rf18 5390 0754 7034 ' -> 'RF18539007547034'."""
    return _WHITESPACE.sub("", str(text or "")).upper()


def _mod97(text: str) -> int:
    """ISO 7064 MOD 97-10 of an alphanumeric string, letters as A=10 … Z=35."""
    return int("".join(str(_ALPHANUMERIC.index(ch)) for ch in text)) % 97


def rf_check_digits(body: str) -> str:
    return f"{98 - _mod97(body + 'RF00'):02d}"


def rf_valid(text: str) -> bool:
    """An ISO 11649 reference (any case, spaces anywhere): shape and checksum."""
    ref = rf_compact(text)
    if not _RF_SHAPE.fullmatch(ref) or ref[2:4] in ("00", "01", "99"):
        return False
    return _mod97(ref[4:] + ref[:4]) == 1


def rf_format(text: str) -> str:
    """'RF18539007547034' -> 'RF18 5390 0754 7034' (the printed form)."""
    ref = rf_compact(text)
    return " ".join(ref[i : i + 4] for i in range(0, len(ref), 4))


def rf_typo_neighbours(ref: str) -> Iterator[str]:
    """Every single-character substitution (by a digit or letter) and adjacent
    transposition of `ref`."""
    ref = rf_compact(ref)
    for i, original in enumerate(ref):
        for ch in _ALPHANUMERIC:
            if ch != original:
                yield ref[:i] + ch + ref[i + 1 :]
    for i in range(len(ref) - 1):
        if ref[i] != ref[i + 1]:
            yield ref[:i] + ref[i + 1] + ref[i] + ref[i + 2 :]


def rf_generate() -> str:
    """A new random reference none of whose one-typo neighbours is valid. MOD 97 alone
    catches every substitution that keeps the digit length and every transposition but
    a few (e.g. "M2" ↔ "2M"); a letter typed as a digit changes the length and passes
    with a chance of 1 in 97, so candidates with such a neighbour are drawn again."""
    for _ in range(10_000):
        body = "".join(secrets.choice(RF_BODY_ALPHABET) for _ in range(RF_BODY_LENGTH))
        ref = f"RF{rf_check_digits(body)}{body}"
        if not any(rf_valid(neighbour) for neighbour in rf_typo_neighbours(ref)):
            return ref
    raise RuntimeError("no payment reference without a valid typo neighbour was found")  # pragma: no cover


def payment_reference_for(user) -> PaymentReference:
    """The investor's payment reference, created the first time it is needed."""
    existing = PaymentReference.objects.filter(investor=user).first()
    if existing is not None:
        return existing
    for _ in range(5):
        try:
            with transaction.atomic():
                return PaymentReference.objects.create(investor=user, reference=rf_generate())
        except IntegrityError:
            # Created by a concurrent request of the same investor, or (never in
            # practice) the same random body drawn twice: read it or draw again.
            existing = PaymentReference.objects.filter(investor=user).first()
            if existing is not None:
                return existing
    raise RuntimeError("could not create a payment reference")  # pragma: no cover


# -- deposit instructions --------------------------------------------------------------------


@dataclass(frozen=True)
class DepositInstruction:
    currency: str
    currency_name: str
    holder: str
    iban: str  # compact
    bic: str
    bank: str
    demo: bool

    @property
    def iban_printed(self) -> str:
        return " ".join(self.iban[i : i + 4] for i in range(0, len(self.iban), 4))


def platform_bank_accounts() -> list[DepositInstruction]:
    """The platform's bank account per currency (settings.PLATFORM_BANK_ACCOUNTS), for
    the currencies the platform settles in, in the order of config.money.CURRENCIES."""
    configured: dict[str, dict[str, Any]] = {
        str(code).upper(): entry for code, entry in (settings.PLATFORM_BANK_ACCOUNTS or {}).items()
    }
    instructions = []
    for code, name in CURRENCIES.items():
        entry = configured.get(code)
        if not entry or not entry.get("iban"):
            continue
        instructions.append(
            DepositInstruction(
                currency=code,
                currency_name=name,
                holder=str(entry.get("holder") or entry.get("account_holder") or entry.get("name") or ""),
                iban=rf_compact(entry["iban"]),
                bic=rf_compact(entry.get("bic") or ""),
                bank=str(entry.get("bank") or entry.get("bank_name") or ""),
                demo=bool(entry.get("demo", False)),
            )
        )
    return instructions


# -- statement parsing -----------------------------------------------------------------------


@dataclass
class ParsedEntry:
    """One entry of a statement as read, before matching."""

    entry_reference: str
    credit: bool
    booked: bool
    amount_minor: int
    currency: str
    booking_date: date | None = None
    remitter_name: str = ""
    remitter_iban: str = ""
    remittance_info: str = ""
    # Review reasons the file itself shows (amount or currency mismatch, batch entry).
    problems: list[str] = field(default_factory=list)


@dataclass
class ParsedStatement:
    format: str
    statement_id: str = ""
    account_iban: str = ""
    entries: list[ParsedEntry] = field(default_factory=list)


class _EntryIds:
    """The bank's reference of each entry, or a stable hash of the entry when the bank
    gives none: the same entry in two exports hashes the same, and identical entries
    within one file are numbered so that each is booked."""

    def __init__(self, account_iban: str):
        self.account_iban = account_iban
        self.seen: Counter[str] = Counter()

    def __call__(self, given: str, entry: ParsedEntry) -> str:
        given = (given or "").strip()
        if given and len(given) <= 100:
            return given
        if given:  # longer than the column: a hash of it
            return "sha256:" + hashlib.sha256(given.encode()).hexdigest()[:56]
        key = "|".join(
            [
                self.account_iban,
                entry.booking_date.isoformat() if entry.booking_date else "",
                str(entry.amount_minor),
                entry.currency,
                entry.remitter_iban,
                entry.remitter_name,
                entry.remittance_info,
            ]
        )
        self.seen[key] += 1
        return "sha256:" + hashlib.sha256(f"{key}|{self.seen[key]}".encode()).hexdigest()[:56]


_AMOUNT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def _amount(text: str, *, where: str) -> tuple[int, bool]:
    """'1250.50' -> (125050, False); '-10.00' -> (1000, True). A decimal point and no
    thousands separators (parse_major_to_minor would drop a decimal comma's meaning)."""
    text = (text or "").strip()
    if not _AMOUNT.fullmatch(text):
        raise ValidationError(
            f"{where}: the amount {text[:40]!r} is not a number with a decimal point (e.g. 1250.50, "
            "no thousands separators).",
            code="amount",
        )
    negative = text.startswith("-")
    try:
        minor = parse_major_to_minor(text.lstrip("+-"), field="amount")
    except ValidationError as exc:
        raise ValidationError(f"{where}: {'; '.join(exc.messages)}", code="amount") from None
    return minor, negative


def _currency_code(text: str, *, where: str) -> str:
    code = (text or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValidationError(f"{where}: {code[:10]!r} is not a three-letter currency code.", code="currency")
    return code


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat((text or "").strip()[:10])
    except ValueError:
        return None


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _find(element: Element | None, *path: str) -> Element | None:
    """The first descendant along `path` of local names (any namespace)."""
    if element is None:
        return None
    if not path:
        return element
    for child in element:
        if _local(child.tag) == path[0]:
            found = _find(child, *path[1:])
            if found is not None:
                return found
    return None


def _find_all(element: Element | None, *path: str) -> list[Element]:
    if element is None:
        return []
    if not path:
        return [element]
    found = []
    for child in element:
        if _local(child.tag) == path[0]:
            found.extend(_find_all(child, *path[1:]))
    return found


def _text(element: Element | None, *path: str) -> str:
    node = _find(element, *path)
    return (node.text or "").strip() if node is not None and node.text else ""


def _first_text(element: Element | None, *paths: tuple[str, ...]) -> str:
    for path in paths:
        value = _text(element, *path)
        if value:
            return value
    return ""


def _xml_parse(content: bytes) -> Element:
    try:
        return defused_fromstring(content, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ValidationError(
            "The file declares a DTD, entities or external references, which a bank statement never does: "
            "refused (nothing was imported).",
            code="hostile_xml",
        ) from None
    except ParseError as exc:
        raise ValidationError(f"The file is not well-formed XML ({exc}).", code="malformed") from None


def _camt_entry(ntry: Element, *, index: int, account_currency: str) -> tuple[ParsedEntry, str]:
    where = f"Entry {index}"
    amt = _find(ntry, "Amt")
    if amt is None:
        raise ValidationError(f"{where} has no amount (Amt).", code="malformed")
    minor, negative = _amount(amt.text or "", where=where)
    if negative:
        raise ValidationError(f"{where}: amounts in camt.053 are unsigned; CdtDbtInd gives the direction.")
    currency = _currency_code(amt.get("Ccy", ""), where=where)
    indicator = _text(ntry, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise ValidationError(f"{where}: CdtDbtInd must be CRDT or DBIT, not {indicator[:10]!r}.", code="malformed")
    status = _text(ntry, "Sts") or _text(ntry, "Sts", "Cd")
    transactions = _find_all(ntry, "NtryDtls", "TxDtls")
    tx = transactions[0] if len(transactions) == 1 else None
    remittance: list[str] = []
    for t in transactions:
        remittance += [(u.text or "").strip() for u in _find_all(t, "RmtInf", "Ustrd") if u.text]
        remittance += [(r.text or "").strip() for r in _find_all(t, "RmtInf", "Strd", "CdtrRefInf", "Ref") if r.text]
    if not remittance and _text(ntry, "AddtlNtryInf"):
        remittance.append(_text(ntry, "AddtlNtryInf"))
    entry = ParsedEntry(
        entry_reference="",
        credit=indicator == "CRDT",
        booked=status == "BOOK",
        amount_minor=minor,
        currency=currency,
        booking_date=_date(_first_text(ntry, ("BookgDt", "Dt"), ("BookgDt", "DtTm"), ("ValDt", "Dt"))),
        remitter_name=_first_text(
            tx, ("RltdPties", "Dbtr", "Nm"), ("RltdPties", "Dbtr", "Pty", "Nm"), ("RltdPties", "UltmtDbtr", "Nm")
        )[:140],
        remitter_iban=rf_compact(_text(tx, "RltdPties", "DbtrAcct", "Id", "IBAN"))[:34],
        remittance_info=" / ".join(r for r in remittance if r),
    )
    if account_currency and currency != account_currency:
        entry.problems.append(
            f"Currency mismatch: the entry is in {currency} but the statement's account is in {account_currency}."
        )
    if len(transactions) > 1:
        entry.problems.append(
            f"The entry bundles {len(transactions)} transfers (batch booking): split or return it by hand."
        )
    if tx is not None:
        tx_amt = _find(tx, "Amt")
        if tx_amt is None:
            tx_amt = _find(tx, "AmtDtls", "TxAmt", "Amt")
        if tx_amt is not None and (tx_amt.text or "").strip():
            tx_minor, _ = _amount(tx_amt.text or "", where=f"{where}, transaction details")
            tx_currency = _currency_code(tx_amt.get("Ccy", currency), where=f"{where}, transaction details")
            if tx_currency != currency:
                entry.problems.append(
                    f"Currency mismatch: sent as {format_money(tx_minor, tx_currency)}, credited as "
                    f"{format_money(minor, currency)}."
                )
            elif tx_minor != minor:
                entry.problems.append(
                    f"Amount mismatch: the entry says {format_money(minor, currency)} but its transaction "
                    f"details say {format_money(tx_minor, tx_currency)}."
                )
    given = _first_text(ntry, ("AcctSvcrRef",), ("NtryRef",)) or _text(tx, "Refs", "AcctSvcrRef")
    return entry, given


def parse_camt053(content: bytes) -> ParsedStatement:
    root = _xml_parse(content)
    statements = _find_all(root, "BkToCstmrStmt", "Stmt")
    if _local(root.tag) != "Document" or not statements:
        raise ValidationError(
            "This XML is not an ISO 20022 camt.053 statement (Document/BkToCstmrStmt/Stmt).", code="format"
        )
    parsed = ParsedStatement(
        format=BankStatement.Format.CAMT053,
        statement_id=", ".join(s for s in (_text(st, "Id") for st in statements) if s)[:100],
        account_iban=rf_compact(_text(statements[0], "Acct", "Id", "IBAN"))[:34],
    )
    index = 0
    for stmt in statements:
        account_iban = rf_compact(_text(stmt, "Acct", "Id", "IBAN"))
        account_currency = _text(stmt, "Acct", "Ccy").upper()
        ids = _EntryIds(account_iban)
        for ntry in _find_all(stmt, "Ntry"):
            index += 1
            entry, given = _camt_entry(ntry, index=index, account_currency=account_currency)
            entry.entry_reference = ids(given, entry)
            parsed.entries.append(entry)
    return parsed


CSV_COLUMNS = ("date", "amount", "currency", "reference", "remitter_name", "remitter_iban", "entry_id")
CSV_REQUIRED = ("date", "amount", "currency", "reference")


def parse_csv(content: bytes) -> ParsedStatement:
    """The simple CSV format (docs/funding.md): a header row naming the columns
    date (YYYY-MM-DD), amount (decimal point; negative = debit), currency, reference,
    remitter_name, remitter_iban, entry_id; comma or semicolon separated, UTF-8."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The CSV file is not UTF-8 text.", code="format") from None
    if "\x00" in text:
        raise ValidationError("The file is binary, not a CSV statement.", code="format")
    header = text.lstrip().split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.reader(io.StringIO(text.lstrip()), delimiter=delimiter)
    try:
        columns = [c.strip().lower().replace(" ", "_") for c in next(reader)]
    except StopIteration:
        raise ValidationError("The CSV file is empty.", code="format") from None
    missing = [c for c in CSV_REQUIRED if c not in columns]
    if missing:
        raise ValidationError(
            f"The CSV header lacks the column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}.",
            code="format",
        )
    parsed = ParsedStatement(format=BankStatement.Format.CSV)
    ids = _EntryIds("")
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"CSV line {reader.line_num}"
            values = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(columns)}
            minor, negative = _amount(values["amount"], where=where)
            booking_date = _date(values["date"])
            if booking_date is None:
                raise ValidationError(f"{where}: the date {values['date'][:20]!r} is not YYYY-MM-DD.", code="format")
            entry = ParsedEntry(
                entry_reference="",
                credit=not negative,
                booked=True,
                amount_minor=minor,
                currency=_currency_code(values["currency"], where=where),
                booking_date=booking_date,
                remitter_name=values.get("remitter_name", "")[:140],
                remitter_iban=rf_compact(values.get("remitter_iban", ""))[:34],
                remittance_info=values["reference"],
            )
            entry.entry_reference = ids(values.get("entry_id", ""), entry)
            parsed.entries.append(entry)
    except csv.Error as exc:
        raise ValidationError(f"The CSV file cannot be read ({exc}).", code="format") from None
    return parsed


def statement_parse(content: bytes) -> ParsedStatement:
    """camt.053 when the content is XML, else the CSV format."""
    head = content[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return parse_camt053(content)
    return parse_csv(content)


# -- matching --------------------------------------------------------------------------------

# "RF", two check digits and a body, with single spaces anywhere (printed forms vary).
_RF_CANDIDATE = re.compile(r"(?<![A-Z0-9])RF(?: ?[0-9]){2}(?: ?[A-Z0-9]){1,21}")


def _reference_resolve(candidate: str) -> str:
    """A candidate may run on into the next word ("RF18 … 7034 THANKS"): our reference
    when its first RF_LENGTH characters are valid, else the whole candidate when it is
    valid (some other creditor's reference), else the first RF_LENGTH characters as
    written (a typo: it fails the checksum and waits for review)."""
    if len(candidate) >= RF_LENGTH and rf_valid(candidate[:RF_LENGTH]):
        return candidate[:RF_LENGTH]
    if rf_valid(candidate):
        return candidate
    return candidate[:RF_LENGTH]


def references_in(text: str) -> list[str]:
    """The RF references in remittance text (any case, spaces anywhere), compact, in
    order, without repeats."""
    text = str(text or "").upper()
    found: list[str] = []
    position = 0
    while (match := _RF_CANDIDATE.search(text, position)) is not None:
        reference = _reference_resolve(rf_compact(match.group(0)))
        if reference not in found:
            found.append(reference)
        # Search on right after the characters the reference used, not after the whole
        # greedy match: it may have run into a second reference ("… 7034 and RF…").
        used, position = 0, match.start()
        while used < len(reference):
            if not text[position].isspace():
                used += 1
            position += 1
    return found


@dataclass
class _Decision:
    """What an entry becomes: booked for `investor`, or waiting for review."""

    payment_reference: str = ""
    investor: Any = None
    reason: str = ""


def _decide(entry: ParsedEntry, *, actor) -> _Decision:
    references = references_in(entry.remittance_info)
    decision = _Decision(payment_reference=references[0] if references else "")
    if entry.currency not in CURRENCIES:
        decision.reason = f"We do not settle in {entry.currency}: return it (or convert it in the bank)."
        return decision
    if entry.problems:
        decision.reason = " ".join(entry.problems)
        return decision
    if not references:
        decision.reason = "No payment reference (RF…) in the remittance information."
        return decision
    if len(references) > 1:
        decision.reason = f"Several different references: {', '.join(references)}."
        return decision
    reference = references[0]
    if not rf_valid(reference):
        decision.reason = f"The reference {reference} fails its checksum (a typo?)."
        return decision
    known = PaymentReference.objects.select_related("investor").filter(reference=reference).first()
    if known is None:
        decision.reason = f"Unknown reference {reference}: no investor has it."
        return decision
    investor = known.investor
    if not investor.is_active:
        decision.reason = f"The reference {reference} belongs to a deactivated account ({investor})."
        return decision
    if actor is not None and investor.pk == actor.pk:
        decision.reason = (
            "Four eyes: this is the importing staff member's own reference; another staff member assigns it."
        )
        return decision
    decision.investor = investor
    return decision


# -- import ----------------------------------------------------------------------------------


def _file_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@transaction.atomic(durable=True)
def statement_import(*, file_name: str, content: bytes, actor) -> BankStatement:
    """Staff import a bank statement (camt.053 or CSV). Refused as a whole (nothing
    booked) when the file is malformed, hostile or already imported; otherwise every
    credit is matched and booked or queued for review. The returned statement has the
    counts and `skipped_entries` (entry references skipped as already imported)."""
    _require_staff(actor, IMPORT_PERMISSION)
    _require_staff(actor, DEPOSIT_PERMISSION)
    content = bytes(content or b"")
    if not content.strip():
        raise ValidationError("The file is empty.", code="empty")
    if len(content) > settings.BANK_STATEMENT_MAX_BYTES:
        raise ValidationError(
            f"The file is larger than {settings.BANK_STATEMENT_MAX_BYTES:,} bytes; split the statement.",
            code="too_large",
        )
    sha256 = _file_sha256(content)
    if BankStatement.objects.filter(file_sha256=sha256).exists():
        raise ValidationError("This file was already imported; nothing was booked again.", code="already_imported")
    parsed = statement_parse(content)

    credits = [e for e in parsed.entries if e.credit and e.booked]
    references = {e.entry_reference for e in credits}
    known_entries = set(
        BankStatementLine.objects.filter(entry_reference__in=references).values_list("entry_reference", flat=True)
    ) | set(Deposit.objects.filter(bank_reference__in=references).values_list("bank_reference", flat=True))
    decisions = {id(e): _decide(e, actor=actor) for e in credits if e.entry_reference not in known_entries}

    # The ledger accounts of every deposit to book, in one call (pk order), before any
    # insert: the audit head is then the only lock taken after them.
    specs = {
        spec
        for entry in credits
        if (d := decisions.get(id(entry))) is not None and d.investor is not None
        for spec in ((A.INVESTOR_AVAILABLE, d.investor, entry.currency), (A.BANK, None, entry.currency))
    }
    if specs:
        ledger_accounts_lock(specs=list(specs))

    statement = BankStatement(
        format=parsed.format,
        file_name=(file_name or "")[-200:],
        file_sha256=sha256,
        statement_id=parsed.statement_id,
        account_iban=parsed.account_iban,
        imported_by=actor,
        lines_total=len(parsed.entries),
    )
    try:
        with transaction.atomic():
            statement.save()
    except IntegrityError:  # the same file imported concurrently
        raise ValidationError(
            "This file was already imported; nothing was booked again.", code="already_imported"
        ) from None

    skipped: list[str] = []
    statement.lines_skipped = len(parsed.entries) - len(credits)  # debits and pending entries
    for entry in credits:
        decision = decisions.get(id(entry))
        if decision is None:
            skipped.append(entry.entry_reference)
            continue
        line = BankStatementLine(
            statement=statement,
            entry_reference=entry.entry_reference,
            amount_minor=entry.amount_minor,
            currency=entry.currency,
            booking_date=entry.booking_date,
            remitter_name=entry.remitter_name,
            remitter_iban=entry.remitter_iban,
            remittance_info=entry.remittance_info[:500],
            payment_reference=decision.payment_reference[:35],
            status=LS.REVIEW,
            reason=decision.reason[:500],
        )
        try:
            with transaction.atomic():
                line.save()
        except IntegrityError:  # the same entry, in this file or a concurrent import
            skipped.append(entry.entry_reference)
            continue
        if decision.investor is not None:
            try:
                with transaction.atomic():
                    deposit = deposit_book(
                        investor=decision.investor,
                        amount_minor=entry.amount_minor,
                        currency=entry.currency,
                        bank_reference=entry.entry_reference,
                        actor=actor,
                    )
            except (ValidationError, PermissionDenied) as exc:
                text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                line.reason = f"Could not be booked for {decision.investor}: {text}"[:500]
                line.save(update_fields=["reason"])
            else:
                line.status = LS.MATCHED
                line.investor = decision.investor
                line.deposit = deposit
                line.decided_at = timezone.now()
                line.save(update_fields=["status", "investor", "deposit", "decided_at"])
        if line.status == LS.MATCHED:
            statement.lines_matched += 1
        else:
            statement.lines_review += 1
    statement.lines_skipped += len(skipped)
    statement.save(update_fields=["lines_matched", "lines_review", "lines_skipped"])
    audit_record(
        actor=actor,
        action="funding.statement_imported",
        target=statement,
        after={
            "file_name": statement.file_name,
            "file_sha256": sha256,
            "format": statement.format,
            "statement_id": statement.statement_id,
            "lines_total": statement.lines_total,
            "lines_matched": statement.lines_matched,
            "lines_review": statement.lines_review,
            "lines_skipped": statement.lines_skipped,
            "skipped_as_already_imported": skipped[:100],
        },
    )
    statement.skipped_entries = skipped  # type: ignore[attr-defined]
    return statement


# -- review queue ----------------------------------------------------------------------------


def _line_for_decision(line: BankStatementLine, *, investor=None) -> BankStatementLine:
    """Lock the ledger accounts a booking needs (when assigning), then the line, which
    must still wait for review."""
    if investor is not None and line.currency in CURRENCIES:
        ledger_accounts_lock(specs=[(A.INVESTOR_AVAILABLE, investor, line.currency), (A.BANK, None, line.currency)])
    locked = BankStatementLine.objects.select_for_update().get(pk=line.pk)
    if locked.status != LS.REVIEW:
        raise ValidationError(f"This line is already {locked.get_status_display().lower()}.", code="decided")
    return locked


def _reason_clean(reason: str, *, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": f"Say why you {what} (it is audited)."})
    return reason[:500]


@transaction.atomic(durable=True)
def statement_line_assign(*, line: BankStatementLine, investor, actor, reason: str) -> BankStatementLine:
    """Staff book a line from the review queue as a deposit of `investor` (four eyes:
    never their own account; deposit_book refuses that too)."""
    _require_staff(actor, REVIEW_PERMISSION, not_user=investor)
    reason = _reason_clean(reason, what="assign it")
    if investor is None or not investor.is_active:
        raise ValidationError({"investor": "Choose an active investor account."})
    currency_clean(line.currency)  # a currency we do not settle in can only be returned
    line = _line_for_decision(line, investor=investor)
    before = {"status": line.status, "reason": line.reason}
    deposit = deposit_book(
        investor=investor,
        amount_minor=line.amount_minor,
        currency=line.currency,
        bank_reference=line.entry_reference,
        actor=actor,
    )
    line.status = LS.ASSIGNED
    line.investor = investor
    line.deposit = deposit
    line.decided_by = actor
    line.decided_at = timezone.now()
    line.save(update_fields=["status", "investor", "deposit", "decided_by", "decided_at"])
    audit_record(
        actor=actor,
        action="funding.statement_line_assigned",
        target=line,
        before=before,
        after={
            "status": line.status,
            "investor": investor.pk,
            "deposit": deposit.pk,
            "amount_minor": line.amount_minor,
            "currency": line.currency,
            "entry_reference": line.entry_reference,
        },
        reason=reason,
    )
    return line


@transaction.atomic(durable=True)
def statement_line_return(*, line: BankStatementLine, actor, reason: str) -> BankStatementLine:
    """Staff mark a line returned to the sender. Nothing is booked: the line's money
    never entered the ledger. The transfer back is made in the bank, outside the
    platform; this records the decision and its reason."""
    _require_staff(actor, REVIEW_PERMISSION)
    reason = _reason_clean(reason, what="return it")
    line = _line_for_decision(line)
    before = {"status": line.status, "reason": line.reason}
    line.status = LS.RETURNED
    line.reason = reason
    line.decided_by = actor
    line.decided_at = timezone.now()
    line.save(update_fields=["status", "reason", "decided_by", "decided_at"])
    audit_record(
        actor=actor,
        action="funding.statement_line_returned",
        target=line,
        before=before,
        after={
            "status": line.status,
            "amount_minor": line.amount_minor,
            "currency": line.currency,
            "entry_reference": line.entry_reference,
            "remitter_iban": line.remitter_iban,
        },
        reason=reason,
    )
    return line
