"""Building blocks of the back office (Django admin) that every app uses.

Writes in the back office go through services, which own a durable transaction and write
the audit entry. Django's add and change views save inside their own transaction, which
a durable service refuses to nest in, so a model whose rows change only through a service
uses ServiceFormAdmin: its add and change pages bind a form and call the service, like
any of our views."""

from typing import Any, Generic, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from config.admin_money import MoneyAdminMixin


class ReadOnlyAdmin(MoneyAdminMixin, admin.ModelAdmin):
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


class ServiceFormAdmin(MoneyAdminMixin, admin.ModelAdmin, Generic[_M]):
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
