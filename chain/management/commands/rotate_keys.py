from django.core.management.base import BaseCommand

from chain.custody import get_backend
from chain.models import ChainAccount
from chain.services import chain_account_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-wrap every account's data key under the active master key "
        "(CUSTODY_ACTIVE_KEY_ID). Keep the old key configured until this reports 0 left."
    )

    def handle(self, *args, **options):
        active = get_backend().active_key_id()
        rotated = chain_account_keys_rotate()
        left = ChainAccount.objects.exclude(key_id=active).count()
        self.stdout.write(f"re-wrapped {rotated} key(s) under {active!r}; {left} left under other master keys")
