#!/bin/sh
# The shell script that the rollback benchmark compares rewind with: check
# out a version, run the restart command, then poll the health URL until it
# returns 2xx. Usage:
#   rollback.sh DEPLOY_DIR REVISION HEALTH_URL POLL_SECONDS RESTART_COMMAND...
# The restart command runs in DEPLOY_DIR. Exits 1 when the service is not
# healthy within 60 seconds.
set -eu
dir=$1 revision=$2 url=$3 poll=$4
shift 4

git -C "$dir" checkout -q "$revision"
(cd "$dir" && "$@") >/dev/null

tries=$(awk "BEGIN { print int(60 / $poll) }")
while [ "$tries" -gt 0 ]; do
    if curl -fs -o /dev/null --max-time 1 "$url"; then
        exit 0
    fi
    sleep "$poll"
    tries=$((tries - 1))
done
echo "rollback.sh: $url not healthy within 60 s" >&2
exit 1
