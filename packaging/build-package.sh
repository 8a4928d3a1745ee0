#!/usr/bin/env bash
# Builds the Debian package and the tarball from a built tokenvault and its generated man pages
# (`make deb`, `make tarball`: the Makefile builds both inputs first).
#
# usage: packaging/build-package.sh deb|tarball BINARY MANDIR OUTDIR
#   BINARY  the release binary (swift build -c release --static-swift-stdlib)
#   MANDIR  the man pages generate-manual wrote (*.1)
# Environment: DEB_REVISION (default 1). The version is the VERSION file's; dates come from its CHANGELOG.md entry
# (SOURCE_DATE_EPOCH), so the same inputs give the same package.
set -euo pipefail
umask 022

[ $# -eq 4 ] || { echo "usage: $0 deb|tarball BINARY MANDIR OUTDIR" >&2; exit 2; }
kind=$1 binary=$2 mandir=$3 outdir=$4
src=$(cd "$(dirname "$0")/.." && pwd)
version=$(tr -d ' \n' < "$src/VERSION")
revision=${DEB_REVISION:-1}
fail() { echo "build-package: $*" >&2; exit 1; }
[ -x "$binary" ] || fail "no binary at $binary"
ls "$mandir"/tokenvault.1 >/dev/null 2>&1 || fail "no tokenvault.1 in $mandir (make man)"
release_date=$(sed -n "s/^## \[$version\] - \([0-9-]*\)$/\1/p" "$src/CHANGELOG.md")
[ -n "$release_date" ] || fail "CHANGELOG.md has no '## [$version] - YYYY-MM-DD' entry"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date -u -d "$release_date" +%s)}
mkdir -p "$outdir"
work=$(mktemp -d "${TMPDIR:-/tmp}/tokenvault-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

# stage ROOT PREFIX BINDIR ZSHDIR: the files both the package and the tarball carry, under ROOT/PREFIX.
stage() {
    local root=$1 prefix=$2 bindir=$3 zshdir=$4 d
    d=$root$prefix
    install -d "$d/bin" "$d/share/man/man1" "$d/share/bash-completion/completions" "$d/$zshdir" \
        "$d/share/fish/vendor_completions.d" "$d/lib/systemd/user" "$d/lib/systemd/system" \
        "$d/share/doc/tokenvault/examples/prometheus"
    # Stripped (symbols and debug info only; Swift's metadata sections stay): 95 MB becomes about a third.
    strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$d/bin/tokenvault" "$binary"
    chmod 0755 "$d/bin/tokenvault"
    local page
    for page in "$mandir"/*.1; do
        install -m 0644 "$page" "$d/share/man/man1/"
        gzip -9n "$d/share/man/man1/$(basename "$page")"
    done
    # The completion scripts come from the binary itself, as `tokenvault --generate-completion-script SHELL` gives them.
    # bash-completion sources the script: no #! line (lintian's bash-completion-with-hashbang).
    "$d/bin/tokenvault" --generate-completion-script bash | sed '1{/^#!/d}' > "$d/share/bash-completion/completions/tokenvault"
    "$d/bin/tokenvault" --generate-completion-script zsh > "$d/$zshdir/_tokenvault"
    "$d/bin/tokenvault" --generate-completion-script fish > "$d/share/fish/vendor_completions.d/tokenvault.fish"
    local unit
    for unit in "$src"/packaging/systemd/*.in; do
        sed "s|@BINDIR@|$bindir|g" "$unit" > "$d/lib/systemd/user/$(basename "$unit" .in)"
    done
    # The system unit of `tokenvault serve` (contrib/systemd, written for /usr/bin).
    sed "s|/usr/bin/tokenvault|$bindir/tokenvault|g" "$src/contrib/systemd/tokenvault-serve.service" \
        > "$d/lib/systemd/system/tokenvault-serve.service"
    install -m 0644 "$src/packaging/copyright" "$d/share/doc/tokenvault/copyright"
    install -m 0644 "$src"/contrib/prometheus/tokenvault.rules.yml "$src"/contrib/prometheus/tokenvault.test.yml \
        "$d/share/doc/tokenvault/examples/prometheus/"
    chmod -R u+rwX,go+rX,go-w "$root"
}

# Every file's mtime is the release date, so that rebuilding gives the same bytes.
clamp() { find "$1" -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +; }

case $kind in
deb)
    root=$work/root
    stage "$root" /usr /usr/bin share/zsh/vendor-completions
    doc=$root/usr/share/doc/tokenvault
    gzip -9n < "$src/CHANGELOG.md" > "$doc/changelog.gz"
    commit=$("$root/usr/bin/tokenvault" --version | sed -n 's/.*(commit \(.*\))$/\1/p')
    {
        printf 'tokenvault (%s-%s) unstable; urgency=medium\n\n' "$version" "$revision"
        printf '  * Binary package of tokenvault %s (commit %s),\n' "$version" "$commit"
        printf '    assembled with dpkg-deb from the release binary;\n'
        printf '    changelog.gz has the upstream changes.\n\n'
        printf ' -- tokenvault maintainers <dev@tokenvault.invalid>  %s\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -9n > "$doc/changelog.Debian.gz"
    # Depends: what the binary links, as dpkg-shlibdeps finds it from the installed libraries' shlibs/symbols
    # files (it wants a debian/control to read; a minimal one in a scratch directory does).
    mkdir -p "$work/shlibs/debian"
    printf 'Source: tokenvault\n\nPackage: tokenvault\nArchitecture: amd64\n' > "$work/shlibs/debian/control"
    depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e "$root/usr/bin/tokenvault" 2>"$work/shlibdeps.err" \
        | sed -n 's/^shlibs:Depends=//p') || { cat "$work/shlibdeps.err" >&2; fail "dpkg-shlibdeps failed"; }
    case $depends in *libsodium*libsqlite3*|*libsqlite3*libsodium*) ;; *) fail "Depends lacks libsodium or SQLite: $depends" ;; esac
    size=$(du -sk --apparent-size "$root/usr" | cut -f1)
    install -d -m 0755 "$root/DEBIAN"
    sed -e "s|@DEB_VERSION@|$version-$revision|" -e "s|@INSTALLED_SIZE@|$size|" -e "s|@DEPENDS@|$depends|" \
        "$src/packaging/control.in" > "$root/DEBIAN/control"
    (cd "$root" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
    clamp "$root"
    deb=$outdir/tokenvault_${version}-${revision}_amd64.deb
    dpkg-deb --build --root-owner-group -Zxz "$root" "$deb" >/dev/null
    echo "$deb"
    ;;
tarball)
    name=tokenvault-$version-linux-x86_64
    root=$work/$name
    # For /usr/local (or any prefix: the units name /usr/local/bin/tokenvault; edit them for another).
    stage "$work" "/$name" /usr/local/bin share/zsh/site-functions
    install -m 0644 "$src/CHANGELOG.md" "$root/share/doc/tokenvault/CHANGELOG.md"
    sed "s|@VERSION@|$version|g" "$src/packaging/tarball-README.md" > "$root/README.md"
    clamp "$work"
    tarball=$outdir/$name.tar.gz
    tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" -cf - "$name" \
        | gzip -9n > "$tarball"
    echo "$tarball"
    ;;
*) fail "unknown kind '$kind' (deb or tarball)" ;;
esac
