# Shared by the CLI tests (sourced after cd to the repository root): $T, a
# scratch folder $tmp removed at exit together with the background processes
# listed in $pids, and the two checks every test uses. A test ends with
# `[ $fails -eq 0 ]`.
T=${T:-bin/tandem}
tmp=$(mktemp -d)
pids=()
fails=0
cli_cleanup() {
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cli_cleanup EXIT

check() { # description, then a command that must succeed
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}

# expect_error description text command...: the command must fail (exit 1..127,
# not a signal) and its stderr contain text; with CLI_ONE_LINE_ERRORS=1 the
# error must also be a single line.
expect_error() {
    local what=$1 want=$2; shift 2
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qF -- "$want" <<<"$err" &&
       { [ "${CLI_ONE_LINE_ERRORS:-0}" != 1 ] || [ "$(wc -l <<<"$err")" -eq 1 ]; }; then
        echo "ok   $what"
    else
        echo "FAIL $what (exit $rc): $err"; fails=$((fails + 1))
    fi
}
