"""SQL shared by the SQLite and PostgreSQL backends: schema migrations and transaction logic."""
