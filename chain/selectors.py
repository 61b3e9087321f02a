from datetime import datetime

from django.db.models import QuerySet

from .models import ChainAccount, ChainTransaction

PLATFORM_ROLES = (
    ChainAccount.Role.TREASURY,
    ChainAccount.Role.MANAGER,
    ChainAccount.Role.FREEZE,
    ChainAccount.Role.CLAWBACK,
    ChainAccount.Role.FUNDING,
)


class ChainNotBootstrapped(LookupError):
    def __init__(self, role: str):
        super().__init__(f"the platform {role!r} account does not exist: run `python manage.py chain_bootstrap` first")
        self.role = role


def platform_account(role: str) -> ChainAccount:
    """The platform's account for `role` (treasury, manager, freeze, clawback, funding)."""
    if role not in PLATFORM_ROLES:
        raise ValueError(f"{role!r} is not a platform role; expected one of {', '.join(PLATFORM_ROLES)}")
    account = ChainAccount.objects.filter(role=role).first()
    if account is None:
        raise ChainNotBootstrapped(role)
    return account


def treasury_and_investor_account(user) -> tuple[ChainAccount, ChainAccount | None]:
    """The treasury (sender of primary sales) and the user's custodial account (None when
    not created yet), in one query: each is unique (one account per platform role, one per
    user). Written out: every purchase reads them, and the ORM's filter on a Q costs twice
    the Python of the statement (bench/purchase)."""
    treasury = investor = None
    for account in ChainAccount.objects.raw(_TREASURY_AND_USER_SQL, [ChainAccount.Role.TREASURY, user.pk]):
        if account.role == ChainAccount.Role.TREASURY:
            treasury = account
        else:
            investor = account
    if treasury is None:
        raise ChainNotBootstrapped(ChainAccount.Role.TREASURY)
    return treasury, investor


_TREASURY_AND_USER_SQL = f"SELECT * FROM {ChainAccount._meta.db_table} WHERE role = %s OR user_id = %s"


def platform_accounts() -> QuerySet[ChainAccount]:
    return ChainAccount.objects.exclude(role=ChainAccount.Role.INVESTOR).order_by("role")


def investor_account_for_user(user) -> ChainAccount | None:
    return ChainAccount.objects.filter(user=user).first()


def investor_accounts() -> QuerySet[ChainAccount]:
    """Every custodial investor account (reconciliation walks them all)."""
    return ChainAccount.objects.filter(role=ChainAccount.Role.INVESTOR)


def asset_transfers_in_flight(*, asset_id: int) -> QuerySet[ChainTransaction]:
    """Unfinished transfers of `asset_id`: balances on chain may still move."""
    return ChainTransaction.objects.filter(
        kind=ChainTransaction.Kind.ASSET_TRANSFER,
        status__in=[ChainTransaction.Status.PENDING, ChainTransaction.Status.SUBMITTED],
        payload__asset_id=asset_id,
    )


def chain_transactions_stale(*, before: datetime) -> QuerySet[ChainTransaction]:
    """Unfinished rows whose next attempt should have started before `before`."""
    return ChainTransaction.objects.filter(
        status__in=[ChainTransaction.Status.PENDING, ChainTransaction.Status.SUBMITTED],
        next_attempt_at__lt=before,
    ).order_by("pk")
