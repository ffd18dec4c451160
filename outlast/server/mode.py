"""How the server runs: development (no keys, no login) or production (keys and a login required)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from outlast.server.guesses import GuessLimits


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    mode: Literal["dev", "production"] = "dev"
    #: event keys accepted by `POST /e/{key}`; in dev mode any key is accepted
    event_keys: tuple[str, ...] = ()
    #: signing keys (`signkey-<env>-<hex>`): requests to apps are signed with the first; apps and
    #: API clients authenticate with the bearer form of any (rotation). Dev mode needs none.
    signing_keys: tuple[str, ...] = ()
    # -- dashboard -------------------------------------------------------------------------------
    #: the dashboard and read API login (production mode); empty in production locks them
    dashboard_password: str = field(default="", repr=False)
    #: how failed logins and Bearer credentials slow a guesser down (`outlast.server.guesses`)
    guess_limits: GuessLimits = field(default_factory=GuessLimits)

    @property
    def production(self) -> bool:
        return self.mode == "production"
