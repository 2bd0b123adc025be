#!/usr/bin/env bash
# The benchmark scenarios, this system side by side with nginx + nchan, in one run (fan-out
# and idle memory also with the reference broadcast server of bench/reference, the
# ceiling): prints one markdown table and writes a plot (latency percentiles against
# delivered comments/s). Everything runs on loopback, on free ports, under .run/bench/
# (git-ignored); every process it starts is stopped at the end, by pid.
#
#   scripts/bench.sh                  idle memory, fan-out, many videos (also with 1 partition),
#                                     comment ingest, likes ingest (single and batched), a
#                                     reconnect storm, the capacity table from what was
#                                     measured, and fleet
#   scripts/bench.sh --quick          a smoke run: a few hundred viewers, 2 steps (< 2 min)
#   scripts/bench.sh --with-100k      also 100k viewers over 6 frontends (ours only; its load:
#                                     $BENCH_100K_COMMENTS comments/s, 500, and
#                                     $BENCH_100K_LIKES likes/s, 1000)
#   scripts/bench.sh --only fanout,idle   just these (idle, fanout, many, ingest, likes,
#                                     batch, storm, 100k, fleet)
#   scripts/bench.sh --only=storm     a reconnect storm: a frontend holding $STORM_VIEWERS
#                                     viewers (10,000; --quick 1,000) of $STORM_VIDEOS videos
#                                     (5) killed with -9 while $STORM_COMMENTS comments/s (50)
#                                     flow; its viewers come back to the 2 survivors after
#                                     their retry:. Prints the time to the last viewer back
#                                     and caught up, comments lost and duplicated, the
#                                     survivors' JetStream reads, and the p99 of the
#                                     survivors' own $STORM_OWN viewers (1,000, of all the
#                                     videos but one) before and during the storm
#                                     (STORM_SIGNAL=TERM: a graceful stop;
#                                     STORM_FRONTEND_ARGS: extra frontend flags)
#   scripts/bench.sh --only=fleet     many frontends: for each fleet size F, F frontends
#                                     with the same videos, idle viewers on each; NATS
#                                     msgs/s and CPU per frontend, of the nats-server and of
#                                     the publisher, against F (table, JSON, plot)
#   BENCH_PARTITIONS=4 (publisher and frontend --partitions), BENCH_LIKE_BATCH=100 (likes
#   per LikeBatch in the batched-likes row)
#   FLEET_SIZES=4,8,16,32 (--quick: 2,4), FLEET_VIDEOS=100 (20), FLEET_VIEWERS_PER_VIDEO=2
#   (viewers of each video on each frontend; 1), FLEET_WARMUP=5 (s, 3), FLEET_WINDOW=10 (s, 5)
#
# A full run (not --quick, not --only) also copies the tables and plots to docs/bench/.
# Installs nginx + libnginx-mod-nchan with apt-get if missing and a scenario compares with
# it (needs root).
# Numbers come from a shared 2-core machine: the load generator runs on the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=false
with100k=false
only=""
for arg in "$@"; do
  case "$arg" in
    --quick) quick=true ;;
    --with-100k) with100k=true ;;
    --only=*) only="${arg#--only=}" ;;
    --only) only="__next__" ;;
    -h|--help) sed -n '2,42p' "$0"; exit 0 ;;
    *)
      if [ "$only" = "__next__" ]; then only="$arg"
      else echo "unknown argument: $arg (see --help)" >&2; exit 64; fi ;;
  esac
done
[ "$only" = "__next__" ] && { echo "--only needs a list, e.g. --only fanout,idle" >&2; exit 64; }
scenarios="${only:-idle,fanout,many,ingest,likes,batch,storm,fleet}"
$with100k && [ -z "$only" ] && scenarios="$scenarios,100k"
for s in ${scenarios//,/ }; do
  case "$s" in idle|fanout|many|ingest|likes|batch|storm|100k|fleet) ;; *) echo "unknown scenario: $s" >&2; exit 64 ;; esac
done
want() { [[ ",$scenarios," == *",$1,"* ]]; }
# The shared servers (ours, nginx + nchan) are started only for the scenarios that use
# them: fleet starts its own nats-server, publisher and frontends for each fleet size.
need_ours=false; need_nchan=false; need_table=false
for s in idle fanout many ingest likes batch 100k storm; do want "$s" && need_ours=true; done
for s in idle fanout many ingest; do want "$s" && need_nchan=true; done
# Scenarios whose results go into the table (storm and fleet print their own figures).
for s in idle fanout many ingest likes batch 100k; do want "$s" && need_table=true; done

# --- sizes -------------------------------------------------------------------------------
PARTITIONS=${BENCH_PARTITIONS:-4}
LIKE_BATCH=${BENCH_LIKE_BATCH:-100}
if $quick; then
  VIEWERS=300; CONNECT_RATE=1000; WARMUP=1s; STEP=2s; DRAIN=1s
  FANOUT_STEPS=10,20
  MANY_VIDEOS=30; MANY_RATE=200; MANY_DURATION=3s
  LIKES_HTTP_STEPS=200,500; LIKES_NATS_STEPS=200,500; LIKES_STEP=2s
  LIKES_LAT_VIEWERS=100
  INGEST_VIDEOS=30; INGEST_VIEWERS=60; INGEST_STEPS=100,200; INGEST_STEP=2s
  BATCH_STEPS=2000,5000
  BIG_VIEWERS=1200; BIG_FRONTENDS=6; BIG_PROCS=6; BIG_VIDEOS=100; BIG_COMMENTS=100
  BIG_LIKES=200; BIG_DURATION=3s
  FLEET_SIZES=${FLEET_SIZES:-2,4}; FLEET_VIDEOS=${FLEET_VIDEOS:-20}
  FLEET_VIEWERS_PER_VIDEO=${FLEET_VIEWERS_PER_VIDEO:-1}; FLEET_WARMUP=${FLEET_WARMUP:-3}
  FLEET_WINDOW=${FLEET_WINDOW:-5}
  STORM_VIEWERS=${STORM_VIEWERS:-1000}; STORM_OWN=${STORM_OWN:-200}
else
  VIEWERS=10000; CONNECT_RATE=2000; WARMUP=2s; STEP=6s; DRAIN=2s
  FANOUT_STEPS=2,5,10,20,40,60,80,100,160,320,640
  MANY_VIDEOS=1000; MANY_RATE=2000; MANY_DURATION=8s
  LIKES_HTTP_STEPS=1000,2000,5000,10000,20000,50000,100000
  LIKES_NATS_STEPS=2000,5000,10000,20000,50000,100000,200000,500000,1000000
  LIKES_STEP=5s
  LIKES_LAT_VIEWERS=1000
  INGEST_VIDEOS=1000; INGEST_VIEWERS=2000; INGEST_STEPS=2000,4000,8000,12000,16000,24000,32000
  INGEST_STEP=5s
  BATCH_STEPS=10000,50000,100000,200000,500000,1000000
  BIG_VIEWERS=100000; BIG_FRONTENDS=6; BIG_PROCS=6; BIG_VIDEOS=1000
  BIG_COMMENTS=${BENCH_100K_COMMENTS:-500}; BIG_LIKES=${BENCH_100K_LIKES:-1000}; BIG_DURATION=10s
  FLEET_SIZES=${FLEET_SIZES:-4,8,16,32}; FLEET_VIDEOS=${FLEET_VIDEOS:-100}
  FLEET_VIEWERS_PER_VIDEO=${FLEET_VIEWERS_PER_VIDEO:-2}; FLEET_WARMUP=${FLEET_WARMUP:-5}
  FLEET_WINDOW=${FLEET_WINDOW:-10}
  STORM_VIEWERS=${STORM_VIEWERS:-10000}; STORM_OWN=${STORM_OWN:-1000}
fi
# The storm: videos, comments/s over all of them, the length of each survivors' window
# (before the kill, during the storm: more than the frontends' --retry-max, 10 s), viewers
# per loadgen process (open files are capped per process).
STORM_VIDEOS=${STORM_VIDEOS:-5}; STORM_COMMENTS=${STORM_COMMENTS:-50}; STORM_WINDOW=${STORM_WINDOW:-12}
STORM_PER_PROC=${STORM_PER_PROC:-5000}
# The storm viewers' load generators run at this niceness: in production the devices that
# reconnect are not on the frontends' machine; here they share its 2 cores with the
# survivors and with the process measuring the survivors' own viewers (0: same priority;
# measured both ways in docs/performance.md).
STORM_NICE=${STORM_NICE:-10}
# How A stops (KILL, or TERM for a graceful stop: streams end spread over --drain), and
# extra flags of the storm's frontends (e.g. "--retry-min 2s --retry-max 4s"; keep
# STORM_WINDOW above --retry-max + --drain).
STORM_SIGNAL=${STORM_SIGNAL:-KILL}; read -r -a STORM_FE_ARGS <<<"${STORM_FRONTEND_ARGS:-}"
for v in FLEET_VIDEOS FLEET_VIEWERS_PER_VIDEO FLEET_WARMUP FLEET_WINDOW; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 64; }
done
[[ "$FLEET_SIZES" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] \
  || { echo "FLEET_SIZES must be a list of positive integers, e.g. 4,8,16,32" >&2; exit 64; }

run_dir="$root/.run/bench"
res="$run_dir/results"
logs="$run_dir/logs"
rm -rf "$res" "$logs" "$run_dir"/jetstream* "$run_dir/nginx" "$run_dir/100k" "$run_dir/bench.svg" \
  "$run_dir/fleet" "$run_dir"/fleet.* "$run_dir/storm"
mkdir -p "$res" "$logs" "$run_dir/nginx/tmp" "$run_dir/100k" "$run_dir/fleet" "$run_dir/storm"

# --- what it needs -----------------------------------------------------------------------
nchan_module=/usr/lib/nginx/modules/ngx_nchan_module.so
if $need_nchan && { ! command -v nginx >/dev/null 2>&1 || [ ! -f "$nchan_module" ]; }; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "nginx + nchan missing: apt-get install nginx libnginx-mod-nchan (as root)" >&2; exit 1
  fi
  echo "installing nginx + libnginx-mod-nchan"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-nchan >/dev/null
fi
NATS_SERVER_BIN="$(scripts/lib/nats-server.sh)"
echo "building (release)"
cargo build --release --quiet --bin frontend --bin publisher --bin loadgen --bin benchreport \
  --bin reference
bin="${CARGO_TARGET_DIR:-$root/target}/release"
LG="$bin/loadgen"
BR="$bin/benchreport"   # the table, the plot and the capacity model

# --- processes ---------------------------------------------------------------------------
pids=()
cleanup() {
  trap - INT TERM EXIT
  local p
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=false
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=true; done
    $alive || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

used_ports=" "
free_port() { # a free loopback port below the ephemeral range, not handed out before
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    [[ "$used_ports" == *" $p "* ]] && continue
    if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
      used_ports+="$p "; echo "$p"; return 0
    fi
  done
  echo "no free port found" >&2; return 1
}

wait_http() { # url
  for _ in $(seq 1 150); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

export RUST_LOG="${RUST_LOG:-warn}"

# nats-server: our nats/local.conf (JetStream, fsync always), on bench ports and a temp store.
start_nats() { # name → sets nats_pid, nats_url, nats_mon_url (own ports, fresh store)
  local port mon conf=$run_dir/$1.conf
  port=$(free_port); mon=$(free_port)
  sed -e "s|^server_name: local|server_name: $1|" \
      -e "s|^listen: 127.0.0.1:4222|listen: 127.0.0.1:$port|" \
      -e "s|^http: 127.0.0.1:8222|http: 127.0.0.1:$mon|" \
      -e "s|store_dir: \".run/jetstream\"|store_dir: \"$run_dir/jetstream-$1\"|" \
      nats/local.conf >"$conf"
  for want_line in "listen: 127.0.0.1:$port" "http: 127.0.0.1:$mon" "$run_dir/jetstream-$1"; do
    grep -qF "$want_line" "$conf" || { echo "nats/local.conf changed: cannot set $want_line" >&2; exit 1; }
  done
  "$NATS_SERVER_BIN" -c "$conf" >"$logs/$1.log" 2>&1 &
  nats_pid=$!; pids+=("$nats_pid")
  nats_mon_url="http://127.0.0.1:$mon"
  wait_http "$nats_mon_url/healthz"
  nats_url="nats://127.0.0.1:$port"
}
start_publisher() { # name partitions → sets pub_pid, pub_url
  local port; port=$(free_port)
  "$bin/publisher" --listen "127.0.0.1:$port" --nats "$nats_url" --no-rate-limit \
    --partitions "$2" >"$logs/$1.log" 2>&1 &
  pub_pid=$!; pids+=("$pub_pid")
  pub_url="http://127.0.0.1:$port"
  wait_http "$pub_url/healthz"
}
start_frontend() { # name [partitions [flags…]] → sets fe_pid, fe_url (the last started NATS and publisher)
  local port; port=$(free_port)
  "$bin/frontend" --listen "127.0.0.1:$port" --nats "$nats_url" --publisher-url "$pub_url" \
    --partitions "${2:-$PARTITIONS}" --drain 1s "${@:3}" >"$logs/$1.log" 2>&1 &
  fe_pid=$!; pids+=("$fe_pid")
  fe_url="http://127.0.0.1:$port"
  wait_http "$fe_url/healthz"
}
stop_pid() { # pid: stops one process this script started
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
ours_url="(not started)"; ours_pids=""; ours_mon=(); ours_nats_url=""; ours_pub_url=""
pub_url="(not started)"; nats_url="(not started)"
if $need_ours; then
  start_nats nats-server
  start_publisher publisher "$PARTITIONS"
  start_frontend frontend
  ours_pids="frontend:$fe_pid,publisher:$pub_pid,nats:$nats_pid"
  ours_url=$fe_url
  ours_mon=(--nats-monitor "$nats_mon_url")
  ours_nats_url=$nats_url
  ours_pub_url=$pub_url
fi

# nginx + nchan, from bench/nginx-nchan.conf.in.
ng_url="(not started)"; ng_workers=""; nginx_v="(not used)"; nchan_v="(not used)"
if $need_nchan; then
  ng_port=$(free_port)
  ng_dir="$run_dir/nginx"
  sed -e "s|@RUN@|$ng_dir|g" -e "s|@PORT@|$ng_port|g" -e "s|@MODULE@|$nchan_module|g" \
    bench/nginx-nchan.conf.in >"$ng_dir/nginx.conf"
  nginx -p "$ng_dir/" -c "$ng_dir/nginx.conf" -e "$ng_dir/error.log" >"$logs/nginx.log" 2>&1 &
  ng_pid=$!; pids+=("$ng_pid")
  ng_url="http://127.0.0.1:$ng_port"
  for _ in $(seq 1 100); do
    kill -0 "$ng_pid" 2>/dev/null || break
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "$ng_url/pub/healthcheck" || true)
    [[ "$code" == 20* ]] && break; sleep 0.1
  done
  [[ "$code" == 20* ]] || { echo "nginx + nchan did not come up (see $ng_dir/error.log)" >&2; exit 1; }
  ng_workers=$(pgrep -P "$ng_pid" | tr '\n' ' ')
  nginx_v=$(nginx -v 2>&1 | sed 's|.*nginx/||')
  nchan_v=$(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo "?")
fi
# The reference broadcast server (bench/reference): for fan-out and idle memory only.
ref_url="(not started)"
if want fanout || want idle; then
  ref_port=$(free_port)
  "$bin/reference" --listen "127.0.0.1:$ref_port" >"$logs/reference.log" 2>&1 &
  ref_pid=$!; pids+=("$ref_pid")
  ref_url="http://127.0.0.1:$ref_port"
  wait_http "$ref_url/healthz"
  ref_pids="reference:$ref_pid"
fi
nchan_pids=""; k=0
for w in $ng_workers; do k=$((k+1)); nchan_pids+="${nchan_pids:+,}nginx-worker$k:$w"; done

ncores=$(nproc)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem_gib=$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)
nats_v=$("$NATS_SERVER_BIN" --version | sed 's/.*v//')
echo "servers: ours frontend $ours_url publisher $pub_url nats $nats_url; reference $ref_url; nginx $nginx_v + nchan $nchan_v at $ng_url (workers $ng_workers)"
echo "machine: $ncores cores ($cpu_model), ${mem_gib} GiB, load average $(cut -d' ' -f1-3 /proc/loadavg); shared: loadgen runs on the same cores"

ok=true
scenario() { # name logfile command… ; runs it, keeps going on failure
  local name=$1 log=$2; shift 2
  local t0=$SECONDS
  echo "▶ $name"
  if "$@" >"$log.out" 2>"$log"; then
    echo "  done in $((SECONDS - t0)) s"
  else
    echo "  FAILED after $((SECONDS - t0)) s: see $log"; ok=false
    tail -5 "$log" | sed 's/^/    /'
  fi
}
ours_view=(--frontend "$ours_url")
nchan_view=(--target nchan --frontend "$ng_url")
ours_pub=(--publisher "$pub_url" --via http)
nchan_pub=(--publisher "$ng_url" --via nchan)
# The reference serves our viewer path and takes nchan-style POSTs.
ref_view=(--frontend "$ref_url")
ref_pub=(--publisher "$ref_url" --via nchan)

# --- idle memory -------------------------------------------------------------------------
if want idle; then
  for sys in ours reference nchan; do
    case $sys in
      ours) view=("${ours_view[@]}"); sp=$ours_pids ;;
      reference) view=("${ref_view[@]}"); sp=$ref_pids ;;
      nchan) view=("${nchan_view[@]}"); sp=$nchan_pids ;;
    esac
    scenario "idle memory ($sys): $VIEWERS viewers of one video" "$logs/idle-$sys.log" \
      "$LG" viewers --label "idle/$sys" --videos 1 --video-prefix "idle$sys" \
      --viewers "$VIEWERS" --connect-rate "$CONNECT_RATE" --warmup "$WARMUP" --duration 2s \
      --server-pids "$sp" "${view[@]}" --json-out "$res/idle-$sys.json"
  done
fi

# --- fan-out -----------------------------------------------------------------------------
if want fanout; then
  for sys in ours reference nchan; do
    case $sys in
      ours) view=("${ours_view[@]}"); pub=("${ours_pub[@]}"); sp=$ours_pids ;;
      reference) view=("${ref_view[@]}"); pub=("${ref_pub[@]}"); sp=$ref_pids ;;
      nchan) view=("${nchan_view[@]}"); pub=("${nchan_pub[@]}"); sp=$nchan_pids ;;
    esac
    scenario "fan-out ($sys): $VIEWERS viewers of one video, comments/s $FANOUT_STEPS, $STEP each" \
      "$logs/fanout-$sys.log" \
      "$LG" run --label "fanout/$sys" --videos 1 --video-prefix "fan$sys" \
      --viewers "$VIEWERS" --connect-rate "$CONNECT_RATE" --warmup "$WARMUP" \
      --duration "$STEP" --drain "$DRAIN" --comment-steps "$FANOUT_STEPS" --likes-per-sec 0 \
      --stop-p99 1s --server-pids "$sp" "${view[@]}" "${pub[@]}" --json-out "$res/fanout-$sys.json"
  done
fi

# --- many videos -------------------------------------------------------------------------
# Ours with --partitions $PARTITIONS, nchan, then ours with one partition on a NATS server,
# publisher and frontend of its own (started for it, stopped after it).
if want many; then
  for sys in ours nchan; do
    if [ $sys = ours ]; then view=("${ours_view[@]}"); pub=("${ours_pub[@]}" "${ours_mon[@]}"); sp=$ours_pids
    else view=("${nchan_view[@]}"); pub=("${nchan_pub[@]}"); sp=$nchan_pids; fi
    scenario "many videos ($sys): $VIEWERS viewers over $MANY_VIDEOS videos, $MANY_RATE comments/s" \
      "$logs/many-$sys.log" \
      "$LG" run --label "many/$sys" --videos "$MANY_VIDEOS" --video-prefix "many$sys" \
      --viewers "$VIEWERS" --connect-rate "$CONNECT_RATE" --warmup "$WARMUP" \
      --duration "$MANY_DURATION" --drain "$DRAIN" --comments-per-sec "$MANY_RATE" \
      --likes-per-sec 0 --concurrency 512 --server-pids "$sp" "${view[@]}" "${pub[@]}" \
      --json-out "$res/many-$sys.json"
  done
  if [ "$PARTITIONS" -ne 1 ]; then
    start_nats nats-p1; p1_nats=$nats_pid; p1_mon=$nats_mon_url
    start_publisher publisher-p1 1; p1_pub=$pub_pid
    start_frontend frontend-p1 1; p1_fe=$fe_pid
    scenario "many videos (ours, 1 partition): $VIEWERS viewers over $MANY_VIDEOS videos, $MANY_RATE comments/s" \
      "$logs/many-p1.log" \
      "$LG" run --label "many-p1/ours" --videos "$MANY_VIDEOS" --video-prefix "manyone" \
      --viewers "$VIEWERS" --connect-rate "$CONNECT_RATE" --warmup "$WARMUP" \
      --duration "$MANY_DURATION" --drain "$DRAIN" --comments-per-sec "$MANY_RATE" \
      --likes-per-sec 0 --concurrency 512 --frontend "$fe_url" --publisher "$pub_url" --via http \
      --nats-monitor "$p1_mon" --server-pids "frontend:$p1_fe,publisher:$p1_pub,nats:$p1_nats" \
      --json-out "$res/many-p1.json"
    for p in "$p1_fe" "$p1_pub" "$p1_nats"; do stop_pid "$p"; done
    nats_url=$ours_nats_url; pub_url=$ours_pub_url
  fi
fi

# --- comment ingest ----------------------------------------------------------------------
# The most comments/s stored (ours: every one fsynced, over NATS; nchan: in memory, over
# HTTP) with request and viewer p99 < 100 ms: 2 viewers per video, rising rates.
if want ingest; then
  for sys in ours nchan; do
    if [ $sys = ours ]; then view=("${ours_view[@]}"); pub=(--nats "$nats_url" --via nats "${ours_mon[@]}"); sp=$ours_pids
    else view=("${nchan_view[@]}"); pub=("${nchan_pub[@]}"); sp=$nchan_pids; fi
    scenario "comment ingest ($sys): $INGEST_VIDEOS videos, $INGEST_VIEWERS viewers, comments/s $INGEST_STEPS, $INGEST_STEP each" \
      "$logs/ingest-$sys.log" \
      "$LG" run --label "ingest/$sys" --videos "$INGEST_VIDEOS" --video-prefix "ing$sys" \
      --viewers "$INGEST_VIEWERS" --connect-rate "$CONNECT_RATE" --warmup "$WARMUP" \
      --duration "$INGEST_STEP" --drain 1s --comment-steps "$INGEST_STEPS" --likes-per-sec 0 \
      --stop-p99 100ms --stop-request-p99 100ms --stop-accepted 0.95 --concurrency 4096 \
      --users 10000 --server-pids "$sp" "${view[@]}" "${pub[@]}" --json-out "$res/ingest-$sys.json"
  done
fi

# --- likes ingest (ours; nchan has no likes) ---------------------------------------------
if want likes; then
  scenario "likes ingest over HTTP: likes/s $LIKES_HTTP_STEPS, $LIKES_STEP each" "$logs/likes-http.log" \
    "$LG" publish --label likes-http/ours --videos 10 --video-prefix likeshttp \
    --comments-per-sec 0 --like-steps "$LIKES_HTTP_STEPS" --duration "$LIKES_STEP" \
    --warmup 0s --stop-accepted 0.9 --concurrency 2048 --users 10000 --publisher "$pub_url" \
    --via http --server-pids "$ours_pids" --json-out "$res/likes-http.json"
  scenario "likes ingest over NATS: likes/s $LIKES_NATS_STEPS, $LIKES_STEP each" "$logs/likes-nats.log" \
    "$LG" publish --label likes-nats/ours --videos 10 --video-prefix likesnats \
    --comments-per-sec 0 --like-steps "$LIKES_NATS_STEPS" --duration "$LIKES_STEP" \
    --warmup 0s --stop-accepted 0.9 --concurrency 16384 --users 10000 --nats "$nats_url" \
    --via nats "${ours_mon[@]}" --server-pids "$ours_pids" --json-out "$res/likes-nats.json"
  # Viewer-side like latency at half the best NATS rate (at most 100k/s, at least 100/s).
  best=$(jq -s 'map(.publish.likes.accepted_per_sec) | max // 0' "$res/likes-nats.json" 2>/dev/null || echo 0)
  lat_rate=$(awk -v b="$best" 'BEGIN { r = int(b / 2); if (r > 100000) r = 100000; if (r < 100) r = 100; print r }')
  scenario "like latency: $LIKES_LAT_VIEWERS viewers of 10 videos, $lat_rate likes/s over NATS" \
    "$logs/likes-latency.log" \
    "$LG" run --label likes-latency/ours --videos 10 --video-prefix likeslat \
    --viewers "$LIKES_LAT_VIEWERS" --connect-rate "$CONNECT_RATE" --warmup "$WARMUP" \
    --duration "$LIKES_STEP" --drain 1s --comments-per-sec 0 --likes-per-sec "$lat_rate" \
    --likes-sample 10 --concurrency 4096 --users 10000 --nats "$nats_url" --via nats \
    --server-pids "$ours_pids" "${ours_view[@]}" --json-out "$res/likes-latency.json"
fi

# --- batched likes (ours): LikeBatch messages of $LIKE_BATCH likes over NATS -----------------
if want batch; then
  scenario "batched likes over NATS: likes/s $BATCH_STEPS in batches of $LIKE_BATCH, $LIKES_STEP each" \
    "$logs/likes-batch.log" \
    "$LG" publish --label likes-batch/ours --videos 1000 --video-prefix likesbatch \
    --comments-per-sec 0 --like-steps "$BATCH_STEPS" --like-batch "$LIKE_BATCH" \
    --duration "$LIKES_STEP" --warmup 0s --stop-accepted 0.9 --concurrency 4096 --users 10000 \
    --nats "$nats_url" --via nats "${ours_mon[@]}" --server-pids "$ours_pids" \
    --json-out "$res/likes-batch.json"
  # Viewers' like latency at the best batched rate (at most 1M/s): 1,000 viewers of 10 videos.
  best=$(jq -s 'map(.publish.likes.accepted_per_sec) | max // 0' "$res/likes-batch.json" 2>/dev/null || echo 0)
  lat_rate=$(awk -v b="$best" -v n="$LIKE_BATCH" 'BEGIN { r = int(b); if (r > 1000000) r = 1000000; if (r < 10 * n) r = 10 * n; print r }')
  scenario "batched like latency: $LIKES_LAT_VIEWERS viewers of 10 videos, $lat_rate likes/s in batches of $LIKE_BATCH" \
    "$logs/likes-batch-latency.log" \
    "$LG" run --label likes-batch-latency/ours --videos 10 --video-prefix likesbatchlat \
    --viewers "$LIKES_LAT_VIEWERS" --connect-rate "$CONNECT_RATE" --warmup "$WARMUP" \
    --duration "$LIKES_STEP" --drain 1s --comments-per-sec 0 --likes-per-sec "$lat_rate" \
    --like-batch "$LIKE_BATCH" --likes-sample 10 --concurrency 4096 --users 10000 \
    --nats "$nats_url" --via nats "${ours_mon[@]}" --server-pids "$ours_pids" "${ours_view[@]}" \
    --json-out "$res/likes-batch-latency.json"
fi

# --- 100k viewers (ours) -----------------------------------------------------------------
if want 100k; then
  fe_urls=""; big_pids="publisher:$pub_pid,nats:$nats_pid"
  # Each frontend holds BIG_VIEWERS / BIG_FRONTENDS viewers (16,667 at 100k): above the
  # default --max-connections of 16,000, still below the 20,000 open files with NATS.
  big_cap=$(( BIG_VIEWERS / BIG_FRONTENDS + 2000 ))
  for ((f=1; f<=BIG_FRONTENDS; f++)); do
    start_frontend "frontend-big$f" "$PARTITIONS" --max-connections "$big_cap"
    fe_urls+="${fe_urls:+,}$fe_url"; big_pids+=",frontend$f:$fe_pid"
  done
  per=$(( (BIG_VIEWERS + BIG_PROCS - 1) / BIG_PROCS ))
  rate=1000
  margin=15; $quick && margin=3   # time for every process to ramp before the window
  start_at=$(( $(date +%s) + per / rate + margin ))
  echo "▶ $BIG_VIEWERS viewers: $BIG_FRONTENDS frontends, $BIG_PROCS loadgen processes of $per, $BIG_VIDEOS videos, $BIG_COMMENTS comments/s + $BIG_LIKES likes/s over NATS"
  t0=$SECONDS; lg_pids=()
  for ((p=0; p<BIG_PROCS; p++)); do
    offset=$((p * per)); n=$((BIG_VIEWERS - offset)); [ "$n" -gt "$per" ] && n=$per
    common=(--label 100k/ours --videos "$BIG_VIDEOS" --video-prefix big --viewers "$n"
            --viewer-offset "$offset" --source-ips "127.0.0.$((2 + p))" --connect-rate "$rate"
            --frontend "$fe_urls" --start-at "$start_at" --duration "$BIG_DURATION"
            --drain "$DRAIN" --server-pids "$big_pids" --quiet
            --json-out "$run_dir/100k/part-$p.json")
    if [ "$p" -eq 0 ]; then
      "$LG" run "${common[@]}" --comments-per-sec "$BIG_COMMENTS" --likes-per-sec "$BIG_LIKES" \
        --users 10000 --concurrency 1024 --nats "$nats_url" --via nats \
        >"$logs/100k-$p.out" 2>"$logs/100k-$p.log" &
    else
      "$LG" viewers "${common[@]}" >"$logs/100k-$p.out" 2>"$logs/100k-$p.log" &
    fi
    lg_pids+=($!); pids+=($!)
  done
  big_ok=true
  for p in "${lg_pids[@]}"; do wait "$p" || big_ok=false; done
  if $big_ok && "$LG" merge "$run_dir"/100k/part-*.json --json-out "$res/100k.json" \
       >"$logs/100k-merge.out" 2>"$logs/100k-merge.log"; then
    echo "  done in $((SECONDS - t0)) s"
  else
    echo "  FAILED after $((SECONDS - t0)) s: see $logs/100k-*.log"; ok=false
  fi
fi

# --- reconnect storm (ours) --------------------------------------------------------------
# Three frontends of their own: A holds $STORM_VIEWERS viewers (loadgen processes of at
# most $STORM_PER_PROC, each --failover over A,B,C: as behind a load balancer, a viewer
# whose connect fails goes to a live node); B and C hold $STORM_OWN viewers of the same
# videos but the last (a separate process measuring latency per window), so the storm
# resumes into rooms whose rings reach back and, for the last video, into rooms it opens. Comments flow at
# $STORM_COMMENTS/s from the first storm process. One window of $STORM_WINDOW s before the
# kill, then A is killed with -9 and one window during the storm and one after it (every viewer on the survivors: what the storm leaves, apart from the storm itself). Figures from the
# loadgen results (viewers.recovery, loss, duplicates) and the survivors' /metrics.
if want storm; then
  sd="$run_dir/storm"
  start_frontend storm-a "$PARTITIONS" "${STORM_FE_ARGS[@]}"; sa_pid=$fe_pid; sa_url=$fe_url
  start_frontend storm-b "$PARTITIONS" "${STORM_FE_ARGS[@]}"; sb_pid=$fe_pid; sb_url=$fe_url
  start_frontend storm-c "$PARTITIONS" "${STORM_FE_ARGS[@]}"; sc_pid=$fe_pid; sc_url=$fe_url
  procs=$(( (STORM_VIEWERS + STORM_PER_PROC - 1) / STORM_PER_PROC ))
  per=$(( (STORM_VIEWERS + procs - 1) / procs ))
  rate=2000; margin=8; $quick && margin=4
  start_at=$(( $(date +%s) + (per > STORM_OWN ? per : STORM_OWN) / rate + margin ))
  kill_at=$(( start_at + STORM_WINDOW ))
  storm_pids="survivor-b:$sb_pid,survivor-c:$sc_pid,publisher:$pub_pid,nats:$nats_pid"
  echo "▶ reconnect storm: kill -$STORM_SIGNAL a frontend holding $STORM_VIEWERS viewers of $STORM_VIDEOS videos ($procs loadgen processes), $STORM_COMMENTS comments/s; the 2 survivors hold $STORM_OWN viewers of their own"
  t0=$SECONDS; lg_pids=()
  own_ids=$(seq -f "storm%04g" 0 $((STORM_VIDEOS > 1 ? STORM_VIDEOS - 2 : 0)) | paste -sd,)
  "$LG" viewers --label storm-own/ours --video-ids "$own_ids" \
    --viewers "$STORM_OWN" --source-ips 127.0.0.9 --connect-rate "$rate" \
    --frontend "$sb_url,$sc_url" --start-at "$start_at" --duration "${STORM_WINDOW}s" --windows 3 \
    --server-pids "$storm_pids" --quiet --json-out "$sd/own.json" \
    >"$logs/storm-own.out" 2>"$logs/storm-own.log" &
  own_pid=$!; pids+=("$own_pid")
  for ((p=0; p<procs; p++)); do
    offset=$((p * per)); n=$((STORM_VIEWERS - offset)); [ "$n" -gt "$per" ] && n=$per
    common=(--label storm/ours --videos "$STORM_VIDEOS" --video-prefix storm --viewers "$n"
            --viewer-offset "$offset" --source-ips "127.0.0.$((10 + p))" --connect-rate "$rate"
            --frontend "$sa_url,$sb_url,$sc_url" --failover --start-at "$start_at"
            --duration "$((3 * STORM_WINDOW))s" --drain 3s --quiet --json-out "$sd/part-$p.json")
    if [ "$p" -eq 0 ]; then
      nice -n "$STORM_NICE" "$LG" run "${common[@]}" --comments-per-sec "$STORM_COMMENTS" --likes-per-sec 0 \
        --users 1000 "${ours_pub[@]}" >"$logs/storm-$p.out" 2>"$logs/storm-$p.log" &
    else
      nice -n "$STORM_NICE" "$LG" viewers "${common[@]}" >"$logs/storm-$p.out" 2>"$logs/storm-$p.log" &
    fi
    lg_pids+=($!); pids+=($!)
  done
  while [ "$(date +%s)" -lt "$kill_at" ]; do sleep 0.05; done
  for u in "$sb_url" "$sc_url"; do curl -fs "$u/metrics" >>"$sd/metrics-before.txt" || true; done
  overflows() { awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else print $c["ListenOverflows"] }' /proc/net/netstat; }
  overflows_before=$(overflows)
  kill_ms=$(date +%s%3N)
  kill -"$STORM_SIGNAL" "$sa_pid"; wait "$sa_pid" 2>/dev/null || true   # (no "Killed" line)
  load_at_kill=$(cut -d' ' -f1-3 /proc/loadavg)
  storm_ok=true
  for p in "${lg_pids[@]}" "$own_pid"; do wait "$p" || storm_ok=false; done
  for u in "$sb_url" "$sc_url"; do curl -fs "$u/metrics" >>"$sd/metrics-after.txt" || true; done
  overflows_after=$(overflows)
  if $storm_ok && "$LG" merge "$sd"/part-*.json --json-out "$sd/storm.json" \
       >"$logs/storm-merge.out" 2>"$logs/storm-merge.log"; then
    echo "  done in $((SECONDS - t0)) s"
    # A counter's per-label sums over both survivors' scrapes.
    series() { awk -v n="$1" 'index($1, n "{") == 1 { split($1, a, "\""); s[a[2]] += $2 }
                             END { for (k in s) print k, s[k] }' "$2" | sort; }
    delta() { # name → "label before→after (+d)" per label, and the total increase
      join -a1 -a2 -e 0 -o 0,1.2,2.2 <(series "$1" "$sd/metrics-before.txt") \
        <(series "$1" "$sd/metrics-after.txt") |
        awk '{ d = $3 - $2; t += d; printf "%s +%d, ", $1, d } END { printf "total +%d", t }'; }
    jq -r --argjson kill "$kill_ms" '
      .viewers as $v | $v.recovery as $r |
      "  storm viewers: \($v.target) on the killed node (\($v.connected_at_start) open at the window start), \($v.connected_at_end) open at the end",
      "  streams broken: \($r.dropped) (first \(($r.first_drop_ms - $kill)) ms after the kill)",
      "  kill → last viewer reconnected: \((($r.last_reconnect_ms - $kill) / 1000 * 100 | round) / 100) s (\($r.reconnected) of \($r.dropped) back)",
      "  kill → last viewer caught up:   \((($r.last_caught_up_ms - $kill) / 1000 * 100 | round) / 100) s (\($r.caught_up) of \($r.dropped); longest outage \($r.max_caught_up_ms) ms)",
      "  comments: expected \(.loss.expected), lost \(.loss.lost), extra \(.loss.extra), duplicates \($v.counts.duplicates); accepted \(.publish.comments.accepted) of \(.publish.comments.sent) sent",
      "  storm viewers comment latency (whole window, outage included): p50 \($v.latency.p50_ms | round) ms, p99 \($v.latency.p99_ms | round) ms, max \($v.latency.max_ms | round) ms"
    ' "$sd/storm.json" | tee "$sd/figures.txt"
    jq -r -s '
      "  survivors own viewers, p50 / p99 / max (ms): before the kill \(.[0].viewers.latency | "\(.p50_ms | round) / \(.p99_ms | round) / \(.max_ms | round)") (\(.[0].viewers.latency.count) comments); during the storm \(.[1].viewers.latency | "\(.p50_ms | round) / \(.p99_ms | round) / \(.max_ms | round)") (\(.[1].viewers.latency.count) comments); after it, every viewer on the survivors \(.[2].viewers.latency | "\(.p50_ms | round) / \(.p99_ms | round) / \(.max_ms | round)") (\(.[2].viewers.latency.count) comments); duplicates \(map(.viewers.counts.duplicates) | add)",
      "  survivors CPU % of a core before / during / after: \(.[0].server | map("\(.name) \(.cpu_percent | round)") | join(", ")) / \(.[1].server | map("\(.name) \(.cpu_percent | round)") | join(", ")) / \(.[2].server | map("\(.name) \(.cpu_percent | round)") | join(", "))"
    ' "$sd/own.json" | tee -a "$sd/figures.txt"
    { echo "  survivors' JetStream history reads during the storm: $(delta frontend_history_reads_total)"
      echo "  survivors' resumes by source: $(delta frontend_resumes_total)"
      echo "  accept queue overflows (SYNs dropped, machine-wide) during the storm: $((overflows_after - overflows_before))"
      echo "  load average at the kill: $load_at_kill; SIG$STORM_SIGNAL; frontends' flags: --drain 1s ${STORM_FRONTEND_ARGS:-(retry: window 2–10 s, the defaults)}"
    } | tee -a "$sd/figures.txt"
  else
    echo "  FAILED after $((SECONDS - t0)) s: see $logs/storm-*.log"; ok=false
  fi
  for p in "$sb_pid" "$sc_pid"; do stop_pid "$p"; done
fi

# --- fleet (ours): what a frontend costs as the fleet grows ------------------------------
# For each size F of $FLEET_SIZES: a fresh nats-server (nats/local.conf, JetStream) and
# publisher, F frontends, and the same $FLEET_VIDEOS videos on every frontend, each watched
# there by $FLEET_VIEWERS_PER_VIDEO idle viewers (loadgen viewers processes, at most
# $FLEET_PER_PROC viewers each). Once the viewers are connected and $FLEET_WARMUP s have
# passed (viewer counts flow once a second), `loadgen fleet` measures $FLEET_WINDOW s: NATS
# msgs/s of every `frontend-…` and `publisher-…` connection (/connz), the server's totals
# (/varz), CPU (/proc). Then everything of that size is stopped. `benchreport fleet` makes
# the table, the JSON summary and the plot.
FLEET_PER_PROC=4000
stop_pids() { # pid…: stops processes this script started, all at once
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=false
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=true; done
    $alive || return 0
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
}
fleet_md="(not run)"
if want fleet; then
  fleet_dir="$run_dir/fleet"
  echo "▶ fleet: frontends $FLEET_SIZES, the same $FLEET_VIDEOS videos on each, $FLEET_VIEWERS_PER_VIDEO idle viewer(s) per video per frontend, ${FLEET_WARMUP} s warm-up, ${FLEET_WINDOW} s window"
  t0=$SECONDS; fleet_ok=true
  for F in ${FLEET_SIZES//,/ }; do
    start_nats "nats-fleet$F"; fl_nats=$nats_pid; fl_mon=$nats_mon_url
    start_publisher "publisher-fleet$F" "$PARTITIONS"; fl_pub=$pub_pid
    fl_fe=(); fl_urls=""
    for ((f=1; f<=F; f++)); do
      port=$(free_port)
      "$bin/frontend" --listen "127.0.0.1:$port" --nats "$nats_url" --publisher-url "$pub_url" \
        --partitions "$PARTITIONS" --drain 0s --replay-buffer 16 --viewer-queue 64 \
        --max-connections 2000 >"$logs/fleet$F-frontend$f.log" 2>&1 &
      fl_fe+=($!); pids+=($!)
      fl_urls+="${fl_urls:+,}http://127.0.0.1:$port"
    done
    for u in ${fl_urls//,/ }; do wait_http "$u/healthz"; done
    total=$((F * FLEET_VIDEOS * FLEET_VIEWERS_PER_VIDEO))
    procs=$(( (total + FLEET_PER_PROC - 1) / FLEET_PER_PROC ))
    rate=2000
    # Every process ramps at $rate/s at once; the window starts after the ramp and warm-up.
    ramp=$(( (total < FLEET_PER_PROC ? total : FLEET_PER_PROC) / rate + 2 ))
    start_at=$(( $(date +%s) + ramp + FLEET_WARMUP ))
    lg=()
    for ((p=0; p<procs; p++)); do
      offset=$((p * FLEET_PER_PROC)); n=$((total - offset))
      [ "$n" -gt "$FLEET_PER_PROC" ] && n=$FLEET_PER_PROC
      # Viewer g watches video g mod N on frontend (g / N) mod F: each frontend gets
      # every video, $FLEET_VIEWERS_PER_VIDEO times.
      "$LG" viewers --threads 1 --label "fleet/$F" --videos "$FLEET_VIDEOS" --video-prefix fleet \
        --viewers "$n" --viewer-offset "$offset" --connect-rate "$rate" --frontend "$fl_urls" \
        --start-at "$start_at" --duration "${FLEET_WINDOW}s" --quiet \
        --json-out "$fleet_dir/viewers-$F-$p.json" \
        >"$logs/fleet$F-viewers$p.out" 2>"$logs/fleet$F-viewers$p.log" &
      lg+=($!); pids+=($!)
    done
    if ! "$LG" fleet --nats-monitor "$fl_mon" --frontend-pids "$(IFS=,; echo "${fl_fe[*]}")" \
         --publisher-pids "$fl_pub" --nats-pid "$fl_nats" --start-at "$start_at" \
         --duration "${FLEET_WINDOW}s" --json-out "$fleet_dir/fleet-$F.json" \
         >"$logs/fleet$F.out" 2>"$logs/fleet$F.log"; then
      echo "  F=$F: loadgen fleet FAILED: see $logs/fleet$F.log"; fleet_ok=false
    fi
    for p in "${lg[@]}"; do wait "$p" || { echo "  F=$F: viewers FAILED: see $logs/fleet$F-viewers*.log"; fleet_ok=false; }; done
    sed -n 's/^loadgen fleet: /  /p' "$logs/fleet$F.log"
    stop_pids "${fl_fe[@]}"
    stop_pids "$fl_pub"
    stop_pids "$fl_nats"
  done
  nats_url=$ours_nats_url; pub_url=$ours_pub_url
  fleet_note="Measured $(date -u '+%Y-%m-%d %H:%M UTC') on a shared ${ncores}-core machine ($cpu_model, ${mem_gib} GiB): every process and the viewers on the same cores, other work possibly beside them. Per fleet size F: a fresh nats-server $nats_v (nats/local.conf, JetStream) and publisher (--partitions $PARTITIONS), F frontends, the same $FLEET_VIDEOS videos on each with $FLEET_VIEWERS_PER_VIDEO idle viewer(s) per video per frontend, ${FLEET_WARMUP} s warm-up, ${FLEET_WINDOW} s window. Command: \`scripts/bench.sh${*:+ $*}\`."
  echo
  if "$BR" fleet --dir "$fleet_dir" --md-out "$run_dir/fleet.md" --svg-out "$run_dir/fleet.svg" \
       --json-out "$run_dir/fleet.json" --note "$fleet_note"; then
    fleet_md="$run_dir/fleet.md"
    echo "fleet: table $run_dir/fleet.md  plot $run_dir/fleet.svg  results $run_dir/fleet.json (steps in $fleet_dir)  in $((SECONDS - t0)) s"
  else
    echo "benchreport fleet failed"; fleet_ok=false
  fi
  $fleet_ok || ok=false
fi

# --- the table and the plot --------------------------------------------------------------
cmd="scripts/bench.sh${*:+ $*}"
note="Measured $(date -u '+%Y-%m-%d %H:%M UTC') on a shared ${ncores}-core machine ($cpu_model, ${mem_gib} GiB): servers and load generator on the same cores, other work possibly beside them; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end. nginx $nginx_v + nchan $nchan_v (2 workers), nats-server $nats_v (JetStream, sync_interval always); reference = bench/reference (tokio broadcast, no NATS, no storage; latency from loadgen's send, like nchan's; ours from the publisher's acceptance, before the durable write). Command: \`$cmd\`."
if want storm; then
  echo "storm figures: $run_dir/storm/figures.txt"
fi
if $need_table; then
  echo
  "$BR" summary --dir "$res" --md-out "$run_dir/bench.md" --svg-out "$run_dir/bench.svg" --note "$note"
  plot="$run_dir/bench.svg"; [ -f "$plot" ] || plot="(none: no fan-out results)"
  echo "table: $run_dir/bench.md  plot: $plot  results: $res  logs: $logs"
  # The capacity model fed with the unit costs this run measured (docs/capacity.md).
  echo
  "$BR" capacity --measured "$res" --measured-partitions "$PARTITIONS" | tee "$run_dir/capacity.md" \
    || { echo "benchreport capacity failed"; ok=false; }
fi
if ! $quick && [ -z "$only" ]; then
  mkdir -p docs/bench
  cp "$run_dir/bench.md" docs/bench/latest.md
  cp "$run_dir/bench.svg" docs/bench/latency.svg
  cp "$run_dir/capacity.md" docs/bench/capacity.md
  copied="docs/bench/latest.md, docs/bench/latency.svg, docs/bench/capacity.md"
  if [ -f "$run_dir/fleet.md" ]; then
    cp "$run_dir/fleet.md" docs/bench/fleet.md
    cp "$run_dir/fleet.svg" docs/bench/fleet.svg
    copied+=", docs/bench/fleet.md, docs/bench/fleet.svg"
  fi
  echo "copied to $copied"
fi
$ok
