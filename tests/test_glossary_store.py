"""User glossaries in the real Redis: owned, immutable, without expiry, invisible to others."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from service.constants import Keys
from service.store.glossaries import GlossaryStore
from service.text.glossary import Glossary, GlossaryLimitError, GlossaryNotFoundError

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis: Redis, prefix: str) -> GlossaryStore:
    return GlossaryStore(redis, Keys(prefix))


def names(entries: str = "Lawrow\tLavrov\nPeskow\tPeskov", name: str = "Namen") -> Glossary:
    return Glossary.create(name=name, source_lang="de", target_lang="en", entries=entries)


async def test_created_glossary_reads_back_whole(store: GlossaryStore, redis: Redis) -> None:
    """Info, TSV entries and the full glossary come back as made, under the documented keys."""
    glossary = names()
    info = await store.create("tenant-a", glossary)
    assert info == glossary.info()
    assert await store.info("tenant-a", glossary.glossary_id) == info
    assert await store.entries("tenant-a", glossary.glossary_id) == "Lawrow\tLavrov\nPeskow\tPeskov"
    loaded = await store.get("tenant-a", glossary.glossary_id)
    assert loaded == glossary
    assert loaded.digest == glossary.digest
    assert await store.digest("tenant-a", glossary.glossary_id) == glossary.digest
    key = store.keys.glossary(glossary.glossary_id)
    assert await redis.ttl(key) == -1  # no expiry
    assert await redis.zscore(store.keys.glossaries("tenant-a"), glossary.glossary_id)


async def test_list_by_owner_shows_only_own_glossaries_oldest_first(store: GlossaryStore) -> None:
    """Each owner lists their own glossaries in creation order, nobody else's."""
    first, second, other = names(name="eins"), names(name="zwei"), names(name="fremd")
    await store.create("tenant-a", first)
    await asyncio.sleep(0.01)
    await store.create("tenant-a", second)
    await store.create("tenant-b", other)
    listed = await store.list_by_owner("tenant-a")
    assert [info.name for info in listed] == ["eins", "zwei"]
    assert [info.name for info in await store.list_by_owner("tenant-b")] == ["fremd"]
    assert await store.list_by_owner("tenant-c") == []


async def test_another_owner_gets_not_found_for_everything(store: GlossaryStore) -> None:
    """Info, entries, get and delete by another owner answer exactly like a missing id."""
    glossary = names()
    await store.create("tenant-a", glossary)
    for call in (store.info, store.digest, store.entries, store.get, store.delete):
        with pytest.raises(GlossaryNotFoundError) as error:
            await call("tenant-b", glossary.glossary_id)
        assert error.value.glossary_id == glossary.glossary_id
    with pytest.raises(GlossaryNotFoundError):
        await store.info("tenant-a", str(uuid.uuid4()))
    with pytest.raises(GlossaryNotFoundError):
        await store.info("tenant-a", "x" * 10_000)
    assert (await store.get("tenant-a", glossary.glossary_id)) == glossary


async def test_delete_removes_the_glossary_and_its_listing(store: GlossaryStore) -> None:
    """After delete the owner can neither read nor list it, and a second delete is not found."""
    glossary = names()
    await store.create("tenant-a", glossary)
    await store.delete("tenant-a", glossary.glossary_id)
    assert await store.list_by_owner("tenant-a") == []
    with pytest.raises(GlossaryNotFoundError):
        await store.get("tenant-a", glossary.glossary_id)
    with pytest.raises(GlossaryNotFoundError):
        await store.delete("tenant-a", glossary.glossary_id)


async def test_an_existing_id_is_never_overwritten(store: GlossaryStore) -> None:
    """Glossaries are immutable: creating another under a stored id fails and changes nothing."""
    glossary = names()
    await store.create("tenant-a", glossary)
    impostor = Glossary.create(
        name="neu",
        source_lang="de",
        target_lang="en",
        entries="Lawrow\tLawrov",
        glossary_id=glossary.glossary_id,
    )
    with pytest.raises(ValueError, match="immutable"):
        await store.create("tenant-a", impostor)
    with pytest.raises(ValueError, match="immutable"):
        await store.create("tenant-b", impostor)
    assert await store.get("tenant-a", glossary.glossary_id) == glossary
    assert await store.list_by_owner("tenant-b") == []


async def test_the_per_owner_limit_holds_under_concurrent_creates(
    redis: Redis, prefix: str
) -> None:
    """With a limit of 3, ten concurrent creates store exactly 3 and refuse 7."""
    store = GlossaryStore(redis, Keys(prefix), max_per_owner=3)
    outcomes = await asyncio.gather(
        *(store.create("tenant-a", names(name=f"g{i}")) for i in range(10)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, GlossaryLimitError)]
    assert len(refused) == 7
    assert len(await store.list_by_owner("tenant-a")) == 3
    assert "at most 3" in str(refused[0])
