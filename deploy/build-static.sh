#!/bin/sh
# Builds clusterdns as one static executable and lays out what the image holds under OUT:
#   OUT/clusterdns                          the binary, with the file capability cap_net_bind_service
#   OUT/etc/ssl/certs/ca-certificates.crt   trust roots for `forward . tls://…` (when the builder has them)
# Used by deploy/Dockerfile's build stage and by deploy/empty-root-test.sh, so that both build
# the binary the same way.
#   deploy/build-static.sh [OUT] [PROFILE]     (defaults: out, release)
set -eu
cd "$(dirname "$0")/.."
out=${1:-out}
profile=${2:-release}
target="$(uname -m)-unknown-linux-gnu"
# glibc, linked statically: the binary needs no loader and no libraries at run time. With
# --target, build scripts and proc macros stay dynamic, as they must. The one libc call that
# would want NSS modules (getaddrinfo) is only made for host names, and clusterdns reaches the
# API server by the IP in KUBERNETES_SERVICE_HOST and its upstreams by IP.
#
# getrandom 0.3 looks up libc's getrandom() with dlsym, which finds nothing in a static binary,
# and then falls back to reading /dev/urandom: a file an empty root does not have (the first
# shuffled answer panicked there). The linux_getrandom backend calls getrandom() directly.
#
# -z pack-relative-relocs: the binary relocates itself at start (it is position-independent),
# and its 545 KB table of relative relocations, read whole then, stayed resident: packed (RELR,
# glibc 2.36, which is what the binary carries), the table is 7 KB, and a node-local cache with
# 9,984 answers holds 0.3 to 0.5 MiB less (bench/nodelocal.py).
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs --cfg getrandom_backend=\"linux_getrandom\"" \
    cargo build --locked --profile "$profile" --target "$target" --bin clusterdns
case $profile in dev) dir=debug ;; *) dir=$profile ;; esac
mkdir -p "$out/etc/ssl/certs"
cp "${CARGO_TARGET_DIR:-target}/$target/$dir/clusterdns" "$out/clusterdns"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/"
fi
# Port 53 as a user other than root: the kernel grants this one capability when the binary
# runs, if the container's bounding set holds it (the stock Deployment adds NET_BIND_SERVICE
# and drops the rest). This is how CoreDNS's own image does it.
setcap cap_net_bind_service=+ep "$out/clusterdns"
