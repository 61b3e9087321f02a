from celery import shared_task

from .services import kyc_expiry_reminders_send


@shared_task(name="compliance.tasks.kyc_expiry_reminders")
def kyc_expiry_reminders() -> int:
    return kyc_expiry_reminders_send()
