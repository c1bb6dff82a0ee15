# The Debian mirror this machine's apt uses, for scripts/offline-images and scripts/lib.sh.
# Sourced, not run. Never a hard-coded host: only what /etc/apt/sources.list{,.d} say.

# "URI SUITE" for every enabled `deb` source of this machine, in order, without trailing slashes.
apt_sources() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk '
            function flush(  n, m, i, j, U, S) {
                if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) !~ /^no/) {
                    n = split(uris, U, /[ \t]+/); m = split(suites, S, /[ \t]+/)
                    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
                        if (U[i] != "" && S[j] != "") print U[i], S[j]
                }
                types = uris = suites = enabled = field = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ {
                if (field == "uris") uris = uris " " $0
                if (field == "suites") suites = suites " " $0
                next
            }
            {
                field = tolower($0); sub(/:.*/, "", field)
                value = $0; sub(/^[^:]*:[ \t]*/, "", value)
                if (field == "types") types = value
                else if (field == "uris") uris = value
                else if (field == "suites") suites = value
                else if (field == "enabled") enabled = value
            }
            END { flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '$1 == "deb" {
            i = 2
            if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if (i + 1 <= NF) print $i, $(i + 1)
        }' "$f"
    done
}

# The first Debian archive (not security) mirror in the apt sources; empty when there is none.
debian_mirror() {
    local uri suite
    while read -r uri suite; do
        case "$uri" in http://*|https://*|file:/*) ;; *) continue ;; esac
        case "$suite" in *-security|*/updates) continue ;; esac
        case "$uri" in *security*) continue ;; esac
        echo "$uri"
        return 0
    done < <(apt_sources | sed -E 's#^([^ ]*[^/ ])/* #\1 #')
}

# "URI SUITE" lines for Debian SUITE on MIRROR, with the -updates and -security pockets only where this
# machine uses them for its own release (a local mirror may lack them).
debian_suite_sources() {
    local suite=$1 mirror=$2 uri pocket security=
    local -i updates=0
    echo "$mirror $suite"
    while read -r uri pocket; do
        case "$pocket" in
            *-updates) [ "$uri" = "$mirror" ] && updates=1 ;;
            *-security) [ -n "$security" ] || security=$uri ;;
        esac
    done < <(apt_sources | sed -E 's#^([^ ]*[^/ ])/* #\1 #')
    [ "$updates" = 0 ] || echo "$mirror $suite-updates"
    [ -z "$security" ] || echo "$security $suite-security"
}
