from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .events import endpoints_changed

        post_save.connect(endpoints_changed, sender="webhooks.WebhookEndpoint", dispatch_uid="webhooks.endpoints.save")
        post_delete.connect(
            endpoints_changed, sender="webhooks.WebhookEndpoint", dispatch_uid="webhooks.endpoints.delete"
        )
