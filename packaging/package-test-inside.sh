#!/usr/bin/env bash
# Runs inside the clean Debian 12 root of packaging/package-test.sh, as root, with nothing but the base system,
# man-db and bash-completion: installs the package with apt and uses tokenvault as a user would. Test data is
# made here (random tokens, never on a command line). Stops at the first step that fails.
#
# usage: package-test-inside.sh DEB
set -euo pipefail
deb=$1
started=$(date +%s)
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'package-test: FAILED: %s\n' "$*" >&2; exit 1; }
random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

step "apt-get install $deb (Depends only; its Recommends come later)"
apt-get install -y -qq --no-install-recommends "$deb"
command -v swift >/dev/null && fail "swift is installed in the test root"
dpkg-query -W -f '${Depends}\n' tokenvault

step "tokenvault --version"
tokenvault --version | tee /tmp/version
grep -qE '^tokenvault [0-9]+\.[0-9]+\.[0-9]+ \(commit ' /tmp/version || fail "--version: $(cat /tmp/version)"

step "man -w tokenvault, and a command's page rendered"
man -w tokenvault
man -w tokenvault-refresh-all
MANWIDTH=80 man tokenvault-refresh-all 2>/dev/null | grep -q 'tokenvault refresh-all' || fail "man tokenvault-refresh-all"

step "bash completion: bash-completion loads /usr/share/bash-completion/completions/tokenvault on demand"
bash -c '
    source /usr/share/bash-completion/bash_completion
    _completion_loader tokenvault
    spec=$(complete -p tokenvault) || exit 1
    echo "$spec"
    fn=$(printf "%s" "$spec" | sed -n "s/.*-F \([^ ]*\).*/\1/p")
    COMP_WORDS=(tokenvault ref); COMP_CWORD=1; COMP_LINE="tokenvault ref"; COMP_POINT=${#COMP_LINE}
    "$fn" tokenvault ref tokenvault
    printf "tokenvault ref<TAB>: %s\n" "${COMPREPLY[*]}"
    [[ " ${COMPREPLY[*]} " == *" refresh-all "* ]]' || fail "bash completion"

step "a vault: init, add, import, env, list, audit --verify (passphrase from a 0600 file)"
cd /root
( umask 077; printf 'correct horse battery staple %s\n' "$(random)" > passphrase; random > client-secret )
export TOKENVAULT_PASSPHRASE_FILE=/root/passphrase
tokenvault init --kdf interactive
# 127.0.0.1:9 (discard): nothing answers there, so a command that reaches for the provider fails fast.
tokenvault add work --client-id "C$(random)" --redirect-uri http://127.0.0.1:8765/callback \
    --scopes 'spark:people_read spark:kms' --api-base http://127.0.0.1:9/v1 --client-secret-stdin < client-secret
printf '{"access_token": "%s", "expires_in": 1209599, "refresh_token": "%s", "refresh_token_expires_in": 7776000, "token_type": "Bearer"}\n' \
    "$(random)" "$(random)" > token.json
tokenvault import alice --integration work < token.json
tokenvault env alice | sed -E "s/='(.{6}).*'\$/='\\1…'/"
eval "$(tokenvault env alice)"
[ "$WEBEX_ACCESS_TOKEN" = "$(sed 's/.*"access_token": "\([^"]*\)".*/\1/' token.json)" ] || fail "env gave another token"
tokenvault list
tokenvault audit --verify

step "a provider command without libcurl (a Recommends, not installed yet) names the package to install"
code=0; tokenvault refresh alice 2> refresh.err || code=$?
cat refresh.err
[ "$code" -ne 0 ] && grep -q 'libcurl4' refresh.err || fail "refresh without libcurl: exit $code"
recommends=$(dpkg-query -W -f '${Recommends}' tokenvault | sed 's/[ |,].*//')
apt-get install -y -qq --no-install-recommends "$recommends"
code=0; tokenvault refresh alice 2> refresh.err || code=$?
cat refresh.err
# With libcurl the request is made: 127.0.0.1:9 refuses it (6, provider or network error).
[ "$code" -eq 6 ] && ! grep -q 'libcurl' refresh.err || fail "refresh with $recommends: exit $code"

step "a PostgreSQL vault without libpq (a Suggests) names the package to install"
code=0; tokenvault --vault 'postgresql:///tokenvault?host=/nonexistent' list 2> pg.err || code=$?
cat pg.err
[ "$code" -ne 0 ] && grep -q 'libpq5' pg.err || fail "PostgreSQL vault without libpq: exit $code"

printf '\npackage-test: all steps passed in the root (%s s after the bootstrap)\n' "$(( $(date +%s) - started ))"
