"""Print the OpenAPI document of /api/v1 (what /api/v1/openapi.json serves), with sorted
keys: `python manage.py api_schema > api/openapi-v1.json` regenerates the committed
copy that api/tests/test_openapi.py compares against."""

import json

from django.core.management.base import BaseCommand

from api.v1 import api


def schema_text() -> str:
    return json.dumps(api.get_openapi_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class Command(BaseCommand):
    help = "Print the OpenAPI document of the public API v1."

    def handle(self, *args, **options):
        self.stdout.write(schema_text(), ending="")
