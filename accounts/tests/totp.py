"""RFC 6238 codes for tests, computed with allauth's own HOTP so they match what the
server checks. allauth refuses a code it has already accepted, so callers that need
two codes in a row ask for one from a time step they have not used yet."""

import time

from allauth.mfa import app_settings
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value


def totp_code(secret: str, *, counter: int | None = None) -> str:
    if counter is None:
        counter = int(time.time()) // app_settings.TOTP_PERIOD
    return format_hotp_value(hotp_value(secret, counter))


def fresh_totp_code(secret: str, *, used_counters: set[int]) -> str:
    """A code from a time step not in `used_counters` (waiting for the next step if
    needed, at most one period); records the step it used."""
    while True:
        counter = int(time.time()) // app_settings.TOTP_PERIOD
        if counter not in used_counters:
            used_counters.add(counter)
            return totp_code(secret, counter=counter)
        time.sleep(app_settings.TOTP_PERIOD - time.time() % app_settings.TOTP_PERIOD + 0.05)
