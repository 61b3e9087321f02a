from . import kombu_redis
from .celery import app as celery_app

kombu_redis.install()  # before any broker connection: see config/kombu_redis.py

__all__ = ("celery_app",)
