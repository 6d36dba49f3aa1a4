#!/usr/bin/env bash
# One install path for every place the project is set up: `make install`, CI and the Dockerfile
# all run this script, so what CI proves is what the image does.
#
#   scripts/install.sh VENV_DIR [EXTRAS]
#
# VENV_DIR is created if missing. EXTRAS is a pip extras list such as "dev" (default: none).
#
# Python: the project supports 3.11 to 3.13 (requires-python in pyproject.toml; a test keeps the
# two in step). The interpreter is PYTHON when set, else python3 when it is supported, else the
# newest supported python3.1x on PATH. An existing VENV_DIR is kept when its Python is supported
# (and, with PYTHON set, is PYTHON's version); otherwise it is rebuilt, and the script says so:
# pip refuses the package on an unsupported Python, so reusing such a venv only fails later.
#
# torch: installed by default (the pyproject extra `torch`), the CPU build by default, because on
# Linux the registry's torch is a CUDA build of several gigabytes that a CPU-only machine never
# uses.  It converts models for ctranslate2, builds the tiny models the tests use, and runs
# KURZ_BACKEND=transformers; a worker on the ctranslate2 backend with converted models runs
# without it.
#   WITH_TORCH=0      a lean environment without torch (the image's runtime venv on the default
#                     backend): the script stops if torch is installed all the same
#   TORCH_INDEX_URL   an index to install torch from (a CUDA `.../whl/cu128`, or a mirror); wins
#   KURZ_TORCH=cuda   the registry's default build (CUDA on Linux): for GPU hosts
#   KURZ_TORCH=cpu    (the default) PyTorch's CPU index when it answers within
#                     TORCH_PROBE_TIMEOUT_S (3 s), else the registry's CPU build by its local
#                     version (torch==2.13.0+cpu, which offline mirrors and wheel caches hold),
#                     else the registry's torch==2.13.0: on Linux PyPI has only the CUDA build
#                     under that name, and pip takes it with its nvidia-* libraries
#   TORCH_CPU_INDEX_URL  where the CPU build lives (https://download.pytorch.org/whl/cpu)
#   TORCH_SPEC        the torch requirement (torch==2.13.0, the pin of the `torch` extra)
#   TORCH_CPU_ONLY=1  with KURZ_TORCH=cpu, stop with an error when the environment ends up with
#                     a CUDA build of torch or any nvidia-* package (a hint otherwise): the
#                     Dockerfile sets it, because the CPU image must never carry gigabytes of
#                     CUDA libraries that nothing in it can use
# The script prints which torch it installed, its build and its size on disk.
#
# DEPS_ONLY=1 installs torch and the dependencies pyproject.toml lists (with EXTRAS) but not the
# package itself, so it needs only pyproject.toml and this script: the Dockerfile runs it before
# copying the source, so that the dependency layer stays cached while the code changes.
set -euo pipefail
venv=${1:?usage: scripts/install.sh VENV_DIR [EXTRAS]}
extras=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)

# Minor versions of Python 3 the project supports: keep in step with requires-python.
supported_min=11
supported_max=13
torch_spec=${TORCH_SPEC:-torch==2.13.0}
torch_choice=${KURZ_TORCH:-cpu}
with_torch=${WITH_TORCH:-1}
cpu_index=${TORCH_CPU_INDEX_URL:-https://download.pytorch.org/whl/cpu}
probe_timeout_s=${TORCH_PROBE_TIMEOUT_S:-3}
how_to_get="install one (Debian/Ubuntu: apt install python3.12-venv; macOS: brew install python@3.13; or python.org) and run again, or set PYTHON to its path"

say() { printf 'install.sh: %s\n' "$*"; }
die() {
  say "$*" >&2
  exit 1
}

# "3.12" for an interpreter that runs, nothing for one that does not.
version_of() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}

is_supported() {
  local minor=${1#3.}
  [[ $1 == 3.* && $minor =~ ^[0-9]+$ ]] && ((minor >= supported_min && minor <= supported_max))
}

python="" python_version=""

# Sets `python` and `python_version`: PYTHON, else python3 if supported, else the newest
# supported python3.1x on PATH; stops with one line naming what it found otherwise.
pick_python() {
  local range="3.$supported_min to 3.$supported_max" version name
  if [ -n "${PYTHON:-}" ]; then
    version=$(version_of "$PYTHON")
    [ -n "$version" ] || die "PYTHON=$PYTHON is not found or does not run; $how_to_get"
    is_supported "$version" \
      || die "PYTHON=$PYTHON is Python $version, Kurzgefasst needs $range: $how_to_get"
    python=$PYTHON python_version=$version
    return
  fi
  local found=() names
  names=$( (compgen -c python3. || true) | grep -E '^python3\.[0-9]+$' | sort -t. -k2,2nr -u || true)
  for name in python3 $names; do
    command -v "$name" >/dev/null || continue
    version=$(version_of "$name")
    if [ -n "$version" ] && is_supported "$version"; then
      python=$name python_version=$version
      return
    fi
    found+=("$name (${version:-does not run})")
  done
  local seen="found no python3 on PATH"
  if [ ${#found[@]} -gt 0 ]; then
    seen="found $(printf '%s, ' "${found[@]}")"
    seen=${seen%, }
  fi
  die "no supported Python ($range): $seen; $how_to_get"
}

# The venv: kept when its Python fits, rebuilt (and said so) when it does not. The version it
# was made with comes from pyvenv.cfg: after a system upgrade its bin/python may still run, but
# as another version than its site-packages were installed for.
venv_made="" venv_runs="" venv_ok=""
if [ -e "$venv/bin/python" ] || [ -L "$venv/bin/python" ]; then
  venv_runs=$(version_of "$venv/bin/python")
  if [ -f "$venv/pyvenv.cfg" ]; then
    venv_made=$(sed -n 's/^version\(_info\)\{0,1\} *= *\([0-9]*\.[0-9]*\).*/\2/p' "$venv/pyvenv.cfg")
  fi
  venv_made=${venv_made:-$venv_runs}
  if [ -n "$venv_runs" ] && [ "$venv_runs" = "$venv_made" ] && is_supported "$venv_runs"; then
    venv_ok=yes
  fi
  if [ -n "${PYTHON:-}" ] || [ -z "$venv_ok" ]; then
    pick_python
  fi
  if [ -z "$venv_ok" ] || { [ -n "$python" ] && [ "$venv_runs" != "$python_version" ]; }; then
    [ -f "$venv/pyvenv.cfg" ] \
      || die "$venv is not a virtual environment; remove it or pass another VENV_DIR"
    made_by="was made by Python $venv_made"
    [ -n "$venv_made" ] || made_by="has a Python that no longer runs"
    say "$venv $made_by; rebuilding it with $python (Python $python_version)"
    rm -rf "$venv"
  fi
else
  pick_python
fi
if [ ! -e "$venv/bin/python" ]; then
  "$python" -m venv "$venv" \
    || die "$python could not create $venv (Debian/Ubuntu: apt install python$python_version-venv)"
fi
py=("$venv/bin/python")
pip=("${py[@]}" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip

answers() {
  # A bounded probe: urlopen's timeout does not cover the DNS lookup, which can hang offline,
  # so the request runs in a daemon thread that the interpreter abandons after the deadline.
  "${py[@]}" -c '
import sys, threading, urllib.request
url, limit_s = sys.argv[1], float(sys.argv[2])
ok = []
def probe():
    try:
        with urllib.request.urlopen(url, timeout=limit_s) as response:
            ok.append(response.status == 200)
    except Exception:
        pass
thread = threading.Thread(target=probe, daemon=True)
thread.start()
thread.join(limit_s)
sys.exit(0 if ok and ok[0] else 1)
' "$1" "$probe_timeout_s"
}
case $torch_choice in cpu | cuda) ;; *) die "KURZ_TORCH=$torch_choice: use cpu or cuda" ;; esac
# torch first and alone: with it installed, the package's own torch requirement (the `torch`
# extra) is already satisfied and nothing else is fetched for it.
install_torch() {
  local torch_index="" torch_from="" cpu_spec="" torch_build hint=""
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    torch_index=$TORCH_INDEX_URL torch_from="from TORCH_INDEX_URL ($TORCH_INDEX_URL)"
  elif [ "$torch_choice" = cuda ]; then
    torch_from="from the package registry (KURZ_TORCH=cuda)"
  elif answers "${cpu_index%/}/torch/"; then
    torch_index=$cpu_index torch_from="from PyTorch's CPU index ($cpu_index)"
  else
    torch_from="from the package registry: PyTorch's CPU index ($cpu_index) did not answer within ${probe_timeout_s} s"
  fi
  # Without PyTorch's index, the CPU build can still be on hand under its local version (a wheel
  # cache, a mirror): asked for by that name first, since the bare pin is the CUDA build on PyPI.
  if [ -z "$torch_index" ] && [ "$torch_choice" = cpu ] && [[ $torch_spec =~ ^torch==[0-9.]+$ ]]; then
    cpu_spec="$torch_spec+cpu"
  fi
  if [ -n "$torch_index" ]; then
    "${pip[@]}" install --quiet "$torch_spec" --index-url "$torch_index"
  elif [ -n "$cpu_spec" ] && "${pip[@]}" install --quiet "$cpu_spec" 2>/dev/null; then
    torch_from="as $cpu_spec $torch_from"
  else
    [ -z "$cpu_spec" ] \
      || torch_from="from the package registry, which has no $cpu_spec: ${torch_from#*: }"
    "${pip[@]}" install --quiet "$torch_spec"
  fi
  torch_build=$("${py[@]}" -c '
import importlib.metadata as metadata, re
torch = metadata.distribution("torch")
def size(dist):
    return sum(file.size or 0 for file in dist.files or [])
# The CUDA build brings its libraries as separate packages: count them too.
extra = sum(
    size(dist) for dist in metadata.distributions()
    if (dist.metadata["Name"] or "").lower().startswith(("nvidia-", "triton"))
)
version_py = torch.locate_file("torch/version.py").read_text(encoding="utf-8")
cuda = re.search(r"^cuda\b[^=]*=\s*.([0-9.]+)", version_py, re.M)
build = f"CUDA {cuda[1]} build" if cuda else "CPU build"
print(f"torch {torch.version} ({build}, {(size(torch) + extra) / 1e9:.1f} GB on disk)")
')
  if [ "$torch_choice" = cpu ] && [[ $torch_build == *CUDA* ]]; then
    hint="; for the smaller CPU build set TORCH_INDEX_URL to an index that has it"
  fi
  say "installed $torch_build $torch_from$hint"
}

# With TORCH_CPU_ONLY=1 and KURZ_TORCH=cpu: stops when torch is a CUDA build or any nvidia-*
# package is installed (torch's CUDA build brings them, and so could another dependency).
check_cpu_only() {
  [ "${TORCH_CPU_ONLY:-}" = 1 ] && [ "$torch_choice" = cpu ] || return 0
  local found
  found=$("${py[@]}" -c '
import importlib.metadata as metadata, re
found = sorted(
    {name for dist in metadata.distributions()
     if (name := (dist.metadata["Name"] or "").lower()).startswith("nvidia-")}
)
try:
    version_py = metadata.distribution("torch").locate_file("torch/version.py")
except metadata.PackageNotFoundError:  # a lean environment (WITH_TORCH=0)
    version_py = None
if version_py is not None:
    cuda = re.search(r"^cuda\b[^=]*=\s*.([0-9.]+)", version_py.read_text(encoding="utf-8"), re.M)
    if cuda:
        found.insert(0, f"torch (CUDA {cuda[1]} build)")
print(", ".join(found))
')
  [ -z "$found" ] \
    || die "TORCH_CPU_ONLY=1: this CPU environment must not carry CUDA, but has $found; set TORCH_INDEX_URL to an index with torch's CPU build, or KURZ_TORCH=cuda for a GPU image"
}

# With WITH_TORCH=0: stops when torch is installed all the same (left in an existing venv, or
# brought in by a dependency), since a lean environment is the point of asking for one.
check_lean() {
  [ "$with_torch" = 0 ] || return 0
  if "${py[@]}" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
    die "WITH_TORCH=0: $venv has torch all the same (from an earlier install, or a dependency that requires it); remove $venv and run again"
  fi
}

case $with_torch in 0 | 1) ;; *) die "WITH_TORCH=$with_torch: use 1 (the default) or 0" ;; esac
if [ "$with_torch" = 1 ]; then
  install_torch
  extras=${extras:+$extras,}torch
else
  say "no torch (WITH_TORCH=0): an environment for the ctranslate2 backend on converted models"
fi
check_cpu_only

if [ -n "${DEPS_ONLY:-}" ]; then
  requirements=$(mktemp)
  trap 'rm -f "$requirements"' EXIT
  "${py[@]}" - "$here/pyproject.toml" "$extras" >"$requirements" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
wanted = list(project["dependencies"])
for extra in filter(None, sys.argv[2].split(",")):
    wanted += project["optional-dependencies"][extra.strip()]
print("\n".join(wanted))
PY
  "${pip[@]}" install --quiet -r "$requirements"
  check_cpu_only
  check_lean
  exit 0
fi
target="$here"
[ -n "$extras" ] && target="${here}[$extras]"
"${pip[@]}" install --quiet -e "$target"
check_cpu_only
check_lean
