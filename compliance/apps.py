from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance (KYC, sanctions, audit)"

    def ready(self):
        # Not a cycle: receivers import models, which Django allows only once apps are loaded.
        from . import receivers

        receivers.connect()
