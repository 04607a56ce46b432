#!/usr/bin/env bash
# Builds a tiny image offline, for trying a registry on a machine without network:
#   scripts/demo-image.sh DIR [REF]        (REF: the docker-archive's tag, default hello:1)
# DIR/oci           an OCI image layout, tag "latest"  (skopeo copy oci:DIR/oci:latest ...)
# DIR/image.tar     the same image as a docker-archive  (docker load -i DIR/image.tar)
# One layer with /hello.txt and, when Debian's busybox-static is installed, /bin/sh, so
# `docker run` can print the file. Nothing is fetched; the same inputs give the same digests.
set -euo pipefail
DIR=${1:?usage: $0 DIR [REF]}
REF=${2:-hello:1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin"
echo "hello from keyport" > "$work/rootfs/hello.txt"
cmd='"/bin/cat","/hello.txt"'
if [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
  cp /bin/busybox "$work/rootfs/bin/busybox"
  ln -s busybox "$work/rootfs/bin/sh"
  ln -s busybox "$work/rootfs/bin/cat"
fi
tarflags=(--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner)
tar "${tarflags[@]}" -C "$work/rootfs" -cf "$work/layer.tar" .
gzip -n -c "$work/layer.tar" > "$work/layer.tar.gz"
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
diff_id=$(sha "$work/layer.tar")
layer=$(sha "$work/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/bin"],"Cmd":[%s]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"keyport demo image"}]}' \
  "$cmd" "$diff_id" > "$work/config.json"
config=$(sha "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
  "$config" "$(size "$work/config.json")" "$layer" "$(size "$work/layer.tar.gz")" > "$work/manifest.json"
manifest=$(sha "$work/manifest.json")

rm -rf "$DIR/oci" "$DIR/image.tar"
mkdir -p "$DIR/oci/blobs/sha256"
cp "$work/layer.tar.gz" "$DIR/oci/blobs/sha256/$layer"
cp "$work/config.json" "$DIR/oci/blobs/sha256/$config"
cp "$work/manifest.json" "$DIR/oci/blobs/sha256/$manifest"
echo '{"imageLayoutVersion":"1.0.0"}' > "$DIR/oci/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
  "$manifest" "$(size "$work/manifest.json")" > "$DIR/oci/index.json"

mkdir -p "$work/da/$diff_id"
cp "$work/layer.tar" "$work/da/$diff_id/layer.tar"
cp "$work/config.json" "$work/da/$config.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$config" "$REF" "$diff_id" > "$work/da/manifest.json"
tar "${tarflags[@]}" -C "$work/da" -cf "$DIR/image.tar" .
echo "sha256:$manifest"
