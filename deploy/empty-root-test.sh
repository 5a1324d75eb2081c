#!/bin/sh
# Proves the static binary runs as the image runs it, without a container engine:
#   - from an empty root holding only the binary, a Corefile and a cluster file, mounted read-only;
#   - as user 65532 with no_new_privs, holding only NET_BIND_SERVICE, as the runtime starts the
#     stock Deployment's container (capabilities: add NET_BIND_SERVICE, drop ALL;
#     allowPrivilegeEscalation: false), and binding port 53 through the binary's file capability;
#   - in a network namespace of its own, answering dig over UDP and TCP, /health, /ready, /metrics.
# It also checks the binary needs no loader (static) and fails clearly without the capability.
#   deploy/empty-root-test.sh [PROFILE]     (default dev; the image uses release)
# Needs root (namespaces, chroot), setcap/capsh (libcap2-bin), dig, curl and ip.
set -eu
cd "$(dirname "$0")/.."
profile=${1:-dev}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

deploy/build-static.sh "$work/out" "$profile"
bin="$work/out/clusterdns"
if file "$bin" | grep -q 'dynamically linked'; then
    echo "FAIL: $bin is dynamically linked"; exit 1
fi
getcap "$bin" | grep -q cap_net_bind_service || { echo "FAIL: no file capability on $bin"; exit 1; }

root="$work/root"
mkdir -p "$root/etc/coredns"
cp -a "$bin" "$root/clusterdns"              # -a keeps the capability (an extended attribute)
cp deploy/local/cluster.yaml "$root/etc/coredns/cluster.yaml"
cat >"$root/etc/coredns/Corefile" <<'COREFILE'
.:53 {
    errors
    health {
       lameduck 1s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       objects /etc/coredns/cluster.yaml
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    cache 30
    reload
    loadbalance
}
COREFILE
echo "the root holds:"; (cd "$root" && find . -type f | sort | sed 's/^/  /')

# The run: a network and mount namespace of its own; the root bind-mounted read-only; then
# capsh, under no_new_privs, chroots, becomes 65532:65532 keeping only NET_BIND_SERVICE
# (bounding, permitted and effective, as runc leaves a container's process) and executes
# /clusterdns with the stock args.
run() { # $1: binary name inside the root; the rest: the checks to run while it serves
    name=$1; shift
    unshare --net --mount --fork sh -eu -c '
        root=$1; name=$2; log=$3; shift 3
        ip link set lo up
        mount --bind "$root" "$root"
        mount -o remount,bind,ro "$root"
        setpriv --no-new-privs capsh --chroot="$root" \
            --drop=cap_chown,cap_dac_override,cap_dac_read_search,cap_fowner,cap_fsetid,cap_kill,cap_linux_immutable,cap_net_broadcast,cap_net_admin,cap_net_raw,cap_ipc_lock,cap_ipc_owner,cap_sys_module,cap_sys_rawio,cap_sys_ptrace,cap_sys_pacct,cap_sys_admin,cap_sys_boot,cap_sys_nice,cap_sys_resource,cap_sys_time,cap_sys_tty_config,cap_mknod,cap_lease,cap_audit_write,cap_audit_control,cap_setfcap,cap_mac_override,cap_mac_admin,cap_syslog,cap_wake_alarm,cap_block_suspend,cap_audit_read,cap_perfmon,cap_bpf,cap_checkpoint_restore,cap_sys_chroot \
            --keep=1 --gid=65532 --groups= --uid=65532 \
            --caps="cap_net_bind_service,cap_setpcap+ep" \
            --drop=cap_setuid,cap_setgid,cap_setpcap \
            --caps="cap_net_bind_service+ep" \
            --shell="/$name" -- -conf /etc/coredns/Corefile >"$log" 2>&1 &
        pid=$!
        status=0
        "$@" || status=$?
        kill -TERM $pid 2>/dev/null || true
        wait $pid 2>/dev/null || true
        exit $status
    ' run "$root" "$name" "$work/$name.log" "$@"
}

cat >"$work/checks.sh" <<'CHECKS'
#!/bin/sh
set -eu
i=0
until dig +short +time=1 +tries=1 @127.0.0.1 -p 53 kubernetes.default.svc.cluster.local 2>/dev/null | grep -q '^10\.96\.0\.1$'; do
    i=$((i + 1)); [ $i -lt 50 ] || { echo "FAIL: no answer on port 53"; exit 1; }
    sleep 0.2
done
echo "  udp:      $(dig +short @127.0.0.1 -p 53 kubernetes.default.svc.cluster.local)"
echo "  tcp:      $(dig +short +tcp @127.0.0.1 -p 53 kubernetes.default.svc.cluster.local)"
headless=$(dig +short @127.0.0.1 -p 53 postgres.db.svc.cluster.local | sort | tr '\n' ' ')
echo "  headless: $headless"
[ "$headless" = "10.244.1.30 10.244.2.31 " ] || { dig @127.0.0.1 -p 53 postgres.db.svc.cluster.local; exit 1; }
echo "  ptr:      $(dig +short @127.0.0.1 -p 53 -x 10.96.0.10)"
dig +short @127.0.0.1 -p 53 -x 10.96.0.10 | grep -qx 'kube-dns.kube-system.svc.cluster.local.'
echo "  /health:  $(curl -fsS http://127.0.0.1:8080/health)"
echo "  /ready:   $(curl -fsS http://127.0.0.1:8181/ready)"
curl -fsS http://127.0.0.1:9153/metrics | grep -q '^coredns_dns_requests_total{'
echo "  /metrics: coredns_dns_requests_total present"
pid=$(pgrep -f '^/clusterdns' | head -n1)
echo "  process:  uid $(awk '/^Uid:/ {print $2}' /proc/$pid/status), CapEff $(awk '/^CapEff:/ {print $2}' /proc/$pid/status), NoNewPrivs $(awk '/^NoNewPrivs:/ {print $2}' /proc/$pid/status), VmRSS $(awk '/^VmRSS:/ {print $2, $3}' /proc/$pid/status)"
[ "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)" = 65532 ]
[ "$(awk '/^CapEff:/ {print $2}' /proc/$pid/status)" = 0000000000000400 ]
CHECKS
chmod +x "$work/checks.sh"

echo "serving from the empty root as 65532 with NET_BIND_SERVICE:"
if ! run clusterdns "$work/checks.sh"; then
    echo "FAIL; the server printed:"; cat "$work/clusterdns.log"; exit 1
fi

# The same without the file capability: the kernel does not grant it, and the server says why.
cat >"$work/nocap.sh" <<'NOCAP'
#!/bin/sh
sleep 2
exit 0
NOCAP
chmod +x "$work/nocap.sh"
cp "$bin" "$root/plain"                      # cp without -a: no extended attributes
run plain "$work/nocap.sh"
rm -f "$root/plain"
if ! grep -qi 'permission denied' "$work/plain.log"; then
    echo "FAIL: without the file capability the server should fail to bind port 53; it printed:"
    cat "$work/plain.log"; exit 1
fi
echo "without the file capability it stops with: $(grep -i 'permission denied' "$work/plain.log" | head -n1)"

# The image's final stage, where Debian's buildah is installed (.ci/run does not install it):
# --build-context puts what build-static.sh laid out in place of the `rust` build stage, which
# would need a pull.
if command -v buildah >/dev/null 2>&1; then
    ctx="$work/ctx"
    mkdir -p "$ctx"
    cp -a "$work/out" "$ctx/out"
    tag=localhost/clusterdns:empty-root-test
    buildah --storage-driver vfs bud --isolation chroot --pull=never --quiet \
        --build-context build="$ctx" -f deploy/Dockerfile -t "$tag" . >/dev/null
    ctr=$(buildah --storage-driver vfs from "$tag")
    mnt=$(buildah --storage-driver vfs mount "$ctr")
    files=$(cd "$mnt" && find . -type f | sort | tr '\n' ' ')
    caps=$(getcap "$mnt/clusterdns")
    config=$(buildah --storage-driver vfs inspect --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}' "$tag")
    buildah --storage-driver vfs umount "$ctr" >/dev/null
    buildah --storage-driver vfs rm "$ctr" >/dev/null
    buildah --storage-driver vfs rmi "$tag" >/dev/null
    echo "image: files $files; $config"
    [ "$files" = "./clusterdns ./etc/ssl/certs/ca-certificates.crt " ] || { echo "FAIL: unexpected files in the image"; exit 1; }
    echo "$caps" | grep -q cap_net_bind_service || { echo "FAIL: the image's binary lost its file capability"; exit 1; }
    [ "$config" = "65532:65532 [/clusterdns] [-conf /etc/coredns/Corefile]" ] || { echo "FAIL: image config $config"; exit 1; }
    echo "image: built with buildah; the binary keeps cap_net_bind_service"
else
    echo "buildah is not installed: the image build was not tried (apt-get install buildah to try it)"
fi
echo "empty-root test passed"
