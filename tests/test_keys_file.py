"""The keys file: desks (tenants) with several keys, keys kept as sha256 digests, per-key rate
limits, and a wrong file stopping start-up."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import structlog
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.api.app import create_app, refuse_accidental_exposure
from service.constants import Keys
from service.errors import ConfigError
from service.queue import JobQueue
from service.settings import Settings
from service.store.cache import RedisSentenceCache, ResultCache
from service.tenants import load_keys_file
from service.webhooks.delivery import Delivery
from service.webhooks.notifier import Notifier
from service.webhooks.signing import generate_secret
from tests.conftest import AppServer
from tests.test_api import GERMAN, WORKER_MODELS, a_result, announce_models, assert_problem

SPORT_OLD = "sport-" + "o" * 40
SPORT_NEW = "sport-" + "n" * 40
POLITIK = "politik-" + "p" * 40


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(text, encoding="utf-8")
    return path


def desks(tmp_path: Path) -> Path:
    """Sport with a key being rotated (one as a digest, one in plaintext); politik limited."""
    return write(
        tmp_path,
        f"""
[[keys]]
tenant = "sport"
sha256 = "{sha(SPORT_OLD)}"

[[keys]]
tenant = "sport"
key = "{SPORT_NEW}"

[[keys]]
tenant = "politik"
sha256 = "{sha(POLITIK).upper()}"
rate_limit_per_minute = 2
""",
    )


def test_a_keys_file_names_desks_and_warns_about_plaintext_keys(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        entries = load_keys_file(desks(tmp_path)).keys
    assert [(e.tenant, e.sha256.hex(), e.rate_limit_per_minute) for e in entries] == [
        ("sport", sha(SPORT_OLD), None),
        ("sport", sha(SPORT_NEW), None),
        ("politik", sha(POLITIK), 2),
    ]
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["plaintext_keys"] == 1
    assert SPORT_NEW not in str(logs)  # the warning never repeats the key


DIGEST = f'tenant = "a"\nsha256 = "{"0" * 64}"\n'


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ('[[keys]]\ntenant = "a"\nkey = "short"\n', "shorter than 32"),
        ('[[keys]]\ntenant = "a"\nsha256 = "abc"\n', "64 hex digits"),
        (f'[[keys]]\nsha256 = "{"0" * 64}"\n', "'tenant' must name the desk"),
        (f'[[keys]]\ntenant = "a b"\nsha256 = "{"0" * 64}"\n', "'tenant' must name the desk"),
        ('[[keys]]\ntenant = "a"\n', "either 'sha256'"),
        (f'[[keys]]\n{DIGEST}key = "{"k" * 40}"\n', "either"),
        (f"[[keys]]\n{DIGEST}shares_cache = true\n", "unknown field"),
        (f"[[keys]]\n{DIGEST}rate_limit_per_minute = -1\n", "0 or more"),
        ('[keys]\ntenant = "a"\n', "[[keys]] table"),
        ("[[keys]\n", "not valid TOML"),
        ('[[desks]]\ntenant = "a"\n', "unknown table"),
        (f'[[keys]]\n{DIGEST}[tenants.b]\nwebhook_secrets = ["whsec_x"]\n', "no [[keys]] entry"),
        (f"[[keys]]\n{DIGEST}[tenants.a]\nwebhook_secrets = []\n", "list of whsec_"),
        (f'[[keys]]\n{DIGEST}[tenants.a]\nwebhook_secrets = ["nope"]\n', "start with 'whsec_'"),
        (f'[[keys]]\n{DIGEST}[tenants.a]\nsecret = "whsec_x"\n', "unknown field"),
    ],
)
def test_a_wrong_keys_file_is_refused_saying_what_is_wrong(
    tmp_path: Path, body: str, complaint: str
) -> None:
    with pytest.raises(ConfigError, match=r"keys\.toml") as refused:
        load_keys_file(write(tmp_path, body))
    assert complaint in str(refused.value)
    assert "k" * 40 not in str(refused.value)


def test_a_missing_keys_file_or_a_key_listed_twice_stops_start_up(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        create_app(make_settings(api_keys_file=tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="configured twice"):
        create_app(make_settings(api_keys=[SPORT_OLD], api_keys_file=desks(tmp_path)))


def test_a_keys_file_alone_lets_the_api_listen_beyond_loopback(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    refuse_accidental_exposure(make_settings(host="0.0.0.0", api_keys_file=desks(tmp_path)))
    with pytest.raises(ConfigError):
        refuse_accidental_exposure(make_settings(host="0.0.0.0"))


@pytest.mark.redis
async def test_a_desks_keys_share_its_jobs_and_no_other_desk_sees_them(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    serve_app: AppServer,
    redis: object,
    prefix: str,
) -> None:
    """A job submitted with a desk's old key is read and canceled with its new one (rotation
    keeps the jobs); another desk's key gets 404, a key not in the file 401."""
    await announce_models(redis, prefix)  # type: ignore[arg-type]
    client = await serve_app(create_app(make_settings(api_keys_file=desks(tmp_path))))
    submitted = await client.post(
        "/summarize", json={"text": GERMAN, "external_id": "s-1"}, headers=key(SPORT_OLD)
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()["id"]
    view = await client.get(f"/jobs/{job}", headers=key(SPORT_NEW))
    assert view.status_code == 200 and view.json()["external_id"] == "s-1"
    assert_problem(await client.get(f"/jobs/{job}", headers=key(POLITIK)), 404, "job_not_found")
    assert_problem(await client.get(f"/jobs/{job}", headers=key("x" * 40)), 401, "unauthorized")
    canceled = await client.delete(f"/jobs/{job}", headers=key(SPORT_NEW))
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"


@pytest.mark.redis
async def test_a_keys_own_rate_limit_counts_only_its_requests(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    serve_app: AppServer,
    redis: object,
    prefix: str,
) -> None:
    """Politik's key may submit twice a minute; the third is a 429, and sport (under the
    server's limit of 100) is not held back by it."""
    await announce_models(redis, prefix)  # type: ignore[arg-type]
    settings = make_settings(api_keys_file=desks(tmp_path), rate_limit_per_minute=100)
    client = await serve_app(create_app(settings))
    for n in range(2):
        body = {"text": f"{GERMAN} Nummer {n}."}
        answer = await client.post("/summarize", json=body, headers=key(POLITIK))
        assert answer.status_code == 202, answer.text
    third = await client.post("/summarize", json={"text": GERMAN}, headers=key(POLITIK))
    assert_problem(third, 429, "rate_limited")
    for n in range(3):
        body = {"text": f"{GERMAN} Sport {n}."}
        answer = await client.post("/summarize", json=body, headers=key(SPORT_NEW))
        assert answer.status_code == 202, answer.text


def test_a_desks_own_secrets_sign_its_callbacks_and_every_secret_signs(tmp_path: Path) -> None:
    """A desk with ``webhook_secrets`` gets events its receivers verify with its secrets (both,
    during a rotation), never with the server's; other desks keep the server's secret."""
    old, new, server = generate_secret(), generate_secret(), generate_secret()
    path = write(
        tmp_path,
        f"""
[[keys]]
tenant = "sport"
sha256 = "{sha(SPORT_OLD)}"

[tenants.sport]
webhook_secrets = ["{new}", "{old}"]
""",
    )
    signers = load_keys_file(path).signers()
    assert list(signers) == ["tenant:sport"]
    body = b'{"type":"summary.succeeded"}'
    headers = signers["tenant:sport"].sign("msg_1", int(time.time()), body)
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(server).verify(body, headers)


@pytest.mark.redis
async def test_the_worker_signs_a_desks_deliveries_with_its_own_secret(
    tmp_path: Path, redis: Redis, prefix: str
) -> None:
    """What a worker's notifier sends: sport's callback signed with sport's secret, a callback of
    another desk (or a deployment endpoint) with the server's."""
    desk, server = generate_secret(), generate_secret()
    path = write(
        tmp_path,
        f'[[keys]]\ntenant = "sport"\nsha256 = "{sha(SPORT_OLD)}"\n'
        f'[tenants.sport]\nwebhook_secrets = ["{desk}"]\n',
    )
    settings = Settings(
        redis_url="redis://unused", webhook_secret=server, api_keys_file=path, _env_file=None
    )  # type: ignore[call-arg]
    keys = Keys(prefix)
    notifier = Notifier.from_settings(settings, redis, JobQueue(redis, keys), signing=True)
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(204))
    body = '{"type":"summary.succeeded","data":{}}'
    async with httpx.AsyncClient(transport=transport) as client:
        for owner in ("tenant:sport", None):
            delivery = Delivery(
                job_id="0" * 64,
                url="https://hooks.example.com/x",
                event_type="summary.succeeded",
                owner=owner,
            )
            await notifier.attempt(client, delivery, body)
    sport, plain = ({k: v for k, v in r.headers.items()} for r in seen)
    Webhook(desk).verify(body, sport)
    with pytest.raises(WebhookVerificationError):
        Webhook(server).verify(body, sport)
    Webhook(server).verify(body, plain)


def private_desk(tmp_path: Path) -> Path:
    """Sport and kultur share the cache; politik keeps its results to itself."""
    return write(
        tmp_path,
        f"""
[[keys]]
tenant = "sport"
key = "{SPORT_NEW}"

[[keys]]
tenant = "kultur"
key = "{KULTUR}"

[[keys]]
tenant = "politik"
key = "{POLITIK}"

[tenants.politik]
shares_cache = false
""",
    )


KULTUR = "kultur-" + "k" * 40


def test_a_desk_that_does_not_share_gets_a_cache_scope_of_its_own(tmp_path: Path) -> None:
    scopes = {e.tenant: e.cache_scope for e in load_keys_file(private_desk(tmp_path)).keys}
    assert scopes == {"sport": None, "kultur": None, "politik": "politik"}
    with pytest.raises(ConfigError, match="'shares_cache' must be true or false"):
        load_keys_file(write(tmp_path, f'[[keys]]\n{DIGEST}[tenants.a]\nshares_cache = "no"\n'))


@pytest.mark.redis
async def test_a_private_desk_never_gets_or_gives_another_desks_cached_result(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    serve_app: AppServer,
    redis: Redis,
    prefix: str,
) -> None:
    """Sport's finished result answers kultur at once (both share the cache: published news);
    politik, which does not share, gets a job of its own for the same article, so no answer of
    its ever says (by being cached) that another desk asked first, and its results stay its."""
    await announce_models(redis, prefix)
    client = await serve_app(create_app(make_settings(api_keys_file=private_desk(tmp_path))))
    sport = await client.post("/summarize", json={"text": GERMAN}, headers=key(SPORT_NEW))
    assert sport.status_code == 202
    shared_job = sport.json()["id"]
    await ResultCache(redis, Keys(prefix), 60).put(shared_job, a_result())

    kultur = await client.post("/summarize", json={"text": GERMAN}, headers=key(KULTUR))
    assert kultur.status_code == 200 and kultur.json()["result"]["cached"] is True
    politik = await client.post("/summarize", json={"text": GERMAN}, headers=key(POLITIK))
    assert politik.status_code == 202, politik.text
    own_job = politik.json()["id"]
    assert own_job != shared_job
    job = await JobQueue(redis, Keys(prefix)).get(own_job)
    assert job is not None and job.kwargs is not None
    assert job.kwargs["cache_scope"] == "politik"  # the worker keys its caches by it too

    await ResultCache(redis, Keys(prefix), 60).put(own_job, a_result(summary="Politik's own."))
    again = await client.post("/summarize", json={"text": GERMAN}, headers=key(SPORT_NEW))
    assert again.status_code == 200 and again.json()["id"] == shared_job
    assert again.json()["result"]["summary"] != "Politik's own."


@pytest.mark.redis
async def test_a_private_desks_sentences_are_cached_apart(redis: Redis, prefix: str) -> None:
    model = WORKER_MODELS["translation"]
    shared = RedisSentenceCache(redis, Keys(prefix), model, 60)
    private = shared.for_scope("politik")
    await shared.set_many([("Guten Morgen.", "Good morning.")])
    assert await private.get_many(["Guten Morgen."]) == [None]
    await private.set_many([("Gute Nacht.", "Good night.")])
    assert await shared.get_many(["Gute Nacht."]) == [None]
    assert await private.get_many(["Gute Nacht."]) == ["Good night."]
    assert shared.for_scope(None) is shared


@pytest.mark.redis
async def test_a_desk_with_its_own_secret_may_send_callbacks_where_the_server_has_none(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    serve_app: AppServer,
    redis: Redis,
    prefix: str,
) -> None:
    """Callbacks need a secret to be signed with: sport has its own, politik has none and the
    server has none, so only sport's callback is accepted."""
    await announce_models(redis, prefix)
    path = write(
        tmp_path,
        f'[[keys]]\ntenant = "sport"\nkey = "{SPORT_NEW}"\n'
        f'[[keys]]\ntenant = "politik"\nkey = "{POLITIK}"\n'
        f'[tenants.sport]\nwebhook_secrets = ["{generate_secret()}"]\n',
    )
    client = await serve_app(create_app(make_settings(api_keys_file=path, webhook_secret="")))
    body = {"text": GERMAN, "callback_url": "https://hooks.example.com/desk"}
    sport = await client.post("/summarize", json=body, headers=key(SPORT_NEW))
    assert sport.status_code == 202, sport.text
    politik = await client.post("/summarize", json=body, headers=key(POLITIK))
    assert_problem(politik, 422, "webhooks_not_configured")
