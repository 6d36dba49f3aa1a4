#!/bin/sh
# Starts one of the compose stack's two Redis servers, configured from a file this script writes,
# so that no password is on a command line (`ps`, `docker inspect` and the process list of the
# host show none):
#
#   start.sh queue    the queue and every record of a job: maxmemory REDIS_MAXMEMORY (1gb), never
#                     evicts (noeviction): the API refuses new work near the limit instead
#   start.sh cache    the result and sentence caches: maxmemory CACHE_MAXMEMORY (512mb), evicts
#                     the least recently used entry (allkeys-lru): a lost entry is recomputed
#
# Both keep an append-only file in /data.  Access is by ACL: the `default` user is off (no one
# can log in as it: it has no password), and the app's user (REDIS_USER, `kurz`) logs in with REDIS_PASSWORD (its sha256 is what the ACL file
# holds), reaches only the keys of its prefix (KURZ_KEY_PREFIX, `kurz`) and of its SAQ queues,
# and runs only data, scripting, pub/sub and connection commands, plus INFO (SAQ asks for the
# version, the API for used memory); FLUSHALL, KEYS, CONFIG, DEBUG, ACL and the other
# `@dangerous` commands are refused.  redis-cli in the healthcheck logs in as that user, with the
# password from REDISCLI_AUTH.
#
# The tests run this script too (tests/test_redis_acl.py), with REDIS_PORT, REDIS_DATA_DIR,
# REDIS_BIND and REDIS_RUN_DIR pointing at a private server.
set -eu

role=${1:?usage: start.sh queue|cache}
: "${REDIS_PASSWORD:?REDIS_PASSWORD must be set}"
user=${REDIS_USER:-kurz}
prefix=${KURZ_KEY_PREFIX:-kurz}

case $role in
  queue)
    maxmemory=${REDIS_MAXMEMORY:-1gb}
    policy=noeviction
    ;;
  cache)
    maxmemory=${CACHE_MAXMEMORY:-512mb}
    policy=allkeys-lru
    ;;
  *)
    echo "start.sh: unknown role '$role' (queue or cache)" >&2
    exit 2
    ;;
esac

umask 077
run_dir=${REDIS_RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/kurz-redis.XXXXXX")}
mkdir -p "$run_dir"
hash=$(printf '%s' "$REDIS_PASSWORD" | sha256sum | cut -d ' ' -f 1)

# `default` keeps every permission although no one can use it: Redis replays the append-only
# file as that user, and a MULTI/EXEC replayed without them is dropped (Redis 7.0 logs
# "ACLs rules changed between the moment the transaction was accumulated and the EXEC call"),
# which loses every write of a transaction after a restart.
#
# SAQ names its keys saq:<queue>:... and saq:job:<queue>:..., and subscribes to the pattern
# saq:job:<queue>* of each queue: the article queue is named after the prefix, the delivery and
# translate queues are <prefix>:deliveries and <prefix>:translate.  A PSUBSCRIBE pattern must be
# listed literally.  SAQ's abort markers (saq:abort:<job key>) carry no queue name: the one
# key pattern outside the service's own.
cat >"$run_dir/users.acl" <<EOF
user default off resetpass ~* &* +@all
user $user on #$hash resetkeys ~$prefix:* ~saq:$prefix:* ~saq:job:$prefix:* ~saq:abort:* resetchannels &saq:job:$prefix:* &saq:job:$prefix* &saq:job:$prefix:deliveries* &saq:job:$prefix:translate* nocommands +@read +@write +@scripting +@pubsub +@transaction +@connection -@dangerous +info
EOF

cat >"$run_dir/redis.conf" <<EOF
bind ${REDIS_BIND:-* -::*}
protected-mode no
port ${REDIS_PORT:-6379}
dir ${REDIS_DATA_DIR:-/data}
appendonly yes
appendfsync everysec
maxmemory $maxmemory
maxmemory-policy $policy
aclfile $run_dir/users.acl
EOF

exec redis-server "$run_dir/redis.conf"
