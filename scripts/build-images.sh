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

# The image ID of NAME (for keying images built on it).
image_id() { "${B[@]}" inspect --type image --format '{{.FromImageID}}' "$1"; }

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
  "${B[@]}" commit --quiet --rm "$c" "$image" >/dev/null
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

archive() {
  case $1 in
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
  pause | testpod) archive "$cmd" >/dev/null ;;
  archive) [ $# = 2 ] || die "usage: $0 archive NAME"; archive "$2" ;;
  buildah) shift; exec 9>&-; exec "${B[@]}" "$@" ;;
  all) archive pause >/dev/null; archive testpod >/dev/null ;;
  *) die "usage: $0 [all|base|palisade|pause|testpod] | archive NAME | buildah ARGS..." ;;
esac
