#!/usr/bin/env bash
# `make demo`: a scripted tour of tokenvault on a temporary vault, against provider-sandbox (a Webex-compatible
# OAuth provider on 127.0.0.1) started as a separate process. Prints every command before running it; stops at
# the first step that fails, with a non-zero exit. Nothing outside a temporary directory is touched.
#
# usage: bash Tests/Scripts/demo.sh DIR     (DIR holds the built tokenvault and provider-sandbox, e.g. .build/debug)
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1/tokenvault" ] || [ ! -x "$1/provider-sandbox" ]; then
    echo "usage: $0 DIR   (DIR holds the built tokenvault and provider-sandbox; 'make demo' builds them)" >&2
    exit 2
fi
bin=$(cd "$1" && pwd)
scripts=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "demo: python3 is needed for the browser stand-in" >&2; exit 1; }
# The sandbox's old name still starts it, for scripts written before it served six providers' shapes.
if [ -x "$bin/webex-sandbox" ]; then
    "$bin/webex-sandbox" --help | grep -q '^usage: provider-sandbox' || { echo "demo: webex-sandbox --help failed" >&2; exit 1; }
fi

# ---- presentation -------------------------------------------------------------------------------------------
if [ -t 1 ]; then bold=$'\e[1m' dim=$'\e[2m' red=$'\e[31m' off=$'\e[0m'; else bold='' dim='' red='' off=''; fi
# say LINE…: a comment block, one argument per line, after a blank line.
say() { local line; printf '\n'; for line in "$@"; do printf '%s# %s%s\n' "$dim" "$line" "$off"; done; }
# An argument as a reader would type it: bare when safe, single-quoted otherwise.
shown() {
    local out='' word
    for word in "$@"; do
        if [[ $word =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=" $word"; else out+=" '${word//\'/\'\\\'\'}'"; fi
    done
    printf '%s' "${out# }"
}
prompt() { printf '%s$ %s%s\n' "$bold" "$1" "$off"; }
fail() { printf '%sdemo: FAILED: %s%s\n' "$red" "$*" "$off" >&2; exit 1; }

# run CMD ARGS…: print "$ CMD ARGS…", run it, stop the tour if it fails.
run() {
    prompt "$(shown "$@")"
    "$@" || fail "exit $? from: $(shown "$@")"
}
# run_from FILE CMD ARGS…: the same with standard input from FILE.
run_from() {
    local file=$1; shift
    prompt "$(shown "$@") < $(shown "$file")"
    "$@" < "$file" || fail "exit $? from: $(shown "$@")"
}
# expect_exit N CMD ARGS…: a step that must fail with exit code N.
expect_exit() {
    local want=$1 code=0; shift
    prompt "$(shown "$@")"
    "$@" || code=$?
    [ "$code" -eq "$want" ] || fail "expected exit $want, got $code from: $(shown "$@")"
    printf '%s(exit %s, as expected)%s\n' "$dim" "$code" "$off"
}
# shell 'TEXT': print shell text literally and run it in this shell (for eval and pipes).
shell() {
    prompt "$1"
    eval "$1" || fail "exit $? from: $1"
}

# ---- a private workspace, removed on exit --------------------------------------------------------------------
started=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/tokenvault-demo.XXXXXX")
sandbox_pid=''
cleanup() {
    local status=$?
    if [ -n "$sandbox_pid" ]; then kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true; fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The tour must not see (or touch) the caller's own vault or passphrase.
unset TOKENVAULT_VAULT TOKENVAULT_PASSPHRASE TOKENVAULT_PASSPHRASE_FILE BROWSER
export XDG_DATA_HOME="$work/data"
export PATH="$bin:$PATH"
cd "$work"
printf '%stokenvault demo: a temporary vault in %s, tokenvault from %s%s\n' "$bold" "$work" "$bin" "$off"

# ---- the provider: provider-sandbox on a random port ------------------------------------------------------------
say "Start provider-sandbox, a Webex-compatible OAuth provider on 127.0.0.1 (a test stand-in: the secret below" \
    "protects nothing). Register one integration with the redirect URI tokenvault will listen on."
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
callback_port=$(free_port)
redirect_uri="http://127.0.0.1:$callback_port/callback"
client_id="C$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
( umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' > "$work/client-secret" )
scopes="spark:people_read spark:kms identity:tokens_write"
prompt "$(shown provider-sandbox --client-id "$client_id" --client-secret '…' --redirect-uri "$redirect_uri" --scopes "$scopes" --device-interval 1) &"
provider-sandbox --client-id "$client_id" --client-secret "$(cat "$work/client-secret")" \
    --redirect-uri "$redirect_uri" --scopes "$scopes" --device-interval 1 \
    > "$work/sandbox.out" 2> "$work/sandbox.err" &
sandbox_pid=$!
api=''
for _ in $(seq 100); do
    api=$(head -n 1 "$work/sandbox.out" 2>/dev/null || true)
    [ -n "$api" ] && break
    kill -0 "$sandbox_pid" 2>/dev/null || fail "provider-sandbox exited: $(cat "$work/sandbox.err")"
    sleep 0.1
done
[ -n "$api" ] || fail "provider-sandbox printed no base URL within 10 s"
echo "$api"

# ---- init ------------------------------------------------------------------------------------------------------
say "The passphrase comes from a file, as it would under cron: TOKENVAULT_PASSPHRASE_FILE must be owned by you" \
    "and mode 0600 or 0400 (anything looser is refused). On a terminal, without it, tokenvault asks on /dev/tty."
shell "( umask 077; printf '%s\n' 'correct horse battery staple' > passphrase )"
shell 'export TOKENVAULT_PASSPHRASE_FILE=$PWD/passphrase'
run ls -l passphrase
say "A new vault at the default path \$XDG_DATA_HOME/tokenvault/vault.db; --kdf interactive (Argon2id, 64 MiB)" \
    "keeps the tour fast; the default is moderate (256 MiB)."
run tokenvault init --kdf interactive
run ls -la "$XDG_DATA_HOME/tokenvault"

# ---- add -------------------------------------------------------------------------------------------------------
say "Register the integration. The client secret is read from standard input, never from the command line."
run_from client-secret tokenvault add sandbox --client-id "$client_id" --redirect-uri "$redirect_uri" \
    --scopes "$scopes" --api-base "$api" --client-secret-stdin
run tokenvault integrations

# ---- authorize -------------------------------------------------------------------------------------------------
say "Authorize: tokenvault listens on 127.0.0.1:$callback_port (the registered redirect URI) and opens \$BROWSER." \
    "The stand-in browser fetches the authorize URL (the sandbox approves at once), then follows the redirect" \
    "back to tokenvault's listener with the code."
cp "$scripts/demo-browser.py" "$work/browser"
chmod 0755 "$work/browser"
export DEMO_BROWSER_LOG="$work/browser.log"
shell "BROWSER=\$PWD/browser tokenvault authorize alice --timeout 30"
cat "$DEMO_BROWSER_LOG"; : > "$DEMO_BROWSER_LOG"
shell "BROWSER=\$PWD/browser tokenvault authorize bob --timeout 30"
: > "$DEMO_BROWSER_LOG"
say "The device grant: tokenvault shows a code and polls; here the stand-in browser opens the verification URL."
shell "BROWSER=\$PWD/browser tokenvault authorize carol --device"
cat "$DEMO_BROWSER_LOG"

# ---- list ------------------------------------------------------------------------------------------------------
say "list (alias status) reads only plain metadata: no passphrase needed."
run tokenvault list

# ---- env, token, exec, whoami ----------------------------------------------------------------------------------
say "env prints a shell export; eval it. (Shown with the token cut short.)"
shell "tokenvault env alice | sed -E \"s/='(.{12}).*'\$/='\\1…'/\""
shell 'eval "$(tokenvault env alice)"'
shell 'echo "WEBEX_ACCESS_TOKEN holds ${#WEBEX_ACCESS_TOKEN} characters"'
say "token prints the bare access token, for scripts that want it on stdout."
shell '[ "$(tokenvault token alice)" = "$WEBEX_ACCESS_TOKEN" ] && echo "token and env agree"'
say "exec runs a program with WEBEX_ACCESS_TOKEN in its environment (never on argv); its exit status is passed on."
cat > "$work/me.py" <<'PY'
import json, os, sys, urllib.request
api = sys.argv[1]
req = urllib.request.Request(api + "/people/me", headers={"Authorization": "Bearer " + os.environ["WEBEX_ACCESS_TOKEN"]})
me = json.load(urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10))
print("people/me says:", me["displayName"], me["emails"][0])
PY
run tokenvault exec bob -- python3 me.py "$api"
expect_exit 3 tokenvault exec bob -- sh -c 'exit 3'
say "whoami asks the provider who the token belongs to."
run tokenvault whoami carol

# ---- refresh ---------------------------------------------------------------------------------------------------
say "refresh one account now: the provider resets the lifetimes; old and new expiries go to the audit log."
run tokenvault refresh alice
say "refresh-all is the cron job. --due-within picks accounts whose access token lapses soon (none do),"
run tokenvault refresh-all --due-within 1d
say "and by default it leaves pairs changed in the last 10 minutes alone (--skip-recent); 0 refreshes all."
run tokenvault refresh-all --skip-recent 0
run tokenvault list

# ---- audit -----------------------------------------------------------------------------------------------------
say "The audit log: every event that changed a token's lifetime or existence (no secrets; no passphrase to read)."
run tokenvault audit
say "--verify checks the chained MAC of every entry (needs the passphrase; exit 7 if one was edited or removed)."
run tokenvault audit --verify

# ---- revoke ----------------------------------------------------------------------------------------------------
say "revoke asks Webex to revoke (DELETE /v1/authorizations?clientId=…) when the token may, then deletes the pair."
run tokenvault revoke alice
say "Webex revokes every grant that person gave the integration. alice, bob and carol are all the sandbox's one" \
    "user, Pat, so bob's and carol's refresh tokens are dead too: revoke names them and marks them needs-reauth;" \
    "refresh-all reports them, goes on, and exits 5."
expect_exit 5 tokenvault refresh-all --skip-recent 0
run tokenvault list
say "Authorizing again replaces carol's pair; --local only deletes bob's pair from the vault."
shell "BROWSER=\$PWD/browser tokenvault authorize carol --timeout 30"
run tokenvault revoke bob --local
run tokenvault list
say "Errors say what went wrong and what to do; the exit code tells scripts which kind (4: no such account)."
expect_exit 4 tokenvault token alice
run tokenvault audit carol
run tokenvault audit --verify

printf '\n%sdemo: every step passed in %d s. Removing the temporary vault and stopping the sandbox.%s\n' \
    "$bold" "$((SECONDS - started))" "$off"
