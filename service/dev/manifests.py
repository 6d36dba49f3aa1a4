"""``python -m service.dev.manifests``: render every Kubernetes overlay and validate it.

There is no cluster here, so "the manifests work" is checked as far as a machine without one
can: each overlay in ``deploy/kubernetes/overlays`` is rendered by a real kustomize (``kubectl
kustomize``, or a standalone ``kustomize build``), every object is validated against the
Kubernetes API schemas of ``kubernetes-validate`` in strict mode (an unknown field is an error,
where a real API server would silently drop it), and KEDA's objects against the schemas of KEDA's
own CustomResourceDefinitions, vendored in ``deploy/kubernetes/schemas/keda``.

CRD schemas do not forbid unknown fields (the API server prunes them, so a misspelt
``minReplicaCounts`` would vanish without a word); the check closes every object schema that
lists its properties, which turns such a typo into an error.

``make lint`` runs this; ``tests/test_kubernetes.py`` uses the same functions.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from service.settings import ROOT

#: Where the kustomize base, the overlays and the vendored schemas live.
MANIFESTS_DIR = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "production", "gpu")
#: The KEDA release whose CRDs are vendored (see deploy/kubernetes/schemas/keda/README.md).
KEDA_VERSION = "2.20.2"
KEDA_SCHEMAS_DIR = MANIFESTS_DIR / "schemas" / "keda"
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


@dataclass(frozen=True)
class CrdSchema:
    """The closed ``openAPIV3Schema`` of one version of a vendored CRD."""

    api_version: str
    kind: str
    schema: dict[str, Any]


def closed(schema: Any) -> Any:
    """A copy of ``schema`` in which every object that lists its properties allows no others.

    Objects with ``additionalProperties`` or ``x-kubernetes-preserve-unknown-fields`` keep
    accepting unknown keys, as the API server does.
    """
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def keda_schemas(schemas_dir: Path = KEDA_SCHEMAS_DIR) -> dict[tuple[str, str], CrdSchema]:
    """The vendored CRDs' schemas by ``(apiVersion, kind)``."""
    schemas: dict[tuple[str, str], CrdSchema] = {}
    for path in sorted(schemas_dir.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            api_version = f"{group}/{version['name']}"
            schema = closed(version["schema"]["openAPIV3Schema"])
            schemas[(api_version, kind)] = CrdSchema(api_version, kind, schema)
    return schemas


def object_name(obj: Mapping[str, Any]) -> str:
    """``Kind/name`` of a rendered object, for messages."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def validate(
    objects: Sequence[Mapping[str, Any]],
    versions: Sequence[str],
    crds: Mapping[tuple[str, str], CrdSchema],
) -> list[str]:
    """Every problem found in ``objects``, one line each; empty when all are valid."""
    import jsonschema
    import kubernetes_validate

    problems: list[str] = []
    for obj in objects:
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        if key in crds:
            validator = jsonschema.Draft7Validator(crds[key].schema)
            problems.extend(
                f"{object_name(obj)} (KEDA {KEDA_VERSION}): {_where(error)}{error.message}"
                for error in validator.iter_errors(obj)
            )
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
    return problems


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
    crds = keda_schemas()
    for overlay in overlays:
        objects = render(overlay)
        yield overlay, len(objects), validate(objects, versions, crds)


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
                    f"KEDA {KEDA_VERSION} CRDs)\n"
                )
    except ManifestError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
