from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import User
from accounts.tasks import purge_unverified_signups

pytestmark = pytest.mark.integration


def test_real_worker_on_redis_runs_the_purge_task(celery_worker_process, settings):
    # Given a stale unverified signup and a stale but verified one
    old = timezone.now() - settings.UNVERIFIED_SIGNUP_TTL - timedelta(days=1)
    stale = User.objects.create_user("stale@example.com", "x-Long-passw0rd", date_joined=old)
    kept = User.objects.create_user("kept@example.com", "x-Long-passw0rd", date_joined=old)
    EmailAddress.objects.create(user=kept, email=kept.email, verified=True, primary=True)

    # When the task goes through the broker to the worker process
    result = purge_unverified_signups.apply_async()

    # Then the worker deleted exactly the stale one in the shared database
    deadline = timezone.now() + timedelta(seconds=30)
    while User.objects.filter(pk=stale.pk).exists() and timezone.now() < deadline:
        import time

        time.sleep(0.2)
    assert not User.objects.filter(pk=stale.pk).exists(), celery_worker_process.log()
    assert User.objects.filter(pk=kept.pk).exists()
    assert result.id in celery_worker_process.log()
