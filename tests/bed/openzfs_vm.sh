#!/usr/bin/env bash
# A real OpenZFS 2.x in a QEMU guest, driven from the host as if zfs/zpool were local commands.
#
#   openzfs_vm.sh start [--version 2.3|2.1]   build the guest image if not cached, boot it, wait
#                                             until `zfs version` answers; prints one line naming
#                                             the guest's OpenZFS version
#   openzfs_vm.sh zfs ARGS… | zpool ARGS…     the real commands in the guest (stdin, stdout, stderr
#                                             streamed, exit status passed back, argv exact)
#   openzfs_vm.sh run ARGV…                   any command in the guest, the same way (no shell)
#   openzfs_vm.sh stop                        zpool export -a, poweroff; keeps the cache
#   openzfs_vm.sh build [--version 2.3|2.1]   only build (or find) the image; prints its directory
#   openzfs_vm.sh status                      says whether a guest runs, and which
#
# The guest has no network (-nic none). Commands travel over virtio-serial ports: a small agent in
# the guest (openzfs_vm_agent.py) execs argv directly; on the host a broker
# (openzfs_vm_broker.ts) holds one permanent connection per port and hands ports to clients
# (openzfs_vm_client.ts). Pools live on the guest's own disks only.
#
# Cache under /var/tmp/z3-openzfs-vm: debs/SUITE (the downloaded .debs), trees/SUITE-DATE (the
# guest's root tree, stage 1), images/KEY (stage 2; KEY names the suite, guest kernel, zfs version
# and a hash of the agent and the configuring code). A guest boots from a qcow2 overlay in the
# run dir, so a cached image never changes; a new configuration makes a new image directory.
#
# Environment: ZVM_VERSION (2.3, the default, or 2.1: what start and build take without
# --version; the tests take it so), ZVM_ACCEL (tcg, the default, or kvm), ZVM_RUN_DIR (default
# /var/tmp/z3-openzfs-vm/run), ZVM_CACHE (default /var/tmp/z3-openzfs-vm), ZVM_BOOT_TIMEOUT
# (seconds, default 300), ZVM_BOOT_TRIES (default 2: a guest whose QEMU exits while it boots, as
# a stock kernel under TCG was seen to do once, "Fatal exception in interrupt", is booted once
# more, its first console kept as console.try1.log), ZVM_APPEND (extra kernel arguments; tests use it to make a guest that
# cannot boot), ZVM_MEM (MiB, default 2048), ZVM_CPUS (default 2), ZVM_PORTS (default 8),
# ZVM_IDLE_STOP (seconds: start makes a guest that stops itself after that long without a
# command; default 0, never).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ZVM_CACHE:-/var/tmp/z3-openzfs-vm}
RUN=${ZVM_RUN_DIR:-$CACHE/run}
ACCEL=${ZVM_ACCEL:-tcg}
BOOT_TIMEOUT=${ZVM_BOOT_TIMEOUT:-300}
PORTS=${ZVM_PORTS:-8}
AGENT=$HERE/openzfs_vm_agent.py
HOST_PACKAGES=(qemu-system-x86 qemu-utils mmdebstrap e2fsprogs)

die() {
  echo "openzfs_vm: $*" >&2
  exit 1
}
log() { echo "openzfs_vm: $*" >&2; }

# The Debian suite that carries each OpenZFS line (contrib).
suite_for() {
  case $1 in
    2.3) echo trixie ;;
    2.1) echo bookworm ;;
    *) die "unknown version '$1' (2.3 or 2.1)" ;;
  esac
}

host_packages() {
  local missing=() p
  for p in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]} with apt"
  local out
  if ! out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}" 2>&1); then
    out=$(DEBIAN_FRONTEND=noninteractive apt-get update 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" 2>&1) || die "cannot install ${missing[*]}: $(tail -n1 <<<"$out")"
  fi
}

# What stage 2 puts into an image: the agent and the code that configures the tree.
config_sum() {
  { cat "$AGENT" && declare -f build_image; } | sha256sum | cut -c1-64
}

# The newest cached image of SUITE configured as this script would, or nothing.
cached_image() {
  local suite=$1 dir sum
  sum=$(config_sum)
  # Newest first (ls -t); the names are the script's own (no newlines).
  while IFS= read -r dir; do
    [[ -f $dir/image.raw && -f $dir/ready && $(cat "$dir/config.sha256" 2>/dev/null) == "$sum" ]] &&
      {
        echo "$dir"
        return 0
      }
  done < <(ls -1dt "$CACHE"/images/"$suite"-* 2>/dev/null)
  return 0
}

# Stage 1: the guest's root tree from Debian packages (zfs-dkms compiles the module for the guest
# kernel inside the chroot). Kept beside the image so that a new agent costs seconds, not minutes.
build_tree() {
  local suite=$1 tree=$2
  local debs=$CACHE/debs/$suite
  mkdir -p "$debs"
  local mirror=http://deb.debian.org/debian security=http://deb.debian.org/debian-security
  local sources=("deb $mirror $suite main contrib" "deb $mirror $suite-updates main contrib"
    "deb $security $suite-security main contrib")
  rm -rf "$tree"
  log "building the $suite guest tree (download, then zfs-dkms compiles for minutes)"
  nice -n 10 mmdebstrap --mode=root --variant=apt --components=main,contrib \
    --aptopt='Apt::Install-Recommends "false"' \
    --include=systemd-sysv,udev,kmod,initramfs-tools,linux-image-amd64,linux-headers-amd64,zfs-dkms,zfsutils-linux,e2fsprogs,procps,python3 \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
    --setup-hook="sync-in $debs /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $debs" \
    "$suite" "$tree" "${sources[@]}"
}

# Stage 2: configure the tree (agent, units, initramfs), then an ext4 image from it.
build_image() {
  local suite=$1 tree=$2 out=$3 kver zver
  kver=$(ls -1 "$tree/lib/modules" | sort -V | tail -n1)
  [[ -n $kver ]] || die "the $suite tree has no kernel"
  if ! chroot "$tree" modinfo -k "$kver" zfs >/dev/null 2>&1; then
    log "zfs module missing for $kver: dkms autoinstall"
    chroot "$tree" dkms autoinstall -k "$kver" >&2
    chroot "$tree" modinfo -k "$kver" zfs >/dev/null || die "no zfs module for $kver"
  fi
  zver=$(chroot "$tree" dpkg-query -W -f='${Version}' zfsutils-linux)
  echo "/dev/vda / ext4 rw,noatime 0 1" >"$tree/etc/fstab"
  echo zvm >"$tree/etc/hostname"
  install -m 0755 "$AGENT" "$tree/usr/local/sbin/zvm-agent"
  cat >"$tree/etc/udev/rules.d/90-zvm-agent.rules" <<'EOF'
SUBSYSTEM=="virtio-ports", ATTR{name}=="org.zvm.agent.*", TAG+="systemd", ENV{SYSTEMD_WANTS}+="zvm-agent@%k.service"
EOF
  cat >"$tree/etc/systemd/system/zvm-agent@.service" <<'EOF'
[Unit]
Description=z3 OpenZFS bed agent on %I
After=zvm-zfs.service
Wants=zvm-zfs.service
[Service]
ExecStart=/usr/bin/python3 /usr/local/sbin/zvm-agent /dev/%I
Restart=always
RestartSec=1
EOF
  cat >"$tree/etc/systemd/system/zvm-zfs.service" <<'EOF'
[Unit]
Description=load the zfs module (no udev-settle)
DefaultDependencies=no
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/modprobe zfs
[Install]
WantedBy=sysinit.target
EOF
  chroot "$tree" systemctl enable zvm-zfs.service >/dev/null 2>&1
  local unit
  for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer systemd-timesyncd.service systemd-udev-settle.service zfs-import-cache.service \
    zfs-import-scan.service zfs-mount.service zfs-share.service zfs-zed.service \
    zfs-scrub-monthly@.timer zfs-trim-monthly@.timer zfs-scrub-weekly@.timer \
    zfs-trim-weekly@.timer zfs-load-module.service getty@tty1.service serial-getty@ttyS0.service; do
    chroot "$tree" systemctl mask "$unit" >/dev/null 2>&1 || true
  done
  # Debugging: a root shell on the console (there is no /bin/login in this variant).
  cat >"$tree/etc/systemd/system/zvm-console.service" <<'EOF'
[Unit]
Description=root shell on ttyS0 (debugging)
[Service]
ExecStart=/bin/bash -l
# An interactive bash ignores SIGTERM: without these, poweroff waits 90 s for it.
KillSignal=SIGHUP
TimeoutStopSec=2
StandardInput=tty
StandardOutput=tty
TTYPath=/dev/ttyS0
Restart=always
[Install]
WantedBy=multi-user.target
EOF
  chroot "$tree" systemctl enable zvm-console.service >/dev/null 2>&1
  cat >"$tree/etc/initramfs-tools/conf.d/zvm.conf" <<'EOF'
MODULES=list
COMPRESS=zstd
EOF
  printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >"$tree/etc/initramfs-tools/modules"
  chroot "$tree" update-initramfs -u -k "$kver" >/dev/null 2>&1 ||
    chroot "$tree" update-initramfs -c -k "$kver" >&2
  rm -rf "$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/var/cache/apt/archives/*.deb
  mkdir -p "$out"
  cp "$tree/boot/vmlinuz-$kver" "$out/vmlinuz"
  cp "$tree/boot/initrd.img-$kver" "$out/initrd.img"
  # The uncompressed ELF kernel boots faster under TCG (and PVM cannot run the decompressor).
  extract_vmlinux "$out/vmlinuz" "$out/vmlinux" || rm -f "$out/vmlinux"
  mkfs.ext4 -q -F -L zvmroot -d "$tree" "$out/image.raw" 3G
  printf 'suite=%s\nkernel=%s\nzfs=%s\n' "$suite" "$kver" "$zver" >"$out/versions"
  config_sum >"$out/config.sha256"
  touch "$out/ready"
}

# The ELF kernel inside a bzImage, found by trying each compression's magic (as the kernel's own
# scripts/extract-vmlinux does).
extract_vmlinux() {
  local in=$1 out=$2 pos magic tool
  for magic in '\x28\xb5\x2f\xfd:zstd -dqc' '\x1f\x8b\x08:gzip -dc' '\xfd\x37\x7a\x58\x5a\x00:xz -dc'; do
    tool=${magic#*:}
    for pos in $(LC_ALL=C grep -aboP "${magic%%:*}" "$in" 2>/dev/null | cut -d: -f1); do
      tail -c+$((pos + 1)) "$in" | $tool >"$out" 2>/dev/null || true
      if [[ $(head -c4 "$out" 2>/dev/null | od -An -c | tr -d ' ') == '177ELF' ]]; then
        return 0
      fi
    done
  done
  return 1
}

# Whether a process has FILE open.
in_use() {
  local fd
  for fd in /proc/[0-9]*/fd/*; do
    [[ $(readlink "$fd" 2>/dev/null) == "$1" ]] && return 0
  done
  return 1
}

build() {
  local version=$1 suite dir tree
  suite=$(suite_for "$version")
  dir=$(cached_image "$suite")
  if [[ -n $dir ]]; then
    echo "$dir"
    return 0
  fi
  host_packages
  mkdir -p "$CACHE/images"
  exec 9>"$CACHE/build.lock"
  flock 9
  dir=$(cached_image "$suite")
  if [[ -n $dir ]]; then
    echo "$dir"
    return 0
  fi
  # A tree kept from an earlier build (same suite) only needs stage 2 (a new agent, new units).
  tree=$(ls -1dt "$CACHE"/trees/"$suite"-*/tree.ok 2>/dev/null | head -n1 || true)
  [[ -n $tree ]] && tree=$(dirname "$tree")/tree
  local t0=$SECONDS
  if [[ -z $tree ]]; then
    local tdir
    tdir=$CACHE/trees/$suite-$(date -u +%Y%m%dT%H%M%S)
    tree=$tdir/tree
    mkdir -p "$tdir"
    if ! build_tree "$suite" "$tree" >"$tdir/build.log" 2>&1; then
      rm -rf "$tree" # a partial tree is never used; its log stays
      die "building the $suite guest failed: $(grep -v '^\s*$' "$tdir/build.log" | tail -n1) (log: $tdir/build.log)"
    fi
    touch "$tdir/tree.ok"
    log "the $suite tree took $((SECONDS - t0)) s"
  fi
  # Stage 2 writes a new image directory: a guest may be running from an older one.
  local out=$CACHE/images/$suite-building-$$
  rm -rf "$out"
  mkdir -p "$out"
  build_image "$suite" "$tree" "$out" >"$out/build.log" 2>&1 ||
    die "configuring the $suite guest failed: $(tail -n1 "$out/build.log") (log: $out/build.log)"
  local kver zver key
  kver=$(sed -n 's/^kernel=//p' "$out/versions")
  zver=$(sed -n 's/^zfs=//p' "$out/versions")
  key=$suite-linux-$kver-zfs-$zver-c$(cut -c1-8 "$out/config.sha256")
  if [[ -e $CACHE/images/$key ]]; then
    rm -rf "$out"
  else
    mv "$out" "$CACHE/images/$key"
  fi
  log "built $key in $((SECONDS - t0)) s"
  # Older images of this suite go, unless a guest still runs from one (QEMU holds it open).
  local old
  for old in "$CACHE"/images/"$suite"-*; do
    [[ $old == "$CACHE/images/$key" || ! -f $old/ready ]] && continue
    in_use "$old/image.raw" || rm -rf "$old"
  done
  echo "$CACHE/images/$key"
}

pid_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# The console's last lines, after its first kernel panic line when there is one.
console_tail() {
  local lines panic
  panic=$(grep -a -m1 'Kernel panic' "$RUN/console.log" 2>/dev/null | tr -d '\r' || true)
  lines=$(grep -av '^\s*$' "$RUN/console.log" 2>/dev/null | tr -d '\r' | tail -n "${1:-3}" |
    paste -sd'|' | sed 's/|/ | /g')
  echo "${panic:+$panic | … | }${lines:-(the console is empty)}"
}

deno_bin() {
  local d
  d=${ZVM_DENO:-$(command -v deno || true)}
  [[ -n $d ]] || die "deno is not on PATH"
  echo "$d"
}

# Runs argv in the guest through the broker; exits with the command's status.
guest() {
  # z3 runs zfs with PATH and LC_ALL only: Deno needs a HOME for its cache.
  export HOME=${HOME:-/root}
  exec "$(deno_bin)" run --quiet --no-prompt --no-config --allow-all "$HERE/openzfs_vm_client.ts" \
    "$RUN" "$@"
}

# One command in the guest from this script (not exec'd), with a deadline.
guest_call() {
  local seconds=$1
  shift
  HOME=${HOME:-/root} timeout -k 5 "$seconds" "$(deno_bin)" run --quiet --no-prompt --no-config \
    --allow-all "$HERE/openzfs_vm_client.ts" "$RUN" "$@"
}

running_version() {
  [[ -f $RUN/image ]] && sed -n 's/^zfs=//p' "$(cat "$RUN/image")/versions"
}

qmp_quit() {
  [[ -S $RUN/qmp.sock ]] || return 1
  HOME=${HOME:-/root} timeout 10 "$(deno_bin)" eval --quiet '
    const c = await Deno.connect({ transport: "unix", path: Deno.args[0] });
    const e = new TextEncoder();
    await c.write(e.encode("{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n"));
    const b = new Uint8Array(4096);
    while ((await c.read(b)) !== null) { /* until QEMU closes */ }
  ' "$RUN/qmp.sock" >/dev/null 2>&1 || true
}

stop() {
  local i
  if pid_alive "$RUN/guest.pid"; then
    # A guest that does not answer (still booting, wedged) goes straight to QMP quit.
    if guest_call 30 zpool export -a </dev/null >/dev/null 2>&1; then
      # systemctl needs D-Bus, which this guest has not: SIGRTMIN+4 asks systemd to power off.
      guest_call 20 python3 -c 'import os, signal; os.kill(1, signal.SIGRTMIN + 4)' </dev/null \
        >/dev/null 2>&1 || true
      for ((i = 0; i < 60; i++)); do
        pid_alive "$RUN/guest.pid" || break
        sleep 0.5
      done
    fi
    if pid_alive "$RUN/guest.pid"; then
      log "the guest did not power off: QMP quit"
      qmp_quit
      for ((i = 0; i < 20; i++)); do
        pid_alive "$RUN/guest.pid" || break
        sleep 0.5
      done
    fi
    if pid_alive "$RUN/guest.pid"; then
      log "QEMU still runs: killing pid $(cat "$RUN/guest.pid")"
      kill -9 "$(cat "$RUN/guest.pid")" 2>/dev/null || true
    fi
  fi
  if pid_alive "$RUN/broker.pid"; then kill "$(cat "$RUN/broker.pid")" 2>/dev/null || true; fi
  rm -f "$RUN"/qemu.pid "$RUN"/guest.pid "$RUN"/broker.pid "$RUN"/broker.sock "$RUN"/agent.*.sock "$RUN"/qmp.sock \
    "$RUN"/overlay.qcow2 "$RUN"/image
}

# Boots the guest once: QEMU, the broker, and the first command queued (its PID in FIRST).
# Runs in start's shell (no subshell: the children must stay start's). On failure sets BOOT_WHY
# and returns 1 when QEMU exited during boot (worth one more try: a stock
# kernel under TCG has been seen to panic early, "Fatal exception in interrupt"), 2 otherwise.
boot_once() {
  local dir=$1 kernel=$2 t0=$SECONDS
  local -a accel=("${@:3}")
  : >"$RUN/console.log"
  local err
  if ! err=$(qemu-system-x86_64 "${accel[@]}" -m "${ZVM_MEM:-2048}" -smp "${ZVM_CPUS:-2}" \
    -nodefaults -no-user-config -display none -nic none -no-reboot \
    -kernel "$kernel" -initrd "$dir/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet panic=-1 ${ZVM_APPEND:-}" \
    -drive "file=$RUN/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe" \
    -chardev "file,id=con,path=$RUN/console.log" -serial chardev:con \
    -qmp "unix:$RUN/qmp.sock,server=on,wait=off" \
    -device virtio-serial-pci "${ports[@]}" \
    -pidfile "$RUN/qemu.pid" -daemonize 2>&1 8>&-); then
    BOOT_WHY="QEMU did not start: $(tail -n1 <<<"$err")"
    return 2
  fi
  # QEMU removes its pidfile when it exits; the bed's copy still names a guest that died.
  cp "$RUN/qemu.pid" "$RUN/guest.pid"
  HOME=${HOME:-/root} setsid "$(deno_bin)" run --quiet --no-prompt --no-config --allow-all \
    "$HERE/openzfs_vm_broker.ts" "$RUN" "$PORTS" "${ZVM_IDLE_STOP:-0}" </dev/null \
    >"$RUN/broker.log" 2>&1 8>&- &
  echo $! >"$RUN/broker.pid"
  for ((i = 0; i < 100; i++)); do
    [[ -S $RUN/broker.sock ]] && break
    pid_alive "$RUN/broker.pid" || break
    sleep 0.1
  done
  if [[ ! -S $RUN/broker.sock ]]; then
    BOOT_WHY="the broker did not start: $(tail -n1 "$RUN/broker.log" 2>/dev/null)"
    return 2
  fi
  # The first command waits in the broker's queue until an agent says hello.
  local out=$RUN/first.out
  guest_call "$BOOT_TIMEOUT" zfs version </dev/null >"$out" 2>&1 &
  local first=$!
  while kill -0 "$first" 2>/dev/null && pid_alive "$RUN/guest.pid"; do sleep 1; done
  if ! pid_alive "$RUN/guest.pid"; then
    kill "$first" 2>/dev/null || true
    wait "$first" 2>/dev/null || true
    BOOT_WHY="the guest did not boot: QEMU exited after $((SECONDS - t0)) s; console: $(console_tail 4)"
    return 1
  fi
  FIRST=$first
}

start() {
  local version=${ZVM_VERSION:-2.3} dir kernel accel t0=$SECONDS
  [[ ${1:-} == --version ]] && version=${2:?--version needs 2.3 or 2.1}
  suite_for "$version" >/dev/null
  # One start at a time per run dir (test files may run in parallel). QEMU and the broker must
  # not inherit the lock's descriptor, or it would be held as long as the guest runs.
  mkdir -p "$(dirname "$RUN")"
  exec 8>"$RUN.lock"
  flock 8
  if pid_alive "$RUN/guest.pid"; then
    local have
    have=$(running_version)
    [[ $have == "$version".* ]] ||
      die "a guest with zfs $have already runs from $RUN: run openzfs_vm.sh stop first"
    pid_alive "$RUN/broker.pid" || die "$(openzfs_why)"
    local out
    out=$(guest_call 60 zfs version </dev/null 2>&1) || die "the running guest does not answer: $out"
    echo "OpenZFS guest: $(head -n1 <<<"$out") (already running, $ACCEL)"
    return 0
  fi
  dir=$(build "$version")
  stop # leftovers of a guest that died
  mkdir -p "$RUN"
  qemu-img create -q -f qcow2 -b "$dir/image.raw" -F raw "$RUN/overlay.qcow2" ||
    die "cannot create the overlay in $RUN"
  echo "$dir" >"$RUN/image"
  case $ACCEL in
    tcg)
      # shellcheck disable=SC2054 # the commas belong to QEMU's option
      accel=(-accel tcg,thread=multi,tb-size=256 -cpu max)
      ;;
    kvm)
      [[ -w /dev/kvm ]] || die "ZVM_ACCEL=kvm but /dev/kvm is missing or not writable"
      accel=(-accel kvm -cpu host)
      ;;
    *) die "ZVM_ACCEL must be tcg or kvm, not '$ACCEL'" ;;
  esac
  kernel=$dir/vmlinux
  [[ -f $kernel ]] || kernel=$dir/vmlinuz
  local ports=() i
  for ((i = 0; i < PORTS; i++)); do
    ports+=(-chardev "socket,id=ag$i,path=$RUN/agent.$i.sock,server=on,wait=off"
      -device "virtserialport,chardev=ag$i,name=org.zvm.agent.$i")
  done
  local tries=${ZVM_BOOT_TRIES:-2} try why rc=0
  for ((try = 1; ; try++)); do
    rc=0
    boot_once "$dir" "$kernel" "${accel[@]}" || rc=$?
    ((rc == 0)) && break
    why=$BOOT_WHY
    stop
    ((rc == 1 && try < tries)) || die "$why"
    cp "$RUN/console.log" "$RUN/console.try$try.log"
    log "boot $try of $tries failed ($why); trying once more"
    mkdir -p "$RUN"
    qemu-img create -q -f qcow2 -b "$dir/image.raw" -F raw "$RUN/overlay.qcow2" ||
      die "cannot create the overlay in $RUN"
    echo "$dir" >"$RUN/image"
  done
  local first=$FIRST out=$RUN/first.out
  wait "$first" || rc=$?
  if ((rc == 124)); then
    why="the guest did not answer \`zfs version\` within $BOOT_TIMEOUT s; console: $(console_tail 4)"
  elif ((rc != 0)); then
    why="\`zfs version\` failed in the guest (exit $rc): $(tail -n1 "$out"); console: $(console_tail 4)"
  fi
  if ((rc != 0)); then
    stop
    die "$why"
  fi
  echo "OpenZFS guest: $(head -n1 "$out") ($(basename "$dir"), $ACCEL, up in $((SECONDS - t0)) s)"
}

openzfs_why() {
  HOME=${HOME:-/root} "$(deno_bin)" eval --quiet \
    "import { openzfsVmWhy } from '$HERE/openzfs_vm_why.ts'; console.log(openzfsVmWhy(Deno.args[0]))" \
    "$RUN"
}

cmd=${1:-}
shift || true
case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  zfs | zpool) guest "$cmd" "$@" ;;
  run)
    (($# > 0)) || die "usage: openzfs_vm.sh run ARGV…"
    guest "$@"
    ;;
  status)
    if pid_alive "$RUN/guest.pid"; then
      echo "running: zfs $(running_version) from $(cat "$RUN/image"), QEMU pid $(cat "$RUN/guest.pid")"
    else
      echo "not running"
      exit 1
    fi
    ;;
  build)
    version=${ZVM_VERSION:-2.3}
    [[ ${1:-} == --version ]] && version=${2:?--version needs 2.3 or 2.1}
    build "$version"
    ;;
  *) die "usage: openzfs_vm.sh start [--version 2.3|2.1] | zfs ARGS… | zpool ARGS… | run ARGV… | stop | status | build [--version 2.3|2.1]" ;;
esac
