#!/usr/bin/env bash
# The cheap package checks `make test` ends with (`make package-check`): lintian, the package unpacked with
# `dpkg -x` and its binary run, man pages and completions present and loadable, the systemd units verified, the
# tarball's README naming every library the binary links, and the Prometheus rules checked and unit-tested.
#
# usage: packaging/package-check.sh DEB TARBALL
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 DEB TARBALL" >&2; exit 2; }
deb=$1 tarball=$2
src=$(cd "$(dirname "$0")/.." && pwd)
version=$(tr -d ' \n' < "$src/VERSION")
work=$(mktemp -d "${TMPDIR:-/tmp}/tokenvault-package-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
ok() { printf 'ok    %s\n' "$*"; }
bad() { printf 'FAIL  %s\n' "$*" >&2; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@" > "$work/out" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/      /' "$work/out" >&2; fi; }

# ---- lintian: no error; every warning one that packaging/README.md names (packaging/lintian-expected) -------------
# lintian exits 0 (no error) or 2 (errors found, reported below); anything else means it did not run.
command -v lintian >/dev/null || { bad "lintian is not installed (make deps)"; exit 1; }
rc=0; lintian --pedantic -I "$deb" > "$work/lintian" 2>&1 || rc=$?
expected=$(grep -v '^#' "$src/packaging/lintian-expected" | awk 'NF { print $1 }')
unexpected=$(grep -E '^[EW]: ' "$work/lintian" | awk '{ print $3 }' | grep -vxF -f <(printf '%s\n' $expected) || true)
if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
    bad "lintian did not run (exit $rc)"; sed 's/^/      /' "$work/lintian" >&2
elif [ -z "$unexpected" ]; then
    ok "lintian: no error, no warning but the expected ones ($(grep -cE '^[EWIP]: ' "$work/lintian") tags with info and pedantic)"
else
    bad "lintian: errors or warnings not named in packaging/lintian-expected:"; grep -E '^[EW]: ' "$work/lintian" >&2
fi

# ---- the package unpacked -------------------------------------------------------------------------------------
root=$work/root
dpkg -x "$deb" "$root"
bin=$root/usr/bin/tokenvault
check "dpkg -x: /usr/bin/tokenvault is there and executable" test -x "$bin"
"$bin" --version > "$work/version" 2>&1 || true
check "tokenvault --version names version $version, its commit, libsodium and SQLite" \
    grep -qzE "^tokenvault $version \(commit ([0-9a-f]{7,40}(-dirty)?|unknown)\)
libsodium [0-9.]+, SQLite 3\.[0-9.]+
\$" "$work/version"
ok "  $(head -1 "$work/version") / $(sed -n 2p "$work/version")"
check "Depends names libsodium23 and libsqlite3-0; Recommends libcurl4, Suggests libpq5" \
    sh -c "dpkg-deb -f '$deb' Depends | grep -q 'libsodium23.*libsqlite3-0' \
        && dpkg-deb -f '$deb' Recommends | grep -q libcurl4 && dpkg-deb -f '$deb' Suggests | grep -q libpq5"
man=$root/usr/share/man/man1
check "man pages: tokenvault.1.gz and one per command (refresh-all, agent run, keys add)" \
    test -s "$man/tokenvault.1.gz" -a -s "$man/tokenvault-refresh-all.1.gz" -a -s "$man/tokenvault-agent-run.1.gz" \
        -a -s "$man/tokenvault-keys-add.1.gz"
check "man -w finds tokenvault(1) in the package's man directory" sh -c "man -M '$root/usr/share/man' -w tokenvault | grep -q tokenvault.1.gz"
# groff's own warnings (a bad macro, a line it cannot set) fail the check.
check "man renders every page without a groff warning" sh -c "
    for p in '$man'/*.1.gz; do MANWIDTH=80 man --warnings -l \"\$p\" 2>&1 >/dev/null | grep . && { echo \"in \$p\"; exit 1; }; done; exit 0"
check "tokenvault(1) lists the subcommands (refresh-all) and the exit codes" \
    sh -c "MANWIDTH=200 man -l '$man/tokenvault.1.gz' 2>/dev/null | grep -q refresh-all \
        && MANWIDTH=200 man -l '$man/tokenvault.1.gz' 2>/dev/null | grep -qi 'exit codes'"
check "bash completion loads and completes tokenvault" bash -c "
    source '$root/usr/share/bash-completion/completions/tokenvault' && complete -p tokenvault"
check "zsh completion is where zsh looks for vendor completions and parses" \
    zsh -n "$root/usr/share/zsh/vendor-completions/_tokenvault"
check "fish completion is where fish looks for vendor completions and parses" \
    fish --no-execute "$root/usr/share/fish/vendor_completions.d/tokenvault.fish"
check "copyright (DEP-5), changelog.gz and changelog.Debian.gz" sh -c "
    head -1 '$root/usr/share/doc/tokenvault/copyright' | grep -q copyright-format/1.0 \
    && zcat '$root/usr/share/doc/tokenvault/changelog.gz' | grep -q '## \[$version\]' \
    && zcat '$root/usr/share/doc/tokenvault/changelog.Debian.gz' | grep -q '^tokenvault ($version-'"
check "the Prometheus rules are among the examples" test -s "$root/usr/share/doc/tokenvault/examples/prometheus/tokenvault.rules.yml"

# ---- systemd units: systemd-analyze verify, with ExecStart= pointed at the unpacked binary and man at its pages ---
units=$work/units
mkdir -p "$units" "$work/runtime"
chmod 0700 "$work/runtime"
for unit in "$root"/usr/lib/systemd/user/*; do sed "s|/usr/bin/tokenvault|$bin|g" "$unit" > "$units/$(basename "$unit")"; done
check "three user units: tokenvault-agent.service, tokenvault-refresh.service and .timer (RandomizedDelaySec)" \
    sh -c "test -s '$units/tokenvault-agent.service' -a -s '$units/tokenvault-refresh.service' \
        && grep -q '^RandomizedDelaySec=' '$units/tokenvault-refresh.timer'"
check "the system unit tokenvault-serve.service, with the passphrase from LoadCredential=" \
    grep -q '^LoadCredential=passphrase:' "$root/usr/lib/systemd/system/tokenvault-serve.service"
sed "s|/usr/bin/tokenvault|$bin|g" "$root/usr/lib/systemd/system/tokenvault-serve.service" > "$work/tokenvault-serve.service"
check "systemd-analyze verify accepts the system unit" sh -c "
    out=\$(MANPATH='$root/usr/share/man' systemd-analyze verify '$work/tokenvault-serve.service' 2>&1) \
    && [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"
# verify prints a line for each problem (and exits 0 on some of them): any output fails.
check "systemd-analyze verify --user accepts the units (man pages of Documentation= included)" sh -c "
    out=\$(XDG_RUNTIME_DIR='$work/runtime' MANPATH='$root/usr/share/man' systemd-analyze verify --user '$units'/* 2>&1) \
    && [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"

# ---- the tarball ----------------------------------------------------------------------------------------------
tar -C "$work" -xzf "$tarball"
t=$work/tokenvault-$version-linux-x86_64
check "tarball: same binary, man pages, completions, units and examples as the package" sh -c "
    cmp '$t/bin/tokenvault' '$bin' && diff -r '$t/share/man' '$root/usr/share/man' \
    && test -s '$t/share/zsh/site-functions/_tokenvault' -a -s '$t/share/bash-completion/completions/tokenvault' \
        -a -s '$t/share/fish/vendor_completions.d/tokenvault.fish' -a -s '$t/lib/systemd/user/tokenvault-refresh.timer' \
        -a -s '$t/share/doc/tokenvault/examples/prometheus/tokenvault.rules.yml' -a -s '$t/share/doc/tokenvault/copyright'"
check "tarball README names every shared library the binary links (readelf NEEDED) and the two it opens" sh -c "
    for lib in \$(readelf -d '$t/bin/tokenvault' | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p') libcurl.so.4 libpq.so.5; do
        case \$lib in ld-linux*) continue ;; esac
        grep -qF \"\\\`\$lib\\\`\" '$t/README.md' || { echo \"README.md does not name \$lib\"; exit 1; }; done"

# ---- Prometheus rules -----------------------------------------------------------------------------------------
check "promtool check rules contrib/prometheus/tokenvault.rules.yml" promtool check rules "$src/contrib/prometheus/tokenvault.rules.yml"
check "promtool test rules: each alert fires, and stays quiet, when it should" \
    sh -c "cd '$src/contrib/prometheus' && promtool test rules tokenvault.test.yml"

if [ "$failures" -ne 0 ]; then echo "package-check: $failures check(s) failed" >&2; exit 1; fi
echo "package-check: all passed ($(basename "$deb"), $(basename "$tarball"))"
