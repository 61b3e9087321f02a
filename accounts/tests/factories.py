import factory
from allauth.account.models import EmailAddress

from accounts.models import User
from accounts.roles import INVESTOR
from accounts.services import user_add_role

DEFAULT_PASSWORD = "Corr3ct-Horse-Battery"


class EmailAddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailAddress

    user = factory.SubFactory("accounts.tests.factories.UserFactory", email_address=None)
    email = factory.SelfAttribute("user.email")
    primary = True
    verified = True


class UserFactory(factory.django.DjangoModelFactory):
    """A user as sign-up leaves them once the email is verified: an investor with a
    verified primary address and DEFAULT_PASSWORD.

    `email_address__verified=False` leaves the address unverified, `email_address=None`
    creates none, `roles=[...]` replaces the roles (`roles=[]` for none)."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.django.Password(DEFAULT_PASSWORD)
    email_address = factory.RelatedFactory(
        EmailAddressFactory, factory_related_name="user", email=factory.SelfAttribute("..email")
    )

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if not create:
            return
        for role in (INVESTOR,) if extracted is None else extracted:
            user_add_role(user=self, role=role)
