from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from .roles import roles_sync_on_migrate

        # Runs after every app's migrations so permissions added by later apps join
        # their roles on the next migrate.
        post_migrate.connect(roles_sync_on_migrate, dispatch_uid="accounts.roles_sync")
