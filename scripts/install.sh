#!/usr/bin/env bash
# One install path for every place the project is set up: `make install`, CI and the Dockerfile
# all run this script, so what CI proves is what the image does.
#
#   scripts/install.sh VENV_DIR [EXTRAS]
#
# VENV_DIR is created if missing. EXTRAS is a pip extras list such as "dev" (default: none).
# TORCH_SPEC overrides the torch requirement (the image's CUDA variant passes its own); the
# default pins the CPU build, so a fresh machine does not pull gigabytes of CUDA packages.
# DEPS_ONLY=1 installs torch and the dependencies pyproject.toml lists (with EXTRAS) but not the
# package itself, so it needs only pyproject.toml and this script: the Dockerfile runs it before
# copying the source, so that the dependency layer stays cached while the code changes.
set -euo pipefail
venv=${1:?usage: scripts/install.sh VENV_DIR [EXTRAS]}
extras=${2:-}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
torch_index=${TORCH_INDEX_URL:-}
here=$(cd "$(dirname "$0")/.." && pwd)

python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip
# torch first and alone: with the CPU build installed, the package's own torch==2.13.0
# requirement is already satisfied and nothing else is fetched for it.
if [ -n "$torch_index" ]; then
  "${pip[@]}" install --quiet "$torch_spec" --index-url "$torch_index"
else
  "${pip[@]}" install --quiet "$torch_spec"
fi
if [ -n "${DEPS_ONLY:-}" ]; then
  requirements=$(mktemp)
  trap 'rm -f "$requirements"' EXIT
  "$venv/bin/python" - "$here/pyproject.toml" "$extras" >"$requirements" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
wanted = list(project["dependencies"])
for extra in filter(None, sys.argv[2].split(",")):
    wanted += project["optional-dependencies"][extra.strip()]
print("\n".join(wanted))
PY
  "${pip[@]}" install --quiet -r "$requirements"
  exit 0
fi
target="$here"
[ -n "$extras" ] && target="$here[$extras]"
"${pip[@]}" install --quiet -e "$target"
