#!/usr/bin/env bash
# s3_server.sh: a one-node Ceph RADOS Gateway on 127.0.0.1 for z3's tests, benchmarks and demo.
#
# Usage: tests/bed/s3_server.sh install|start|env|status|stop
#
#   install  install radosgw, ceph-mon and ceph-osd from Debian when missing (needs root)
#   start    reuse a healthy gateway from an earlier start, or build a fresh cluster; on success
#            writes $STATE/env (mode 600) and prints a one-line summary on stderr
#   env      print the env file (S3_ENDPOINT, S3_TLS_ENDPOINT, S3_TLS_CA, S3_KEY_ID, S3_SECRET,
#            S3_REGION) on stdout
#   status   exit 0 when the gateway is healthy, 1 otherwise; one line on stderr
#   stop     stop the daemons this script started (by recorded PID), remove the state directory
#
# Environment:
#   Z3_S3_STATE_DIR     state directory (default /var/tmp/z3-s3-bed)
#   Z3_S3_PORT          gateway port on 127.0.0.1 (default 17480); the gateway also serves HTTPS
#                       on PORT+3 with a certificate for 127.0.0.1 and localhost from a throwaway
#                       CA made at start ($STATE/tls/ca.pem, the env file's S3_TLS_CA); the monitor
#                       listens on PORT+1 (msgr2) and PORT+2 (msgr1), the OSD on PORT+10..PORT+99
#   Z3_S3_STEP_TIMEOUT  seconds allowed for each start step (default 120)
#
# Exit status: 0 success, 1 failure or not healthy, 2 usage, 3 cannot install (not root).
#
# Use it from a shell:  set -a; . <(tests/bed/s3_server.sh env); set +a
# The secret is written only to the env file; it is never printed by start, status or stop.
set -euo pipefail

readonly PROG=s3_server
readonly STATE=${Z3_S3_STATE_DIR:-/var/tmp/z3-s3-bed}
readonly PORT=${Z3_S3_PORT:-17480}
readonly TLS_PORT=$((${Z3_S3_PORT:-17480} + 3))
readonly STEP_TIMEOUT=${Z3_S3_STEP_TIMEOUT:-120}
readonly REGION=us-east-1
readonly CONF=$STATE/ceph.conf
readonly LOGS=$STATE/log
readonly CLI_LOG=$STATE/log/cli.log
readonly MARKER=$STATE/.z3-s3-bed
readonly TLS=$STATE/tls
readonly RGW_NAME=client.rgw.z3
readonly PACKAGES=(radosgw ceph-mon ceph-osd)
readonly BINARIES=(radosgw radosgw-admin ceph-mon ceph-osd ceph ceph-authtool monmaptool)

BUILDING=0
UNHEALTHY_REASON=

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  say "$*"
  exit 1
}

check_settings() {
  [[ $STATE == /* && $STATE != / ]] || die "Z3_S3_STATE_DIR must be an absolute path other than /: \"$STATE\""
  if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT > 65400)); then
    die "Z3_S3_PORT must be a number from 1024 to 65400: \"$PORT\""
  fi
  [[ $STEP_TIMEOUT =~ ^[0-9]+$ ]] || die "Z3_S3_STEP_TIMEOUT must be a number of seconds: \"$STEP_TIMEOUT\""
}

# ---------------------------------------------------------------------------------------------
# install

have_binaries() {
  local b
  for b in "${BINARIES[@]}"; do
    command -v "$b" >/dev/null 2>&1 || return 1
  done
}

# True when dpkg reports every package fully installed (an install still running in the
# background may already have unpacked the binaries without configuring them).
packages_configured() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local n
  n=$(dpkg-query -W -f='${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null | grep -c '^ii') || true
  [[ $n == "${#PACKAGES[@]}" ]]
}

# apt-get with a wait for the dpkg lock (another install may be running) and a few retries.
apt_get() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" >&2; then
      return 0
    fi
    say "apt-get $1 failed (attempt $attempt of 5); retrying in 10 s"
    sleep 10
  done
  return 1
}

cmd_install() {
  if have_binaries && packages_configured; then
    return 0
  fi
  if ((EUID != 0)); then
    if have_binaries; then
      return 0
    fi
    say "radosgw not installed and not root; cannot install"
    exit 3
  fi
  if ! apt-cache show "${PACKAGES[@]}" >/dev/null 2>&1; then
    apt_get update -q || die "apt-get update failed; see its output above"
  fi
  apt_get install -y -q --no-install-recommends "${PACKAGES[@]}" ||
    die "apt-get install ${PACKAGES[*]} failed; see its output above"
  have_binaries || die "installed ${PACKAGES[*]} but a binary is still missing (need ${BINARIES[*]})"
}

# ---------------------------------------------------------------------------------------------
# daemons, by recorded PID only

pid_file() { printf '%s/%s.pid' "$STATE" "$1"; }

# Prints the recorded PID of daemon $1 (mon, osd, rgw) when that process is alive and is the
# one this script started: its argv holds our ceph.conf. PIDs get reused; names are not enough.
our_pid() {
  local file pid
  file=$(pid_file "$1")
  [[ -r $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$CONF" || return 1
  printf '%s\n' "$pid"
}

# Starts a daemon detached in its own session, in the foreground mode (-f), with its output in
# the state dir and without our lock descriptor (else it would hold the lock forever).
launch() {
  local kind=$1
  shift
  setsid "$@" </dev/null >>"$LOGS/$kind.out" 2>&1 9>&- &
  printf '%s\n' "$!" >"$(pid_file "$kind")"
}

stop_daemon() {
  local kind=$1 pid i
  pid=$(our_pid "$kind") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    our_pid "$kind" >/dev/null || return 0
    sleep 0.5
  done
  say "$kind (pid $pid) did not stop within 15 s of TERM; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    our_pid "$kind" >/dev/null || return 0
    sleep 0.25
  done
  say "$kind (pid $pid) is still alive after KILL"
  return 1
}

stop_daemons() {
  local rc=0 kind
  for kind in rgw osd mon; do
    stop_daemon "$kind" || rc=1
  done
  return "$rc"
}

# Removes the state dir, but only one this script made (it carries our marker) or an empty one.
remove_state() {
  [[ -e $STATE ]] || return 0
  if [[ -f $MARKER ]] || [[ -d $STATE && -z $(ls -A "$STATE") ]]; then
    rm -rf -- "$STATE"
  else
    die "refusing to remove \"$STATE\": it exists but was not made by this script; set Z3_S3_STATE_DIR elsewhere"
  fi
}

# ---------------------------------------------------------------------------------------------
# health

env_value() { sed -n "s/^$1=//p" "$STATE/env" 2>/dev/null | head -n 1; }

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" 2>/dev/null || true; }

# Healthy: env file present, the three recorded daemons alive, HTTP 200 on the endpoint's "/".
healthy() {
  local kind endpoint code
  [[ -f $STATE/env ]] || {
    UNHEALTHY_REASON="no env file in $STATE"
    return 1
  }
  for kind in mon osd rgw; do
    our_pid "$kind" >/dev/null || {
      UNHEALTHY_REASON="$kind daemon not running"
      return 1
    }
  done
  endpoint=$(env_value S3_ENDPOINT)
  code=$(http_code "$endpoint/")
  [[ $code == 200 ]] || {
    UNHEALTHY_REASON="GET $endpoint/ answered \"$code\", not 200"
    return 1
  }
  tls_healthy
}

# The HTTPS side: the env file names it and its CA, and a GET / verified against that CA
# answers 200. A gateway started before the bed served HTTPS fails this (UNHEALTHY_REASON says so).
tls_healthy() {
  local endpoint ca code
  endpoint=$(env_value S3_TLS_ENDPOINT)
  ca=$(env_value S3_TLS_CA)
  [[ -n $endpoint && -r $ca ]] || {
    UNHEALTHY_REASON="no HTTPS endpoint in $STATE/env"
    return 1
  }
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$ca" "$endpoint/" 2>/dev/null || true)
  [[ $code == 200 ]] || {
    UNHEALTHY_REASON="GET $endpoint/ (CA $ca) answered \"$code\", not 200"
    return 1
  }
}

# A signed ListBuckets; the credentials go to curl on stdin, never in argv. curl 7.88 does not
# send x-amz-content-sha256 by itself and radosgw then answers 403 SignatureDoesNotMatch.
signed_list_ok() {
  local endpoint=$1 key=$2 secret=$3 code
  code=$(printf 'user = "%s:%s"\n' "$key" "$secret" |
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -K - \
      -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --aws-sigv4 "aws:amz:$REGION:s3" "$endpoint/" 2>/dev/null) || true
  [[ $code == 200 ]]
}

# ---------------------------------------------------------------------------------------------
# start

ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 25 "$@"; }

# wait_for STEP LOG DAEMON CMD...: run CMD until it succeeds, at most STEP_TIMEOUT seconds;
# fail early when DAEMON (if given) has exited.
wait_for() {
  local step=$1 log=$2 kind=$3 deadline
  shift 3
  deadline=$((SECONDS + STEP_TIMEOUT))
  until "$@" >/dev/null 2>>"$CLI_LOG"; do
    if [[ -n $kind ]] && ! our_pid "$kind" >/dev/null; then
      die "start: $kind daemon exited during step \"$step\"; read $log"
    fi
    if ((SECONDS >= deadline)); then
      die "start: timed out after ${STEP_TIMEOUT} s at step \"$step\"; read $log"
    fi
    sleep 1
  done
}

# step STEP LOG CMD...: run a one-shot command, bounded by STEP_TIMEOUT, output to LOG.
step() {
  local name=$1 log=$2 rc=0
  shift 2
  timeout "$STEP_TIMEOUT" "$@" >>"$log" 2>&1 || rc=$?
  ((rc == 0)) && return 0
  ((rc == 124)) && die "start: timed out after ${STEP_TIMEOUT} s at step \"$name\"; read $log"
  die "start: step \"$name\" failed (exit $rc); read $log"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mon_ready() { ceph_cli mon stat; }
osd_up() { ceph_cli osd dump | grep -q "^osd\.$1 up"; }
rgw_ready() { [[ $(http_code "$1/") == 200 ]]; }
rgw_tls_ready() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS/ca.pem" \
    "https://127.0.0.1:$TLS_PORT/" 2>/dev/null) == 200 ]]
}

# A throwaway CA (ca.pem) and a server certificate it signed for 127.0.0.1 and localhost
# (server.pem, server.key), valid 30 days, in $TLS. The CA's key is deleted once it has signed.
make_tls() {
  rm -rf -- "$TLS"
  mkdir -p "$TLS"
  chmod 700 "$TLS"
  step "make test CA" "$CLI_LOG" openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
    -subj "/CN=z3 test bed CA" -keyout "$TLS/ca.key" -out "$TLS/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  step "make server key" "$CLI_LOG" openssl req -new -newkey rsa:2048 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$TLS/server.key" -out "$TLS/server.csr"
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$TLS/server.ext"
  step "sign server certificate" "$CLI_LOG" openssl x509 -req -days 30 -in "$TLS/server.csr" \
    -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial -extfile "$TLS/server.ext" \
    -out "$TLS/server.pem"
  rm -f -- "$TLS/ca.key" "$TLS/server.csr" "$TLS/server.ext" "$TLS/ca.srl"
  chmod 644 "$TLS/ca.pem"
  chmod 755 "$TLS"
}

frontends_line() {
  printf 'rgw frontends = beast endpoint=127.0.0.1:%s ssl_endpoint=127.0.0.1:%s ssl_certificate=%s ssl_private_key=%s\n' \
    "$PORT" "$TLS_PORT" "$TLS/server.pem" "$TLS/server.key"
}

write_env() {
  local key=$1 secret=$2
  (
    umask 077
    printf 'S3_ENDPOINT=%s\nS3_TLS_ENDPOINT=%s\nS3_TLS_CA=%s\nS3_KEY_ID=%s\nS3_SECRET=%s\nS3_REGION=%s\n' \
      "http://127.0.0.1:$PORT" "https://127.0.0.1:$TLS_PORT" "$TLS/ca.pem" "$key" "$secret" \
      "$REGION" >"$STATE/env.tmp"
  )
  chmod 600 "$STATE/env.tmp"
  mv -f "$STATE/env.tmp" "$STATE/env"
}

rand_hex() { od -An -v -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

write_conf() {
  local fsid=$1 mon_v2=$((PORT + 1)) mon_v1=$((PORT + 2))
  cat >"$CONF" <<EOF
# Made by tests/bed/s3_server.sh: one mon, one OSD, one radosgw, no cephx, all on loopback.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
public network = 127.0.0.0/8
ms bind ipv6 = false
# radosgw defaults to "secure", which cannot work without cephx (get_initial_auth_request -13).
ms mon client mode = crc
auth cluster required = none
auth service required = none
auth client required = none
keyring = $STATE/keyring
run dir = $STATE/run
crash dir = $STATE/crash
log file = $LOGS/\$name.log
mon cluster log file = $LOGS/cluster.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail crit = 1
mon data avail warn = 2

[mon]
mon data = $STATE/mon/\$cluster-\$id

[osd]
osd data = $STATE/osd/\$cluster-\$id
ms bind port min = $((PORT + 10))
ms bind port max = $((PORT + 99))
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 64G
bluestore fsck on mount = false
bluestore cache autotune = false
bluestore cache size = 256M
osd memory target = 1G

[$RGW_NAME]
rgw data = $STATE/rgw/\$cluster-\$id
$(frontends_line)
# Reclaim deleted objects' space within a minute (the default waits two hours), so a long-lived
# test gateway that benchmarks write gigabytes to does not fill its OSD.
rgw gc obj min wait = 10
rgw gc processor period = 30
rgw gc processor max time = 30
EOF
}

# On a failed build: stop what was started, keep the state dir so its logs can be read.
on_exit() {
  local rc=$?
  if ((rc != 0 && BUILDING == 1)); then
    stop_daemons || true
    say "start failed; daemons stopped, logs kept in $LOGS (the next start or stop removes them)"
  fi
  return "$rc"
}

build_cluster() {
  local t0=$SECONDS fsid osd_uuid osd_id key secret endpoint=http://127.0.0.1:$PORT p
  for p in "$PORT" $((PORT + 1)) $((PORT + 2)) "$TLS_PORT"; do
    port_in_use "$p" && die "start: port 127.0.0.1:$p is already in use by another process; set Z3_S3_PORT"
  done

  BUILDING=1
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  : >"$MARKER"
  mkdir -p "$LOGS" "$STATE/run" "$STATE/crash" "$STATE/mon" "$STATE/osd" "$STATE/rgw"
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  make_tls
  write_conf "$fsid"

  step "create keyring" "$CLI_LOG" ceph-authtool --create-keyring "$STATE/keyring" \
    --gen-key -n mon. --cap mon 'allow *'
  step "create monmap" "$CLI_LOG" monmaptool --create --fsid "$fsid" \
    --addv a "[v2:127.0.0.1:$((PORT + 1)),v1:127.0.0.1:$((PORT + 2))]" "$STATE/monmap"
  step "mon mkfs" "$LOGS/mon.a.log" ceph-mon -c "$CONF" --mkfs -i a \
    --monmap "$STATE/monmap" --keyring "$STATE/keyring"
  launch mon ceph-mon -c "$CONF" -f -i a
  wait_for "monitor up" "$LOGS/mon.a.log" mon mon_ready

  osd_id=$(ceph_cli osd new "$osd_uuid" 2>>"$CLI_LOG") ||
    die "start: step \"osd new\" failed; read $CLI_LOG"
  [[ $osd_id =~ ^[0-9]+$ ]] || die "start: \"ceph osd new\" printed \"$osd_id\", not an OSD id"
  mkdir -p "$STATE/osd/ceph-$osd_id"
  step "osd mkfs" "$LOGS/osd.$osd_id.log" ceph-osd -c "$CONF" -i "$osd_id" --mkfs \
    --osd-uuid "$osd_uuid"
  launch osd ceph-osd -c "$CONF" -f -i "$osd_id"
  wait_for "osd.$osd_id up" "$LOGS/osd.$osd_id.log" osd osd_up "$osd_id"

  mkdir -p "$STATE/rgw/ceph-${RGW_NAME#client.}"
  launch rgw radosgw -c "$CONF" -f -n "$RGW_NAME"
  wait_for "gateway answers HTTP 200" "$LOGS/$RGW_NAME.log" rgw rgw_ready "$endpoint"

  key=Z3$(rand_hex 9 | tr 'a-f' 'A-F')
  secret=$(rand_hex 20)
  # The JSON printed by user create holds the secret: it goes nowhere.
  timeout "$STEP_TIMEOUT" radosgw-admin -c "$CONF" user create --uid z3 \
    --display-name "z3 test bed" --access-key "$key" --secret "$secret" >/dev/null 2>>"$CLI_LOG" ||
    die "start: step \"create S3 user\" failed; read $CLI_LOG"
  wait_for "signed request accepted" "$LOGS/$RGW_NAME.log" rgw signed_list_ok "$endpoint" "$key" "$secret"
  wait_for "gateway answers HTTPS 200" "$LOGS/$RGW_NAME.log" rgw rgw_tls_ready

  write_env "$key" "$secret"
  BUILDING=0
  say "started $endpoint and https://127.0.0.1:$TLS_PORT (key id $key, region $REGION, state $STATE) in $((SECONDS - t0)) s"
}

# A healthy gateway from before the bed served HTTPS: keep the monitor, the OSD, the user and
# every bucket; make the certificates, add the TLS endpoint to ceph.conf and restart only radosgw.
add_tls() {
  local t0=$SECONDS key secret
  key=$(env_value S3_KEY_ID)
  secret=$(env_value S3_SECRET)
  [[ -n $key && -n $secret ]] || return 1
  port_in_use "$TLS_PORT" && die "start: port 127.0.0.1:$TLS_PORT is already in use by another process; set Z3_S3_PORT"
  make_tls
  sed -i "s|^rgw frontends = .*|$(frontends_line)|" "$CONF"
  stop_daemon rgw || return 1
  launch rgw radosgw -c "$CONF" -f -n "$RGW_NAME"
  wait_for "gateway answers HTTP 200" "$LOGS/$RGW_NAME.log" rgw rgw_ready "http://127.0.0.1:$PORT"
  wait_for "gateway answers HTTPS 200" "$LOGS/$RGW_NAME.log" rgw rgw_tls_ready
  wait_for "signed request accepted" "$LOGS/$RGW_NAME.log" rgw signed_list_ok "http://127.0.0.1:$PORT" "$key" "$secret"
  write_env "$key" "$secret"
  say "restarted radosgw with HTTPS on https://127.0.0.1:$TLS_PORT in $((SECONDS - t0)) s"
}

lock() {
  mkdir -p "$(dirname "$STATE")"
  exec 9>"$STATE.lock"
  flock -w 900 9 || die "another $PROG run holds $STATE.lock; gave up after 900 s"
}

cmd_start() {
  lock
  cmd_install
  if healthy && [[ $(env_value S3_ENDPOINT) == "http://127.0.0.1:$PORT" ]]; then
    say "reusing $(env_value S3_ENDPOINT) (key id $(env_value S3_KEY_ID), state $STATE)"
    return 0
  fi
  if [[ $UNHEALTHY_REASON == "no HTTPS endpoint in $STATE/env" ]] && add_tls; then
    return 0
  fi
  if [[ -e $STATE ]]; then
    stop_daemons || die "start: could not stop the old daemons recorded in $STATE"
    remove_state
  fi
  trap on_exit EXIT
  build_cluster
}

cmd_stop() {
  lock
  if [[ ! -e $STATE ]]; then
    say "not running (no $STATE)"
    return 0
  fi
  stop_daemons || die "stop: a daemon would not die; state kept in $STATE"
  remove_state
  say "stopped; removed $STATE"
}

cmd_status() {
  if healthy; then
    say "running at $(env_value S3_ENDPOINT) (key id $(env_value S3_KEY_ID), state $STATE)"
  else
    say "not running: $UNHEALTHY_REASON"
    exit 1
  fi
}

cmd_env() {
  healthy || die "not running: $UNHEALTHY_REASON; run: $0 start"
  cat "$STATE/env"
}

main() {
  check_settings
  case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
      say "usage: $0 install|start|env|status|stop"
      exit 2
      ;;
  esac
}

main "$@"
