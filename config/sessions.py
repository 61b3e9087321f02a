"""Django's database session store, with one change: a save that fails because the
database is unavailable says so. Django reports any DatabaseError on the session UPDATE
as a deleted session (UpdateError, then SessionInterrupted: 400 "The request's session was
deleted before the request completed"), which is false and tells the user nothing useful.
Re-raising the database error lets config/db_unavailable.py answer 503 "please try
again" instead. A session that really was deleted (the UPDATE matched no row) is still
reported as before."""

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from config.db_unavailable import is_unavailable


class SessionStore(DatabaseSessionStore):
    def save(self, must_create: bool = False) -> None:
        try:
            super().save(must_create=must_create)
        except UpdateError as exc:
            cause = exc.__context__
            if cause is not None and is_unavailable(cause):
                raise cause from None
            raise
