"""RFC 9457 problem details for every answer under /api/ that is not a success: the one
place an error becomes JSON. `type` is a URN of ours (docs/api.md lists them), `title`
a fixed phrase per type, `detail` this occurrence in words, `instance` the request path;
validation adds `errors` (each with the field's path) and the engine's refusals add
`reason_codes`."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

from config.db_unavailable import RETRY_AFTER_SECONDS, drop_broken_connections, is_unavailable

logger = logging.getLogger("api")

CONTENT_TYPE = "application/problem+json"

# Service refusal codes that are not "the request was wrong" (422).
CONFLICT_CODES = {"idempotency_conflict", "not_open"}
RATE_CODES = {"rate_limited"}

TITLES = {
    "bad-request": "The request could not be read",
    "unauthorized": "Authentication required",
    "forbidden": "Not allowed",
    "insufficient-scope": "The token lacks the scope this operation needs",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "conflict": "Conflict",
    "validation": "The request has invalid fields",
    "refused": "The request was refused",
    "rate-limited": "Too many requests",
    "unavailable": "The service is briefly unavailable",
    "server-error": "Internal server error",
}


def problem_type(slug: str) -> str:
    return f"urn:rwa:problem:{slug}"


def problem(
    request: HttpRequest,
    *,
    status: int,
    slug: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> HttpResponse:
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": TITLES[slug],
        "status": status,
        "detail": detail,
        "instance": request.path[:2000],
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    response = JsonResponse(body, status=status, content_type=CONTENT_TYPE, json_dumps_params={"ensure_ascii": False})
    for name, value in (headers or {}).items():
        response[name] = value
    limits = getattr(request, "api_rate_limit", None)
    if limits is not None:
        limits.apply(response)
    return response


def _strip(message: str) -> str:
    # pydantic prefixes the message of a ValueError raised by a validator.
    return message.removeprefix("Value error, ")


def field_errors_from_ninja(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """ninja's error list (loc = (source, param, field…)) as [{location, field, code, message}];
    the body's parameter name is left out of the path (the client never sees it)."""
    out = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        source, path = (loc[0], loc[1:]) if loc else ("body", [])
        if source == "body" and len(path) > 1:
            path = path[1:]
        out.append(
            {
                "location": source,
                "field": ".".join(path),
                "code": str(error.get("type", "invalid")),
                "message": _strip(str(error.get("msg", "Invalid value."))),
            }
        )
    return out


def refusal_parts(exc: DjangoValidationError) -> tuple[list[dict[str, str]], list[str], list[str]]:
    """A service's ValidationError as (field errors, every code, every message). Codes
    with `params["field"]` (or a dict's keys) name their field; the others (the
    eligibility engine's, cash, units, limits) are reasons, not fields."""
    errors: list[dict[str, str]] = []
    codes: list[str] = []
    messages: list[str] = []
    items: list[tuple[str, DjangoValidationError]] = []
    if hasattr(exc, "error_dict"):
        items = [(name, e) for name, errs in exc.error_dict.items() for e in errs]
    else:
        items = [("", e) for e in exc.error_list]
    for name, error in items:
        params = error.params if isinstance(error.params, dict) else {}
        field = name if name and name != "__all__" else str(params.get("field", "") or "")
        code = str(error.code or "invalid")
        message = str(error.message % params) if params and "%(" in str(error.message) else str(error.message)
        codes.append(code)
        messages.append(message)
        if field:
            errors.append({"location": "body", "field": field, "code": code, "message": message})
    return errors, codes, messages


def refusal_problem(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    errors, codes, messages = refusal_parts(exc)
    detail = " ".join(messages) or "The request was refused."
    if RATE_CODES & set(codes):
        return problem(request, status=429, slug="rate-limited", detail=detail, reason_codes=codes)
    if CONFLICT_CODES & set(codes):
        return problem(request, status=409, slug="conflict", detail=detail, reason_codes=codes)
    return problem(request, status=422, slug="refused", detail=detail, errors=errors or None, reason_codes=codes)


def validation_problem(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = field_errors_from_ninja(exc.errors)
    fields = ", ".join(sorted({e["field"] or e["location"] for e in errors}))
    return problem(request, status=422, slug="validation", detail=f"Check these fields: {fields}.", errors=errors)


def not_found(request: HttpRequest, exc: Exception | None = None) -> HttpResponse:
    return problem(request, status=404, slug="not-found", detail="Nothing exists at this address, or it is not yours.")


def unauthorized(request: HttpRequest, exc: Exception | None = None) -> HttpResponse:
    presented = bool(request.headers.get("Authorization"))
    challenge = 'Bearer realm="api"' + (', error="invalid_token"' if presented else "")
    detail = (
        "The token is not valid: unknown, revoked, expired, or its account is inactive."
        if presented
        else 'Send a personal access token: "Authorization: Bearer rwa_…".'
    )
    return problem(request, status=401, slug="unauthorized", detail=detail, headers={"WWW-Authenticate": challenge})


def forbidden(request: HttpRequest, exc: Exception) -> HttpResponse:
    if isinstance(exc, AuthorizationError):
        return problem(
            request,
            status=403,
            slug="insufficient-scope",
            detail=str(exc),
            headers={"WWW-Authenticate": 'Bearer realm="api", error="insufficient_scope"'},
        )
    return problem(request, status=403, slug="forbidden", detail=str(exc) or "You may not do this.")


def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    limits = getattr(request, "api_rate_limit", None)
    retry = str(limits.reset if limits is not None else int(exc.wait or 60))
    return problem(
        request,
        status=429,
        slug="rate-limited",
        detail=f"Too many requests; try again in {retry} seconds.",
        headers={"Retry-After": retry},
    )


def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own HttpErrors (an unreadable body is a 400)."""
    slug = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}
    return problem(request, status=exc.status_code, slug=slug.get(exc.status_code, "bad-request"), detail=str(exc))


def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    if is_unavailable(exc):
        drop_broken_connections()
        return problem(
            request,
            status=503,
            slug="unavailable",
            detail="The service is briefly unavailable; please try again.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    logger.exception("API error on %s %s", request.method, request.path[:200], exc_info=exc)
    return problem(request, status=500, slug="server-error", detail="Something went wrong on our side; it was logged.")


def install(api) -> None:
    """Every exception ninja's operations can raise, answered as a problem."""
    api.add_exception_handler(NinjaValidationError, validation_problem)
    api.add_exception_handler(DjangoValidationError, refusal_problem)
    api.add_exception_handler(Http404, not_found)
    api.add_exception_handler(AuthenticationError, unauthorized)
    api.add_exception_handler(AuthorizationError, forbidden)
    api.add_exception_handler(PermissionDenied, forbidden)
    api.add_exception_handler(Throttled, throttled)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(Exception, server_error)
