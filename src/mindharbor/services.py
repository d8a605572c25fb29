"""Long-lived collaborators of the request path that talk to the outside world."""

from __future__ import annotations

from dataclasses import dataclass, field

from mindharbor.auth.mailer import Mailer, make_mailer
from mindharbor.auth.oidc import AuthProvider, build_providers
from mindharbor.auth.ratelimit import RateLimiter, make_rate_limiter
from mindharbor.settings import Settings


@dataclass
class Services:
    mailer: Mailer
    limiter: RateLimiter
    providers: dict[str, AuthProvider] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        return cls(
            mailer=make_mailer(settings),
            limiter=make_rate_limiter(settings.redis_url),
            providers=build_providers(settings),
        )

    async def aclose(self) -> None:
        await self.limiter.aclose()
        for provider in self.providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()
