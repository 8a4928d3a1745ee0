#!/usr/bin/env bash
# `make package-test`: proof that the package works where Swift is not installed. Makes a clean Debian 12
# (bookworm) root with mmdebstrap from the mirror apt uses on this machine (/etc/apt/sources.list*), copies the
# package in, and runs packaging/package-test-inside.sh there (chroot, with /proc and /dev mounted by mmdebstrap):
# the package installed with apt, so that its dependencies resolve from its own fields, then tokenvault used.
# Needs root (for chroot) and the network to the mirror. Prints the time each part took.
#
# usage: packaging/package-test.sh DEB
set -euo pipefail
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: $0 DEB" >&2; exit 2; }
deb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "package-test: needs root (chroot); run it through sudo" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "package-test: mmdebstrap is not installed (make package-test installs it)" >&2; exit 1; }

# The Debian mirror lines apt uses here, as "deb URI SUITE COMPONENTS" (deb822 .sources and one-line .list),
# bookworm's suites only.
mirrors=()
while IFS= read -r line; do [ -n "$line" ] && mirrors+=("$line"); done < <(
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+\(bookworm[a-z-]*\)[[:space:]]\+\(.*\)$/deb \2 \3 \4/p' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && awk '
            function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no") { n = split(uris, u, " "); m = split(suites, s, " ")
                for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (s[j] ~ /^bookworm/) print "deb " u[i] " " s[j] " " comps }
                types = uris = suites = comps = enabled = "" }
            /^[[:space:]]*$/ { flush(); next }
            /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
            /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
            /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
            /^Components:/ { sub(/^Components:[[:space:]]*/, ""); comps = $0 }
            /^Enabled:/ { sub(/^Enabled:[[:space:]]*/, ""); enabled = $0 }
            END { flush() }' "$f"
    done)
[ ${#mirrors[@]} -gt 0 ] || { echo "package-test: no bookworm mirror in /etc/apt/sources.list*" >&2; exit 1; }
printf 'mirror: %s\n' "${mirrors[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/tokenvault-package-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$deb" "$here/package-test-inside.sh" "$work/"
started=$SECONDS
# man-db and bash-completion are what a user who reads man pages and completes in bash has; everything else comes
# from the package's own Depends (and, in a second step, its Recommends).
mmdebstrap --variant=apt --include=man-db,bash-completion \
    --customize-hook="copy-in $work/$(basename "$deb") $work/package-test-inside.sh /tmp" \
    --customize-hook="echo \"bootstrap: \$((\$(date +%s) - $(date +%s))) s\"" \
    --customize-hook="chroot \"\$1\" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8 bash /tmp/package-test-inside.sh /tmp/$(basename "$deb")" \
    bookworm "$work/root" "${mirrors[@]}"
echo "package-test: passed in $((SECONDS - started)) s (a clean Debian 12 root, the package installed with apt, tokenvault used there)"
