#!/usr/bin/env bash
# Man pages from the argument parser: runs swift-argument-parser's generate-manual (the tool its generate-manual
# plugin runs) on a built tokenvault, then names the pages as Debian's tools name a command's subcommand pages
# (git-commit(1), gh-auth-login(1)), so that `man tokenvault-refresh-all` and apropos find them.
#
# usage: packaging/man-pages.sh GENERATE_MANUAL TOKENVAULT DATE OUTDIR
#
# What changes in the generated mdoc, nothing else: the file name and .Dt (tokenvault.refresh-all.1 becomes
# tokenvault-refresh-all.1), the .Xr references to them, the NAME line (lexgrog, which builds the whatis database,
# cannot read the two-word `.Nm "tokenvault refresh-all"`: lintian's bad-whatis-entry), and empty lines of a
# discussion, which become .Pp paragraph breaks (groff warns about empty lines in mdoc).
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 GENERATE_MANUAL TOKENVAULT DATE OUTDIR" >&2; exit 2; }
tool=$1 tokenvault=$2 date=$3 out=$4
raw=$(mktemp -d "${TMPDIR:-/tmp}/tokenvault-man.XXXXXX")
trap 'rm -rf "$raw"' EXIT
"$tool" "$tokenvault" --multi-page --date "$date" --authors 'tokenvault maintainers<dev@tokenvault.invalid>' \
    --output-directory "$raw"
[ -s "$raw/tokenvault.1" ] || { echo "man-pages: generate-manual wrote no tokenvault.1" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
for page in "$raw"/*.1; do
    base=$(basename "$page" .1)                       # tokenvault.agent.run
    name=${base//./-}                                 # tokenvault-agent-run
    words=${base//./ }                                # tokenvault agent run
    if [ "$base" = tokenvault ]; then
        sed -e 's/^\(\.Xr tokenvault\)\.\([^ ]*\)/\1-\2/' -e 's/^\(\.Xr tokenvault-[^ ]*\)\./\1-/g' -e 's/^$/.Pp/' \
            "$page" > "$out/$name.1"
    else
        # The first .Nm (NAME) becomes the page name; every bare .Nm after it prints the command as it is typed.
        awk -v name="$name" -v words="$words" -v title="$(printf '%s' "$name" | tr a-z A-Z)" '
            /^\.Dt / { print ".Dt " title " 1"; next }
            !named && $0 ~ "^\\.Nm \"" words "\"" { sub("^\\.Nm \"" words "\"", ".Nm " name); named = 1; print; next }
            /^\.Nm$/ { print ".Nm \"" words "\""; next }
            /^$/ { print ".Pp"; next }
            /^\.Xr tokenvault\./ { ref = $2; gsub(/\./, "-", ref); $2 = ref; print; next }
            { print }
        ' "$page" > "$out/$name.1"
        grep -q "^\.Nm $name" "$out/$name.1" || { echo "man-pages: no NAME line in $base.1" >&2; exit 1; }
    fi
done
echo "$(ls "$out" | wc -l) man pages in $out"
