#!/usr/bin/env bash
# The compose stack run for real on this machine, as an operator would, and a report of what happened
# (deploy/smoke-report.json; deploy/README.md summarises it):
#   1. a Docker daemon (started here if none runs, stopped again at the end)
#   2. a Debian 12 base image made with debootstrap (no public image registry is reachable here), cached
#   3. the CPU image built by compose on that base (BASE_IMAGE), with this machine's CA certificates and
#      torch's CPU wheel (deploy/ca, deploy/wheels), then the `cpu` profile brought up; wait for healthy
#   4. through the published port: a streamed chat (official openai client), fork rollouts with
#      search_stats, /metrics
#   5. Prometheus (Debian's package, on the host) scraping the container with deploy/prometheus's config;
#      after traffic, every query of the Grafana dashboard answered with a series
#   6. the vLLM engine process killed inside the container: the server exits, compose restarts the
#      container (restart: unless-stopped), it is healthy again and answers
#   7. `docker-compose stop` while a stream admitted before it runs: the stream ends normally, the
#      container exits 0 within its stop grace period
#   8. the GPU profile validated by compose (`config`), and the GPU image's dependencies resolved by pip
#      inside the CPU image (the CUDA wheels are not downloaded, no GPU runs here)
# Usage: sudo deploy/smoke.sh   (as root: dockerd, debootstrap, apt). Env: SLA_SMOKE_CACHE (default
# /var/cache/sla-deploy), PYTHON (default ../.venv/bin/python), MIRROR (default: apt's first deb URI).
set -euo pipefail
cd "$(dirname "$0")"
DEPLOY=$(pwd)
CACHE=${SLA_SMOKE_CACHE:-/var/cache/sla-deploy}
PYTHON=${PYTHON:-$DEPLOY/../.venv/bin/python}
REPORT=$DEPLOY/smoke-report.json
BASE=sla-base:bookworm
PORT=8000
LOG=$CACHE/logs
mkdir -p "$CACHE" "$LOG"
CHECKS=$LOG/checks.jsonl
: > "$CHECKS"
declare -A T
now() { date +%s.%N; }
elapsed() { python3 -c "print(round($(now) - $1, 1))"; }
note() { echo "[smoke $(date +%T)] $*"; }
record() { echo "$1" >> "$CHECKS"; echo "$1"; }

if docker compose version > /dev/null 2>&1; then COMPOSE=(docker compose); COMPOSE_NAME="compose v2 plugin $(docker compose version --short)"
else COMPOSE=(docker-compose); COMPOSE_NAME="docker-compose $(docker-compose version --short)"; fi

STARTED_DOCKERD=0
PROMETHEUS_PID=
cleanup() {
  [ -n "$PROMETHEUS_PID" ] && kill "$PROMETHEUS_PID" 2> /dev/null || true
  "${COMPOSE[@]}" --profile cpu down --remove-orphans > /dev/null 2>&1 || true
  if [ "$STARTED_DOCKERD" = 1 ]; then note "stopping the dockerd this run started"; kill "$(cat "$CACHE/dockerd.pid")" || true; fi
}
trap cleanup EXIT

# 1. the daemon
if ! docker info > /dev/null 2>&1; then
  note "starting dockerd"
  dockerd > "$LOG/dockerd.log" 2>&1 &
  echo $! > "$CACHE/dockerd.pid"
  STARTED_DOCKERD=1
  for _ in $(seq 60); do docker info > /dev/null 2>&1 && break; sleep 1; done
fi
DAEMON=$(docker version --format '{{.Server.Version}}')

# 2. the base image
T[base]=$(now)
BASE_CACHED=True
if ! docker image inspect "$BASE" > /dev/null 2>&1; then
  BASE_CACHED=False
  MIRROR=${MIRROR:-$(grep -rhoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2> /dev/null | head -1)}
  note "debootstrap bookworm from $MIRROR"
  rm -rf "$CACHE/rootfs"
  debootstrap --variant=minbase bookworm "$CACHE/rootfs" "$MIRROR" > "$LOG/debootstrap.log" 2>&1
  tar -C "$CACHE/rootfs" -c . | docker import - "$BASE" > /dev/null
fi
BASE_S=$(elapsed "${T[base]}")

# 3. build and bring up the cpu profile
cp /usr/local/share/ca-certificates/*.crt ca/ 2> /dev/null || true
FIND_LINKS=$(pip config get global.find-links 2> /dev/null || true)
[ -n "$FIND_LINKS" ] && cp "$FIND_LINKS"/torch-2.13.0+cpu-*.whl wheels/ 2> /dev/null || true
KEY=smoke-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
{
  grep -v '^SLA_API_KEY=' env.example
  echo "SLA_API_KEY=$KEY"
  echo "SLA_CPU_BASE_IMAGE=$BASE"
  ls wheels/torch-*.whl > /dev/null 2>&1 && echo "SLA_TORCH_INDEX="
  echo "SLA_MAX_CONCURRENT_REQUESTS=4"  # small, so that the dashboard's 429 panel gets traffic
} > .env
note "building the cpu image with $COMPOSE_NAME"
T[build]=$(now)
"${COMPOSE[@]}" --profile cpu build > "$LOG/build.log" 2>&1
BUILD_S=$(elapsed "${T[build]}")
IMAGE_MB=$(docker image inspect sla-server:cpu --format '{{.Size}}' | python3 -c "import sys; print(int(sys.stdin.read()) >> 20)")

CID=  # the container's id, kept across restarts (set once it is up: asking compose every second costs a core)
container() { echo "$CID"; }
health() { docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$(container)" 2> /dev/null || true; }
wait_healthy() {  # seconds until the healthcheck says healthy (the first start pulls and converts the model)
  local start; start=$(now)
  for _ in $(seq 1800); do [ "$(health)" = healthy ] && { elapsed "$start"; return 0; }; sleep 1; done
  echo "never"; return 1
}
note "up"
"${COMPOSE[@]}" --profile cpu down --volumes > /dev/null 2>&1 || true  # a fresh model volume: the first start as a user's
T[up]=$(now)
"${COMPOSE[@]}" --profile cpu up -d > "$LOG/up.log" 2>&1
CID=$("${COMPOSE[@]}" --profile cpu ps -q sla-cpu)
FIRST_HEALTHY_S=$(wait_healthy)
note "healthy after ${FIRST_HEALTHY_S}s"

# 4. through the published port
ARGS=(--base-url "http://127.0.0.1:$PORT" --api-key "$KEY")
for check in chat search metrics; do record "$("$PYTHON" smoke_checks.py "$check" "${ARGS[@]}" || true)"; done

# 5. Prometheus on the host, the repository's scrape config pointed at the published port
if ! command -v prometheus > /dev/null; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus > "$LOG/apt.log" 2>&1; fi
mkdir -p "$CACHE/prometheus"
printf %s "$KEY" > "$CACHE/prometheus/api_key"
sed -e "s|sla:8000|127.0.0.1:$PORT|" -e "s|credentials_file: [^ ]*|credentials_file: $CACHE/prometheus/api_key|" \
  prometheus/prometheus.yml > "$CACHE/prometheus/prometheus.yml"
rm -rf "$CACHE/prometheus/data"
prometheus --config.file="$CACHE/prometheus/prometheus.yml" --storage.tsdb.path="$CACHE/prometheus/data" \
  --web.listen-address=127.0.0.1:9090 > "$LOG/prometheus.log" 2>&1 &
PROMETHEUS_PID=$!
PROMETHEUS_VERSION=$(prometheus --version 2>&1 | head -1)
sleep 10
record "$("$PYTHON" smoke_checks.py traffic "${ARGS[@]}" || true)"
sleep 70  # rates over [1m] need two scrapes inside the window after the traffic
record "$("$PYTHON" smoke_checks.py dashboard "${ARGS[@]}" || true)"

# 6. the engine killed inside the container
RESTARTS_BEFORE=$(docker inspect --format '{{.RestartCount}}' "$(container)")
note "killing the vLLM engine core inside the container"
docker exec "$(container)" pkill -9 -f 'VLLM::EngineCore'
T[crash]=$(now)
for _ in $(seq 120); do
  [ "$(docker inspect --format '{{.RestartCount}}' "$(container)")" -gt "$RESTARTS_BEFORE" ] && break; sleep 1
done
EXITED_S=$(elapsed "${T[crash]}")
RESTARTS_AFTER=$(docker inspect --format '{{.RestartCount}}' "$(container)")
# the exit code of the run that lost its engine, from the daemon's events
DIED=$(docker events --since "${T[crash]%.*}" --until "$(date +%s)" --filter container="$(container)" \
  --filter event=die --format '{{index .Actor.Attributes "exitCode"}}' | head -1)
RESTART_HEALTHY_S=$(wait_healthy)
AFTER=$("$PYTHON" smoke_checks.py chat "${ARGS[@]}" || true)
record "$(python3 -c "
import json, sys
after = json.loads(sys.argv[1])
print(json.dumps({'check': 'engine killed: the server exits, compose restarts it, it answers again',
                  'ok': int(sys.argv[2]) > int(sys.argv[3]) and sys.argv[6] not in ('', '0') and after['ok'],
                  'server_exit_code': sys.argv[6], 'restarts': int(sys.argv[2]),
                  'restarted_after_s': float(sys.argv[4]), 'healthy_again_after_s': sys.argv[5],
                  'chat_after': after['ok']}))" "$AFTER" "$RESTARTS_AFTER" "$RESTARTS_BEFORE" "$EXITED_S" \
  "$RESTART_HEALTHY_S" "$DIED")"
docker logs "$(container)" > "$LOG/container.log" 2>&1 || true

# 7. a graceful stop with a stream in flight
"$PYTHON" smoke_checks.py stream-through-stop "${ARGS[@]}" --max-tokens 48 > "$LOG/stop-stream.jsonl" 2>&1 &
STREAM=$!
for _ in $(seq 120); do grep -q started "$LOG/stop-stream.jsonl" 2> /dev/null && break; sleep 0.5; done
T[stop]=$(now)
"${COMPOSE[@]}" --profile cpu stop > "$LOG/stop.log" 2>&1
STOP_S=$(elapsed "${T[stop]}")
wait "$STREAM" || true
STOP_EXIT=$(docker inspect --format '{{.State.ExitCode}}' "$(container)")
GRACE=$(python3 -c "import yaml; print(yaml.safe_load(open('docker-compose.yml'))['x-server']['stop_grace_period'])" 2> /dev/null || echo 40s)
record "$(tail -1 "$LOG/stop-stream.jsonl")"
record "$(python3 -c "
import json, sys
print(json.dumps({'check': 'docker-compose stop: exit 0 within the grace period', 'ok': sys.argv[1] == '0'
                  and float(sys.argv[2]) < float(sys.argv[3].rstrip('s')), 'exit_code': int(sys.argv[1]),
                  'stop_s': float(sys.argv[2]), 'grace': sys.argv[3]}))" "$STOP_EXIT" "$STOP_S" "$GRACE")"

# 8. the GPU profile, as far as this machine goes
GPU_CONFIG=$("${COMPOSE[@]}" --profile gpu config > /dev/null 2>&1 && echo true || echo false)
# (the checkout is mounted read-only: the package is copied where setuptools may write its metadata)
GPU_RESOLVE=$(docker run --rm --entrypoint sh -v "$DEPLOY/..:/src:ro" -e PIP_NO_CACHE_DIR=1 sla-server:cpu -c \
  "mkdir /tmp/p && cp -r /src/pyproject.toml /src/README.md /src/sla /src/sla_engine /src/sla_pipeline /src/server /tmp/p &&
   pip install --dry-run --ignore-installed --quiet --report /tmp/r.json '/tmp/p[gpu]' > /dev/null &&
   python3 -c \"import json; r = json.load(open('/tmp/r.json')); v = {i['metadata']['name']: i['metadata']['version'] for i in r['install']}; print(json.dumps({'vllm': v.get('vllm'), 'torch': v.get('torch'), 'packages': len(v)}))\"" \
  2> "$LOG/gpu-resolve.log" || echo '{"error": "see gpu-resolve.log"}')
record "$(python3 -c "
import json, sys
resolved = json.loads(sys.argv[2])
print(json.dumps({'check': 'gpu profile: compose config valid, the image\'s dependencies resolve', 'ok':
                  sys.argv[1] == 'true' and bool(resolved.get('vllm')), 'config_valid': sys.argv[1] == 'true',
                  'resolved': resolved}))" "$GPU_CONFIG" "$GPU_RESOLVE")"

# the report
python3 - "$CHECKS" "$REPORT" <<EOF
import json, platform, sys
checks = [json.loads(line) for line in open(sys.argv[1]) if line.strip().startswith("{") and '"check"' in line]
report = {
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "machine": f"{platform.machine()}, 2 cores, no GPU",
    "docker": "$DAEMON (Debian's docker.io)", "compose": "$COMPOSE_NAME", "base_image": "$BASE (debootstrap bookworm)",
    "base_image_cached": $BASE_CACHED,
    "prometheus": "$PROMETHEUS_VERSION (Debian's package, on the host)",
    "times_s": {"base_image": $BASE_S, "image_build": $BUILD_S, "first_healthy": "$FIRST_HEALTHY_S",
                "engine_killed_to_restart": $EXITED_S, "restart_to_healthy": "$RESTART_HEALTHY_S",
                "graceful_stop": $STOP_S},
    "image_mib": $IMAGE_MB,
    "checks": checks, "passed": all(c["ok"] for c in checks),
}
open(sys.argv[2], "w").write(json.dumps(report, indent=2) + "\n")
print(json.dumps({k: report[k] for k in ("times_s", "passed")}))
sys.exit(0 if report["passed"] else 1)
EOF
