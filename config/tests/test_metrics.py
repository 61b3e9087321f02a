"""/metrics (config/metrics.py): who may scrape it, the request metrics by view name, the
business figures and their constant cost."""

import os
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY

from chain import heartbeat
from chain.models import ChainTransaction
from compliance.tests.factories import KycApplicationFactory
from config import metrics
from marketplace.models import PrimaryOrder
from marketplace.tests.factories import OfferingFactory, verified_investor

pytestmark = pytest.mark.django_db

TOKEN = "scrape-" + "k" * 40
OUTSIDER = "203.0.113.9"  # TEST-NET-3: never in the allow list
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_figures(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "::1"]
    cache.delete(metrics.CACHE_KEY)
    cache.delete(heartbeat.HEARTBEAT_KEY)
    yield
    cache.delete(metrics.CACHE_KEY)


def scrape(client, **extra) -> str:
    cache.delete(metrics.CACHE_KEY)  # each call computes afresh
    response = client.get(reverse("metrics"), **extra)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def sample(text: str, name: str, labels: str = "") -> float:
    line = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert line, f"{name}{labels} not in the exposition"
    return float(line.group(1))


def outbox_row(age_seconds: float = 0, status=ChainTransaction.Status.PENDING, **fields) -> ChainTransaction:
    row = ChainTransaction.objects.create(
        kind=ChainTransaction.Kind.ASSET_TRANSFER,
        payload={"asset_id": 1, "sender": "A", "receiver": "B", "amount": 1},
        idempotency_key=uuid.uuid4().hex,
        status=status,
    )
    ChainTransaction.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(seconds=age_seconds), **fields
    )
    return row


# --- Access --------------------------------------------------------------------------


def test_an_outsider_without_a_token_gets_the_ordinary_404(client):
    response = client.get(reverse("metrics"), REMOTE_ADDR=OUTSIDER)
    unknown = client.get("/no-such-page", REMOTE_ADDR=OUTSIDER)

    assert response.status_code == 404
    # Nothing tells it apart from an unknown URL: the same page (only the CSRF token differs).
    assert [t.name for t in response.templates] == [t.name for t in unknown.templates]
    assert "WWW-Authenticate" not in response
    assert b"rwa_" not in response.content


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong-token", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer ", "Bearer"],
)
def test_a_wrong_or_malformed_token_is_a_404(client, authorization):
    response = client.get(reverse("metrics"), REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 404


def test_an_empty_token_setting_lets_no_bearer_in(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get(reverse("metrics"), REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 404


def test_the_token_lets_a_scraper_in_from_anywhere_without_a_session_or_cookie(client):
    response = client.get(reverse("metrics"), REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies and "Set-Cookie" not in response
    assert "rwa_outbox_rows" in response.content.decode()


def test_allowed_addresses_and_networks_need_no_token(client, settings):
    assert client.get(reverse("metrics"), REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get(reverse("metrics"), REMOTE_ADDR="::1").status_code == 200
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert client.get(reverse("metrics"), REMOTE_ADDR="10.2.3.4").status_code == 200
    assert client.get(reverse("metrics"), REMOTE_ADDR="127.0.0.1").status_code == 404
    assert client.get(reverse("metrics"), REMOTE_ADDR="not-an-address").status_code == 404


def test_post_needs_no_csrf_token_but_only_get_is_served(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post(reverse("metrics"), REMOTE_ADDR=OUTSIDER).status_code == 404  # still not advertised
    assert strict.post(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    assert strict.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def production_env(**extra: str) -> dict[str, str]:
    """The environment `make check-deploy` gives the production settings."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "p" * 50,
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        "PRIVATE_MEDIA_ROOT": "/tmp/rwa-private",
        **extra,
    }


def test_production_lets_in_only_the_token_unless_addresses_are_set():
    script = (
        "import django; django.setup(); from django.test import RequestFactory; "
        "from config.metrics import metrics_allowed; rf = RequestFactory(); "
        "print(metrics_allowed(rf.get('/metrics')), "  # REMOTE_ADDR 127.0.0.1
        "metrics_allowed(rf.get('/metrics', headers={'Authorization': 'Bearer prod-token'})))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=production_env(METRICS_TOKEN="prod-token"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["False", "True"]


# --- Request metrics -----------------------------------------------------------------


def requests_counted(view: str, method: str = "GET", status: str = "4xx") -> float:
    return REGISTRY.get_sample_value("rwa_http_requests_total", {"view": view, "method": method, "status": status}) or 0


def test_requests_are_labelled_by_view_name_not_path(client):
    before = requests_counted("assets:detail")
    first, second = uuid.uuid4(), uuid.uuid4()

    assert client.get(reverse("assets:detail", args=[first])).status_code == 404
    assert client.get(reverse("assets:detail", args=[second])).status_code == 404

    assert requests_counted("assets:detail") == before + 2
    text = scrape(client)
    assert 'rwa_http_requests_total{method="GET",status="4xx",view="assets:detail"}' in text
    assert 'rwa_http_request_duration_seconds_bucket{le="+Inf",method="GET",status="4xx",view="assets:detail"}' in text
    assert str(first) not in text and str(second) not in text and first.hex not in text


def test_unmatched_paths_and_odd_methods_share_one_label_each(client):
    before = requests_counted("unresolved")
    other = REGISTRY.get_sample_value(
        "rwa_http_requests_total", {"view": "healthz", "method": "other", "status": "4xx"}
    )

    client.get(f"/no-such-page/{uuid.uuid4()}")
    client.generic("BREW", reverse("healthz"))

    assert requests_counted("unresolved") == before + 1
    after = REGISTRY.get_sample_value(
        "rwa_http_requests_total", {"view": "healthz", "method": "other", "status": "4xx"}
    )
    assert after == (other or 0) + 1


def test_multiprocess_mode_sums_the_counts_of_every_process(tmp_path, monkeypatch, client):
    """Two processes (as two gunicorn workers) each serve a request with
    PROMETHEUS_MULTIPROC_DIR set; a scrape reads both from the directory."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    script = (
        "import django; django.setup(); from django.test import Client; "
        "assert Client().get('/healthz').status_code == 200"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=120)
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file per process

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = scrape(client)

    assert sample(text, "rwa_http_requests_total", '{method="GET",status="2xx",view="healthz"}') == 2
    assert "rwa_outbox_rows" in text  # the business figures are there too


# --- Business figures ----------------------------------------------------------------


def test_outbox_rows_by_state_and_the_oldest_pending_age(client):
    text = scrape(client)
    for state in ("pending", "submitted", "confirmed", "failed"):
        assert sample(text, "rwa_outbox_rows", f'{{state="{state}"}}') == 0
    assert sample(text, "rwa_outbox_oldest_pending_age_seconds") == 0
    assert sample(text, "rwa_worker_heartbeat_age_seconds") == float("inf")
    assert sample(text, "rwa_business_metrics_up") == 1

    outbox_row(age_seconds=30)
    outbox_row(age_seconds=900, status=ChainTransaction.Status.SUBMITTED)
    outbox_row(age_seconds=5000, status=ChainTransaction.Status.FAILED)  # finished: not "pending"
    heartbeat.worker_heartbeat_record()

    text = scrape(client)
    assert sample(text, "rwa_outbox_rows", '{state="pending"}') == 1
    assert sample(text, "rwa_outbox_rows", '{state="submitted"}') == 1
    assert sample(text, "rwa_outbox_rows", '{state="failed"}') == 1
    assert 900 <= sample(text, "rwa_outbox_oldest_pending_age_seconds") < 960
    assert sample(text, "rwa_worker_heartbeat_age_seconds") < 60


def test_settlement_latency_histogram_covers_the_last_hour(client):
    now = timezone.now()
    confirmed = ChainTransaction.Status.CONFIRMED
    outbox_row(age_seconds=4, status=confirmed, confirmed_at=now)  # 4 s
    outbox_row(age_seconds=45, status=confirmed, confirmed_at=now)  # 45 s
    outbox_row(age_seconds=7300, status=confirmed, confirmed_at=now - timedelta(hours=2))  # outside the hour

    text = scrape(client)

    assert sample(text, "rwa_settlement_latency_seconds_bucket", '{le="2.0"}') == 0
    assert sample(text, "rwa_settlement_latency_seconds_bucket", '{le="5.0"}') == 1
    assert sample(text, "rwa_settlement_latency_seconds_bucket", '{le="30.0"}') == 1
    assert sample(text, "rwa_settlement_latency_seconds_bucket", '{le="60.0"}') == 2
    assert sample(text, "rwa_settlement_latency_seconds_bucket", '{le="+Inf"}') == 2
    assert sample(text, "rwa_settlement_latency_seconds_gcount") == 2
    assert 48 <= sample(text, "rwa_settlement_latency_seconds_gsum") < 50


def test_recent_orders_kyc_queue_and_held_shares(client):
    offering = OfferingFactory()
    investor = verified_investor()
    primary_order(offering, investor)
    primary_order(offering, investor, age=timedelta(minutes=5))  # not in the last minute
    KycApplicationFactory(submitted=True)
    KycApplicationFactory(submitted=True)

    text = scrape(client)

    assert sample(text, "rwa_primary_orders_last_minute") == 1
    assert sample(text, "rwa_trade_orders_last_minute") == 0
    assert sample(text, "rwa_trades_last_minute") == 0
    assert sample(text, "rwa_kyc_review_queue") == 2
    assert sample(text, "rwa_distribution_payments_held") == 0


def primary_order(offering, investor, age=timedelta(0)) -> PrimaryOrder:
    return PrimaryOrder.objects.create(
        investor=investor,
        offering=offering,
        asset=offering.asset,
        idempotency_key=uuid.uuid4().hex,
        quantity=1,
        price_per_fraction_minor=10_000,
        gross_minor=10_000,
        fee_minor=0,
        total_minor=10_000,
        currency="EUR",
        created_at=timezone.now() - age,
    )


def scrape_queries(client) -> int:
    cache.delete(metrics.CACHE_KEY)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("metrics")).status_code == 200
    return len(queries)


def test_a_scrape_costs_the_same_queries_with_no_rows_and_with_many(client):
    empty = scrape_queries(client)

    offering = OfferingFactory()
    investor = verified_investor()
    for i in range(40):
        status = list(ChainTransaction.Status)[i % 4]
        outbox_row(age_seconds=i * 7, status=status, confirmed_at=timezone.now() if status == "confirmed" else None)
        primary_order(offering, investor)
        KycApplicationFactory(submitted=True)

    assert scrape_queries(client) == empty
    assert empty <= 6


def test_scrapes_within_the_cache_window_cost_no_query(client):
    client.get(reverse("metrics"))
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("metrics"))
    assert len(queries) == 0


def test_a_database_failure_is_reported_not_raised(client, monkeypatch):
    def broken():
        raise RuntimeError("database gone")

    monkeypatch.setattr(metrics, "business_figures_compute", broken)
    text = scrape(client)
    assert sample(text, "rwa_business_metrics_up") == 0
    assert "rwa_outbox_rows" not in text
    assert "rwa_http_requests_total" in text


def test_the_last_result_of_each_proof_is_exposed_with_its_age(client):
    from django.core.management import call_command

    from marketplace.check_results import CHECKS, KEY

    for name in CHECKS:
        cache.delete(KEY.format(name))
    text = scrape(client)
    assert 'rwa_check_problems{check="ledger_check"}' not in text  # never ran: no series
    call_command("ledger_check", stdout=open(os.devnull, "w"))  # noqa: SIM115
    call_command("distribution_check", stdout=open(os.devnull, "w"))  # noqa: SIM115
    text = scrape(client)
    assert sample(text, "rwa_check_problems", '{check="ledger_check"}') == 0
    assert sample(text, "rwa_check_problems", '{check="distribution_check"}') == 0
    assert 0 <= sample(text, "rwa_check_age_seconds", '{check="ledger_check"}') < 60
    # A run that finds problems is what the alert sees.
    from marketplace.check_results import check_result_record

    check_result_record("reconcile", 3)
    assert sample(scrape(client), "rwa_check_problems", '{check="reconcile"}') == 3
