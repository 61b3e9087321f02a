from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance (KYC, sanctions, audit)"

    def ready(self):
        from . import receivers

        receivers.connect()
