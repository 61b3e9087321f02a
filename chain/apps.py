from django.apps import AppConfig


class ChainConfig(AppConfig):
    name = "chain"

    def ready(self) -> None:
        # Connects the worker heartbeat's Celery signal handlers (chain/heartbeat.py).
        from . import heartbeat  # noqa: F401
