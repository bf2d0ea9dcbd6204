#!/bin/sh
# dockerd-ref.sh start [--with-network] [-- DOCKERD-ARGS...] | stop | purge | status | env | logs
#
# Runs Debian's dockerd (package docker.io) as a reference engine next to berth, with
# every path of its own, so it never meets a system docker or containerd:
#   socket      unix:///run/berth-ref/docker.sock
#   data root   /var/lib/berth-ref/docker         exec root  /run/berth-ref/exec
#   pidfile     /run/berth-ref/docker.pid          log        /var/log/berth-ref-dockerd.log
#   containerd  a private one started by this script: root /var/lib/berth-ref/containerd,
#               state /run/berth-ref/containerd, socket /run/berth-ref/containerd/containerd.sock
#   cgroups     under "berth-ref" (--cgroup-parent)
# By default it has no bridge and does not touch iptables or ip_forward
# (--bridge=none --iptables=false --ip6tables=false --ip-forward=false): run containers with
# --network none or --network host.  `start --with-network` lets it create docker0 and its
# iptables rules for network tests (then it also enables ip_forward, as dockerd does).
#
#   start    start containerd + dockerd, wait for /_ping
#   stop     stop dockerd, its containers, shims and containerd; unmount what they left
#   purge    stop, then delete /var/lib/berth-ref (images, containers, volumes)
#   status   print state; exit 0 when running, 3 when stopped
#   env      print `export DOCKER_HOST=...`  (eval "$(scripts/dockerd-ref.sh env)")
#   logs     tail the log
#
# It never uses /var/run/docker.sock, /var/lib/docker, /run/containerd/containerd.sock,
# /etc/docker/daemon.json or /etc/docker/key.json.
set -eu

RUN=${BERTH_REF_RUN:-/run/berth-ref}
LIB=${BERTH_REF_LIB:-/var/lib/berth-ref}
LOG=${BERTH_REF_LOG:-/var/log/berth-ref-dockerd.log}
SOCK=$RUN/docker.sock
HOST=unix://$SOCK
PIDFILE=$RUN/docker.pid
EXEC=$RUN/exec
DATA=$LIB/docker
CTRD_STATE=$RUN/containerd
CTRD_ROOT=$LIB/containerd
CTRD_SOCK=$CTRD_STATE/containerd.sock
CTRD_PIDFILE=$RUN/containerd.pid
CGROUP_PARENT=berth-ref

log() { echo "dockerd-ref: $*" >&2; }
die() { log "$*"; exit 1; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -f "$1" ] && cat "$1" 2>/dev/null || true; }

ping() {
    [ -S "$SOCK" ] || return 1
    [ "$(curl -s --max-time 2 --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null)" = OK ]
}

ensure_installed() {
    if command -v dockerd >/dev/null 2>&1 && command -v containerd >/dev/null 2>&1 \
        && command -v runc >/dev/null 2>&1; then
        return 0
    fi
    log "installing docker.io"
    # keep the package's init script from starting the system dockerd on /var/run/docker.sock
    created_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io >&2 || rc=$?
    [ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d
    [ $rc -eq 0 ] || die "apt-get install docker.io failed"
}

write_configs() {
    mkdir -p "$RUN" "$EXEC" "$CTRD_STATE" "$LIB" "$DATA" "$CTRD_ROOT"
    chmod 0711 "$RUN" "$LIB"
    cat >"$RUN/containerd.toml" <<EOF
version = 2
root = "$CTRD_ROOT"
state = "$CTRD_STATE"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$LIB/containerd-opt"
EOF
    # a daemon.json of our own, so /etc/docker/daemon.json is never read; the daemon's
    # identity key goes to our data root instead of /etc/docker/key.json
    printf '{"deprecated-key-path": "%s"}\n' "$LIB/key.json" >"$RUN/daemon.json"
}

start() {
    with_network=
    while [ $# -gt 0 ]; do
        case "$1" in
            --with-network) with_network=1; shift ;;
            --) shift; break ;;
            *) die "unknown start option $1 (dockerd options go after --)" ;;
        esac
    done
    if ping; then
        log "already running (pid $(pid_of "$PIDFILE")), $HOST"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "must run as root"
    ensure_installed
    # a previous run that died: clear its leftovers first
    if [ -e "$PIDFILE" ] || [ -e "$CTRD_PIDFILE" ] || [ -e "$SOCK" ]; then
        stop_all quiet
    fi
    write_configs
    # dockerd creates /run/docker/plugins and containerd 1.6 /run/containerd/s whatever their
    # roots are; remember which of them existed so that stop removes only what we created
    : >"$RUN/created-dirs"
    for d in /run/docker/plugins /run/docker /run/containerd/s /run/containerd; do
        [ -e "$d" ] || echo "$d" >>"$RUN/created-dirs"
    done
    mkdir -p "$(dirname "$LOG")"
    echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) dockerd-ref start" >>"$LOG"

    setsid containerd --config "$RUN/containerd.toml" >>"$LOG" 2>&1 </dev/null &
    echo $! >"$CTRD_PIDFILE"
    i=0
    until [ -S "$CTRD_SOCK" ]; do
        alive "$(pid_of "$CTRD_PIDFILE")" || { tail -n 20 "$LOG" >&2; stop_all quiet; die "containerd exited"; }
        i=$((i + 1))
        [ $i -lt 100 ] || { stop_all quiet; die "containerd did not create $CTRD_SOCK"; }
        sleep 0.1
    done

    if [ -n "$with_network" ]; then
        save_net_state
        netargs="--iptables=true --ip6tables=false"
    else
        netargs="--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false"
    fi
    # shellcheck disable=SC2086
    setsid dockerd \
        --config-file "$RUN/daemon.json" \
        --data-root "$DATA" \
        --exec-root "$EXEC" \
        --pidfile "$PIDFILE" \
        --host "$HOST" \
        --containerd "$CTRD_SOCK" \
        --cgroup-parent "$CGROUP_PARENT" \
        $netargs "$@" >>"$LOG" 2>&1 </dev/null &
    dpid=$!
    i=0
    until ping; do
        if ! alive "$dpid"; then
            tail -n 30 "$LOG" >&2
            stop_all quiet
            die "dockerd exited during start (log: $LOG)"
        fi
        i=$((i + 1))
        if [ $i -ge 300 ]; then
            tail -n 30 "$LOG" >&2
            stop_all quiet
            die "dockerd did not answer /_ping within 30s (log: $LOG)"
        fi
        sleep 0.1
    done
    ver=$(curl -s --unix-socket "$SOCK" http://localhost/version |
        sed -n 's/.*"Version":"\([^"]*\)".*"ApiVersion":"\([^"]*\)".*/\1 (API \2)/p' | head -n1)
    log "running: dockerd $ver pid $(pid_of "$PIDFILE"), containerd pid $(pid_of "$CTRD_PIDFILE")"
    echo "export DOCKER_HOST=$HOST"
}

# --with-network changes the host: docker0, iptables chains and rules, ip_forward (and, when
# dockerd turns ip_forward on itself, the filter FORWARD policy becomes DROP), and
# bridge-nf-call-iptables.  Remember what was there so that stop can put it back.
save_net_state() {
    {
        echo "IPFWD=$(cat /proc/sys/net/ipv4/ip_forward)"
        echo "BRNF=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo absent)"
        echo "BRNF6=$(cat /proc/sys/net/bridge/bridge-nf-call-ip6tables 2>/dev/null || echo absent)"
        echo "FWD_POLICY=$(iptables -S FORWARD 2>/dev/null | sed -n 's/^-P FORWARD //p')"
        if iptables -S 2>/dev/null | grep -q '^-N DOCKER' || iptables -t nat -S 2>/dev/null | grep -q '^-N DOCKER'; then
            echo "HAD_DOCKER_CHAINS=1"
        else
            echo "HAD_DOCKER_CHAINS=0"
        fi
        if ip link show docker0 >/dev/null 2>&1; then echo "HAD_DOCKER0=1"; else echo "HAD_DOCKER0=0"; fi
    } >"$RUN/net-state"
}

# bridges of the networks our dockerd manages (asked before it stops)
our_bridges() {
    ping || return 0
    curl -s --max-time 5 --unix-socket "$SOCK" http://localhost/networks | "${PYTHON:-python3}" -c '
import json, sys
for n in json.load(sys.stdin):
    if n.get("Driver") != "bridge":
        continue
    name = (n.get("Options") or {}).get("com.docker.network.bridge.name") or "br-" + n["Id"][:12]
    print(name)
' 2>/dev/null || true
}

restore_net_state() { # restore_net_state BRIDGES
    bridges=$1
    [ -f "$RUN/net-state" ] || return 0
    IPFWD=; BRNF=; BRNF6=; FWD_POLICY=; HAD_DOCKER_CHAINS=1; HAD_DOCKER0=1
    # shellcheck disable=SC1091
    . "$RUN/net-state"
    if [ "$HAD_DOCKER_CHAINS" = 0 ]; then
        for table in filter nat; do
            # rules that jump to DOCKER* chains or name one of our bridges, then the chains
            iptables -t "$table" -S 2>/dev/null | grep '^-A ' | while read -r rule; do
                hit=
                case "$rule" in *" -j DOCKER"*|"-A DOCKER"*) hit=1 ;; esac
                for br in $bridges; do
                    case "$rule" in *" $br "*|*" $br") hit=1 ;; esac
                done
                [ -n "$hit" ] || continue
                # shellcheck disable=SC2086
                eval "iptables -t $table -D ${rule#-A }" 2>/dev/null || true
            done
            for chain in $(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(DOCKER[A-Z0-9-]*\)$/\1/p'); do
                iptables -t "$table" -F "$chain" 2>/dev/null || true
            done
            for chain in $(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(DOCKER[A-Z0-9-]*\)$/\1/p'); do
                iptables -t "$table" -X "$chain" 2>/dev/null || true
            done
        done
    else
        log "DOCKER iptables chains existed before start; leaving iptables alone"
    fi
    [ -n "$FWD_POLICY" ] && iptables -P FORWARD "$FWD_POLICY" 2>/dev/null || true
    for br in $bridges; do
        [ "$br" = docker0 ] && [ "$HAD_DOCKER0" = 1 ] && continue
        ip link del "$br" 2>/dev/null || true
    done
    [ -n "$IPFWD" ] && echo "$IPFWD" >/proc/sys/net/ipv4/ip_forward
    case "$BRNF" in [01]) echo "$BRNF" >/proc/sys/net/bridge/bridge-nf-call-iptables ;; esac
    case "$BRNF6" in [01]) echo "$BRNF6" >/proc/sys/net/bridge/bridge-nf-call-ip6tables ;; esac
    rm -f "$RUN/net-state"
}

stop_pid() { # stop_pid PID NAME TIMEOUT_S
    pid=$1; name=$2; t=$3
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while alive "$pid" && [ $i -lt $((t * 10)) ]; do sleep 0.1; i=$((i + 1)); done
    if alive "$pid"; then
        log "$name ($pid) still running after ${t}s, killing"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
}

# processes started by our containerd: shims carry its socket on their command line
our_shims() {
    for d in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
        case "$cmd" in
            *containerd-shim*"$CTRD_SOCK"*) echo "${d#/proc/}" ;;
        esac
    done
}

unmount_under() { # everything mounted at or below $1, deepest first
    awk -v root="$1" '{ p = $5; gsub(/\\040/, " ", p) } p == root || index(p, root "/") == 1 { print p }' \
        /proc/self/mountinfo | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
    done
}

stop_all() {
    quiet=${1:-}
    dpid=$(pid_of "$PIDFILE")
    cpid=$(pid_of "$CTRD_PIDFILE")
    bridges=
    if [ -f "$RUN/net-state" ]; then
        bridges=$(our_bridges)
        . "$RUN/net-state"
        [ "$HAD_DOCKER0" = 1 ] || case " $bridges " in *" docker0 "*) ;; *) bridges="$bridges docker0" ;; esac
    fi
    if alive "$dpid"; then
        # dockerd stops its containers on SIGTERM (live-restore is off)
        stop_pid "$dpid" dockerd 40
    fi
    # containers that outlived dockerd: kill them through runc with dockerd's runtime root
    for root in "$EXEC"/runtime-*/*; do
        [ -d "$root" ] || continue
        for id in $(runc --root "$root" list -q 2>/dev/null); do
            runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
        done
    done
    if alive "$cpid"; then
        stop_pid "$cpid" containerd 10
    fi
    for pid in $(our_shims); do
        stop_pid "$pid" containerd-shim 5
    done
    unmount_under "$EXEC"
    unmount_under "$RUN"
    unmount_under "$LIB"
    # the cgroups under our parent; a relative --cgroup-parent lands below dockerd's own
    # cgroup in each hierarchy (v1 controllers and v2), so look for it everywhere
    find /sys/fs/cgroup -type d -name "$CGROUP_PARENT" -prune 2>/dev/null | while read -r cg; do
        find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
    restore_net_state "$bridges"
    # directories outside our roots that dockerd/containerd made: remove them when empty
    if [ -f "$RUN/created-dirs" ]; then
        while read -r d; do rmdir "$d" 2>/dev/null || true; done <"$RUN/created-dirs"
    fi
    rm -f "$SOCK" "$PIDFILE" "$CTRD_PIDFILE" "$RUN/created-dirs" "$RUN/containerd.toml" "$RUN/daemon.json"
    rm -rf --one-file-system "$EXEC" "$CTRD_STATE"
    rmdir "$RUN" 2>/dev/null || true
    [ -n "$quiet" ] || log "stopped"
}

status() {
    dpid=$(pid_of "$PIDFILE")
    cpid=$(pid_of "$CTRD_PIDFILE")
    if ping; then
        ver=$(curl -s --unix-socket "$SOCK" http://localhost/version |
            sed -n 's/.*"Version":"\([^"]*\)".*"ApiVersion":"\([^"]*\)".*/\1 (API \2)/p' | head -n1)
        echo "running: dockerd $ver pid $dpid, containerd pid $cpid, $HOST"
        return 0
    fi
    if alive "$dpid" || alive "$cpid"; then
        echo "not answering: dockerd pid ${dpid:-?} containerd pid ${cpid:-?} (see $LOG)"
        return 1
    fi
    echo "stopped"
    return 3
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    start) start "$@" ;;
    stop) stop_all ;;
    purge)
        stop_all quiet
        unmount_under "$LIB"
        rm -rf --one-file-system "$LIB"
        log "stopped and purged $LIB"
        ;;
    status) status ;;
    env) echo "export DOCKER_HOST=$HOST" ;;
    logs) tail -n "${1:-50}" "$LOG" ;;
    *) sed -n '2,25s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
