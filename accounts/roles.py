"""Roles are Django groups. This module is the one place that says which permissions
each role carries; `roles_sync` makes the database match it after every migrate."""

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission


@dataclass(frozen=True)
class Role:
    name: str
    label: str
    # "app_label.codename"; permissions of apps not installed yet are skipped.
    permissions: tuple[str, ...]
    staff: bool = False


INVESTOR = Role("investor", "Investor", permissions=())
ISSUER = Role("issuer", "Issuer", permissions=())
# The compliance app's back-office permissions: read and decide KYC, freeze accounts,
# read sanctions lists and the audit log (which nobody can edit).
COMPLIANCE_PERMISSIONS = (
    "compliance.view_kycapplication",
    "compliance.review_kycapplication",
    "compliance.view_kycdocument",
    "compliance.view_investorprofile",
    "compliance.add_investorprofile",
    "compliance.change_investorprofile",
    "compliance.freeze_investorprofile",
    "compliance.view_sanctionsentry",
    "compliance.view_auditentry",
    # Withholding tax profiles and held distribution payouts (docs/distributions.md).
    "compliance.view_taxprofile",
    "compliance.add_taxprofile",
    "compliance.change_taxprofile",
    "marketplace.view_distributionpayment",
    "marketplace.release_distribution_payment",
)
COMPLIANCE_OFFICER = Role(
    "compliance_officer",
    "Compliance officer",
    permissions=("accounts.view_user", *COMPLIANCE_PERMISSIONS),
    staff=True,
)
# Back-office operations on cash, orders and the outbox (each action is also audited).
OPERATIONS_PERMISSIONS = (
    "marketplace.view_offering",
    "marketplace.change_offering",
    "marketplace.view_ledgeraccount",
    "marketplace.view_journalentry",
    "marketplace.view_deposit",
    "marketplace.add_deposit",
    # Funding (docs/funding.md): bank statement import and the review queue of its lines.
    "marketplace.view_bankstatement",
    "marketplace.import_bankstatement",
    "marketplace.view_bankstatementline",
    "marketplace.review_bankstatementline",
    "marketplace.view_withdrawal",
    "marketplace.change_withdrawal",
    # Payouts (docs/funding.md): the payout-account review queue and SEPA payout files.
    "marketplace.view_payoutaccount",
    "marketplace.review_payoutaccount",
    "marketplace.view_payoutbatch",
    "marketplace.pay_withdrawals",
    "marketplace.view_primaryorder",
    "marketplace.change_primaryorder",
    "marketplace.view_holding",
    "marketplace.view_market",
    "marketplace.change_market",
    "marketplace.halt_market",
    "marketplace.change_market_controls",
    "marketplace.view_tradeorder",
    "marketplace.cancel_any_tradeorder",
    "marketplace.view_trade",
    "marketplace.retry_trade",
    "marketplace.reverse_trade",
    # Income distributions: approve (never one's own declaration: four eyes in the engine),
    # fund and pay (docs/distributions.md).
    "marketplace.view_distribution",
    "marketplace.approve_distribution",
    "marketplace.pay_distribution",
    "marketplace.view_distributionpayment",
    "chain.view_chaintransaction",
    "chain.change_chaintransaction",
    "chain.view_chainaccount",
)
ADMIN = Role(
    "admin",
    "Administrator",
    permissions=(
        "accounts.view_user",
        "accounts.change_user",
        "assets.view_asset",
        "assets.change_asset",
        "assets.review_asset",
        "accounts.grant_issuer_role",
        "auth.view_group",
        *COMPLIANCE_PERMISSIONS,
        *OPERATIONS_PERMISSIONS,
    ),
    staff=True,
)
ROLES = (INVESTOR, ISSUER, COMPLIANCE_OFFICER, ADMIN)
ROLES_BY_NAME = {role.name: role for role in ROLES}


def _permissions_for(role: Role) -> list[Permission]:
    perms = []
    for dotted in role.permissions:
        app_label, codename = dotted.split(".", 1)
        perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if perm is not None:
            perms.append(perm)
    return perms


def roles_sync() -> None:
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role.name)
        group.permissions.set(_permissions_for(role))


def roles_sync_on_migrate(sender, **kwargs) -> None:
    # post_migrate fires once per app and each app's permissions are created in its own
    # turn, so sync every time: the last call sees them all.
    roles_sync()


def user_roles(user) -> list[Role]:
    if not user.is_authenticated:
        return []
    names = {g.name for g in user.groups.all()}
    return [role for role in ROLES if role.name in names]


def user_has_role(user, role: Role) -> bool:
    return user.is_authenticated and user.groups.filter(name=role.name).exists()
