from celery import shared_task

from .services import unverified_signups_purge


@shared_task(name="accounts.tasks.purge_unverified_signups")
def purge_unverified_signups() -> int:
    return unverified_signups_purge()
