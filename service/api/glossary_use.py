"""Which glossary an article request uses, resolved before it is queued (no web framework here).

``glossary_id`` omitted means the server's default glossary (when ``KURZ_GLOSSARIES_DIR`` has
one), ``null`` means none, and any other id must name one of the caller's own glossaries
(another caller's answers 404, as a missing one does).  The id and the glossary's content digest
go into the result cache key, so the same article with another glossary, or none, is another
result.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from service.api.keys import Caller
from service.api.services import Services
from service.errors import GlossaryNotFoundError
from service.text.glossary_files import DEFAULT_GLOSSARY_ID

__all__ = ["GlossaryChoice", "choose_glossary", "owner_of"]


@dataclass(frozen=True, slots=True)
class GlossaryChoice:
    """The glossary a job applies: its id, content digest, and owner (None: the server's)."""

    glossary_id: str
    digest: str
    owner: str | None


def owner_of(caller: Caller) -> str:
    """Who owns what a caller makes: its key's digest (never the key), or ``public``."""
    return caller.client.removeprefix("key:")


async def choose_glossary(
    services: Services, requested: str | msgspec.UnsetType | None, owner: str
) -> GlossaryChoice | None:
    """The glossary an article request names, or ``GlossaryNotFoundError`` (404)."""
    if requested is None:
        return None
    if requested is msgspec.UNSET or requested == DEFAULT_GLOSSARY_ID:
        default = services.default_glossary
        if default is None:
            if requested is msgspec.UNSET:
                return None
            raise GlossaryNotFoundError(DEFAULT_GLOSSARY_ID)
        return GlossaryChoice(DEFAULT_GLOSSARY_ID, default.digest, None)
    assert isinstance(requested, str)
    digest = await services.glossaries.digest(owner, requested)
    return GlossaryChoice(requested, digest, owner)
