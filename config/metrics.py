"""/metrics in the Prometheus text format (prometheus-client).

Not public: `metrics_view` answers only a bearer token equal to METRICS_TOKEN or a client
address in METRICS_ALLOWED_IPS (addresses or networks); everyone else gets the site's
ordinary 404, so the endpoint is not advertised. It reads no session and sets no cookie.

Two kinds of figures:

- HTTP, counted by `MetricsMiddleware` for every request that reaches it:
  `rwa_http_requests_total` and `rwa_http_request_duration_seconds`, labelled by view
  (the URL pattern's name, e.g. `assets:detail`, never the raw path, so the number of
  series stays bounded), method and status class (`2xx` … `5xx`). Requests no URL pattern
  matched are `view="unresolved"`. Under gunicorn with several workers set
  PROMETHEUS_MULTIPROC_DIR (an empty directory, wiped at each start) so each worker
  writes its counts there and a scrape of any worker sums them all; without it each
  process counts for itself (fine for one process, `make run`, tests).
- Business, computed when scraped by `BusinessCollector` from a fixed handful of
  aggregate queries (the same number whatever the data) and kept CACHE_SECONDS in the
  shared cache, so frequent scrapes and several scrapers cost one computation:
  outbox rows by state, age of the oldest unfinished outbox row, seconds since a worker
  last took a task, settlement latency (request → confirmed) over the last hour, orders
  and trades in the last minute, KYC review queue, held distribution shares.

config is the lowest layer (import-linter): the apps' models are looked up by name when
the collector runs, and what an app computes itself (the worker heartbeat, the KYC review
queue) is handed in as dotted paths in settings.METRICS_SOURCES, as READINESS_CHECKS is."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger("config.metrics")

# --- HTTP ---------------------------------------------------------------------------

HTTP_LABELS = ("view", "method", "status")
HTTP_REQUESTS = Counter("rwa_http_requests", "HTTP requests by view name, method and status class.", HTTP_LABELS)
HTTP_LATENCY = Histogram(
    "rwa_http_request_duration_seconds",
    "Time from the request reaching the metrics middleware to its response, by view, method and status class.",
    HTTP_LABELS,
)
# Any other method is counted as "other": a label value must not come from the client.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNRESOLVED = "unresolved"


def view_label(request: HttpRequest) -> str:
    """The matched URL pattern's name (namespaced), else its route; "unresolved" when no
    pattern matched (404s, responses from middleware before URL resolution)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNRESOLVED
    return match.view_name or match.route or UNRESOLVED


class MetricsMiddleware:
    """Counts and times every request. Place it near the top of MIDDLEWARE (after
    SecurityMiddleware and RequestIdMiddleware) so it times the rest."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in METHODS else "other"
        labels = (view_label(request), method, f"{response.status_code // 100}xx")
        HTTP_REQUESTS.labels(*labels).inc()
        HTTP_LATENCY.labels(*labels).observe(elapsed)
        return response


# --- Business figures ---------------------------------------------------------------

CACHE_KEY = "config:metrics:business"
CACHE_SECONDS = 5
# Settlement latency buckets, seconds (Algorand confirms in a few rounds of ~3 s).
SETTLEMENT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
SETTLEMENT_WINDOW = timedelta(hours=1)
RECENT_WINDOW = timedelta(minutes=1)


def _source(name: str) -> Callable[[], Any]:
    return import_string(settings.METRICS_SOURCES[name])


def business_figures_compute() -> dict[str, Any]:
    """The business figures as plain numbers (cacheable). Six queries whatever the data:
    one aggregate over the outbox (counts by state, oldest unfinished row, settlement
    latency buckets), three counts of recent orders and trades, the KYC queue length and
    the held distribution shares; plus a cache read for the worker heartbeat."""
    now = timezone.now()
    chain_tx: Any = apps.get_model("chain", "ChainTransaction")
    status = chain_tx.Status
    unfinished = Q(status__in=[status.PENDING, status.SUBMITTED])
    settled = Q(status=status.CONFIRMED, confirmed_at__gte=now - SETTLEMENT_WINDOW)
    aggregates: dict[str, Any] = {f"state_{value}": Count("pk", filter=Q(status=value)) for value in status.values}
    aggregates["oldest_unfinished"] = Min("created_at", filter=unfinished)
    aggregates["settled_count"] = Count("pk", filter=settled)
    aggregates["settled_sum"] = Sum("latency", filter=settled)
    for i, bound in enumerate(SETTLEMENT_BUCKETS):
        aggregates[f"le_{i}"] = Count("pk", filter=settled & Q(latency__lte=timedelta(seconds=bound)))
    row = chain_tx.objects.annotate(
        latency=ExpressionWrapper(F("confirmed_at") - F("created_at"), output_field=DurationField())
    ).aggregate(**aggregates)
    oldest = row["oldest_unfinished"]
    settled_sum = row["settled_sum"]

    recent = now - RECENT_WINDOW
    primary_order: Any = apps.get_model("marketplace", "PrimaryOrder")
    trade_order: Any = apps.get_model("marketplace", "TradeOrder")
    trade: Any = apps.get_model("marketplace", "Trade")
    payment: Any = apps.get_model("marketplace", "DistributionPayment")
    heartbeat_age = _source("worker_heartbeat_age")()
    return {
        "outbox_rows": {value: row[f"state_{value}"] for value in status.values},
        "outbox_oldest_pending_age": 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()),
        "worker_heartbeat_age": None if heartbeat_age is None else float(heartbeat_age),
        "settlement_buckets": [row[f"le_{i}"] for i in range(len(SETTLEMENT_BUCKETS))],
        "settlement_count": row["settled_count"],
        "settlement_sum": 0.0 if settled_sum is None else settled_sum.total_seconds(),
        "primary_orders_last_minute": primary_order.objects.filter(created_at__gte=recent).count(),
        "trade_orders_last_minute": trade_order.objects.filter(created_at__gte=recent).count(),
        "trades_last_minute": trade.objects.filter(created_at__gte=recent).count(),
        "kyc_review_queue": _source("kyc_review_queue")().count(),
        "distribution_payments_held": payment.objects.filter(status=payment.Status.HELD).count(),
        "last_checks": _source("last_checks")() if "last_checks" in settings.METRICS_SOURCES else {},
    }


def business_figures() -> dict[str, Any]:
    """The figures from the shared cache, computed at most every CACHE_SECONDS. A cache
    outage only costs the computation."""
    try:
        figures = cache.get(CACHE_KEY)
    except Exception:  # noqa: BLE001 - the cache is an optimisation here
        logger.warning("metrics: cache unavailable", exc_info=True)
        return business_figures_compute()
    if figures is None:
        figures = business_figures_compute()
        try:
            cache.set(CACHE_KEY, figures, CACHE_SECONDS)
        except Exception:  # noqa: BLE001
            logger.warning("metrics: cache unavailable", exc_info=True)
    return figures


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class BusinessCollector(Collector):
    """Yields the business figures; `rwa_business_metrics_up` is 0 (and nothing else is
    yielded) when they could not be computed, e.g. the database is down."""

    def collect(self) -> Iterable[Metric]:
        try:
            figures = business_figures()
        except Exception:  # a scrape reports a failure, it does not fail
            logger.warning("metrics: business figures unavailable", exc_info=True)
            yield _gauge("rwa_business_metrics_up", "1 when the business figures below could be computed.", 0)
            return
        yield _gauge("rwa_business_metrics_up", "1 when the business figures below could be computed.", 1)
        rows = GaugeMetricFamily("rwa_outbox_rows", "Chain outbox rows (ChainTransaction) by state.", labels=["state"])
        for state, count in figures["outbox_rows"].items():
            rows.add_metric([state], count)
        yield rows
        yield _gauge(
            "rwa_outbox_oldest_pending_age_seconds",
            "Age of the oldest unfinished (pending or submitted) outbox row, as /readyz; 0 when there is none.",
            figures["outbox_oldest_pending_age"],
        )
        heartbeat_age = figures["worker_heartbeat_age"]
        yield _gauge(
            "rwa_worker_heartbeat_age_seconds",
            "Seconds since a Celery worker last took a task (chain/heartbeat.py); +Inf when none ever did.",
            math.inf if heartbeat_age is None else heartbeat_age,
        )
        buckets = [
            (str(bound), count) for bound, count in zip(SETTLEMENT_BUCKETS, figures["settlement_buckets"], strict=False)
        ]
        buckets.append(("+Inf", figures["settlement_count"]))
        yield GaugeHistogramMetricFamily(
            "rwa_settlement_latency_seconds",
            "Outbox rows confirmed in the last hour: seconds from the row's creation (the business commit) to its "
            "confirmation. A gauge histogram of that window: use histogram_quantile on the buckets without rate().",
            buckets=buckets,
            gsum_value=figures["settlement_sum"],
        )
        yield _gauge(
            "rwa_primary_orders_last_minute",
            "Primary-market orders placed in the last minute.",
            figures["primary_orders_last_minute"],
        )
        yield _gauge(
            "rwa_trade_orders_last_minute",
            "Secondary-market orders placed in the last minute.",
            figures["trade_orders_last_minute"],
        )
        yield _gauge("rwa_trades_last_minute", "Trades matched in the last minute.", figures["trades_last_minute"])
        yield _gauge("rwa_kyc_review_queue", "KYC applications waiting for staff review.", figures["kyc_review_queue"])
        yield _gauge(
            "rwa_distribution_payments_held",
            "Distribution shares held awaiting compliance (KYC lapsed, frozen, sanctioned).",
            figures["distribution_payments_held"],
        )
        problems = GaugeMetricFamily(
            "rwa_check_problems",
            "Problems found by the last run of each proof (ledger_check, reconcile, market_check, distribution_check).",
            labels=["check"],
        )
        age = GaugeMetricFamily("rwa_check_age_seconds", "Seconds since each proof last ran.", labels=["check"])
        for name, result in sorted(figures.get("last_checks", {}).items()):
            problems.add_metric([name], result["problems"])
            age.add_metric([name], max(0.0, time.time() - result["at"]))
        yield problems
        yield age


BUSINESS_REGISTRY = CollectorRegistry(auto_describe=False)
BUSINESS_REGISTRY.register(BusinessCollector())


def exposition() -> bytes:
    """All the metrics in the text format: the HTTP ones (summed over every process in
    multiprocess mode, this process's otherwise) followed by the business figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        http = generate_latest(registry)
    else:
        http = generate_latest(REGISTRY)
    return http + generate_latest(BUSINESS_REGISTRY)


# --- Access and the view ------------------------------------------------------------


@lru_cache(maxsize=8)
def _allowed_networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def _bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def metrics_allowed(request: HttpRequest) -> bool:
    """A bearer token equal to METRICS_TOKEN (constant-time comparison; an empty setting
    matches nothing) or a client address in METRICS_ALLOWED_IPS. REMOTE_ADDR is the
    direct peer: behind a reverse proxy on the same machine every visitor comes from
    127.0.0.1, which is why production allows no address unless told to."""
    expected = settings.METRICS_TOKEN
    given = _bearer_token(request)
    if expected and given is not None and hmac.compare_digest(given.encode(), expected.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks(tuple(settings.METRICS_ALLOWED_IPS)))


@csrf_exempt
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponseBase:
    if not metrics_allowed(request):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
