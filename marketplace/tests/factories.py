import factory

from accounts.roles import ADMIN
from accounts.tests.factories import UserFactory
from assets.models import Asset
from assets.tests.factories import AssetFactory
from compliance.tests.factories import KycApplicationFactory
from marketplace.models import Offering


class LiveAssetFactory(AssetFactory):
    status = Asset.Status.LIVE
    asa_id = factory.Sequence(lambda n: 900_000 + n)


class OfferingFactory(factory.django.DjangoModelFactory):
    """An open offering of a live asset (fake asa id: no chain)."""

    class Meta:
        model = Offering

    asset = factory.SubFactory(LiveAssetFactory)
    price_per_fraction_minor = 10_000  # 100.00
    currency = "EUR"
    fractions_for_sale = 1_000
    min_purchase = 1
    max_purchase = 100
    fee_bps = 150
    status = Offering.Status.OPEN


class StaffFactory(UserFactory):
    """An administrator (superuser, staff) who records cash and resolves settlements."""

    is_staff = True
    is_superuser = True

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create:
            from accounts.services import user_add_role

            for role in (ADMIN,) if extracted is None else extracted:
                user_add_role(user=self, role=role)


def verified_investor(**kwargs):
    """An investor with approved KYC (GB, retail) and a custodial account."""
    from chain.services import investor_account_get_or_create

    user = UserFactory(**kwargs)
    KycApplicationFactory(user=user, approved=True)
    investor_account_get_or_create(user=user)
    return user


def usable_payout_account(investor, **kwargs):
    """A payout account past its cooling-off period, active (what a withdrawal names).
    The IBAN is a valid one generated for the investor (unique per investor)."""
    from datetime import timedelta

    from django.utils import timezone
    from schwifty import IBAN

    from marketplace.models import PayoutAccount

    n = PayoutAccount.objects.count() + 1
    iban = IBAN.generate("DE", bank_code="37040044", account_code=f"{investor.pk:05d}{n:05d}")
    fields = dict(
        investor=investor,
        holder_name=investor.full_name or "Test Holder",
        iban=str(iban.compact),
        bic="COBADEFFXXX",
        status=PayoutAccount.Status.ACTIVE,
        name_matches_kyc=True,
        usable_from=timezone.now() - timedelta(days=2),
    )
    fields.update(kwargs)
    return PayoutAccount.objects.create(**fields)
