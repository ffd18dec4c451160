"""What the read API and the dashboard share in one server: login, live updates, bulk jobs, and
the app-sync seam. One `Services` per engine, made by whichever route module asks first."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from outlast.runtime.engine import Engine
from outlast.server.appsync import AppSync
from outlast.server.auth import Auth
from outlast.server.bulk import Bulk
from outlast.server.live import Live
from outlast.server.mode import ServerConfig

_made: weakref.WeakKeyDictionary[Engine, Services] = weakref.WeakKeyDictionary()


@dataclass(slots=True, kw_only=True)
class Services:
    engine: Engine
    config: ServerConfig
    auth: Auth
    live: Live
    bulk: Bulk
    apps: AppSync

    @classmethod
    def of(cls, engine: Engine, config: ServerConfig) -> Services:
        found = _made.get(engine)
        if found is None or found.config is not config:
            found = cls(
                engine=engine,
                config=config,
                auth=Auth(config),
                live=Live(engine),
                bulk=Bulk(engine),
                apps=AppSync(engine, production=config.production),
            )
            _made[engine] = found
        return found
