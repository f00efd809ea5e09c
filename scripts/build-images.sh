#!/usr/bin/env bash
# Builds Palisade's container images here, with buildah and without any
# registry, and writes each as an OCI archive that a node's containerd loads
# with `ctr -n k8s.io images import ARCHIVE`.
#
#   scripts/build-images.sh [all]         every image below
#   scripts/build-images.sh base          docker.io/library/debian:bookworm-slim (mmdebstrap, minbase)
#                                         docker.io/library/node:24-bookworm-slim (that + this repo's pinned Node 24 and npm)
#   scripts/build-images.sh palisade      docker.io/palisade/palisade:VERSION (and :dev) from ./Dockerfile
#   scripts/build-images.sh pause         registry.k8s.io/pause:3.10.2 (e2e/pause, static, FROM scratch)
#   scripts/build-images.sh testpod       docker.io/palisade/testpod:dev (e2e/podserver and e2e/prober, static, FROM scratch)
#   scripts/build-images.sh archive NAME  builds NAME if needed and prints its archive's path (NAME: palisade, pause, testpod)
#   scripts/build-images.sh buildah ARGS  runs buildah on this script's image storage (e.g. `images`, `run`)
#   scripts/build-images.sh clean         removes that storage and the archives (the next build is cold)
#
# The base images are made from Debian packages under the names the
# Dockerfile uses, so the Dockerfile is the one a user builds anywhere.
# Every image is keyed by a hash of its inputs (recorded as the image label
# io.palisade.inputs and in the archive's name): an unchanged tree rebuilds
# nothing and returns in well under a second. Storage is private to
# Palisade: ${PALISADE_CACHE:-~/.cache/palisade}/images/storage (overlay;
# PALISADE_BUILDAH_DRIVER=vfs where overlay does not work). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

cache=${PALISADE_CACHE:-$HOME/.cache/palisade}/images
mkdir -p "$cache/archives" "$cache/downloads"
B=(buildah --root "$cache/storage" --runroot "${PALISADE_BUILDAH_RUNROOT:-/run/palisade-buildah}"
  --storage-driver "${PALISADE_BUILDAH_DRIVER:-overlay}")

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] %s\n' "$*" >&2; exit 1; }

DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
NODE_IMAGE=docker.io/library/node:24-bookworm-slim
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2
TESTPOD_IMAGE=docker.io/palisade/testpod:dev
VERSION=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
PALISADE_IMAGE=docker.io/palisade/palisade:$VERSION
PALISADE_DEV=docker.io/palisade/palisade:dev
NPM_VERSION=11.19.0 # the npm that Node 24.21.0's own release bundles

# hash STRING... FILE-OR-DIR...: a short digest of the strings and of the
# names and contents of every file under the paths (node_modules excluded).
digest() {
  local strings=() paths=()
  for a in "$@"; do if [ -e "$a" ]; then paths+=("$a"); else strings+=("$a"); fi; done
  {
    printf '%s\n' "${strings[@]}"
    if [ ${#paths[@]} -gt 0 ]; then
      find "${paths[@]}" -type f -not -path '*/node_modules/*' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
    fi
  } | sha256sum | cut -c1-16
}

# The inputs hash recorded on an image, or nothing if it does not exist.
image_inputs() {
  "${B[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "io.palisade.inputs"}}' "$1" 2>/dev/null || true
}

# The ID of image NAME, or nothing.
image_id() { "${B[@]}" inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true; }

# Drops an image that a rebuild left without a name (never a layer cache entry).
drop_replaced() {
  local old=$1 name=$2
  [ -n "$old" ] && [ "$old" != "$(image_id "$name")" ] && "${B[@]}" rmi "$old" >/dev/null 2>&1 || true
}

# quietly LOG CMD...: runs CMD with its output in $cache/logs/LOG.log (also
# on stderr when that is a terminal or PALISADE_IMAGES_VERBOSE=1); on failure
# shows the log's end.
quietly() {
  local logfile=$cache/logs/$1.log; shift
  mkdir -p "$cache/logs"
  if [ -t 2 ] || [ "${PALISADE_IMAGES_VERBOSE:-0}" = 1 ]; then
    "$@" 2>&1 | tee "$logfile" >&2 && return
  else
    "$@" >"$logfile" 2>&1 && return
    tail -n 40 "$logfile" >&2
  fi
  die "failed: $* (log: $logfile)"
}

# archive NAME IMAGE HASH: writes the OCI archive of IMAGE once per hash,
# removing that name's older archives.
write_archive() {
  local name=$1 image=$2 hash=$3 out="$cache/archives/$1-$3.tar"
  if [ ! -f "$out" ]; then
    log "writing $out"
    "${B[@]}" push --quiet "$image" "oci-archive:$out.tmp:$image" >/dev/null
    mv "$out.tmp" "$out"
    find "$cache/archives" -name "$name-*.tar" ! -name "$name-$hash.tar" -delete
  fi
  printf '%s\n' "$out"
}

# A container from scratch holding static binaries, committed as IMAGE.
# scratch_image IMAGE HASH CMD-JSON SRC:DEST...
scratch_image() {
  local image=$1 hash=$2 cmd=$3; shift 3
  local c
  c=$("${B[@]}" from scratch)
  trap '"${B[@]}" rm "$c" >/dev/null 2>&1 || true' RETURN
  for pair in "$@"; do
    "${B[@]}" copy --chmod 0755 "$c" "${pair%%:*}" "${pair#*:}" >/dev/null
  done
  "${B[@]}" config --cmd "$cmd" --label "io.palisade.inputs=$hash" \
    --os linux --arch amd64 "$c" >/dev/null
  local old; old=$(image_id "$image")
  "${B[@]}" commit --quiet --rm "$c" "$image" >/dev/null
  drop_replaced "$old" "$image"
  trap - RETURN
}

# Static, stripped builds of C programs through the Makefile, apart from build/.
static_build() {
  local dir="$cache/static"
  make -s -C "$repo" BUILD_DIR="$dir" LDFLAGS=-static "${@/#/$dir/bin/}" >&2
  for p in "$@"; do strip -o "$dir/$p.stripped" "$dir/bin/$p"; done
}

build_pause() {
  local hash
  hash=$(digest pause-v1 e2e/pause Makefile)
  pause_hash=$hash
  [ "$(image_inputs "$PAUSE_IMAGE")" = "$hash" ] && return
  log "building $PAUSE_IMAGE"
  static_build palisade-pause
  scratch_image "$PAUSE_IMAGE" "$hash" '["/pause"]' "$cache/static/palisade-pause.stripped:/pause"
}

build_testpod() {
  local hash
  hash=$(digest testpod-v1 e2e/podserver e2e/prober Makefile)
  testpod_hash=$hash
  [ "$(image_inputs "$TESTPOD_IMAGE")" = "$hash" ] && return
  log "building $TESTPOD_IMAGE"
  static_build palisade-podserver palisade-prober
  scratch_image "$TESTPOD_IMAGE" "$hash" '["/usr/local/bin/palisade-podserver","80"]' \
    "$cache/static/palisade-podserver.stripped:/usr/local/bin/palisade-podserver" \
    "$cache/static/palisade-prober.stripped:/usr/local/bin/palisade-prober"
}

# docker.io/library/debian:bookworm-slim from Debian's packages: mmdebstrap's
# minbase (Essential and apt, /usr merged without the usrmerge package and
# the perl it pulls in), trimmed like the official slim image (no
# documentation but copyrights, no manuals, no translations) and with its apt
# settings (downloaded .debs deleted after installing).
build_debian() {
  local hash tar=$cache/downloads/debian-bookworm-slim.tar
  hash=$(digest "$(declare -f build_debian)")
  debian_hash=$hash
  [ "$(image_inputs "$DEBIAN_IMAGE")" = "$hash" ] && return
  log "building $DEBIAN_IMAGE (mmdebstrap, minbase)"
  rm -f "$tar"
  quietly debian mmdebstrap --variant=minbase --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --aptopt='Acquire::Languages "none"' \
    --customize-hook='printf "%s\n" "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "APT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" > "$1/etc/apt/apt.conf.d/docker-clean"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log "$1"/var/log/apt/* "$1"/etc/machine-id "$1"/etc/hostname "$1"/etc/resolv.conf' \
    bookworm "$tar" \
    'deb http://deb.debian.org/debian bookworm main' \
    'deb http://deb.debian.org/debian bookworm-updates main' \
    'deb http://deb.debian.org/debian-security bookworm-security main'
  local c
  c=$("${B[@]}" from scratch)
  trap '"${B[@]}" rm "$c" >/dev/null 2>&1 || true' RETURN
  "${B[@]}" add "$c" "$tar" / >/dev/null
  "${B[@]}" config --cmd '["bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label "io.palisade.inputs=$hash" --os linux --arch amd64 "$c" >/dev/null
  local old; old=$(image_id "$DEBIAN_IMAGE")
  "${B[@]}" commit --quiet --rm "$c" "$DEBIAN_IMAGE" >/dev/null
  drop_replaced "$old" "$DEBIAN_IMAGE"
  trap - RETURN
  rm -f "$tar"
}

# docker.io/library/node:24-bookworm-slim: that Debian image plus this
# repository's pinned Node 24 (the npm package `node`, the official Linux
# binary; stripped of its symbols, 108 MB instead of 126) at
# /usr/local/bin/node, the npm its release bundles, and the `node` user
# (uid 1000), as in the official image.
build_node() {
  local hash bin=node_modules/node/bin/node npm_tgz=$cache/downloads/npm-$NPM_VERSION.tgz
  [ -x "$bin" ] || die "$bin is missing: run scripts/bootstrap.sh"
  build_debian
  hash=$(digest "$(declare -f build_node)" "$debian_hash" "$NPM_VERSION" "$(stat -L -c %s "$bin")" "$("$bin" --version)")
  node_hash=$hash
  [ "$(image_inputs "$NODE_IMAGE")" = "$hash" ] && return
  log "building $NODE_IMAGE (Node $("$bin" --version), npm $NPM_VERSION)"
  if [ ! -f "$npm_tgz" ]; then
    (cd "$cache/downloads" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  fi
  local work=$cache/downloads/node-work
  rm -rf "$work" && mkdir -p "$work/npm"
  strip -o "$work/node" "$bin"
  tar -xzf "$npm_tgz" -C "$work/npm" --strip-components=1
  local c
  c=$("${B[@]}" from --pull=never "$DEBIAN_IMAGE")
  trap '"${B[@]}" rm "$c" >/dev/null 2>&1 || true' RETURN
  "${B[@]}" copy --chmod 0755 "$c" "$work/node" /usr/local/bin/node >/dev/null
  "${B[@]}" copy "$c" "$work/npm" /usr/local/lib/node_modules/npm >/dev/null
  quietly node "${B[@]}" run --network none "$c" -- sh -ec '
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
    groupadd --gid 1000 node
    useradd --uid 1000 --gid node --shell /bin/bash --create-home node
    node --version && npm --version'
  "${B[@]}" config --cmd '["node"]' --env NODE_VERSION="$("$bin" --version | tr -d v)" \
    --label "io.palisade.inputs=$hash" "$c" >/dev/null
  local old; old=$(image_id "$NODE_IMAGE")
  "${B[@]}" commit --quiet --rm "$c" "$NODE_IMAGE" >/dev/null
  drop_replaced "$old" "$NODE_IMAGE"
  trap - RETURN
  rm -rf "$work"
}

# docker.io/palisade/palisade:VERSION and :dev from ./Dockerfile, keyed by the
# base images and every file of the build context (.dockerignore's allowlist).
build_palisade() {
  build_node
  local hash paths
  mapfile -t paths < <(sed -n 's/^!//p' .dockerignore)
  hash=$(digest "palisade $PALISADE_IMAGE $debian_hash $node_hash" Dockerfile .dockerignore "${paths[@]}")
  palisade_hash=$hash
  if [ "$(image_inputs "$PALISADE_IMAGE")" = "$hash" ] && [ "$(image_inputs "$PALISADE_DEV")" = "$hash" ]; then return; fi
  log "building $PALISADE_IMAGE from ./Dockerfile"
  local old start=$SECONDS
  old=$(image_id "$PALISADE_IMAGE")
  # --network host: the build stages' apt-get and npm ci reach their mirrors
  # from here. A host whose npm trusts an extra CA (a TLS-inspecting proxy:
  # `npm config get cafile`, or NODE_EXTRA_CA_CERTS) lends it to npm ci as the
  # Dockerfile's optional build secret npm-ca, which leaves no trace in the image.
  local secret=() cafile
  cafile=$(npm config get cafile 2>/dev/null || true)
  [ -f "$cafile" ] || cafile=${NODE_EXTRA_CA_CERTS:-}
  [ -f "$cafile" ] && secret=(--secret "id=npm-ca,src=$cafile")
  quietly palisade "${B[@]}" build --layers --force-rm --pull=never --network host "${secret[@]}" \
    --label "io.palisade.inputs=$hash" -t "$PALISADE_IMAGE" -t "$PALISADE_DEV" -f Dockerfile .
  drop_replaced "$old" "$PALISADE_IMAGE"
  log "built $PALISADE_IMAGE in $((SECONDS - start)) s: $("${B[@]}" images --format '{{.Size}}' "$PALISADE_IMAGE" | head -n1)"
}

archive() {
  case $1 in
    palisade) build_palisade; write_archive palisade "$PALISADE_IMAGE" "$palisade_hash" ;;
    pause) build_pause; write_archive pause "$PAUSE_IMAGE" "$pause_hash" ;;
    testpod) build_testpod; write_archive testpod "$TESTPOD_IMAGE" "$testpod_hash" ;;
    *) die "archive: unknown image '$1' (palisade, pause, testpod)" ;;
  esac
}

[ "$(id -u)" = 0 ] || die "needs root (buildah's storage and RUN steps)"
command -v buildah >/dev/null || die "buildah is missing: run scripts/bootstrap.sh"

# One build at a time on this storage.
exec 9>"$cache/lock"
flock 9

cmd=${1:-all}
case $cmd in
  palisade | pause | testpod) archive "$cmd" >/dev/null ;;
  archive) [ $# = 2 ] || die "usage: $0 archive NAME"; archive "$2" ;;
  base) build_node ;;
  buildah) shift; exec 9>&-; exec "${B[@]}" "$@" ;;
  clean)
    "${B[@]}" rm --all >/dev/null || true
    "${B[@]}" rmi --all --force >/dev/null 2>&1 || true
    rm -rf "$cache/storage" "$cache/archives" "$cache/static" "$cache/downloads" "$cache/logs"
    log "removed every image, container and archive of $cache" ;;
  all) for i in pause testpod palisade; do archive "$i" >/dev/null; done ;;
  *) die "usage: $0 [all|base|palisade|pause|testpod] | archive NAME | buildah ARGS... | clean" ;;
esac
