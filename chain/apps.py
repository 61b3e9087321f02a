from django.apps import AppConfig


class ChainConfig(AppConfig):
    name = "chain"

    def ready(self) -> None:
        # Connect the Celery signal handlers of the worker heartbeat (chain/heartbeat.py)
        # and of the wedged-worker watchdog (chain/watchdog.py).
        from . import heartbeat, watchdog  # noqa: F401
