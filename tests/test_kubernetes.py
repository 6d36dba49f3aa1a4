"""The Kubernetes manifests in deploy/kubernetes, rendered by a real kustomize.

No cluster runs here, so these tests check what a cluster would rely on: KEDA's trigger reads
the Redis list the queue really writes (enqueued on a live Redis), every ``KURZ_`` name is a
setting the service reads, every probe path is a route of the app, the objects are valid against
the Kubernetes and KEDA schemas, and the pods are unprivileged, fenced in and given time to
finish their jobs.  They skip, saying why, when kubectl (or kustomize) or kubernetes-validate is
missing; CI has both (``pyproject.toml``'s dev extra, and kubectl on the machine).
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from service.constants import WORKER_HEARTBEAT_TTL_S, Keys
from service.dev import manifests
from service.queue import JobPayload, JobQueue
from service.queue.jobs import waiting_list_key
from service.settings import ROOT, Settings
from service.store.workers import WorkerRegistry
from tests.processes import free_port

#: Peak worker RSS measured with ctranslate2 int8 and both default models (issue 6's note).
MEASURED_WORKER_PEAK_RSS_BYTES = 799 * 10**6
QUANTITY_BYTES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}

Objects = list[dict[str, Any]]


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> dict[str, Objects]:
    """Every overlay, rendered once by the kustomize found on the PATH."""
    try:
        return {overlay: manifests.render(overlay) for overlay in manifests.OVERLAYS}
    except manifests.KustomizeMissingError as error:
        pytest.skip(f"cannot render the manifests: {error}")


def of_kind(objects: Objects, kind: str) -> Objects:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    (found,) = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    return found


def settings_data(objects: Objects) -> dict[str, str]:
    """The KURZ_ settings ConfigMap's data (its generated name carries a hash suffix)."""
    (config,) = of_kind(objects, "ConfigMap")
    assert config["metadata"]["name"].startswith("kurzgefasst-settings")
    return dict(config["data"])


def container(objects: Objects, deployment: str) -> dict[str, Any]:
    pod = named(objects, "Deployment", deployment)["spec"]["template"]["spec"]
    (only,) = pod["containers"]
    return dict(only)


def pod_specs(objects: Objects) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in {"Deployment", "StatefulSet"}:
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]


def to_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * QUANTITY_BYTES.get(unit, 1)


def redis_trigger(objects: Objects) -> dict[str, Any]:
    (scaled,) = of_kind(objects, "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    return dict(trigger)


# --- the autoscaler reads the queue's real list -------------------------------------------------


async def test_trigger_reads_the_list_the_queue_writes(
    rendered: dict[str, Objects], redis: Redis, prefix: str
) -> None:
    """KEDA's key is the Redis list of waiting jobs, as a live queue fills it, in every overlay."""
    queue = JobQueue(redis, Keys(prefix))
    for number in range(3):
        await queue.submit(f"plain-{number}", JobPayload(text=f"Artikel {number}."))
    await queue.submit("bounded", JobPayload(text="Noch einer."), max_depth=100)
    key = queue.waiting_list_key()
    assert key == waiting_list_key(Keys(prefix)), "no Redis server is needed to name the key"
    assert await redis.type(key) == b"list"
    assert await redis.llen(key) == 4 == await queue.depth()
    await queue.cancel("bounded")
    assert await redis.llen(key) == 3, "a canceled job leaves the waiting list"
    for overlay, objects in rendered.items():
        deployed_prefix = settings_data(objects).get("KURZ_KEY_PREFIX", Settings().key_prefix)
        trigger = redis_trigger(objects)
        assert trigger["metadata"]["listName"] == waiting_list_key(Keys(deployed_prefix)), overlay


def test_trigger_asks_one_worker_for_one_batch(rendered: dict[str, Objects]) -> None:
    """listLength is the worker concurrency, and at least one worker stays for readiness."""
    for overlay, objects in rendered.items():
        concurrency = settings_data(objects)["KURZ_WORKER_CONCURRENCY"]
        (scaled,) = of_kind(objects, "ScaledObject")
        assert redis_trigger(objects)["metadata"]["listLength"] == concurrency, overlay
        assert scaled["spec"]["scaleTargetRef"]["name"] == "kurzgefasst-worker"
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


# --- settings, probes and grace periods match the service ---------------------------------------


def test_every_kurz_name_is_a_setting(rendered: dict[str, Objects]) -> None:
    """A misspelt KURZ_ variable in a manifest or its README would be silently ignored."""
    known = {f"KURZ_{name.upper()}" for name in Settings.model_fields}
    for overlay, objects in rendered.items():
        names = set(settings_data(objects))
        for _, pod in pod_specs(objects):
            for box in pod["containers"]:
                names |= {variable["name"] for variable in box.get("env", [])}
        kurz = {name for name in names if name.startswith("KURZ_")}
        assert kurz, overlay
        assert kurz <= known, f"{overlay}: {sorted(kurz - known)}"
    for path in (ROOT / "deploy" / "kubernetes").rglob("*"):
        if path.suffix in {".yaml", ".env", ".md"}:
            for name in re.findall(r"\bKURZ_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8")):
                assert name in known, f"{path.relative_to(ROOT)}: {name}"


def test_probe_paths_are_routes_of_the_app(rendered: dict[str, Objects]) -> None:
    """Liveness asks /health/live and the API's readiness /health/ready, both real routes."""
    from service.api.app import create_app

    routes = {route.path for route in create_app(Settings(_env_file=None)).routes}  # type: ignore[call-arg]
    for overlay, objects in rendered.items():
        api = container(objects, "kurzgefasst-api")
        assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert api[probe]["httpGet"]["path"] in routes, f"{overlay}: {probe}"
        worker = container(objects, "kurzgefasst-worker")
        for probe in ("startupProbe", "livenessProbe"):
            command = worker[probe]["exec"]["command"]
            assert command[1:] == ["-m", "service", "worker-alive"], f"{overlay}: {probe}"


async def test_worker_liveness_follows_its_own_heartbeat(
    redis: Redis, prefix: str, redis_url: str
) -> None:
    """The probe passes while a worker on this host beats, and fails once it stops or Redis is
    away; another host's worker does not count."""
    keys = Keys(prefix)
    host = socket.gethostname()
    registry = WorkerRegistry(redis, keys)
    env = {**os.environ, "KURZ_REDIS_URL": redis_url, "KURZ_KEY_PREFIX": prefix}
    probe = [sys.executable, "-m", "service", "worker-alive"]

    async def probe_status() -> int:
        done = await asyncio.to_thread(subprocess.run, probe, env=env, timeout=60, check=False)
        return done.returncode

    await redis.set(keys.worker_host("other-host"), b"other-host-7-abc123", ex=15)
    assert not await registry.host_alive(host), "another pod's worker is not this one"
    assert await probe_status() == 1
    await registry.beat(f"{host}-42-def456", {})
    assert await registry.host_alive(host)
    assert 0 < await redis.ttl(keys.worker_host(host)) <= WORKER_HEARTBEAT_TTL_S
    assert await probe_status() == 0
    assert await registry.count() == 1, "the host's key is not counted as a worker"
    await registry.remove(f"{host}-42-def456")
    assert not await registry.host_alive(host)
    assert await probe_status() == 1
    await registry.beat(f"{host}-43-0a0b0c", {})
    env["KURZ_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    assert await probe_status() == 1, "no Redis, no proof of life"


def test_worker_gets_longer_to_stop_than_its_shutdown_grace(rendered: dict[str, Objects]) -> None:
    """SIGKILL comes only after the worker's grace for the jobs in hand, plus under a minute."""
    for overlay, objects in rendered.items():
        grace = int(
            settings_data(objects).get("KURZ_SHUTDOWN_GRACE_S", Settings().shutdown_grace_s)
        )
        pod = named(objects, "Deployment", "kurzgefasst-worker")["spec"]["template"]["spec"]
        assert grace < pod["terminationGracePeriodSeconds"] <= grace + 60, overlay


# --- security, network, disruption budgets ------------------------------------------------------


def test_pods_run_unprivileged_on_read_only_roots(rendered: dict[str, Objects]) -> None:
    """Non-root, seccomp RuntimeDefault, no privilege escalation, no capabilities, read-only /."""
    for overlay, objects in rendered.items():
        for name, pod in pod_specs(objects):
            where = f"{overlay}: {name}"
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert pod["automountServiceAccountToken"] is False, where
            for box in pod["containers"]:
                context = box["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["readOnlyRootFilesystem"] is True, where
                assert context["capabilities"] == {"drop": ["ALL"]}, where


def policy_ports(rules: list[dict[str, Any]]) -> set[int]:
    return {port["port"] for rule in rules for port in rule.get("ports", [])}


def test_network_policies_fence_redis_and_the_workers(rendered: dict[str, Objects]) -> None:
    """Workers take no connections and reach out on DNS, Redis and 80/443 only; the API never
    reaches the web; in dev only the API, workers and KEDA reach Redis."""
    for overlay, objects in rendered.items():
        worker = named(objects, "NetworkPolicy", "kurzgefasst-worker")["spec"]
        assert set(worker["policyTypes"]) == {"Ingress", "Egress"}
        assert worker.get("ingress", []) == [], overlay
        assert policy_ports(worker["egress"]) == {53, 6379, 6380, 80, 443}, overlay
        api = named(objects, "NetworkPolicy", "kurzgefasst-api")["spec"]
        assert policy_ports(api["egress"]) == {53, 6379, 6380}, overlay
    redis = named(rendered["dev"], "NetworkPolicy", "kurzgefasst-redis")["spec"]
    assert redis.get("egress", []) == [] and "Egress" in redis["policyTypes"]
    (rule,) = redis["ingress"]
    components = {
        peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for peer in rule["from"]
        if "namespaceSelector" not in peer
    }
    assert components == {"api", "worker"}
    assert [peer for peer in rule["from"] if "namespaceSelector" in peer], "KEDA reads the queue"


def test_every_deployment_has_a_disruption_budget(rendered: dict[str, Objects]) -> None:
    """A node drain evicts one API and one worker pod at a time, never all of them."""
    for overlay, objects in rendered.items():
        budgets = [
            pdb["spec"]["selector"]["matchLabels"]
            for pdb in of_kind(objects, "PodDisruptionBudget")
        ]
        for deployment in of_kind(objects, "Deployment"):
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            matching = [sel for sel in budgets if sel.items() <= labels.items()]
            assert len(matching) == 1, f"{overlay}: {deployment['metadata']['name']}"


# --- overlays -----------------------------------------------------------------------------------


def test_dev_runs_redis_with_aof_on_a_volume(rendered: dict[str, Objects]) -> None:
    """The dev overlay's Redis persists (AOF, PVC) and takes its password from the Secret."""
    redis = named(rendered["dev"], "StatefulSet", "kurzgefasst-redis")
    (box,) = redis["spec"]["template"]["spec"]["containers"]
    assert box["args"][box["args"].index("--appendonly") + 1] == "yes"
    assert box["args"][box["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert [claim["metadata"]["name"] for claim in redis["spec"]["volumeClaimTemplates"]] == [
        "data"
    ]
    assert not of_kind(rendered["production"], "StatefulSet"), "production uses a managed Redis"


def test_production_sizes_workers_from_measured_memory(rendered: dict[str, Objects]) -> None:
    """Requests cover the measured peak, limits sit above, CPU is whole cores for the threads."""
    worker = container(rendered["production"], "kurzgefasst-worker")["resources"]
    request = to_bytes(worker["requests"]["memory"])
    assert MEASURED_WORKER_PEAK_RSS_BYTES < request < to_bytes(worker["limits"]["memory"])
    assert worker["requests"]["cpu"] == worker["limits"]["cpu"]
    assert float(worker["limits"]["cpu"]).is_integer()
    (hpa,) = of_kind(rendered["production"], "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "kurzgefasst-api"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert redis_trigger(rendered["production"])["metadata"]["enableTLS"] == "true"


def test_gpu_overlay_gives_workers_a_gpu_and_the_cuda_image(rendered: dict[str, Objects]) -> None:
    """GPU workers request an NVIDIA GPU, run with KURZ_DEVICE=cuda, on another image."""
    objects = rendered["gpu"]
    worker = container(objects, "kurzgefasst-worker")
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "KURZ_DEVICE", "value": "cuda"} in worker["env"]
    assert worker["image"] != container(objects, "kurzgefasst-api")["image"]
    mounts = {mount["mountPath"] for mount in worker["volumeMounts"]}
    assert Settings().converted_models_dir.relative_to(ROOT).as_posix() in {
        path.removeprefix("/app/") for path in mounts
    }, "CUDA conversions need a writable directory"


# --- schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_overlay_is_valid_against_kubernetes_and_keda_schemas(
    rendered: dict[str, Objects], overlay: str
) -> None:
    """Every object of the overlay passes the strict Kubernetes schemas and KEDA's CRDs."""
    pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (dev extra)")
    pytest.importorskip("cloudcoil.models.keda", reason="pip install cloudcoil-models-keda (dev)")
    problems = manifests.validate(
        rendered[overlay], manifests.kubernetes_versions(), manifests.keda_models()
    )
    assert problems == []


def test_validation_catches_a_misspelt_field(rendered: dict[str, Objects]) -> None:
    """A typo that an API server would silently drop is reported, in KEDA's objects too."""
    pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (dev extra)")
    pytest.importorskip("cloudcoil.models.keda", reason="pip install cloudcoil-models-keda (dev)")
    scaled = copy.deepcopy(of_kind(rendered["dev"], "ScaledObject")[0])
    scaled["spec"]["minReplicaCounts"] = scaled["spec"].pop("minReplicaCount")
    scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
        "stabilisationWindowSeconds"
    ] = 600
    scaled["spec"]["triggers"][0]["metadata"]["listname"] = "saq:kurz:queued"
    (auth,) = of_kind(rendered["dev"], "TriggerAuthentication")
    auth = copy.deepcopy(auth)
    auth["spec"]["secretTargetRefs"] = auth["spec"].pop("secretTargetRef")
    api = copy.deepcopy(named(rendered["dev"], "Deployment", "kurzgefasst-api"))
    api["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFileSystem"
    ] = True
    problems = manifests.validate(
        [scaled, auth, api], [manifests.OLDEST_KUBERNETES], manifests.keda_models()
    )
    joined = msgspec.json.encode(problems).decode()
    assert len(problems) == 5, problems
    for typo in (
        "minReplicaCounts",
        "stabilisationWindowSeconds",
        "listname",
        "secretTargetRefs",
        "readOnlyRootFileSystem",
    ):
        assert typo in joined


def test_validation_catches_a_trigger_on_another_list(rendered: dict[str, Objects]) -> None:
    """A KURZ_KEY_PREFIX changed without the trigger's listName is reported by `make lint`."""
    objects = copy.deepcopy(rendered["dev"])
    (config,) = of_kind(objects, "ConfigMap")
    config["data"]["KURZ_KEY_PREFIX"] = "newsroom"
    problems = manifests.validate(
        [config, *of_kind(objects, "ScaledObject")], [], manifests.keda_models()
    )
    assert len(problems) == 1, problems
    assert "saq:newsroom:queued" in problems[0]


def test_keda_validation_refuses_wrong_types_and_python_names(rendered: dict[str, Objects]) -> None:
    """A replica count written as a string, or a field in the models' snake_case, is refused."""
    pytest.importorskip("cloudcoil.models.keda", reason="pip install cloudcoil-models-keda (dev)")
    scaled = copy.deepcopy(of_kind(rendered["production"], "ScaledObject")[0])
    scaled["spec"]["maxReplicaCount"] = str(scaled["spec"]["maxReplicaCount"])
    scaled["spec"]["polling_interval"] = scaled["spec"].pop("pollingInterval")
    problems = manifests.validate([scaled], [], manifests.keda_models())
    assert len(problems) == 2, problems
    assert "spec/maxReplicaCount" in problems[0] + problems[1]
    assert "spec/polling_interval" in problems[0] + problems[1]


def test_only_the_dev_overlay_serves_without_keys(rendered: dict[str, Objects]) -> None:
    """The API listens on the pod's address, so without keys it refuses to start unless the
    overlay says serving everyone is meant: only the laptop overlay (port-forward) does."""
    for overlay, objects in rendered.items():
        data = settings_data(objects)
        assert data.get("KURZ_HOST", "127.0.0.1") not in ("127.0.0.1", "localhost")
        open_on_purpose = data.get("KURZ_ALLOW_OPEN_API", "false").lower() == "true"
        assert open_on_purpose == (overlay == "dev"), overlay
        env = {item["name"] for item in container(objects, "kurzgefasst-api").get("env", [])}
        assert "KURZ_API_KEYS" in env, overlay
