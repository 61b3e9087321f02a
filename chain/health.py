"""chain's readiness check, named in settings.READINESS_CHECKS (config/health.py)."""

from django.conf import settings

from .gateway import algod_status


def check_algod() -> str | None:
    if not settings.ALGOD_URL:
        return None
    return f"round {algod_status()['last-round']}"
