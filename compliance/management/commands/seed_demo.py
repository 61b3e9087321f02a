"""Demo data for `make run`: one login per role, emails verified, printed at the end.
Idempotent: running it again resets the demo passwords and changes nothing else."""

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from accounts.roles import ADMIN, COMPLIANCE_OFFICER, INVESTOR, ISSUER
from accounts.services import user_add_role
from compliance.demo import kyc_demo_seed

DEMO_PASSWORD = "demo-Passw0rd!"
DEMO_USERS = [
    ("admin@demo.rwa", "Ada Admin", [ADMIN, INVESTOR], True),
    ("compliance@demo.rwa", "Colin Compliance", [COMPLIANCE_OFFICER, INVESTOR], False),
    ("issuer@demo.rwa", "Iris Issuer", [ISSUER, INVESTOR], False),
    ("investor@demo.rwa", "Ivan Investor", [INVESTOR], False),
    # Two more verified investors: the other side of the demo order book (seed_demo_book).
    ("nora@demo.rwa", "Nora Novak", [INVESTOR], False),
    ("otto@demo.rwa", "Otto Olsen", [INVESTOR], False),
    # A holder whose KYC lapses after buying: the demo's held distribution payout
    # (marketplace seed_demo_distributions).
    ("lena@demo.rwa", "Lena Lindqvist", [INVESTOR], False),
    # KYC demo (compliance.demo): an investor without KYC and a sanctions-flagged applicant.
    ("una@demo.rwa", "Una Unverified", [INVESTOR], False),
    ("viktor@demo.rwa", "Viktor Drakov", [INVESTOR], False),
]


class Command(BaseCommand):
    help = "Create the demo users (one per role) with verified emails."

    def handle(self, *args, **options):
        # Users and roles in one transaction; the KYC demo then calls the compliance
        # services, each in its own (durable) transaction. Both halves are idempotent.
        with transaction.atomic():
            rows, users = self._users()
        kyc_lines = kyc_demo_seed(users=users, reviewer=users["compliance@demo.rwa"])
        self._print(rows, kyc_lines)

    def _users(self):
        rows, users = [], {}
        for email, name, roles, superuser in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email, DEMO_PASSWORD, full_name=name)
            else:
                user.set_password(DEMO_PASSWORD)
            user.is_superuser = superuser
            user.save()
            for role in roles:
                user_add_role(user=user, role=role)
            EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
            rows.append((", ".join(r.label for r in roles), email))
            users[email] = user
        return rows, users

    def _print(self, rows, kyc_lines):
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {DEMO_PASSWORD})"))
        for roles, email in rows:
            self.stdout.write(f"  {email:<24} {roles}")
        self.stdout.write("KYC demo (sample sanctions list loaded):")
        for line in kyc_lines:
            self.stdout.write(line)
