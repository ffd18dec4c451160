"""The PostgreSQL test helper says what failed when it cannot make a test database (here: no
server listens), instead of handing the test a URL that fails later as "unparsable"."""

from __future__ import annotations

import contextlib

import psycopg
import pytest

from tests.pg import TestDatabases
from tests.server.serving import free_port


def test_a_failed_clone_is_reported_with_the_server_and_the_cause() -> None:
    port = free_port()  # nothing listens there
    databases = TestDatabases(f"postgresql://postgres:s3cret@127.0.0.1:{port}/test")
    try:
        with pytest.raises(RuntimeError) as caught:
            databases.migrated()
    finally:
        with contextlib.suppress(psycopg.Error):
            databases.drop_all()
    message = str(caught.value)
    assert f"could not make a test database on PostgreSQL at 127.0.0.1:{port}" in message
    assert "OperationalError" in message and "unparsable" not in message
    assert "s3cret" not in message
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
