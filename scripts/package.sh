#!/usr/bin/env bash
# Builds the Debian package sriovd_<version>_amd64.deb (with --revision N,
# sriovd_<version>-N_amd64.deb) from a
# release build linked with the static Swift standard library, so the host
# needs no Swift toolchain.
#
#   scripts/package.sh [--revision N | --revisions N,M,...] [--out DIR] [--lint]
#
# --revision N  a Debian revision (default none: the package's version is
#               sriovd's own): a rebuild of the same sources with a higher
#               revision is an upgrade of the package.
# --revisions L one package per revision in the comma-separated list, from
#               one release build (the tests install 1, then upgrade to 2).
# --out DIR     where the .deb goes (default .build-release/deb); its path is
#               the last line printed.
# --lint        run lintian on it afterwards; any error fails.
#
# The version is sriovd's own (`sriovd --version`, which /v1/health reports
# too: sriovdVersion in Sources/SRIOVDaemon). The release build goes to
# .build-release (SRIOVD_RELEASE_SCRATCH overrides). Needs dpkg-dev and
# lowdown (and lintian for --lint); scripts/install-deps.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

revisions=("")
out=.build-release/deb
lint=0
while [ $# -gt 0 ]; do
  case "$1" in
    --revision) revisions=("$2"); shift 2 ;;
    --revisions) IFS=, read -r -a revisions <<<"$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --lint) lint=1; shift ;;
    *) echo "usage: scripts/package.sh [--revision N | --revisions N,M,...] [--out DIR] [--lint]" >&2; exit 2 ;;
  esac
done
for revision in "${revisions[@]}"; do
  [[ -z "$revision" || "$revision" =~ ^[0-9]+$ ]] || { echo "package: a revision must be a number, not '$revision'" >&2; exit 2; }
done
for tool in dpkg-deb dpkg-shlibdeps lowdown strip gzip; do
  command -v "$tool" >/dev/null || { echo "package: $tool is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
log() { printf '[package] %s\n' "$*" >&2; }

scratch="${SRIOVD_RELEASE_SCRATCH:-.build-release}"
log "release build (static Swift standard library) in $scratch"
# All products at once: a build with --product plans differently and
# recompiles modules that a plain build already made.
swift build -c release --static-swift-stdlib --scratch-path "$scratch" >&2
bin="$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)"

# argument-parser's generate-manual, the tool behind its generate-manual
# plugin, built from the checkout the build above resolved. The plugin itself
# would rebuild every product without --static-swift-stdlib over these ones.
parser="$scratch/checkouts/swift-argument-parser"
log "building argument-parser's generate-manual"
swift build -c release --package-path "$parser" --scratch-path "$scratch/generate-manual" --product generate-manual >&2
generate_manual="$(swift build -c release --package-path "$parser" --scratch-path "$scratch/generate-manual" --show-bin-path)/generate-manual"

upstream="$("$bin/sriovd" --version)"
[[ "$upstream" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || { echo "package: sriovd --version printed '$upstream', not a version" >&2; exit 1; }
# pack REVISION: the package of this build with that Debian revision (or
# none); prints its path.
works=()
trap 'rm -rf "${works[@]}"' EXIT
pack() {
  local revision="$1"
version="$upstream${revision:+-$revision}"
# Dates from the commit, so that two builds of one commit are the same.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
maintainer="${SRIOVD_MAINTAINER:-sriovd developers <sriovd@users.noreply.github.com>}"

work="$(mktemp -d)"
works+=("$work")
root="$work/root"
umask 022
mkdir -p "$root/DEBIAN"

# put MODE SOURCE DEST: one file into the package.
put() { install -D -m "$1" "$2" "$root$3"; }
# gz SOURCE DEST: compressed as Debian wants (no name or time stamp inside).
gz() { mkdir -p "$(dirname "$root$2")"; gzip -9n <"$1" >"$root$2"; chmod 0644 "$root$2"; }

log "sriovd $version: binaries, stripped"
put 0755 "$bin/sriovd" /usr/sbin/sriovd
put 0755 "$bin/sriovctl" /usr/bin/sriovctl
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/sbin/sriovd" "$root/usr/bin/sriovctl"
[ "$("$root/usr/sbin/sriovd" --version)" = "$upstream" ] || { echo "package: the stripped sriovd does not run" >&2; exit 1; }

log "units, sysusers.d, tmpfiles.d, configuration"
put 0644 systemd/sriovd.service /lib/systemd/system/sriovd.service
put 0644 systemd/sriovd.socket /lib/systemd/system/sriovd.socket
put 0644 systemd/sriovd.sysusers /usr/lib/sysusers.d/sriovd.conf
put 0644 systemd/sriovd.tmpfiles /usr/lib/tmpfiles.d/sriovd.conf
grep -q '^ExecStart=/usr/sbin/sriovd ' "$root/lib/systemd/system/sriovd.service" \
  || { echo "package: sriovd.service does not start /usr/sbin/sriovd" >&2; exit 1; }
# The documented example, every setting commented out: installing it changes nothing.
put 0644 config/sriovd.toml /etc/sriovd/sriovd.toml
if grep -vE '^[[:space:]]*(#|$|\[daemon\][[:space:]]*$)' config/sriovd.toml >&2; then
  echo "package: config/sriovd.toml has a setting that is not commented out (above)" >&2; exit 1
fi
"$bin/sriovd" check-config config/sriovd.toml >&2
echo /etc/sriovd/sriovd.toml >"$root/DEBIAN/conffiles"

log "man pages: sriovd(8), sriovctl(8) by generate-manual; sriovd.toml(5) from docs/configuration.md"
date_ymd="$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)"
mkdir -p "$work/man"
for tool in sriovd sriovctl; do
  "$generate_manual" "$bin/$tool" --section 8 --date "$date_ymd" --output-directory "$work/man" >&2
  [ -s "$work/man/$tool.8" ] || { echo "package: generate-manual wrote no $tool.8" >&2; exit 1; }
  gz "$work/man/$tool.8" "/usr/share/man/man8/$tool.8.gz"
done
# The reference's title becomes NAME; its ## sections become the page's
# sections, ### their subsections.
{
  printf '# NAME\n\nsriovd.toml - configuration file of sriovd, the SR-IOV virtual function manager\n\n# DESCRIPTION\n\n'
  sed -e '1{/^# /d}' -e 's/^## /# /' -e 's/^### /## /' docs/configuration.md
  printf '\n# SEE ALSO\n\n**sriovd**(8), **sriovctl**(8)\n'
} | lowdown -s -Tman -M "title=sriovd.toml" -M "section=5" -M "date=$date_ymd" -M "source=sriovd $upstream" \
  >"$work/sriovd.toml.5"
gz "$work/sriovd.toml.5" /usr/share/man/man5/sriovd.toml.5.gz

log "bash and zsh completions, from the commands' argument-parser definitions"
for tool in sriovd sriovctl; do
  mkdir -p "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions"
  "$bin/$tool" --generate-completion-script bash >"$root/usr/share/bash-completion/completions/$tool"
  "$bin/$tool" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_$tool"
done

log "documentation: OpenAPI, copyright, changelog"
doc=/usr/share/doc/sriovd
put 0644 docs/openapi.yaml "$doc/openapi.yaml"
openapi_version="$(sed -n 's/^  version: *//p' docs/openapi.yaml | head -n1)"
[ "$openapi_version" = "$upstream" ] || {
  echo "package: docs/openapi.yaml says version $openapi_version, sriovd says $upstream" >&2; exit 1; }
put 0644 scripts/packaging/copyright "$doc/copyright"
cat >"$work/changelog" <<EOF
sriovd ($version) unstable; urgency=medium

  * Built by scripts/package.sh from commit $commit.

 -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
gz "$work/changelog" "$doc/changelog.Debian.gz"

log "maintainer scripts"
for script in postinst prerm postrm; do
  install -m 0755 "scripts/packaging/$script" "$root/DEBIAN/$script"
done

log "Depends: from the binaries' shared libraries (dpkg-shlibdeps)"
mkdir -p "$work/src/debian"
printf 'Source: sriovd\n\nPackage: sriovd\nArchitecture: amd64\n' >"$work/src/debian/control"
shlibs="$(cd "$work/src" && dpkg-shlibdeps -O -e"$root/usr/sbin/sriovd" -e"$root/usr/bin/sriovctl" 2>&1 \
  | sed -n 's/^shlibs:Depends=//p')"
[ -n "$shlibs" ] || { echo "package: dpkg-shlibdeps found no libraries" >&2; exit 1; }

(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
  >"$root/DEBIAN/md5sums"
installed_size="$(du -k -s --exclude=DEBIAN "$root" | cut -f1)"
cat >"$root/DEBIAN/control" <<EOF
Package: sriovd
Version: $version
Architecture: amd64
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $shlibs, systemd
Section: admin
Priority: optional
Description: SR-IOV virtual function manager for hypervisor hosts
 sriovd manages the SR-IOV virtual functions (VFs) of a host's NICs for
 virtual machines: inventory, VF counts, per-VF settings through netlink,
 driver binding (vfio-pci), and assignments of VFs to VM NICs kept in SQLite.
 It serves an HTTP/1.1 JSON API on a Unix socket (socket-activated by
 systemd) and comes with sriovctl, its command-line client.
 .
 Installing the package enables and starts nothing: the configuration,
 /etc/sriovd/sriovd.toml, ships with every setting commented out, and
 "systemctl enable --now sriovd.socket" starts the service.
EOF

# Permissions as dpkg-deb will record them: root-owned, no group write.
find "$root" -type d -exec chmod 0755 {} +
find "$root" ! -path "$root/DEBIAN*" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb="$out/sriovd_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
log "built $deb ($(du -h "$deb" | cut -f1))"
if [ "$lint" = 1 ]; then
  log "lintian"
  lintian --fail-on error --info "$deb" >&2
fi
echo "$deb"
}

for revision in "${revisions[@]}"; do
  pack "$revision"
done
