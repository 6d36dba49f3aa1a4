#!/usr/bin/env bash
# Builds the service's image, and the Redis image of the checked compose stack, with Docker where
# a Docker engine answers and with Podman otherwise.  `make image` and `make test-image` run it.
#
#   scripts/image.sh build           the service's image: IMAGE (kurzgefasst:local) with
#                                    BAKE_MODELS (1; 0 or tiny, see the Dockerfile)
#   scripts/image.sh redis           REDIS_IMAGE (kurzgefasst-redis:local), deploy/redis/Dockerfile
#   scripts/image.sh base            the Debian base, made once and then reused; prints its name
#   scripts/image.sh report IMAGE    an image's size, and each layer's
#   scripts/image.sh engine          prints the engine (docker or podman) the others use
#   scripts/image.sh compose         prints the compose command for that engine: `docker compose`,
#                                    or podman-compose (PODMAN_COMPOSE, else the one on PATH if it
#                                    is 1.2 or newer, else one installed from PyPI into
#                                    var/podman-compose; Debian 12's 1.0.3 ignores
#                                    stop_grace_period and the long form of env_file)
#   scripts/image.sh pip-mounts DIR  prints the build mounts that carry this machine's pip
#                                    configuration (podman), its pip.conf written into DIR; the
#                                    configuration is the one PYTHON's pip (python3's) reads
#
# Engine: CONTAINER_ENGINE when set, else docker when `docker info` answers, else podman.
#
# Base images: BASE_IMAGE (the service's) and REDIS_BASE (Redis's) when set.  Otherwise, when an
# image registry answers (REGISTRY_URL, by default Docker Hub's), the Dockerfiles' defaults:
# python:3.11-slim-bookworm and the official redis image.  When none answers: a Debian bookworm
# made here with debootstrap (as root; `apt-get install debootstrap`; DEBIAN_MIRROR) and imported
# as kurzgefasst-base:bookworm, once (REBUILD_BASE=1 makes it again).  The Dockerfile then
# installs Python 3.11 from Debian, and deploy/redis/Dockerfile Debian's redis-server.
#
# This machine's pip configuration (what `pip config list` shows: indexes, find-links, the
# certificate bundle, constraints) reaches the build's RUN steps as read-only mounts under podman,
# and never the image: a build behind a package mirror or a wheel cache installs from there.
# Docker has no build-time mounts; its builds use the registry.
#
# TORCH_INDEX_URL is passed as given, by default empty: scripts/install.sh then takes PyTorch's
# CPU index when it answers, else the registry's CPU build (torch==2.13.0+cpu), and the build
# fails if CUDA libraries got in.  KURZ_BACKEND is passed when set.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
image=${IMAGE:-kurzgefasst:local}
redis_image=${REDIS_IMAGE:-kurzgefasst-redis:local}
bake_models=${BAKE_MODELS:-1}
debian_base=kurzgefasst-base:bookworm
debian_mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
debian_security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
registry_url=${REGISTRY_URL:-https://registry-1.docker.io/v2/}

say() { printf 'image.sh: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

engine=""
pick_engine() {
  if [ -n "${CONTAINER_ENGINE:-}" ]; then
    engine=$CONTAINER_ENGINE
  elif command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null; then
    engine=podman
  else
    die "no container engine: neither a Docker engine answers nor is podman installed (Debian: apt-get install podman)"
  fi
}

has_image() { "$engine" image inspect "$1" >/dev/null 2>&1; }

# Whether an image registry answers (401 without credentials counts as an answer).
registry_answers() {
  local code
  if command -v curl >/dev/null; then
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$registry_url" || true)
  else
    code=$(python3 -c '
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as error:
    print(error.code)
except Exception:
    print(0)
' "$registry_url")
  fi
  [[ $code == 200 || $code == 401 ]]
}

# Debian bookworm, minimal, with apt's sources for updates and security fixes; documentation and
# translations stay out (as in Debian's own slim images).  Made once: an existing one is reused.
make_debian_base() {
  if has_image "$debian_base" && [ -z "${REBUILD_BASE:-}" ]; then
    return
  fi
  [ "$(id -u)" = 0 ] || die "making the Debian base needs root (debootstrap); or set BASE_IMAGE"
  command -v debootstrap >/dev/null \
    || die "making the Debian base needs debootstrap (apt-get install debootstrap); or set BASE_IMAGE"
  local work started=$SECONDS
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: work is local
  trap "rm -rf '$work'" EXIT
  say "no image registry answers ($registry_url): making $debian_base with debootstrap from $debian_mirror"
  if ! debootstrap --variant=minbase --include=ca-certificates bookworm "$work/root" \
    "$debian_mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    die "debootstrap failed (its last lines above)"
  fi
  local root=$work/root
  cat >"$root/etc/apt/sources.list" <<EOF
deb $debian_mirror bookworm main
deb $debian_mirror bookworm-updates main
deb $debian_security bookworm-security main
EOF
  cat >"$root/etc/apt/apt.conf.d/kurzgefasst-slim" <<'EOF'
// An image keeps no package caches: no binary caches (80 MB after an update), no .deb files.
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };
Acquire::Languages "none";
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/kurzgefasst-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/{man,info,locale}/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar --numeric-owner -C "$root" -c . \
    | "$engine" import --change 'CMD ["/bin/bash"]' - "$debian_base" >/dev/null
  rm -rf "$work"
  trap - EXIT
  say "made $debian_base in $((SECONDS - started)) s"
}

# The base for a Dockerfile: what the caller set, else nothing (the Dockerfile's default) when a
# registry answers, else the Debian base.
base_for() {
  if [ -n "$1" ]; then
    echo "$1"
  elif registry_answers; then
    echo ""
  else
    make_debian_base
    echo "$debian_base"
  fi
}

# One `SOURCE:TARGET:ro` line per mount that carries this machine's pip configuration into a
# build: the directories it names (wheel caches, local indexes), at their own paths, and a
# directory made in $1 that goes to /etc/xdg/pip (where pip looks for its site configuration) with
# a pip.conf and copies of the files it names (certificate bundle, constraints).  Those files are
# not mounted where they are: the certificate bundle is the system's, which apt replaces when it
# upgrades ca-certificates in the build.
pip_mounts() {
  local python=${PYTHON:-python3}
  command -v "$python" >/dev/null || return 0
  "$python" - "$1" <<'PY'
import ast, configparser, shutil, subprocess, sys
from pathlib import Path

TARGET = Path("/etc/xdg/pip")
listed = subprocess.run(
    [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
)
if listed.returncode != 0:
    sys.exit(0)
files: dict[tuple[str, str], str] = {}
env: dict[tuple[str, str], str] = {}
for line in listed.stdout.splitlines():
    name, _, raw = line.partition("=")
    section, _, key = name.rpartition(".")
    value = str(ast.literal_eval(raw))
    if section == ":env:":
        env[("global", key)] = value  # PIP_* variables win over the files
    else:
        files[(section, key)] = value  # listed in pip's order: a later file wins
settings = {**files, **env}
if not settings:
    sys.exit(0)
out = Path(sys.argv[1])
directories: set[Path] = set()
for (section, key), value in settings.items():
    if key in {"cert", "client-cert", "constraint"}:
        source = Path(value)
        if source.is_file():
            copy = f"{key}-{source.name}"
            shutil.copyfile(source, out / copy)
            settings[(section, key)] = str(TARGET / copy)
    elif key in {"find-links", "index-url", "extra-index-url"}:
        for item in value.split():
            path = Path(item.removeprefix("file://"))
            # A local index's pages link to its files beside it (../../files/...): the
            # directory above `simple` goes along.
            if key.endswith("index-url") and path.name == "simple":
                path = path.parent
            if path.is_absolute() and path.is_dir():
                directories.add(path)
config = configparser.ConfigParser()
for (section, key), value in settings.items():
    if not config.has_section(section):
        config.add_section(section)
    config.set(section, key, value.replace("%", "%%"))
with (out / "pip.conf").open("w", encoding="utf-8") as conf:
    config.write(conf)
for path in sorted(directories):
    if not any(other in path.parents for other in directories):
        print(f"{path}:{path}:ro")
print(f"{out}:{TARGET}:ro")
PY
}

# Build mounts for podman (none for docker), into the array `mounts`.
mounts=() pip_dir=""
collect_mounts() {
  [ "$engine" = podman ] || return 0
  local line
  pip_dir=$(mktemp -d)
  while IFS= read -r line; do
    mounts+=(-v "$line")
  done < <(pip_mounts "$pip_dir")
  if [ ${#mounts[@]} -gt 0 ]; then
    say "pip configuration of this machine passed to the build's RUN steps: ${mounts[*]}"
  fi
}

build_service() {
  local base started
  base=$(base_for "${BASE_IMAGE:-}")
  collect_mounts
  local args=(build --build-arg "BAKE_MODELS=$bake_models"
    --build-arg "TORCH_INDEX_URL=${TORCH_INDEX_URL-}")
  [ -z "$base" ] || args+=(--build-arg "BASE_IMAGE=$base")
  [ -z "${KURZ_BACKEND:-}" ] || args+=(--build-arg "KURZ_BACKEND=$KURZ_BACKEND")
  # Podman writes OCI images by default, which have no HEALTHCHECK: the API's would be lost.
  [ "$engine" != podman ] || args+=(--format docker)
  say "building $image with $engine (BAKE_MODELS=$bake_models, base ${base:-the Dockerfile default})"
  started=$SECONDS
  if [ ${#mounts[@]} -gt 0 ]; then
    # A mount's target is left behind as an empty directory in the layer of every RUN step it
    # was given to.  The runtime image starts from the `base` stage, so that stage is built
    # first without them; the full build then takes its layers from the cache (which does not
    # key on mounts), and only the stages the runtime image copies from saw the mounts.
    "$engine" "${args[@]}" --target base "$here"
  fi
  "$engine" "${args[@]}" --tag "$image" "${mounts[@]}" "$here"
  say "built $image in $((SECONDS - started)) s"
  report "$image"
}

build_redis() {
  local base started
  base=$(base_for "${REDIS_BASE:-}")
  local args=(build --tag "$redis_image")
  [ "$engine" != podman ] || args+=(--format docker)
  [ -z "$base" ] || args+=(--build-arg "REDIS_BASE=$base")
  say "building $redis_image with $engine (base ${base:-the official redis image})"
  started=$SECONDS
  "$engine" "${args[@]}" "$here/deploy/redis"
  say "built $redis_image in $((SECONDS - started)) s"
  report "$redis_image"
}

# The compose command for the engine (see the top of this file).
compose_command() {
  if [ "$engine" = docker ]; then
    echo "docker compose"
    return
  fi
  if [ -n "${PODMAN_COMPOSE:-}" ]; then
    echo "$PODMAN_COMPOSE"
    return
  fi
  local candidate version venv=$here/var/podman-compose
  for candidate in podman-compose "$venv/bin/podman-compose"; do
    command -v "$candidate" >/dev/null || continue
    version=$("$candidate" --version 2>/dev/null \
      | sed -n 's/^podman-compose version:\{0,1\} *\([0-9][0-9.]*\).*/\1/p' | head -n 1)
    if [ -n "$version" ] && [ "$(printf '1.2\n%s\n' "$version" | sort -V | head -n 1)" = 1.2 ]; then
      command -v "$candidate"
      return
    fi
    say "$candidate is version ${version:-unknown}; the stack needs podman-compose 1.2 or newer"
  done
  say "installing podman-compose from PyPI into $venv"
  if ! { python3 -m venv "$venv" && "$venv/bin/python" -m pip install --quiet "podman-compose>=1.2"; } >&2; then
    die "could not install podman-compose into $venv; install podman-compose 1.2 or newer, or set PODMAN_COMPOSE"
  fi
  echo "$venv/bin/podman-compose"
}

# Size of the image, then of each layer of 1 MB or more, in MB.  (Podman 4.3 prints layer
# sizes for people whatever --human says: "1.47 GB", "138 MB", "24.6 kB".)
report() {
  local bytes
  bytes=$("$engine" image inspect --format '{{.Size}}' "$1")
  printf '%s: %d MB\n' "$1" $((bytes / 1000000))
  "$engine" history --human=false --no-trunc --format '{{.Size}}\t{{.CreatedBy}}' "$1" \
    | awk -F '\t' '{
        n = $1 + 0; unit = $1; sub(/^[0-9.]+ */, "", unit)
        scale["B"] = 1; scale["kB"] = 1e3; scale["KB"] = 1e3; scale["MB"] = 1e6; scale["GB"] = 1e9
        if (unit != "") n *= scale[unit]
        step = $2; gsub(/[ \t]+/, " ", step); sub(/^\/bin\/(ba)?sh -c (#\(nop\) )?/, "", step)
        if (n >= 1e6) printf "  %8.1f MB  %s\n", n / 1e6, substr(step, 1, 100)
      }'
}

trap '[ -z "$pip_dir" ] || rm -rf "$pip_dir"' EXIT
command=${1:-}
case $command in
  engine)
    pick_engine
    echo "$engine"
    ;;
  compose)
    pick_engine
    compose_command
    ;;
  base)
    pick_engine
    make_debian_base
    echo "$debian_base"
    ;;
  build)
    pick_engine
    build_service
    ;;
  redis)
    pick_engine
    build_redis
    ;;
  report)
    pick_engine
    report "${2:?usage: scripts/image.sh report IMAGE}"
    ;;
  pip-mounts)
    pip_mounts "${2:?usage: scripts/image.sh pip-mounts DIR}"
    ;;
  *) die "usage: scripts/image.sh build|redis|base|report IMAGE|engine|compose|pip-mounts DIR" ;;
esac
