"""Row locks of the marketplace. THE lock order, for every transaction that takes more
than one of them:

    1. chain.ChainTransaction (a settlement row: compensation; the outbox's confirm/fail
       callbacks already hold it when they run)
    2. Holding
    3. LedgerAccount, several at once in pk order
    4. Offering (last of the buyer's locks: every buyer of an offering queues on it, so
       order_place takes it with its final UPDATE, just before the commit)
    5. PrimaryOrder / Withdrawal
    6. the audit chain head (compliance.audit_record, always last)

A transaction may skip levels but never goes back up. Rows that are only inserted (a
new order, journal entries, postings, the outbox row) take no lock anyone waits on: the
foreign keys of an insert take KEY SHARE on the rows they point to, which the NO KEY
UPDATE locks below (and plain UPDATEs) do not conflict with."""

from django.db.models import Q

from accounts.models import User
from chain.models import ChainTransaction

from .models import Holding, LedgerAccount, Offering, PrimaryOrder, Withdrawal


def chain_transaction_lock(*, pk: int) -> ChainTransaction:
    return ChainTransaction.objects.select_for_update().get(pk=pk)


def offering_lock(*, pk: int) -> Offering:
    # NO KEY UPDATE: the offering's key never changes, and a buyer's order insert (KEY
    # SHARE through its foreign key) must not wait for staff editing the terms.
    return Offering.objects.select_for_update(of=("self",), no_key=True).select_related("asset").get(pk=pk)


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


def order_lock(*, pk: int) -> PrimaryOrder:
    return (
        PrimaryOrder.objects.select_for_update(of=("self",)).select_related("offering", "asset", "chain_tx").get(pk=pk)
    )


def withdrawal_lock(*, pk: int) -> Withdrawal:
    return Withdrawal.objects.select_for_update().get(pk=pk)
