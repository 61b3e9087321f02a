"""Row locks of the marketplace. THE lock order, for every transaction that takes more
than one of them:

    0. PayoutBatch (FOR NO KEY UPDATE: marking a payout file sent or cancelling it,
       payouts.py; then the ledger accounts and the batch's withdrawals)
    0b. Distribution (FOR UPDATE: approving, funding, paying a batch, cancelling,
       releasing a held payment, distributions.py; its payments change only under it;
       then the ledger accounts, locked together in one statement)
    1. chain.ChainTransaction (a settlement row: compensation; the outbox's confirm/fail
       callbacks already hold it when they run)
    2a. MarketWideControl (pk=1, the whole market's halt): FOR UPDATE by a market-wide
       halt or resume (which then takes every Market in pk order), FOR SHARE by
       `trading.market_open` before it creates a book (market_controls)
    2. Market: the order book of one asset (FOR NO KEY UPDATE). Every change to a book
       (trade_order_place / _cancel / _modify, trade_orders_expire) takes it first, so
       matching per asset is serialised and different assets match in parallel; the
       trade orders of a book change only under it (they need no row lock of their own).
       The settlement callbacks and trade_reverse never take it. Several books at once
       (none today) would be taken in pk order.
    3. Holding, several at once in pk order (matching: the buyer's and the sellers')
    4. LedgerAccount, several at once in pk order
    4a. PayoutAccount (FOR NO KEY UPDATE: withdrawal_request after the ledger accounts;
       removing or reviewing an account takes it alone)
    5. Offering (last of the buyer's locks: every buyer of an offering queues on it, so
       order_place takes it with its final UPDATE, just before the commit; matching
       takes it only when a new holder receives units of an asset with max_holders)
    6. PrimaryOrder / Withdrawal / Trade / BankStatementLine (a reviewed statement line, funding.py)
    7. the audit chain head (compliance.audit_record, always last)

A transaction may skip levels but never goes back up. Rows that are only inserted (a
new order, journal entries, postings, the outbox row) take no lock anyone waits on: the
foreign keys of an insert take KEY SHARE on the rows they point to, which the NO KEY
UPDATE locks below (and plain UPDATEs) do not conflict with."""

from typing import TypeVar

from django.db import connection
from django.db.models import Field, Model, Q
from django.db.transaction import TransactionManagementError

from accounts.models import User
from assets.models import Asset
from chain.models import ChainTransaction

from .models import (
    Distribution,
    Holding,
    LedgerAccount,
    Market,
    MarketWideControl,
    Offering,
    PrimaryOrder,
    Trade,
    Withdrawal,
)


def chain_transaction_lock(*, pk: int) -> ChainTransaction:
    return ChainTransaction.objects.select_for_update().get(pk=pk)


_WithAsset = TypeVar("_WithAsset", Offering, Market)


def offering_lock(*, pk: int) -> Offering:
    # NO KEY UPDATE: the offering's key never changes, and a buyer's order insert (KEY
    # SHARE through its foreign key) must not wait for staff editing the terms.
    return offering_read(pk=pk, lock=True)


def offering_read(*, pk: int, lock: bool = False) -> Offering:
    """The offering with its asset; with `lock`, the offering's row locked (`offering_lock`)."""
    offering = _with_asset(Offering, "t.id = %s", [pk], lock=lock)
    if offering is None:
        raise Offering.DoesNotExist(f"Offering {pk} does not exist.")
    return offering


def _with_asset(model: type[_WithAsset], where: str, params: list, *, lock: bool = False) -> _WithAsset | None:
    """The first row of `model` (an Offering or a Market, as `t`) matching `where`, with
    its asset loaded, as `select_related("asset")` reads them; with `lock`, that row FOR
    NO KEY UPDATE. Written out, since every purchase starts with the offering and every
    trade order with its book: the ORM's statement was a sixth of a purchase's Python
    (bench/purchase). Values pass through the fields' own converters, as the ORM's do.
    SQLite (`make run`) has no row locks; its service transactions hold the database's
    write lock from BEGIN IMMEDIATE."""
    fields: tuple[Field, ...] = tuple(model._meta.concrete_fields)
    sql = (
        f"SELECT {', '.join(f't.{f.column}' for f in fields)}, {', '.join(f'a.{f.column}' for f in _ASSET_FIELDS)} "
        f"FROM {model._meta.db_table} t JOIN {Asset._meta.db_table} a ON a.id = t.asset_id WHERE {where}"
    )
    if lock:
        if not connection.in_atomic_block:
            raise TransactionManagementError("row locks are taken inside the caller's transaction")
        if connection.features.has_select_for_update:
            sql += " FOR NO KEY UPDATE OF t"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = db_values(row, (*fields, *_ASSET_FIELDS), key=model)
    instance = model.from_db(connection.alias, [f.attname for f in fields], values[: len(fields)])
    instance.asset = Asset.from_db(connection.alias, [f.attname for f in _ASSET_FIELDS], values[len(fields) :])
    return instance


_ASSET_FIELDS = Asset._meta.concrete_fields
# Per (database alias, key): (position, converters, column) of the values that need them.
_CONVERTERS: dict[tuple, list] = {}


def db_values(row, fields, *, key) -> list:
    """A row read by hand-written SQL, each value passed through its field's converters
    as the ORM would (SQLite's datetimes, JSON, ...). `fields`: the row's fields in order,
    the same every time for one `key` (the converters are looked up once per key)."""
    key = (connection.alias, key)
    converters = _CONVERTERS.get(key)
    if converters is None:
        converters = []
        for position, field in enumerate(fields):
            column = field.get_col(field.model._meta.db_table)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                converters.append((position, found, column))
        _CONVERTERS[key] = converters
    values = list(row)
    for position, found, column in converters:
        for convert in found:
            values[position] = convert(values[position], column, connection)
    return values


def market_wide_control_lock(*, share: bool = False) -> MarketWideControl:
    """The whole market's halt row (level 2a), created when missing. FOR UPDATE to change
    it; FOR SHARE (`share=True`) to create a book, so a market-wide halt either waits for
    the new book or the new book sees the halt."""
    MarketWideControl.objects.get_or_create(pk=1)
    if share and not connection.features.has_select_for_update:
        # SQLite (`make run`): no row locks; every service transaction already holds the
        # database's write lock from its BEGIN IMMEDIATE, so a halt cannot interleave.
        return MarketWideControl.objects.get(pk=1)
    if share:
        return next(
            iter(
                MarketWideControl.objects.raw(
                    f"SELECT * FROM {MarketWideControl._meta.db_table} WHERE id = 1 FOR SHARE"
                )
            )
        )
    return MarketWideControl.objects.select_for_update().get(pk=1)


def market_lock(*, pk: int) -> Market:
    """The book's lock (level 2). NO KEY UPDATE: inserting an order or a trade takes KEY
    SHARE on the market through its foreign key and must not wait for it."""
    market = _with_asset(Market, "t.id = %s", [pk], lock=True)
    if market is None:
        raise Market.DoesNotExist(f"Market {pk} does not exist.")
    return market


def market_lock_for_asset(*, asset_id: int) -> Market | None:
    """The book's lock (level 2) found by its asset, or None when the asset has no
    market yet (then `trading.market_open` and `market_lock`): one statement where the
    usual path would read the row twice."""
    return _with_asset(Market, "t.asset_id = %s", [asset_id], lock=True)


def _rows_locked(model: type[Model], where: str, params: list, *, order_by_pk: bool = False) -> list:
    """The rows of `model` matching `where` (SQL), FOR UPDATE, in pk order when several.
    Written out for the holding and cash locks that every order takes: the ORM's
    select_for_update().filter() costs three times the Python for the same statement
    (bench/purchase). SQLite (`make run`) has no row locks; its service transactions hold
    the database's write lock from BEGIN IMMEDIATE."""
    if not connection.in_atomic_block:
        raise TransactionManagementError("row locks are taken inside the caller's transaction")
    sql = f"SELECT * FROM {model._meta.db_table} WHERE {where}"
    if order_by_pk:
        sql += f" ORDER BY {model._meta.pk.column}"
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    return list(model._default_manager.raw(sql, params))


def holdings_lock(*, pairs) -> dict[tuple[int, int], Holding]:
    """Lock (creating when missing) the holdings of (investor_id, asset_id) pairs, in pk
    order. Returns {(investor_id, asset_id): holding}."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    where = " OR ".join(["(investor_id = %s AND asset_id = %s)"] * len(wanted))
    params = [value for pair in wanted for value in pair]

    def locked():
        return {(h.investor_id, h.asset_id): h for h in _rows_locked(Holding, where, params, order_by_pk=True)}

    holdings = locked()
    if len(holdings) != len(wanted):
        Holding.objects.bulk_create(
            [Holding(investor_id=i, asset_id=a) for i, a in wanted if (i, a) not in holdings], ignore_conflicts=True
        )
        holdings = locked()
    return holdings


def holding_lock(*, investor, asset) -> Holding:
    """The investor's holding row, created empty when missing, locked."""
    return holdings_lock(pairs=[(investor.pk, asset.pk)])[(investor.pk, asset.pk)]


def ledger_accounts_lock(*, specs: list[tuple[str, User | None, str]]) -> list[LedgerAccount]:
    """Lock (creating when missing) the accounts given as (kind, user or None, currency),
    in pk order. Returns them in the order of `specs`."""

    def key(kind, user_id, currency):
        return kind, user_id, currency

    wanted = dict.fromkeys(key(k, getattr(u, "pk", None), c) for k, u, c in specs)
    clauses, params = [], []
    for kind, user_id, currency in wanted:
        if user_id is None:
            clauses.append("(kind = %s AND currency = %s AND user_id IS NULL)")
            params += [kind, currency]
        else:
            clauses.append("(kind = %s AND currency = %s AND user_id = %s)")
            params += [kind, currency, user_id]
    where = " OR ".join(clauses)

    def locked():
        return {
            key(a.kind, a.user_id, a.currency): a for a in _rows_locked(LedgerAccount, where, params, order_by_pk=True)
        }

    accounts = locked()
    if len(accounts) != len(wanted):  # first movement in this currency: open the accounts
        LedgerAccount.objects.bulk_create(
            [
                LedgerAccount(kind=k, user=u, currency=c)
                for k, u, c in specs
                if key(k, getattr(u, "pk", None), c) not in accounts
            ],
            ignore_conflicts=True,
        )
        accounts = locked()
    if len(accounts) != len(wanted):
        raise LookupError("ledger accounts could not be created")
    return [accounts[key(k, getattr(u, "pk", None), c)] for k, u, c in specs]


def ledger_accounts_lock_bulk(
    *, currency: str, platform_kinds: tuple[str, ...], user_kinds: dict[str, set[int]]
) -> tuple[dict[str, LedgerAccount], dict[tuple[str, int], LedgerAccount]]:
    """`ledger_accounts_lock` for wide entries (a distribution batch): the platform's
    accounts of `platform_kinds` and the users' accounts {kind: user ids}, created when
    missing, locked in ONE statement in pk order (the lock order above), whatever the
    number of users. Returns ({kind: platform account}, {(kind, user_id): account})."""
    query = Q(kind__in=platform_kinds, user__isnull=True)
    for kind, user_ids in user_kinds.items():
        query |= Q(kind=kind, user_id__in=sorted(user_ids))

    def locked():
        platform, users = {}, {}
        for a in LedgerAccount.objects.select_for_update().filter(query, currency=currency).order_by("pk"):
            if a.user_id is None:
                platform[a.kind] = a
            else:
                users[(a.kind, a.user_id)] = a
        return platform, users

    wanted = len(platform_kinds) + sum(len(ids) for ids in user_kinds.values())
    platform, users = locked()
    if len(platform) + len(users) != wanted:
        missing = [LedgerAccount(kind=k, currency=currency) for k in platform_kinds if k not in platform]
        missing += [
            LedgerAccount(kind=k, user_id=uid, currency=currency)
            for k, ids in user_kinds.items()
            for uid in ids
            if (k, uid) not in users
        ]
        LedgerAccount.objects.bulk_create(missing, ignore_conflicts=True)
        platform, users = locked()
    if len(platform) + len(users) != wanted:
        raise LookupError("ledger accounts could not be created")
    return platform, users


def distribution_lock(*, pk: int) -> Distribution:
    return Distribution.objects.select_for_update(of=("self",)).select_related("asset").get(pk=pk)


def order_lock(*, pk: int) -> PrimaryOrder:
    return (
        PrimaryOrder.objects.select_for_update(of=("self",)).select_related("offering", "asset", "chain_tx").get(pk=pk)
    )


def withdrawal_lock(*, pk: int) -> Withdrawal:
    return Withdrawal.objects.select_for_update().get(pk=pk)


def trade_lock(*, pk: int) -> Trade:
    return Trade.objects.select_for_update(of=("self",)).select_related("asset", "buyer", "seller").get(pk=pk)
