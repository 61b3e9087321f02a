"""Building blocks of the back office (Django admin) that every app uses.

Writes in the back office go through services, which own a durable transaction and write
the audit entry. Django's add and change views save inside their own transaction, which
a durable service refuses to nest in, so a model whose rows change only through a service
uses ServiceFormAdmin: its add and change pages bind a form and call the service, like
any of our views.

Lists stay as cheap with a million rows as with a thousand (bench/scaling): every admin
of the site uses `LargeTableAdminMixin` (through ReadOnlyAdmin, ServiceFormAdmin, or
directly), which counts with `EstimatedCountPaginator` and never counts the unfiltered
table a second time; choices of a filter come from a fixed list (`CurrencyFilter`), not
from a DISTINCT over the table."""

import json
from typing import Any, ClassVar, Generic, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property

from config.admin_money import MoneyAdminMixin
from config.money import CURRENCY_CHOICES

# Up to this many rows a list's count is exact (COUNT(*) over at most this many rows);
# above it, the database's estimate.
EXACT_COUNT_UP_TO = 10_000


def planner_rows(queryset: QuerySet) -> int:
    """PostgreSQL's estimate of the rows `queryset` returns (EXPLAIN: no row is read)."""
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """A list's count without COUNT(*) over a large table on every view: the exact count
    when the list has at most EXACT_COUNT_UP_TO rows (counted with that bound), else the
    planner's estimate, so the count shown ("about") and the last page are approximate
    on large lists only. Databases other than PostgreSQL count exactly (`make run`)."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet) or connections[queryset.db].vendor != "postgresql":
            return super().count
        estimate = planner_rows(queryset)
        if estimate > EXACT_COUNT_UP_TO:
            return estimate
        bounded = queryset.order_by()[: EXACT_COUNT_UP_TO + 1].count()
        return bounded if bounded <= EXACT_COUNT_UP_TO else max(estimate, bounded)


class CurrencyFilter(admin.SimpleListFilter):
    """Filter by currency with the currencies we settle in as its choices: Django's
    default for a field without choices runs SELECT DISTINCT over the whole table on
    every view of the list."""

    title = "currency"
    parameter_name = "currency__exact"  # the URL Django's own filter used

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return CURRENCY_CHOICES

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(currency=self.value()) if self.value() else queryset


class LargeTableAdminMixin:
    """What every back-office list needs to stay flat as its table grows (above)."""

    paginator: ClassVar[type] = EstimatedCountPaginator
    show_full_result_count = False


class ReadOnlyAdmin(LargeTableAdminMixin, MoneyAdminMixin, admin.ModelAdmin):
    """Rows that staff read but never add, edit or delete here. Amounts in the currency's
    units (config/admin_money.py)."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def form_errors_from(form: forms.BaseForm, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: per field where the field exists."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


_M = TypeVar("_M", bound=Model)


class ServiceFormAdmin(LargeTableAdminMixin, MoneyAdminMixin, admin.ModelAdmin, Generic[_M]):
    """Add and change pages that call a service. Subclasses give `service_form` (the form
    for a new row when obj is None, else for obj) and `service_perform` (calls the
    service, returns a success message). Without change permission the change page is
    Django's read-only view. Parametrised by the model (ServiceFormAdmin[Offering]) for
    the type of `obj`."""

    service_submit_label = "Save"

    def service_form(self, request: HttpRequest, obj: _M | None, data: QueryDict | None) -> forms.BaseForm:
        raise NotImplementedError

    def service_perform(self, request: HttpRequest, obj: _M | None, form: forms.BaseForm) -> str:
        raise NotImplementedError

    def service_intro(self, request: HttpRequest, obj: _M | None) -> str:
        return ""

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        return self._service_form_view(request, None)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.model._meta.verbose_name} with this id.")
        if not self.has_change_permission(request, obj):
            return super().change_view(request, object_id, form_url, extra_context)
        return self._service_form_view(request, obj)

    def _service_form_view(self, request: HttpRequest, obj: _M | None) -> HttpResponse:
        form = self.service_form(request, obj, request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                message = self.service_perform(request, obj, form)
            except ValidationError as exc:
                form_errors_from(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc) or "You may not do this.")
            else:
                messages.success(request, message)
                opts = self.model._meta
                return redirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        opts = self.model._meta
        title = f"Change {obj}" if obj is not None else f"Add {opts.verbose_name}"
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "opts": opts,
            "original": obj,
            "intro": self.service_intro(request, obj),
            "submit_label": self.service_submit_label,
        }
        return TemplateResponse(request, "admin/service_form.html", context)
