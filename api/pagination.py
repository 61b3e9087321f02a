"""Keyset (cursor) pagination, newest first: a page is the rows strictly after the last
row of the previous page in the list's order, never an OFFSET, so rows inserted between
two requests neither repeat nor push rows off the next page. The cursor is opaque to
clients: url-safe base64 of JSON naming the list and the last row's sort values."""

from __future__ import annotations

import base64
import binascii
import json
import operator
from dataclasses import dataclass
from datetime import date, datetime
from functools import reduce
from typing import Any, Literal

from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.http import urlencode
from ninja.errors import ValidationError as NinjaValidationError

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 300
MAX_BIGINT = 2**63 - 1

Kind = Literal["datetime", "date", "int"]


@dataclass(frozen=True)
class Key:
    path: str  # a lookup path ("created_at", "distribution__payment_date", "pk")
    kind: Kind


class Keyset:
    """Descending order on `keys` (the last must be unique: the primary key)."""

    def __init__(self, name: str, *keys: Key):
        self.name = name
        self.keys = keys

    def order(self, qs: QuerySet) -> QuerySet:
        return qs.order_by(*(f"-{k.path}" for k in self.keys))

    def after(self, values: list[Any]) -> Q:
        """Rows after `values` in descending order: (a < va) | (a = va & b < vb) | …"""
        branches = []
        equal = Q()
        for key, value in zip(self.keys, values, strict=True):
            branches.append(equal & Q(**{f"{key.path}__lt": value}))
            equal &= Q(**{key.path: value})
        return reduce(operator.or_, branches)

    def values_of(self, row: Model) -> list[Any]:
        values = []
        for key in self.keys:
            value: Any = row
            for part in key.path.split("__"):
                value = getattr(value, part)
            values.append(value)
        return values

    def encode(self, values: list[Any]) -> str:
        plain = [v.isoformat() if isinstance(v, date | datetime) else v for v in values]
        raw = json.dumps({"l": self.name, "k": plain}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> list[Any]:
        """The sort values a cursor carries, or a 422 naming the cursor."""
        try:
            if not cursor.isascii() or len(cursor) > MAX_CURSOR_LENGTH:
                raise ValueError
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("l") != self.name:
                raise ValueError
            plain = data.get("k")
            if not isinstance(plain, list) or len(plain) != len(self.keys):
                raise ValueError
            return [self._value(key, value) for key, value in zip(self.keys, plain, strict=True)]
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise NinjaValidationError(
                [
                    {
                        "loc": ("query", "cursor"),
                        "msg": "This cursor is not one this list gave out; start again without it.",
                        "type": "invalid_cursor",
                    }
                ]
            ) from None

    @staticmethod
    def _value(key: Key, value: Any) -> Any:
        if key.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BIGINT:
                raise ValueError
            return value
        if not isinstance(value, str) or len(value) > 40:
            raise ValueError
        if key.kind == "date":
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value)
        if timezone.is_naive(moment):
            raise ValueError
        return moment


@dataclass
class Page:
    items: list[Any]
    next: str | None


def paginate(request: HttpRequest, qs: QuerySet, keyset: Keyset, *, limit: int, cursor: str | None) -> Page:
    """One page of `qs` in the keyset's order: `limit` rows (one more is read to know
    whether a next page exists) and the absolute link to the next page."""
    qs = keyset.order(qs)
    if cursor:
        qs = qs.filter(keyset.after(keyset.decode(cursor)))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    link = None
    if more:
        query = urlencode({"limit": str(limit), "cursor": keyset.encode(keyset.values_of(rows[-1]))})
        link = request.build_absolute_uri(f"{request.path}?{query}")
    return Page(rows, link)
