"""The cash ledger's one writer: `ledger_post`.

Every movement of cash is a `JournalEntry` whose postings sum to zero per currency.
Balances on `LedgerAccount` move in the same transaction, by the posted amounts, in
account-pk order (the lock order of locks.py). Callers check "enough cash" under the
account locks first for a clear message; the database constraint
`ledger_balance_not_negative` is the last line of defence."""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F

from .bulk_sql import update_from_values
from .models import JournalEntry, LedgerAccount, Posting

# Above this many accounts in one entry, balances move in one UPDATE instead of one each.
MANY_ACCOUNTS = 8


class LedgerError(ValueError):
    """A programming error: an unbalanced or malformed entry. Never shown to users."""


@dataclass(frozen=True)
class Leg:
    account: LedgerAccount
    amount_minor: int


def ledger_post(
    *,
    kind: str,
    legs: list[Leg],
    memo: str = "",
    created_by=None,
    order=None,
    deposit=None,
    withdrawal=None,
    trade_order=None,
    trade=None,
    distribution=None,
    wide: bool = False,
) -> JournalEntry:
    """Write one balanced journal entry and move the balances. Call inside the caller's
    transaction, after locking the accounts (locks.ledger_accounts_lock). `wide`: move
    every balance in one statement whatever the number of accounts (a distribution
    batch: a constant number of statements per batch)."""
    if not transaction.get_connection().in_atomic_block:
        raise LedgerError("ledger_post must run inside the caller's transaction")
    if kind not in JournalEntry.Kind.values:
        raise LedgerError(f"unknown journal entry kind {kind!r}")
    if len(legs) < 2:
        raise LedgerError("a journal entry needs at least two postings")
    per_currency: dict[str, int] = defaultdict(int)
    per_account: dict[int, int] = defaultdict(int)
    for leg in legs:
        amount = leg.amount_minor
        if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
            raise LedgerError(f"posting amounts are non-zero integers of minor units, not {amount!r}")
        if leg.account.pk is None:
            raise LedgerError("post to saved accounts only")
        per_currency[leg.account.currency] += amount
        per_account[leg.account.pk] += amount
    unbalanced = {c: s for c, s in per_currency.items() if s != 0}
    if unbalanced:
        raise LedgerError(f"journal entry does not balance: {unbalanced}")

    entry = JournalEntry(
        kind=kind,
        memo=memo[:300],
        created_by=created_by,
        order=order,
        deposit=deposit,
        withdrawal=withdrawal,
        trade_order=trade_order,
        trade=trade,
        distribution=distribution,
    )
    moved = {pk: delta for pk, delta in sorted(per_account.items()) if delta}
    if connection.vendor == "postgresql" and not wide and len(moved) <= MANY_ACCOUNTS:
        _post_in_one_statement(entry, legs, moved)
        return _truthful(entry, legs)
    entry.save(force_insert=True)
    Posting.objects.bulk_create(
        [Posting(entry=entry, account=leg.account, amount_minor=leg.amount_minor) for leg in legs]
    )
    if wide or len(moved) > MANY_ACCOUNTS:
        # One statement for a wide entry (a distribution batch pays thousands of holders).
        update_from_values(LedgerAccount, columns=["balance"], rows=moved.items(), increment=["balance"])
    else:
        for account_pk, delta in moved.items():
            LedgerAccount.objects.filter(pk=account_pk).update(balance=F("balance") + delta)
    return _truthful(entry, legs)


def _truthful(entry: JournalEntry, legs: list[Leg]) -> JournalEntry:
    for leg in legs:  # keep the caller's instances truthful
        leg.account.balance += leg.amount_minor
    return entry


# The entry, its postings and the balances in one statement (PostgreSQL's data-modifying
# CTEs): what the ORM path below it writes in four or more (an INSERT of the entry, one of
# the postings, an UPDATE per account), a third of a purchase's statements and about 3 ms
# of its Python (bench/purchase). The database checks the same constraints (postings not
# zero, balances not negative: an IntegrityError rolls the whole statement back). The
# accounts are locked by the caller before, in pk order, so the UPDATE takes no new lock.
_ENTRY_COLUMNS = (
    "kind",
    "memo",
    "order_id",
    "deposit_id",
    "withdrawal_id",
    "trade_order_id",
    "trade_id",
    "distribution_id",
    "created_by_id",
    "created_at",
)
_POST_SQL = (
    f"WITH entry AS (INSERT INTO marketplace_journalentry ({', '.join(_ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(_ENTRY_COLUMNS))}) RETURNING id), "
    "postings AS (INSERT INTO marketplace_posting (entry_id, account_id, amount_minor) "
    "SELECT entry.id, leg.account, leg.amount FROM entry, unnest(%s::bigint[], %s::bigint[]) AS leg(account, amount)), "
    "balances AS (UPDATE marketplace_ledgeraccount SET balance = marketplace_ledgeraccount.balance + moved.delta "
    "FROM unnest(%s::bigint[], %s::bigint[]) AS moved(account, delta) "
    "WHERE marketplace_ledgeraccount.id = moved.account) "
    "SELECT id FROM entry"
)


def _post_in_one_statement(entry: JournalEntry, legs: list[Leg], moved: dict[int, int]) -> None:
    params = [getattr(entry, column) for column in _ENTRY_COLUMNS]
    params += [[leg.account.pk for leg in legs], [leg.amount_minor for leg in legs]]
    params += [list(moved), list(moved.values())]
    with connection.cursor() as cursor:
        cursor.execute(_POST_SQL, params)
        (entry.pk,) = cursor.fetchone()
    entry._state.adding = False
    entry._state.db = connection.alias


def fee_for(*, gross_minor: int, fee_bps: int) -> int:
    """The platform fee on `gross_minor`: basis points, rounded half up to the minor unit,
    in integers only."""
    return (gross_minor * fee_bps + 5_000) // 10_000


def trade_fee(*, gross_minor: int, fee_bps: int) -> int:
    """A secondary-market fee charged on a trade: basis points of price × quantity,
    rounded DOWN to the minor unit (in the payer's favour), integers only."""
    return gross_minor * fee_bps // 10_000


def trade_fee_ceiling(*, gross_minor: int, fee_bps: int) -> int:
    """The most a buy order's fee can come to, as held at entry: the same rate rounded UP.
    Rounding the reservation up and the charge down is what makes every fill release a
    non-negative rest: ceil(a + b) >= floor(a) + ceil(b)."""
    return -(-gross_minor * fee_bps // 10_000)
