"""The public surface is deliberate: adding or removing a name must be a visible change."""

import pytest

import outlast

PUBLIC = [
    "Backoff",
    "Batch",
    "Cancel",
    "Concurrency",
    "Context",
    "Debounce",
    "Event",
    "EventType",
    "EventValidationError",
    "Function",
    "FunctionConfigError",
    "InvalidEventError",
    "InvalidSignalError",
    "NonRetriableError",
    "Outlast",
    "OutlastError",
    "PayloadTooLargeError",
    "Priority",
    "RateLimit",
    "RetryAfterError",
    "Run",
    "RunCancelledError",
    "RunFailedError",
    "RunHandle",
    "RunNotFoundError",
    "RunSkippedError",
    "Settings",
    "SignalConflictError",
    "Singleton",
    "StepError",
    "StepOptions",
    "StepRecord",
    "StepTimeoutError",
    "StepUsageError",
    "StoreError",
    "SubscriptionError",
    "SyncContext",
    "Throttle",
    "Timeouts",
    "TriggerCron",
    "TriggerEvent",
    "WaitFor",
]


def test_all_is_sorted_and_pinned() -> None:
    assert outlast.__all__ == sorted(outlast.__all__) == PUBLIC
    assert all(hasattr(outlast, name) for name in PUBLIC)


def test_errors_share_one_root() -> None:
    for name in PUBLIC:
        obj = getattr(outlast, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, outlast.OutlastError)


def test_importing_outlast_does_not_import_servers_drivers_or_the_expression_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, outlast; heavy = {'starlette', 'uvicorn', 'psycopg', 'httpx', 'pydantic', 'cel', 'croniter',"
        " 'asyncio', 'sqlite3'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_handle_is_public_and_loaded_on_first_use() -> None:
    """`outlast.RunHandle` is the handle `app.invoke` returns; the import test above shows that
    `import outlast` alone does not load it (nor asyncio)."""
    from outlast.runtime.run_results import RunHandle

    assert outlast.RunHandle is RunHandle
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = outlast.Nope  # type: ignore[attr-defined]
