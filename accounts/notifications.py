"""Emails that tell a user their request was decided or their money and tokens moved.

`notify` sends after the current database transaction commits, so nobody is told about a
change that was rolled back, and a mail failure never undoes the change (it is logged).
The mail is plain text with a link to the page where the user sees the details; it never
carries amounts of other users, keys or document contents. Sending is synchronous on
commit through Django's mail backend (SMTP in production, files in `make run`, memory in
the tests); a deployment with a slow relay can point EMAIL_BACKEND at a queueing backend."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

logger = logging.getLogger("accounts.notifications")

SIGNATURE = "\n\n— RWA Marketplace\nYou receive this because you have an account with us."


def notify(*, user, subject: str, body: str, path: str = "") -> None:
    if user is None or not getattr(user, "email", ""):
        return
    link = f"\n\n{settings.PUBLIC_BASE_URL.rstrip('/')}{path}" if path else ""
    message = f"{body}{link}{SIGNATURE}"
    recipient, user_pk = user.email, user.pk

    def send():
        try:
            send_mail(
                subject=f"[RWA Marketplace] {subject}", message=message, from_email=None, recipient_list=[recipient]
            )
        except Exception:  # the change stands; the user still sees it in the app
            logger.exception("notification %r to user %s could not be sent", subject, user_pk)

    transaction.on_commit(send)
