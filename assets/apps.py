from django.apps import AppConfig


class AssetsConfig(AppConfig):
    name = "assets"

    def ready(self):
        from . import catalogue_cache

        catalogue_cache.connect()
