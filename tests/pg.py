"""PostgreSQL helpers for tests: an empty database per test, for isolation."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
from psycopg import sql


def fresh_database_url(base_url: str, name: str) -> str:
    """(Re)create an empty database `name` on base_url's server and return its URL."""
    parts = urlsplit(base_url)
    admin_url = parts._replace(path="/postgres").geturl() if parts.path.strip("/") == name else base_url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return parts._replace(path="/" + name).geturl()
