"""``scripts/image.sh`` without a container engine: how the machine's pip configuration reaches
an image build (read-only mounts of what it names, never the image), and the script's syntax.

The build itself, and the compose stack made from it, are checked by ``make test-image``
(``tests/image/check_stack.py``), which needs Docker or Podman.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import ROOT

SCRIPT = ROOT / "scripts" / "image.sh"


def pip_mounts(tmp_path: Path, config: str) -> tuple[list[str], configparser.ConfigParser, Path]:
    """Run ``pip-mounts`` with ``config`` as the only pip configuration besides the machine's
    site files: (mount lines, the pip.conf it wrote, the directory it wrote into)."""
    conf = tmp_path / "pip.conf"
    conf.write_text(config, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=str(conf),
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHON=sys.executable,
    )
    result = subprocess.run(
        ["bash", str(SCRIPT), "pip-mounts", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    written = configparser.ConfigParser()
    written.read(out / "pip.conf", encoding="utf-8")
    return result.stdout.splitlines(), written, out


def test_pip_configuration_reaches_the_build_as_read_only_mounts(tmp_path: Path) -> None:
    """The directories the configuration names are mounted where they are; a local index's
    directory above `simple` goes along (its pages link to ../../files); remote URLs are not."""
    wheels = tmp_path / "wheels"
    index = tmp_path / "mirror" / "simple"
    for directory in (wheels, index, tmp_path / "mirror" / "files"):
        directory.mkdir(parents=True)
    mounts, written, out = pip_mounts(
        tmp_path,
        f"[global]\nfind-links = {wheels}\n"
        f"extra-index-url = file://{index} https://pypi.example.org/simple\n",
    )
    assert f"{wheels}:{wheels}:ro" in mounts, mounts
    assert f"{index.parent}:{index.parent}:ro" in mounts, mounts
    assert f"{out}:/etc/xdg/pip:ro" == mounts[-1], mounts
    assert not any("example.org" in line for line in mounts)
    assert written["global"]["find-links"] == str(wheels)
    assert "https://pypi.example.org/simple" in written["global"]["extra-index-url"]


def test_named_files_are_copied_beside_the_configuration(tmp_path: Path) -> None:
    """The certificate bundle and constraints go in copies under /etc/xdg/pip, so that the
    build's apt can still replace the system's own bundle, which a mount would pin."""
    cert = tmp_path / "ca-bundle.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch<=2.14.1\n", encoding="utf-8")
    mounts, written, out = pip_mounts(
        tmp_path, f"[global]\ncert = {cert}\n[install]\nconstraint = {constraints}\n"
    )
    assert written["global"]["cert"] == "/etc/xdg/pip/cert-ca-bundle.crt"
    assert written["install"]["constraint"] == "/etc/xdg/pip/constraint-constraints.txt"
    assert (out / "cert-ca-bundle.crt").read_text(encoding="utf-8") == cert.read_text("utf-8")
    assert (out / "constraint-constraints.txt").read_text(encoding="utf-8") == "torch<=2.14.1\n"
    assert not any(str(cert) in line or str(constraints) in line for line in mounts), mounts


def test_environment_variables_win_over_the_files(tmp_path: Path) -> None:
    """A PIP_FIND_LINKS in the environment is what the build gets, as pip itself would."""
    files_dir, env_dir = tmp_path / "from-file", tmp_path / "from-env"
    files_dir.mkdir()
    env_dir.mkdir()
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {files_dir}\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=str(conf), PIP_FIND_LINKS=str(env_dir), PYTHON=sys.executable)
    result = subprocess.run(
        ["bash", str(SCRIPT), "pip-mounts", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert f"{env_dir}:{env_dir}:ro" in result.stdout.splitlines(), result.stdout
    written = configparser.ConfigParser()
    written.read(out / "pip.conf", encoding="utf-8")
    assert written["global"]["find-links"] == str(env_dir)


def test_container_engine_variable_picks_the_engine() -> None:
    """CONTAINER_ENGINE overrides the probe (a Docker engine, else podman)."""
    result = subprocess.run(
        ["bash", str(SCRIPT), "engine"],
        env={**os.environ, "CONTAINER_ENGINE": "podman"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "podman"


def test_script_passes_bash_syntax_check() -> None:
    """The script parses under bash -n (and shellcheck, where it is installed)."""
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
