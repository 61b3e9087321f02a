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

from django.db import connection
from django.db.models import Q

from accounts.models import User
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


def offering_lock(*, pk: int) -> Offering:
    # NO KEY UPDATE: the offering's key never changes, and a buyer's order insert (KEY
    # SHARE through its foreign key) must not wait for staff editing the terms.
    return Offering.objects.select_for_update(of=("self",), no_key=True).select_related("asset").get(pk=pk)


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
    return Market.objects.select_for_update(of=("self",), no_key=True).select_related("asset").get(pk=pk)


def market_lock_for_asset(*, asset_id: int) -> Market | None:
    """The book's lock (level 2) found by its asset, or None when the asset has no
    market yet (then `trading.market_open` and `market_lock`): one statement where the
    usual path would read the row twice."""
    return (
        Market.objects.select_for_update(of=("self",), no_key=True)
        .select_related("asset")
        .filter(asset_id=asset_id)
        .first()
    )


def holdings_lock(*, pairs) -> dict[tuple[int, int], Holding]:
    """Lock (creating when missing) the holdings of (investor_id, asset_id) pairs, in pk
    order. Returns {(investor_id, asset_id): holding}."""
    wanted = set(pairs)
    if not wanted:
        return {}
    query = Q()
    for investor_id, asset_id in wanted:
        query |= Q(investor_id=investor_id, asset_id=asset_id)

    def locked():
        return {
            (h.investor_id, h.asset_id): h for h in Holding.objects.select_for_update().filter(query).order_by("pk")
        }

    holdings = locked()
    if len(holdings) != len(wanted):
        Holding.objects.bulk_create(
            [Holding(investor_id=i, asset_id=a) for i, a in wanted if (i, a) not in holdings], ignore_conflicts=True
        )
        holdings = locked()
    return holdings


def holding_lock(*, investor, asset) -> Holding:
    """The investor's holding row, created empty when missing, locked."""
    holding = Holding.objects.select_for_update().filter(investor=investor, asset=asset).first()
    if holding is None:
        Holding.objects.bulk_create([Holding(investor=investor, asset=asset)], ignore_conflicts=True)
        holding = Holding.objects.select_for_update().get(investor=investor, asset=asset)
    return holding


def ledger_accounts_lock(*, specs: list[tuple[str, User | None, str]]) -> list[LedgerAccount]:
    """Lock (creating when missing) the accounts given as (kind, user or None, currency),
    in pk order. Returns them in the order of `specs`."""

    def match(spec):
        kind, user, currency = spec
        return Q(kind=kind, currency=currency, **({"user": user} if user is not None else {"user__isnull": True}))

    query = Q()
    for spec in specs:
        query |= match(spec)

    def key(kind, user_id, currency):
        return kind, user_id, currency

    wanted = {key(k, getattr(u, "pk", None), c) for k, u, c in specs}

    def locked():
        return {
            key(a.kind, a.user_id, a.currency): a
            for a in LedgerAccount.objects.select_for_update().filter(query).order_by("pk")
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
