"""`make run`: a READ-ONLY API token for the demo investor, printed at start with where the
API docs are (docs/api.md, "Demo"). DEMO ONLY: each start revokes the previous demo token and
creates a new one (the secret is never stored, so it cannot be printed again)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import User
from api.models import ApiToken
from api.services import api_token_create, api_token_revoke

DEMO_INVESTOR = "investor@demo.rwa"
NAME = "Demo read token (make run only)"


class Command(BaseCommand):
    help = "Create (replacing the previous one) a read-only API token for the demo investor and print it."

    def handle(self, *args, **options):
        investor = User.objects.filter(email=DEMO_INVESTOR).first()
        if investor is None:
            raise CommandError("Run `manage.py seed_demo` first.")
        for old in ApiToken.objects.filter(user=investor, name=NAME, revoked_at__isnull=True):
            api_token_revoke(token=old, actor=investor)
        _, text = api_token_create(
            user=investor, name=NAME, scopes=["read"], expires_at=timezone.now() + timedelta(days=30)
        )
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        self.stdout.write(
            f"API docs: {base}/api/v1/docs  ·  demo read token of {DEMO_INVESTOR} (demo only, replaced at each start):\n"
            f"  curl -H 'Authorization: Bearer {text}' {base}/api/v1/me/portfolio"
        )
