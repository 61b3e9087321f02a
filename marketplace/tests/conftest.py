import pytest

from marketplace.services import deposit_record

from .factories import OfferingFactory, StaffFactory, verified_investor


@pytest.fixture
def platform_accounts(db):
    """The platform's role accounts in the database (no chain: order_place only needs
    the treasury's address for the outbox row)."""
    from chain.services import platform_accounts_ensure

    return {account.role: account for account, _ in platform_accounts_ensure()}


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def offering(platform_accounts):
    return OfferingFactory()


@pytest.fixture
def investor(db):
    return verified_investor()


@pytest.fixture
def fund(staff):
    counter = iter(range(1, 10**9))

    def fund(user, amount_minor, currency="EUR"):
        return deposit_record(
            investor=user,
            amount_minor=amount_minor,
            currency=currency,
            bank_reference=f"TEST-{user.pk}-{next(counter)}",
            actor=staff,
        )

    return fund
