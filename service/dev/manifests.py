"""``python -m service.dev.manifests``: render every Kubernetes overlay and validate it.

There is no cluster here, so "the manifests work" is checked as far as a machine without one
can: each overlay in ``deploy/kubernetes/overlays`` is rendered by a real kustomize (``kubectl
kustomize``, or a standalone ``kustomize build``), every object is validated against the
Kubernetes API schemas of ``kubernetes-validate`` in strict mode (an unknown field is an error,
where a real API server would silently drop it), and KEDA's objects against the pydantic models
that ``cloudcoil-models-keda`` (PyPI, Apache-2.0, the dev extra) generates from KEDA's
CustomResourceDefinitions.

Neither the CRD schemas nor those models forbid unknown fields (the API server prunes them, so a
misspelt ``minReplicaCounts`` would vanish without a word); the check validates with
``extra="forbid"`` and in strict mode, which turns such a typo, or a number written as a string,
into an error.

``make lint`` runs this; ``tests/test_kubernetes.py`` uses the same functions.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from service.constants import Keys
from service.queue.jobs import waiting_list_key
from service.settings import ROOT, Settings

#: Where the kustomize base and the overlays live.
MANIFESTS_DIR = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "production", "gpu")
#: The distribution whose models hold KEDA's CRD schemas.  Its version is KEDA's release plus
#: one generator digit (2.16.1.0 is KEDA 2.16.1); releases after 2.16.1.0 need Python 3.14.
KEDA_MODELS_DISTRIBUTION = "cloudcoil-models-keda"
#: The oldest Kubernetes minor these manifests claim to support, and the newest one that
#: kubernetes-validate knows (added at run time).
OLDEST_KUBERNETES = "1.30"
#: Seconds one kustomize run may take (a cold ``kubectl kustomize`` takes well under one).
RENDER_TIMEOUT_S = 60
#: The trigger metadata KEDA's Redis scaler reads (KEDA 2.20.2, ``pkg/scalers/redis_scaler.go``,
#: the ``keda:"name=..."`` tags read from trigger metadata).  The CRD types trigger metadata as
#: a map of strings, so a misspelt key (``listname``) passes its schema and is ignored.
REDIS_SCALER_METADATA = frozenset(
    {
        "address",
        "addresses",
        "host",
        "hosts",
        "port",
        "ports",
        "username",
        "password",
        "sentinelUsername",
        "sentinelPassword",
        "sentinelMaster",
        "unsafeSsl",
        "listLength",
        "activationListLength",
        "listName",
        "databaseIndex",
        "enableTLS",
    }
)


class ManifestError(Exception):
    """An overlay could not be rendered, or a rendered object is invalid."""


class KustomizeMissingError(ManifestError):
    """Neither ``kubectl`` nor ``kustomize`` is on the PATH."""


def kustomize_command() -> list[str]:
    """The command that renders a kustomization directory given as its last argument."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    if kustomize is not None:
        return [kustomize, "build"]
    message = (
        "no kustomize found: install kubectl (Debian package `kubectl`) or a standalone "
        "`kustomize` to render deploy/kubernetes"
    )
    raise KustomizeMissingError(message)


def render(overlay: str, manifests_dir: Path = MANIFESTS_DIR) -> list[dict[str, Any]]:
    """The objects ``overlay`` renders to, in kustomize's order."""
    command = [*kustomize_command(), str(manifests_dir / "overlays" / overlay)]
    completed = subprocess.run(  # noqa: S603 - a fixed command on the repository's own files
        command, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, check=False
    )
    if completed.returncode != 0:
        message = f"kustomize failed on overlay {overlay}: {completed.stderr.strip()}"
        raise ManifestError(message)
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


def kubernetes_versions() -> list[str]:
    """The Kubernetes minors to validate against: the oldest supported and the newest known."""
    import kubernetes_validate

    newest = ".".join(str(kubernetes_validate.latest_version()).split(".")[:2])
    return sorted({OLDEST_KUBERNETES, newest})


def keda_version() -> str:
    """The KEDA release whose CRDs the installed models were generated from."""
    version = metadata.version(KEDA_MODELS_DISTRIBUTION)
    return ".".join(version.split(".")[:3])


def keda_models() -> dict[tuple[str, str], type[BaseModel]]:
    """KEDA's custom resources by ``(apiVersion, kind)``, as the models generated from its CRDs."""
    from cloudcoil.models.keda import v1alpha1

    resources: list[type[BaseModel]] = [
        v1alpha1.ScaledObject,
        v1alpha1.ScaledJob,
        v1alpha1.TriggerAuthentication,
        v1alpha1.ClusterTriggerAuthentication,
    ]
    return {("keda.sh/v1alpha1", resource.__name__): resource for resource in resources}


def object_name(obj: Mapping[str, Any]) -> str:
    """``Kind/name`` of a rendered object, for messages."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def validate(
    objects: Sequence[Mapping[str, Any]],
    versions: Sequence[str],
    keda: Mapping[tuple[str, str], type[BaseModel]],
) -> list[str]:
    """Every problem found in ``objects``, one line each; empty when all are valid."""
    import kubernetes_validate

    problems: list[str] = []
    for obj in objects:
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        if key in keda:
            problems.extend(_keda_problems(obj, keda[key]))
            problems.extend(_redis_trigger_problems(obj))
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(dict(obj), version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(
                    f"{object_name(obj)} (Kubernetes {version}): {_where(error)}{error.message}"
                )
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{object_name(obj)}: {error.message}")
    problems.extend(_waiting_list_problems(objects))
    return problems


def _waiting_list_problems(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """Redis triggers that read another list than the queue's waiting list.

    The key follows ``KURZ_KEY_PREFIX`` from the settings ConfigMap (the setting's default when
    it is not set there), asked of the queue package, so a prefix changed without the trigger
    fails here rather than leaving KEDA to watch an empty list.
    """
    prefix = str(Settings.model_fields["key_prefix"].default)
    for obj in objects:
        if obj.get("kind") == "ConfigMap" and "KURZ_KEY_PREFIX" in obj.get("data", {}):
            prefix = str(obj["data"]["KURZ_KEY_PREFIX"])
    expected = waiting_list_key(Keys(prefix))
    problems = []
    for obj in objects:
        if obj.get("kind") != "ScaledObject":
            continue
        for index, trigger in enumerate(obj.get("spec", {}).get("triggers", [])):
            list_name = trigger.get("metadata", {}).get("listName")
            if trigger.get("type") == "redis" and list_name != expected:
                problems.append(
                    f"{object_name(obj)}: trigger {index} reads {list_name!r}, but the queue's "
                    f"waiting list for prefix {prefix!r} is {expected!r}"
                )
    return problems


def _keda_problems(obj: Mapping[str, Any], model: type[BaseModel]) -> list[str]:
    """What KEDA's schema refuses in ``obj``: wrong types, and fields it does not know.

    Field names only as Kubernetes spells them (``by_name=False``: the models also accept their
    Python names, which the API server would not).
    """
    try:
        model.model_validate(obj, strict=True, extra="forbid", by_alias=True, by_name=False)
    except ValidationError as error:
        return [
            f"{object_name(obj)} (KEDA {keda_version()}): at "
            f"{'/'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        ]
    return []


def _redis_trigger_problems(obj: Mapping[str, Any]) -> list[str]:
    """Trigger metadata keys that KEDA's Redis scaler does not read."""
    if obj.get("kind") != "ScaledObject":
        return []
    problems = []
    for index, trigger in enumerate(obj.get("spec", {}).get("triggers", [])):
        if trigger.get("type") not in {"redis", "redis-cluster", "redis-sentinel"}:
            continue
        unknown = sorted(set(trigger.get("metadata", {})) - REDIS_SCALER_METADATA)
        if unknown:
            problems.append(
                f"{object_name(obj)}: trigger {index} has metadata KEDA's Redis scaler does not "
                f"read: {', '.join(unknown)}"
            )
    return problems


def _where(error: Any) -> str:
    path = "/".join(str(part) for part in error.absolute_path)
    return f"at {path}: " if path else ""


def check_all(overlays: Sequence[str] = OVERLAYS) -> Iterator[tuple[str, int, list[str]]]:
    """Render and validate each overlay: ``(overlay, object count, problems)``."""
    versions = kubernetes_versions()
    keda = keda_models()
    for overlay in overlays:
        objects = render(overlay)
        yield overlay, len(objects), validate(objects, versions, keda)


def main(argv: Sequence[str] | None = None) -> int:
    """Check the overlays named in ``argv`` (all by default); the exit status says how it went."""
    overlays = list(argv if argv is not None else sys.argv[1:]) or list(OVERLAYS)
    out = sys.stdout
    failed = False
    try:
        versions = ", ".join(kubernetes_versions())
        for overlay, count, problems in check_all(overlays):
            if problems:
                failed = True
                out.write(f"{overlay}: {len(problems)} problem(s)\n")
                out.writelines(f"  {problem}\n" for problem in problems)
            else:
                out.write(
                    f"{overlay}: {count} objects valid (Kubernetes {versions}; "
                    f"KEDA {keda_version()} CRDs)\n"
                )
    except ManifestError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
