#!/bin/bash
# The Debian package, tried as a newcomer on a clean Debian 12 would:
#   1. `cpack -G DEB` in BUILD_DIR makes mqkit_VERSION_ARCH.deb; its Depends
#      name the shared libraries the CLI needs (dpkg-shlibdeps).
#   2. In a clean Debian 12 root (debootstrap minbase, or MQKIT_DEBIAN_ROOT),
#      `apt-get install --no-install-recommends ./mqkit_*.deb`; then:
#      `mqkit --version`; the mqkit user exists; the unit, its example and
#      mqkit.pc are in place; `systemd-analyze verify` passes on the unit;
#      the unit's ExecStart (read from the unit, %i = example) runs as the
#      mqkit user (runuser) in /var/lib/mqkit/example; 200 messages are sent
#      and consumed through it; SIGTERM ends it with exit 0 and
#      `mqkit spool check` is clean;
#   3. with the package's Recommends (what it declares building against it
#      needs) and g++/cmake, tests/package builds
#      against it with find_package(mqkit) and with
#      `pkg-config --cflags --libs mqkit`, and both programs run.
# Everything in the root runs in a private mount namespace on a throwaway
# overlay; the root itself is cached (MQKIT_DEBIAN_CACHE, default
# /var/tmp/mqkit-bookworm). Skips (exit 77, with the reason) only where the
# machine cannot: not root, no debootstrap/unshare/overlay, no mirror.
#
# usage: tests/package/deb_test.sh BUILD_DIR
set -euo pipefail
build=$(readlink -f "${1:?usage: $0 BUILD_DIR}")
here=$(cd "$(dirname "$0")" && pwd)
cache=${MQKIT_DEBIAN_CACHE:-/var/tmp/mqkit-bookworm}
skip() { echo "deb_test: SKIPPED: $*"; exit 77; }
say() { echo "deb_test: $*"; }

# ---- 1. the package (once: the script runs again in a mount namespace)
if [ -z "${MQKIT_IN_NS:-}" ]; then
for tool in file dpkg-shlibdeps; do  # cpack's Depends come from dpkg-shlibdeps, which needs file
  command -v $tool > /dev/null ||
    { echo "deb_test: cpack -G DEB needs '$tool': apt-get install -y file dpkg-dev"; exit 1; }
done
out=$(mktemp -d /tmp/mqkit-deb-XXXXXX)
(cd "$build" && cpack -G DEB -B "$out" > "$out/cpack.log") || { cat "$out/cpack.log"; exit 1; }
deb=$(ls "$out"/mqkit_*.deb)
say "built $(basename "$deb")"
depends=$(dpkg-deb -f "$deb" Depends)
say "Depends: $depends"
for lib in libzmq5 libyaml-cpp libisal2 libstdc++6 libc6 passwd; do
  case $depends in *"$lib"*) ;; *) say "Depends lacks $lib"; exit 1 ;; esac
done
dpkg-deb -c "$deb" > "$out/contents"
for f in ./usr/bin/mqkit ./usr/lib/systemd/system/mqkit@.service ./etc/mqkit/example.yaml \
         ./usr/lib/pkgconfig/mqkit.pc ./usr/lib/cmake/mqkit/mqkitConfig.cmake \
         ./usr/include/mqkit/mqkit.hpp ./usr/lib/libmqkit.a ./usr/lib/libmqkit_devices.a; do
  grep -q " $f\$" "$out/contents" || { say "the package lacks $f"; exit 1; }
done
dpkg-deb -I "$deb" conffiles > "$out/conffiles"
grep -qx /etc/mqkit/example.yaml "$out/conffiles" || { say "example.yaml is no conffile"; exit 1; }
fi

# ---- 2. a clean Debian 12 root
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, mount, chroot)"
command -v unshare > /dev/null || skip "needs unshare (util-linux)"
if [ -z "${MQKIT_IN_NS:-}" ]; then  # everything below in a private mount namespace
  unshare --mount --propagation private true 2> /dev/null || skip "cannot unshare a mount namespace"
  export MQKIT_IN_NS=1 MQKIT_DEB_OUT=$out
  exec unshare --mount --propagation private -- /bin/bash "$0" "$@"
fi
out=$MQKIT_DEB_OUT
deb=$(ls "$out"/mqkit_*.deb)
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2> /dev/null |
  awk '$1 == "deb" && / bookworm / { print ($2 ~ /^\[/) ? $3 : $2; exit }' || true)
[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list.d/*.sources 2> /dev/null |
  awk '/^URIs:/ { print $2; exit }' || true)
[ -n "$mirror" ] || skip "no Debian bookworm mirror in /etc/apt"
lower=${MQKIT_DEBIAN_ROOT:-$cache/rootfs}
if ! [ -x "$lower/usr/bin/apt-get" ]; then
  command -v debootstrap > /dev/null || skip "needs debootstrap (apt-get install debootstrap)"
  say "debootstrap --variant=minbase bookworm into $cache (once)"
  rm -rf "$cache" && mkdir -p "$cache"
  debootstrap --variant=minbase bookworm "$cache/rootfs.new" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    skip "debootstrap failed (no mirror reachable?): $(tail -1 "$cache/debootstrap.log")"
  mv "$cache/rootfs.new" "$cache/rootfs"
  lower=$cache/rootfs
fi
root=$out/root
mkdir -p "$out/upper" "$out/work" "$root"
if ! mount -t overlay overlay -o "lowerdir=$lower,upperdir=$out/upper,workdir=$out/work" "$root" \
  2> /dev/null; then
  say "no overlay mount here (a nested chroot?): a copy of the clean root instead"
  cp -a "$lower/." "$root/" || skip "cannot copy the clean root $lower"
fi
for d in proc sys dev dev/pts; do mount --bind "/$d" "$root/$d"; done
mount -t tmpfs tmpfs "$root/dev/shm"
mount -t tmpfs tmpfs "$root/tmp"
pid_file=$root/var/tmp/mqkit-run.pid
cleanup() {
  [ -f "$pid_file" ] && kill -KILL "$(cat "$pid_file")" 2> /dev/null || true
  for d in tmp dev/shm dev/pts dev sys proc; do umount -l "$root/$d" 2> /dev/null || true; done
  umount -l "$root" 2> /dev/null || true
  rm -rf --one-file-system "$out"
}
trap cleanup EXIT
# apt as on the host (its sources and keyrings), a policy that starts no service
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
rm -f "$root"/etc/apt/sources.list.d/* "$root/etc/apt/sources.list"
echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
for f in /etc/apt/apt.conf.d/*; do
  grep -qiE 'proxy|Check-Valid-Until' "$f" 2> /dev/null && cp "$f" "$root/etc/apt/apt.conf.d/"
done
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
cp "$deb" "$root/tmp/"
mkdir -p "$root/tmp/package" && cp "$here/CMakeLists.txt" "$here/main.cpp" "$root/tmp/package/"
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 /bin/bash -c "$1"
}

say "apt-get install --no-install-recommends ./$(basename "$deb") in a clean Debian 12"
in_root "apt-get update -q > /tmp/apt.log && apt-get install -y -q --no-install-recommends \
  /tmp/$(basename "$deb") >> /tmp/apt.log" || { tail -20 "$root/tmp/apt.log"; exit 1; }

in_root '
set -eu
mqkit --version
id mqkit
test "$(stat -c %U /var/lib/mqkit)" = mqkit
test -f /usr/lib/systemd/system/mqkit@.service && test -f /etc/mqkit/example.yaml
'

say "systemd-analyze verify mqkit@example.service"
in_root 'apt-get install -y -q --no-install-recommends systemd >> /tmp/apt.log &&
  cp /etc/mqkit/example.yaml /etc/mqkit/example-verify.yaml &&
  systemd-analyze verify /usr/lib/systemd/system/mqkit@.service mqkit@example-verify.service' ||
  { say "systemd-analyze verify failed"; exit 1; }

say "the unit's ExecStart as the mqkit user: send, consume, SIGTERM, spool check"
in_root "
set -eu
exec_start=\$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/mqkit@.service | sed 's/%i/example/g')
echo \"ExecStart: \$exec_start\"
install -d -o mqkit -g mqkit -m 0750 /var/lib/mqkit/example   # what StateDirectory= does
cd /var/lib/mqkit/example
runuser -u mqkit -- \$exec_start > /tmp/run.out 2> /tmp/run.err &
echo \$! > /var/tmp/mqkit-run.pid
for i in \$(seq 100); do grep -q 'up' /tmp/run.out 2> /dev/null && break; sleep 0.1; done
cat /tmp/run.out
seq 200 | mqkit send --proxy tcp://127.0.0.1:7555 --topic job.resize
mqkit consume --proxy tcp://127.0.0.1:7556 --group work --count 200 > /tmp/got.txt
test \"\$(wc -l < /tmp/got.txt)\" = 200
# SIGTERM to mqkit itself, as systemd sends it to the main process (runuser
# would answer a SIGTERM of its own with SIGKILL after a grace period).
mqkit_pid=\$(cat /proc/\$(cat /var/tmp/mqkit-run.pid)/task/*/children)
kill -TERM \$mqkit_pid
status=0; wait \$(cat /var/tmp/mqkit-run.pid) || status=\$?
rm /var/tmp/mqkit-run.pid
echo \"mqkit run exited with \$status after SIGTERM\"
cat /tmp/run.err
test \$status = 0
test \"\$(stat -c %U /var/lib/mqkit/example/spool)\" = mqkit
mqkit spool check /var/lib/mqkit/example/spool
" || { say "the service run failed"; cat "$root/tmp/run.err" 2> /dev/null || true; exit 1; }

say "building tests/package against the installed package (find_package and pkg-config)"
in_root "apt-get install -y -q --no-install-recommends g++ cmake make \
    \$(dpkg-query -W -f='\${Recommends}' mqkit | tr -d ,) >> /tmp/apt.log 2>&1 &&
  cd /tmp/package && cmake -S . -B build > /tmp/cmake.log && cmake --build build > /tmp/build.log &&
  ./build/consumer &&
  g++ -O1 -o consumer-pc main.cpp \$(pkg-config --cflags --libs mqkit) && ./consumer-pc" ||
  { say "building against the package failed"; tail -20 "$root"/tmp/{apt,cmake,build}.log 2> /dev/null; exit 1; }
say "PASS"
