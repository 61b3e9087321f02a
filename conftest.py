# Fixtures shared by every test live in tests/plugins/, one module per concern.
pytest_plugins = [
    "tests.plugins.core",
    "tests.plugins.celery_worker",
    "tests.plugins.devnet",
    "tests.plugins.browser",
]
