# shellcheck shell=bash
# Helpers shared by scripts/quickstart, scripts/test and scripts/dev-postgres.
# Source it; it defines functions only and changes no shell options.

# Prints a progress line on stderr, so stdout stays for what callers capture.
say() {
    printf '==> %s\n' "$*" >&2
}

warn() {
    printf 'warning: %s\n' "$*" >&2
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# port_in_use PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port [PREFERRED]: prints PREFERRED when it is free, else a free port in 20000-59999.
# A port found free can still be taken before it is bound; callers check that their
# server really started.
free_port() {
    local preferred=${1:-} port tries=0
    if [[ -n $preferred ]] && ! port_in_use "$preferred"; then
        printf '%s\n' "$preferred"
        return 0
    fi
    while ((tries < 200)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if ! port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
        tries=$((tries + 1))
    done
    die "no free TCP port found on 127.0.0.1"
}

# http_status HOST PORT PATH: prints the HTTP status code of a GET, or nothing when
# the server does not answer. Plain bash, so waiting needs no curl.
http_status() {
    local host=$1 port=$2 path=$3 line=''
    {
        exec 3<>"/dev/tcp/$host/$port" &&
            printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' \
                "$path" "$host" "$port" >&3 &&
            IFS=' ' read -r -t 5 line <&3
        exec 3<&- 3>&-
    } 2>/dev/null
    line=${line%$'\r'}
    [[ $line == HTTP/* ]] || return 0
    line=${line#* }
    printf '%s\n' "${line%% *}"
}

# wait_ready NAME PID PORT LOG [SECONDS]: waits until GET /readyz on 127.0.0.1:PORT answers 200.
# Fails early, showing the end of LOG, if the process PID exits first.
wait_ready() {
    local name=$1 pid=$2 port=$3 log=$4 limit=${5:-60} waited=0
    while [[ $(http_status 127.0.0.1 "$port" /readyz) != 200 ]]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            printf 'error: %s exited before it was ready; the end of %s:\n' "$name" "$log" >&2
            tail -n 20 "$log" >&2 || true
            return 1
        fi
        if ((waited >= limit * 5)); then
            printf 'error: %s was not ready after %ss; the end of %s:\n' "$name" "$limit" "$log" >&2
            tail -n 20 "$log" >&2 || true
            return 1
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
}

# wait_tcp NAME PID PORT LOG [SECONDS]: like wait_ready, for a server without HTTP (gRPC).
wait_tcp() {
    local name=$1 pid=$2 port=$3 log=$4 limit=${5:-60} waited=0
    until port_in_use "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            printf 'error: %s exited before it listened on port %s; the end of %s:\n' \
                "$name" "$port" "$log" >&2
            tail -n 20 "$log" >&2 || true
            return 1
        fi
        if ((waited >= limit * 5)); then
            printf 'error: %s did not listen on port %s within %ss; the end of %s:\n' \
                "$name" "$port" "$limit" "$log" >&2
            tail -n 20 "$log" >&2 || true
            return 1
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
}

# stop_process PID [NAME]: SIGTERM (graceful shutdown), then SIGKILL after 10 seconds.
stop_process() {
    local pid=$1 name=${2:-process} waited=0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= 50)); then
            warn "$name (pid $pid) ignored SIGTERM for 10s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    wait "$pid" 2>/dev/null || true
}

# random_secret: 32 random bytes as base64url without padding (43 characters).
random_secret() {
    head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

# url_with_database URL NAME: the same postgres URL naming database NAME instead.
url_with_database() {
    local url=$1 name=$2 query='' rest
    if [[ $url == *\?* ]]; then
        query="?${url#*\?}"
        url=${url%%\?*}
    fi
    rest=${url#*://}
    if [[ $rest == */* ]]; then
        url=${url%/*}
    fi
    printf '%s/%s%s\n' "$url" "$name" "$query"
}

# redact_url URL: URL with any password replaced by ***, for messages and logs.
redact_url() {
    local url=$1 scheme rest userinfo
    scheme=${url%%://*}
    rest=${url#*://}
    if [[ $rest == *@* ]]; then
        userinfo=${rest%%@*}
        if [[ $userinfo == *:* ]]; then
            rest="${userinfo%%:*}:***@${rest#*@}"
        fi
    fi
    printf '%s://%s\n' "$scheme" "$rest"
}

# ensure_venv VENV REQUIREMENTS WHAT: a Python 3.11+ virtualenv at VENV holding the pins
# of REQUIREMENTS, (re)built only when the pins changed. WHAT names it in messages.
ensure_venv() {
    local venv=$1 requirements=$2 what=$3
    command -v python3 >/dev/null 2>&1 ||
        { printf 'error: python3 not found; install Python 3.11+ with venv (Debian/Ubuntu: apt-get install python3 python3-venv)\n' >&2; return 1; }
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        { printf 'error: %s needs Python 3.11 or newer; python3 is %s\n' "$what" "$(python3 --version 2>&1)" >&2; return 1; }
    if [[ -x $venv/bin/python ]] && cmp -s "$requirements" "$venv/.requirements"; then
        return 0
    fi
    say "creating $venv with $what (pinned in ${requirements#"$PWD"/})"
    python3 -m venv --clear "$venv" ||
        { printf 'error: python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)\n' >&2; return 1; }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement "$requirements" || return 1
    cp "$requirements" "$venv/.requirements"
}
