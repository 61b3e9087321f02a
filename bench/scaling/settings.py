"""Settings of the scaling bench: the purchase bench's (test settings, DEBUG off, the
bench URLconf with its bare view, persistent connections)."""

from bench.purchase.settings import *  # noqa: F403
from bench.purchase.settings import ALLOWED_HOSTS

ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # Django's test Client, in-process
