"""Back-office lists stay flat as their tables grow (config/backoffice.py): a small list
is counted exactly, a large one from the planner's estimate (no COUNT(*) over it), the
currency filter offers our currencies without reading the table, and every registered
admin uses both."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import UserFactory
from config import backoffice
from config.backoffice import EstimatedCountPaginator, LargeTableAdminMixin
from config.money import CURRENCIES
from marketplace.tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def _count(queryset) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        count = EstimatedCountPaginator(queryset, 10).count
    return count, [q["sql"] for q in ctx.captured_queries]


def test_a_small_list_is_counted_exactly_with_a_bound():
    UserFactory.create_batch(7)
    count, sql = _count(User.objects.all())
    assert count == User.objects.count() == 7
    assert "LIMIT 10001" in sql[-1] and sql[-1].startswith("SELECT COUNT(*)")


def test_a_large_list_is_the_planners_estimate_without_counting_it(monkeypatch):
    monkeypatch.setattr(backoffice, "EXACT_COUNT_UP_TO", 3)
    UserFactory.create_batch(40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_user")
    count, sql = _count(User.objects.all())
    assert len(sql) == 1 and sql[0].startswith("EXPLAIN") and "COUNT(" not in sql[0]
    assert 30 <= count <= 50  # the statistics' row count, not an exact one


def test_an_underestimated_list_is_never_counted_below_its_bound(monkeypatch):
    monkeypatch.setattr(backoffice, "EXACT_COUNT_UP_TO", 3)
    monkeypatch.setattr(backoffice, "planner_rows", lambda queryset: 1)
    UserFactory.create_batch(6)
    assert _count(User.objects.all())[0] == 4  # the bound + 1: more than one page's worth


def test_the_currency_filter_reads_no_row(client):
    staff = StaffFactory()
    client.force_login(staff)
    url = reverse("admin:marketplace_primaryorder_changelist")
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        body = client.get(url, {"currency__exact": "EUR"}).content.decode()
    assert all("DISTINCT" not in q["sql"] for q in ctx.captured_queries)
    assert all(f"?currency__exact={code}" in body for code in CURRENCIES)


# Admins of other packages (Django's groups, allauth's e-mail addresses and
# authenticators): small tables, or one row per user; their lists count exactly.
THIRD_PARTY = {"auth", "account", "mfa"}


def test_every_back_office_list_of_ours_uses_the_flat_paginator_and_no_second_count():
    ours = {m: a for m, a in admin.site._registry.items() if m._meta.app_label not in THIRD_PARTY}
    assert len(ours) >= 29  # every model of ours with a back-office page
    for model, model_admin in ours.items():
        assert isinstance(model_admin, LargeTableAdminMixin), model
        assert model_admin.paginator is EstimatedCountPaginator and not model_admin.show_full_result_count, model
