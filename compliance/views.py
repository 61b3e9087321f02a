import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from config.uploads import private_file_response

from .forms import KycApplicationForm
from .models import KycApplication
from .selectors import kyc_application_get_for_user, kyc_document_get_for_user, kyc_status_for
from .services import kyc_application_edit, kyc_can_start_new


@login_required
@require_http_methods(["GET", "POST"])
def kyc_edit(request: HttpRequest) -> HttpResponse:
    latest = kyc_status_for(request.user)
    application = latest if latest is not None and latest.is_editable else None
    if application is None and not kyc_can_start_new(user=request.user):
        messages.info(request, "Your KYC application is not open for changes.")
        return redirect("marketplace:dashboard")
    have = {d.kind for d in application.documents.all()} if application else set()
    form = KycApplicationForm(
        request.POST or None, request.FILES or None, instance=application or latest_copy(latest), have_documents=have
    )
    if request.method == "POST" and form.is_valid():
        try:
            application = kyc_application_edit(
                user=request.user,
                application=application,
                data={name: form.cleaned_data[name] for name in form.Meta.fields},
                identity_document=form.cleaned_data.get("identity_document"),
                proof_of_address=form.cleaned_data.get("proof_of_address"),
                submit="submit" in request.POST,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            # the details may be saved as a draft even when it could not be sent
            latest = kyc_status_for(request.user)
            application = latest if latest is not None and latest.is_editable else None
            have = {d.kind for d in application.documents.all()} if application else set()
        else:
            if "submit" in request.POST:
                messages.success(request, "Thank you. Your KYC application was submitted for review.")
                return redirect("marketplace:dashboard")
            messages.success(request, "Your KYC details were saved as a draft.")
            return redirect("compliance:kyc_edit")
    return render(
        request,
        "compliance/kyc_form.html",
        {
            "form": form,
            "application": application,
            "documents": application.documents.all() if application else [],
            "have": have,
        },
    )


def latest_copy(latest: KycApplication | None) -> KycApplication | None:
    """A renewal starts from the previous details (not saved until the applicant does)."""
    if latest is None:
        return None
    return KycApplication(user=latest.user, **{f: getattr(latest, f) for f in KycApplication.RENEWAL_COPIED_FIELDS})


def _add_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
@require_GET
def kyc_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    application = kyc_application_get_for_user(public_id=public_id, user=request.user)
    return render(
        request, "compliance/kyc_detail.html", {"application": application, "documents": application.documents.all()}
    )


@login_required
@require_GET
def kyc_document(request: HttpRequest, public_id: uuid.UUID) -> HttpResponseBase:
    doc = kyc_document_get_for_user(public_id=public_id, user=request.user)
    return private_file_response(doc.file, filename=doc.original_name, content_type=doc.content_type)
