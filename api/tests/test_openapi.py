"""The OpenAPI document of v1 is frozen: what the code generates must equal the committed
api/openapi-v1.json (regenerate with `python manage.py api_schema > api/openapi-v1.json`
only for an additive change, docs/api.md "Versions"). The docs page is served from our
own static files under the site's CSP."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from api.management.commands.api_schema import schema_text

pytestmark = pytest.mark.django_db

COMMITTED = Path(settings.BASE_DIR) / "api" / "openapi-v1.json"


def test_generated_document_equals_the_committed_one():
    assert schema_text() == COMMITTED.read_text(), (
        "The v1 OpenAPI document changed. v1 is frozen: only additive changes are allowed; then regenerate "
        "it with `python manage.py api_schema > api/openapi-v1.json` (docs/api.md)."
    )


def test_served_document_is_the_committed_one():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(COMMITTED.read_text())


def test_every_operation_documents_its_problems_as_problem_json():
    document = json.loads(COMMITTED.read_text())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "429" in codes, (method, path)
            if operation.get("security"):
                assert {"401", "403"} <= codes, (method, path)
            for code, response in operation["responses"].items():
                if int(code) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (method, path, code)


def test_docs_page_uses_only_our_static_files():
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in sources
    assert "<script>" not in html  # settings travel as a JSON data block, read by api/docs-init.js
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
