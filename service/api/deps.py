"""How handlers receive the app's services: Litestar dependency injection over app state."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from service.api.services import Services

__all__ = ["SERVICES_DEPENDENCY", "ServicesDep", "provide_services", "services_of"]

#: How handlers receive the services: by name, and passed as is (not re-validated per request).
ServicesDep = NamedDependency[SkipValidation[Services]]


def services_of(state: State) -> Services:
    services = state.get("services")
    if not isinstance(services, Services):
        raise RuntimeError("the app's lifespan has not run: no services in app state")
    return services


def provide_services(state: State) -> Services:
    """Dependency provider: the app's :class:`Services`."""
    return services_of(state)


SERVICES_DEPENDENCY = {"services": Provide(provide_services, sync_to_thread=False)}
