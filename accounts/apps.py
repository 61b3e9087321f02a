from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from allauth.mfa.signals import authenticator_added

        from . import checks  # noqa: F401  (registers the system checks)
        from .mfa import record_second_factor_on_activation
        from .roles import roles_sync_on_migrate

        authenticator_added.connect(record_second_factor_on_activation, dispatch_uid="accounts.mfa_activated")
        # Runs after every app's migrations so permissions added by later apps join
        # their roles on the next migrate.
        post_migrate.connect(roles_sync_on_migrate, dispatch_uid="accounts.roles_sync")
