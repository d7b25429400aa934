"""One script, pasted into a root shell on the server, that prepares it for the tunnel.

The script is POSIX sh under `set -eu`: a header that assigns every value (account, key line,
sshd settings) in single quotes, then a fixed body that only ever reads those variables. No value
is ever spliced into the body's code, so quoting the header is the whole of its safety. Values
that no quoting makes safe for the tools the body hands them to (`useradd`, a `Match User`
pattern, a file name) are refused: the script then stops before it changes anything.

The paths it touches and the commands it runs are read from the environment first, so that a test
(or a server laid out differently) can point them elsewhere; the defaults are the system's own.
"""

from __future__ import annotations

import re

import asyncssh

from .keys import export_host_key
from .server_hello import ServerSoftware

# Names that sh, useradd, file names and sshd_config's `Match User` patterns all take literally:
# letters, digits, `.`, `_`, `-` and `@` (directory accounts such as `user@example.org`), not
# starting with `-` (an option to every tool) nor `.` (a hidden or relative file name). sshd
# reads `*`, `?`, `!` and `,` in a Match pattern, and `"`, `#` and `\\` in its config, as syntax.
_SAFE_ACCOUNT = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9._@-]*")
# Longer than any account name a Unix system accepts (32 on Linux, 256 in LDAP directories).
_MAX_ACCOUNT_LENGTH = 256

# How long the account's step may run: it makes a folder and writes one small file, well under a
# second even on a network home; past that a process of the account holds it (see find_timeout).
_STEP_SECONDS = 20
# How much of what the step prints root is shown: its own lines are a few hundred bytes; code of
# the account's running in it may print without end.
_STEP_OUTPUT_BYTES = 16 * 1024

# The script runs in a shell of its own, fed by a here-document: pasted into a root shell, its
# `set -e` and `exit` end that child, never the user's own session. The quoted delimiter turns
# off every expansion in the text; no line of the script is the delimiter alone.
_DELIMITER = "SSH_CALLHOME_SCRIPT"
_OPENING = f"""\
sh -eu <<'{_DELIMITER}'
# ssh_callhome: prepares this server for Home Assistant's tunnel, as root.
# It prints what it does; running it again changes nothing that is already in place."""

# Where the script differs between servers is only in the body it runs; the header's variables
# are the same for both.
_PATHS = """\
SSHD_CONFIG="${SSHD_CONFIG:-/etc/ssh/sshd_config}"
SSHD_CONFIG_DIR="${SSHD_CONFIG_DIR:-/etc/ssh/sshd_config.d}"
SSHD="${SSHD:-$(command -v sshd || echo /usr/sbin/sshd)}"
SSHD_RELOAD="${SSHD_RELOAD:-}"
"""

_COMMON_BODY = r"""
# Every file and folder starts as root's (or the account's) alone, whatever umask the pasted-into
# shell has (000 in some): what must be readable by others is made so by an explicit chmod once
# its content is complete, never in between.
umask 077
changes=0
created=0
# Text the script did not write itself (passwd fields, what the account's step or sshd print)
# reaches root's terminal with every byte but printable ASCII and line breaks shown as `?`: no
# escape sequence gets through. A range, not [:print:]: BusyBox's tr may be built without classes.
safe() { LC_ALL=C tr -c ' -~\n' '?'; }
say() { printf 'ssh_callhome: %s\n' "$*" | safe; }
fail() { printf 'ssh_callhome: %s\n' "$*" | safe >&2; exit 1; }
changed() { say "$*"; changes=$((changes + 1)); }
# A refusal for the reason $1, then what to do ($2...): it says whether anything changed first.
refuse() {
    reason=$1
    shift
    if [ "$changes" = 0 ]; then
        fail "$reason: nothing changed.${*:+ $*}"
    fi
    fail "$reason: stopped, the changes above stay.${*:+ $*}"
}

[ "$(id -u)" = 0 ] || fail "run this as root (sudo -i first)"

# as_user NAME UID GID VARIABLE=VALUE...: runs the sh code $STEP as that account through
# $runner, with only the environment given (env -i: nothing root's shell exports reaches the
# account's processes, which read each other's), stdin from /dev/null, its stdout and stderr on
# stdout, and in a session of its own ($session): root's terminal is then not its controlling
# terminal, so no process of the account (they may ptrace this one) can push keys into root's
# shell (TIOCSTI). su passes no arguments on, so $STEP goes in the environment for it. Every
# descriptor root's shell holds beyond the standard three (opened by hand, or handed down by
# what started it) is closed for it: the account's processes could read or write through it
# with root's access.
as_user() {
    user=$1 user_uid=$2 user_gid=$3
    shift 3
    case $runner in
        setpriv) $step_timeout env -i "$@" $session setpriv --reuid="$user_uid" \
            --regid="$user_gid" --init-groups -- sh -eu -c "$STEP" ;;
        runuser) $step_timeout env -i "$@" $session runuser -u "$user" -- sh -eu -c "$STEP" ;;
        su) $step_timeout env -i "$@" STEP="$STEP" $session su -s /bin/sh "$user" \
            -c 'exec sh -eu -c "$STEP"' ;;
    esac </dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
}

# timeout (coreutils and BusyBox both have it) stops the step after $STEP_SECONDS: a process of
# the account may stop the step (ptrace), and root's paste would wait for as long as it likes.
# Without one that takes `timeout SECONDS COMMAND` (BusyBox before 1.30 wants -t), no bound.
find_timeout() {
    step_timeout=
    if timeout 1 true </dev/null >/dev/null 2>&1; then
        step_timeout="timeout $STEP_SECONDS"
    fi
}

# util-linux's setsid -w waits for the child it forks when its caller leads a process group;
# BusyBox's setsid has no -w, and forks (without waiting) only in that case. A command of this
# non-interactive shell never leads its group, so either runs it in place, and waits.
find_session() {
    for session in 'setsid -w' setsid; do
        if $session true </dev/null >/dev/null 2>&1; then
            return
        fi
    done
    refuse "no setsid here to write as $ACCOUNT away from this terminal" \
        "Put the key line in the account's ~/.ssh/authorized_keys yourself"
}

# The kernel hands a session keyring down across every change of uid, and a process possesses
# the keys of its own: the account's step would read what root's session holds (Kerberos
# tickets, cifscreds, `keyctl add ... @s`). keyutils' `keyctl new_session` gives this shell, and
# so every step it starts, a new empty one instead; root's own shell keeps its keyring.
leave_roots_keyring() {
    if command -v keyctl >/dev/null && keyctl new_session >/dev/null 2>&1; then
        return
    fi
    say "note: no keyctl (keyutils) here: the step run as $ACCOUNT shares this shell's kernel"
    say "  session keyring; if it holds secrets, run this from a fresh login instead"
}

# The first of setpriv, runuser (util-linux: Debian, Fedora) and su (BusyBox: Alpine) that does
# run a command as another account (BusyBox's setpriv applet has no --reuid): tried as root, so
# that it is found before the account is created.
find_runner() {
    find_timeout
    find_session
    leave_roots_keyring
    STEP='id -u'
    for runner in setpriv runuser su; do
        if command -v "$runner" >/dev/null \
            && [ "$(as_user root 0 0 PATH="$PATH" HOME=/)" = 0 ]; then
            return
        fi
    done
    refuse "no setpriv, runuser nor su here that runs a command as $ACCOUNT" \
        "Put the key line in the account's ~/.ssh/authorized_keys yourself"
}

# The account's passwd entry in $entry, empty when there is none. getent (like id) reads a name
# of digits alone as a uid: an entry under another name is another account, never touched.
# Without getent (BusyBox alone) no account is known for sure: /etc/passwd is not all of them.
read_account() {
    command -v getent >/dev/null || refuse "no getent here to look the account $ACCOUNT up" \
        "Install it (Alpine: apk add musl-utils), or follow the steps by hand"
    entry=$(getent passwd "$ACCOUNT") || entry=
    [ -z "$entry" ] || [ "${entry%%:*}" = "$ACCOUNT" ] \
        || refuse "the name $ACCOUNT finds the account ${entry%%:*}"
}

account_field() { printf '%s\n' "$entry" | cut -d: -f"$1"; }

# The account's shadow entry, from getent (a directory too) or /etc/shadow; empty without one.
shadow_entry() {
    { getent shadow "$ACCOUNT" 2>/dev/null \
        || NAME=$ACCOUNT awk -F: '$1 == ENVIRON["NAME"]' /etc/shadow 2>/dev/null || true; } \
        | head -n 1
}

password_field() { shadow_entry | cut -d: -f2; }

# Why the shadow entry's aging keeps the tunnel out, as pam_unix and sshd reckon it in days since
# 1970 (an empty field or -1 is no limit): `expired` (past its expiry date: sshd refuses with or
# without PAM), and with PAM (its account check holds keys to aging too) `inactive` (password
# unchanged past its maximum age and the grace days after) or `must_change` (last change on day 0,
# or past the maximum age: sshd lets the key in and refuses every forward). Nothing otherwise.
aging_refusal() {
    uses_pam && pam=1 || pam=0
    shadow_entry | TODAY=$(($(date +%s) / 86400)) PAM=$pam awk -F: '
        function limit(value) { return value != "" && value != -1 }
        {
            today = ENVIRON["TODAY"]; last = $3; max = $5; inactive = $7; expire = $8
            if (limit(expire) && today > expire + 0) print "expired"
            else if (ENVIRON["PAM"] != 1) exit
            else if (last == "0") print "must_change"
            else if (limit(last) && limit(max) && limit(inactive) \
                && today - last > max + inactive) print "inactive"
            else if (limit(last) && limit(max) && today - last > max) print "must_change"
            exit
        }'
}

check_not_aged() {
    case "$(aging_refusal)" in
        expired) refuse "account $ACCOUNT has expired (chage -l $ACCOUNT says when), and sshd\
 lets no key in to it" "If the tunnel may have it: chage -E -1 $ACCOUNT, then run this again" ;;
        inactive | must_change) refuse "the password of account $ACCOUNT must be changed (its\
 age, or a first-login rule), and sshd with PAM then refuses the tunnel's forward" \
            "If the tunnel may have it: chage -d $(date +%F) -M -1 -I -1 $ACCOUNT (no password" \
            "aging), then run this again" ;;
    esac
}

# A locked account (password field `!...`, as BusyBox's adduser -D leaves it, or *LK*) gets no
# key in from sshd without PAM (locks_out_keys): checked before anything changes.
check_not_locked() {
    case "$(password_field)" in
        '!'* | '*LK*') ;;
        *) return ;;
    esac
    locks_out_keys || return 0
    refuse "account $ACCOUNT is locked (its password field starts with ! or is *LK*), and\
 sshd without PAM lets no key in to a locked account" "Unlock it without giving it a" \
        "password: usermod -p '*' $ACCOUNT (BusyBox: echo '$ACCOUNT:*' | chpasswd -e)," \
        "then run this again"
}

create_account() {
    command -v useradd >/dev/null \
        || refuse "no useradd here" "Create the account $ACCOUNT, then run this again"
    shell=$(account_shell)
    # '*' is no password at all (nothing hashes to it), and unlike a locked '!' (useradd's own
    # default) sshd without PAM and Dropbear accept keys for it.
    useradd --create-home --password '*' --shell "$shell" -- "$ACCOUNT"
    # A maximum password age from login.defs (hardened servers: 90 days) would shut the
    # tunnel out that many days later (sshd with PAM): the account gets no password aging.
    # BusyBox has no chage, nor useradd: where useradd is, shadow's chage is too.
    aging=
    if command -v chage >/dev/null; then
        chage -M -1 -I -1 -E -1 -- "$ACCOUNT"
        aging=", and no password aging"
    fi
    changed "account $ACCOUNT: created, with no password and the shell $shell$aging"
    created=1
    read_account
}

ensure_account() {
    read_account
    if [ -z "$entry" ]; then
        create_account
    else
        [ "$(account_field 3)" != 0 ] || refuse \
            "account $ACCOUNT is root (uid 0): the tunnel must not log in as root" \
            "Name an account of its own"
        check_not_locked
        check_not_aged
        say "account $ACCOUNT: exists, left as it is"
    fi
    uid=$(account_field 3)
    gid=$(account_field 4)
    home=$(account_field 6)
    check_home
    check_home_mode
}

# The home is the account's own, and the path its passwd entry names leads there and nowhere
# else: a shared home (RHEL's operator lives in /root, Alpine's nobody in /) or one the account
# swapped for a link is somebody else's folder, where the account gets no keys.
check_home() {
    # passwd keeps the home as typed (`useradd --home-dir /home/x/`); readlink drops the
    # trailing slashes, so they go before the comparison (a lone / stays).
    home=$(printf '%s\n' "$home" | sed 's|\(.\)/*$|\1|')
    [ -n "$home" ] && [ -d "$home" ] || refuse "account $ACCOUNT has no home folder"
    [ "$home" != / ] || refuse "account $ACCOUNT has / for home" \
        "Give the tunnel an account of its own"
    [ "$(readlink -f -- "$home")" = "$home" ] \
        || refuse "the home $home of $ACCOUNT is, or passes through, a symbolic link" "Check it"
    [ "$(stat -c %u -- "$home")" = "$uid" ] \
        || refuse "the home $home of $ACCOUNT belongs to another account" \
            "Give the tunnel an account of its own"
}

# sshd (StrictModes) and Dropbear ignore the keys in a home its group or others may write to. A
# home the script made just now is its own to fix; another is the user's.
check_home_mode() {
    [ $((0$(stat -c %a -- "$home") & 022)) != 0 ] || return 0
    if [ "$created" = 1 ]; then
        chmod go-w -- "$home"
        changed "$home: no longer writable by its group and others, as sshd wants"
        return
    fi
    refuse "the home $home of $ACCOUNT is writable by its group or by others: sshd and\
 Dropbear ignore the keys in it" "Run chmod g-w,o-w $home, then run this again"
}

# Run as the account (as_user). Its lines start with `+` for a change, a space for a note, `!`
# for the reason it stopped.
INSTALL_KEY_AS_ACCOUNT='
cd /
say() { printf " %s\n" "$*"; }
changed() { printf "+%s\n" "$*"; }
fail() { printf "!%s\n" "$*"; exit 1; }
[ "$(id -u)" = "$uid" ] || fail "not running as $ACCOUNT: nothing touched"
owned_with_mode() { [ "$(stat -c "%u %a" -- "$1")" = "$uid $2" ]; }
key_in_place() {
    [ -f "$keys" ] && owned_with_mode "$keys" 600 && grep -qxF -e "$KEY_LINE" "$keys" \
        && [ "$(grep -cF -e "$KEY_BLOB" "$keys")" = 1 ]
}
for path in "$keys_dir" "$keys"; do
    [ ! -L "$path" ] || fail "$path is a symbolic link: not touched, check it"
done
if [ ! -d "$keys_dir" ]; then
    mkdir -m 700 -- "$keys_dir"
    changed "$keys_dir: created"
fi
[ "$(stat -c %u -- "$keys_dir")" = "$uid" ] \
    || fail "$keys_dir belongs to another account: not touched, check it"
if ! owned_with_mode "$keys_dir" 700; then
    chmod 700 -- "$keys_dir"
    changed "$keys_dir: mode 700 set"
fi
# An account the script created holds this key alone: whatever useradd put there (keys from
# /etc/skel, or those of a deleted account whose home it took over) was never chosen.
holds_this_key_alone() { [ "$created" != 1 ] || [ "$(cat -- "$keys")" = "$KEY_LINE" ]; }
if key_in_place && holds_this_key_alone; then
    say "$keys: holds the key line of this tunnel, unchanged"
    exit
fi
new=$(mktemp "$keys_dir/.authorized_keys.XXXXXX")
# Whatever stops the step (a failed move: an immutable file), the copy of the keys goes with it.
drop_new() { rm -f -- "$new"; }
trap drop_new EXIT
# Every other key stays; any older line for this key (other ports) goes. As bytes:
# in a UTF-8 locale grep leaves out lines it reads as binary (a Latin-1 comment).
if [ -f "$keys" ] && [ "$created" = 1 ]; then
    say "$keys: the keys useradd left there (from /etc/skel or an old home) dropped"
elif [ -f "$keys" ] && [ ! -r "$keys" ]; then
    say "WARNING: $ACCOUNT cannot read $keys, so neither could sshd: replaced"
elif [ -f "$keys" ]; then
    LC_ALL=C grep -a -vF -e "$KEY_BLOB" "$keys" >"$new" || [ $? = 1 ]
fi
printf "%s\n" "$KEY_LINE" >>"$new"
chmod 600 -- "$new"
mv -f -- "$new" "$keys" || fail "$keys cannot be replaced (immutable, or on a read-only file\
 system?): not changed"
changed "$keys: the key line of this tunnel installed, owner $ACCOUNT and mode 600"
'

# What the account's step printed (its first $STEP_OUTPUT_BYTES), every line marked as the
# account's: a process of the account may run code of its own in the step (ptrace), so nothing
# the step prints speaks in the script's name. Any other tool's line is shown whole.
show_report() {
    [ -z "$report" ] || printf '%s\n' "$report" \
        | sed "s/^[+ !]\{0,1\}/ssh_callhome: [as $ACCOUNT] /" | safe
    [ "$output_size" -le "$STEP_OUTPUT_BYTES" ] \
        || say "[as $ACCOUNT] ...: $((output_size - STEP_OUTPUT_BYTES)) more bytes not shown"
}

# The step gets root's PATH (the commands this script found) and its own values, nothing else.
# What it prints goes to a file of root's (mode 600: umask 077), not to a pipe this shell reads
# to its end: a process the account leaves behind holding it keeps nobody waiting. The file comes
# from the system's own mktemp (command -p: the standard PATH), made as root.
install_key() {
    keys_dir="$home/.ssh"
    keys="$keys_dir/authorized_keys"
    STEP=$INSTALL_KEY_AS_ACCOUNT
    step_output=$(command -p mktemp)
    trap 'rm -f -- "$step_output"' EXIT
    status=0
    as_user "$ACCOUNT" "$uid" "$gid" PATH="$PATH" HOME="$home" ACCOUNT="$ACCOUNT" \
        KEY_LINE="$KEY_LINE" KEY_BLOB="$KEY_BLOB" uid="$uid" created="$created" \
        keys_dir="$keys_dir" keys="$keys" >"$step_output" || status=$?
    output_size=$(($(wc -c <"$step_output")))
    report=$(head -c "$STEP_OUTPUT_BYTES" -- "$step_output")
    # A step that stops half way (.ssh made, the file not) has changed something all the same.
    changes=$((changes + $(printf '%s\n' "$report" | grep -c '^+' || true)))
    case $status in
        0) show_report ;;
        # timeout's own status (coreutils), or the step's when killed by its TERM (BusyBox).
        124 | 143)
            show_report >&2
            refuse "the step as $ACCOUNT did not end within $STEP_SECONDS seconds (a process of\
 $ACCOUNT may hold it) and was stopped: the key line may not be installed" "Check $keys" ;;
        *)
            show_report >&2
            refuse "the key line is not installed" ;;
    esac
}
"""

_OPENSSH_BODY = r"""
account_shell() {
    for shell in /usr/sbin/nologin /sbin/nologin /bin/false; do
        [ -x "$shell" ] && { echo "$shell"; return; }
    done
    echo /bin/false
}

includes_drop_ins() {
    awk -v wanted="$SSHD_CONFIG_DIR/*.conf" '
        tolower($1) == "include" { for (i = 2; i <= NF; i++) if ($i == wanted) found = 1 }
        END { exit !found }' "$SSHD_CONFIG"
}

drop_in="$SSHD_CONFIG_DIR/$DROP_IN"

# Checked before anything changes: a file of this name the script did not write is left to you.
check_drop_in_is_ours() {
    [ ! -e "$drop_in" ] || [ "$(head -n 1 "$drop_in")" = "$DROP_IN_MARKER" ] \
        || refuse "$drop_in was not written by this script" "Move it away," \
            "or merge this tunnel's block into it yourself"
}

# sshd without PAM (Alpine's is built so; UsePAM no) lets no key in to a locked account: sshd -T
# has no usepam line at all then. A configuration sshd -T cannot read counts as without.
locks_out_keys() { ! uses_pam; }
uses_pam() { "$SSHD" -T -f "$SSHD_CONFIG" 2>/dev/null | grep -qix 'usepam yes'; }

# The values of the keyword $1 in the drop-in and in the new block, on one line: every tunnel on
# the account keeps its ports (sshd takes a keyword's first value only, so one file holds them
# all). Sorted by port, each once, so that a run again writes the very same text.
merged_values() {
    { [ ! -e "$drop_in" ] || cat "$drop_in"; printf '%s\n' "$MATCH_BLOCK"; } \
        | KEYWORD="$1" awk '$1 == ENVIRON["KEYWORD"] { for (i = 2; i <= NF; i++) print $i }' \
        | awk -F: '{ print $NF, $0 }' | LC_ALL=C sort -k1,1n -k2,2 -u | cut -d' ' -f2 \
        | paste -s -d' ' -
}

# The new block, its PermitListen and PermitOpen naming the ports of the drop-in's block too.
merged_block() {
    printf '%s\n' "$MATCH_BLOCK" | PERMIT_LISTEN=$(merged_values PermitListen) \
        PERMIT_OPEN=$(merged_values PermitOpen) awk '
        $1 == "PermitListen" || $1 == "PermitOpen" {
            match($0, /^ */)
            values = $1 == "PermitListen" ? ENVIRON["PERMIT_LISTEN"] : ENVIRON["PERMIT_OPEN"]
            print substr($0, 1, RLENGTH) $1 " " values
            next
        }
        { print }'
}

restore_drop_in() {
    if [ -f "$drop_in.previous" ]; then
        mv -f "$drop_in.previous" "$drop_in"
    else
        rm -f "$drop_in"
    fi
    [ "$folder_created" = 0 ] || rmdir -- "$SSHD_CONFIG_DIR"
}

# sshd takes an Include whose folder is missing (removed, or a config from another system) as a
# glob that matches nothing: the folder it names is made as the distributions ship it.
folder_created=0
ensure_drop_in_folder() {
    [ ! -d "$SSHD_CONFIG_DIR" ] || return 0
    mkdir -m 755 -- "$SSHD_CONFIG_DIR" || fail "cannot create $SSHD_CONFIG_DIR, which" \
        "$SSHD_CONFIG includes: create it, then run this again"
    folder_created=1
    changed "$SSHD_CONFIG_DIR: created, owner root and mode 755 ($SSHD_CONFIG includes it)"
}

# sshd's settings for the tunnel's login, as `sshd -T` gives them with every Match applied, in
# $effective; empty when sshd gives none. 127.0.0.1 stands in for Home Assistant's address,
# which is not known here.
read_effective_settings() {
    effective=$("$SSHD" -T -f "$SSHD_CONFIG" \
        -C "user=$ACCOUNT,host=localhost,addr=127.0.0.1" 2>/dev/null) || effective=
    [ -n "$effective" ] || say "WARNING: sshd -T gave no settings for $ACCOUNT: check yourself" \
        "that sshd lets it log in with its key and forward its port"
}

# The values $effective gives the keyword $1, one a line.
setting() {
    printf '%s\n' "$effective" | KEYWORD="$1" awk '$1 == ENVIRON["KEYWORD"] {
        sub(/^[^ ]+ /, ""); print }'
}

# Whether the name $1 matches one of the patterns $2 (one a line) as sshd matches names: * and
# ? as sh does. A pattern's @host part is left out: Home Assistant's address is not known here.
matches_one_of() (
    set -f  # the patterns are split into words, never expanded as file names
    for pattern in $2; do
        case "$1" in ${pattern%@*}) exit 0 ;; esac
    done
    exit 1
)

# Whether one of the account's groups matches one of the patterns $1.
in_group_of() (
    set -f
    for group in $(id -Gn "$ACCOUNT"); do
        ! matches_one_of "$group" "$1" || exit 0
    done
    exit 1
)

# Whether one of AuthorizedKeysFile's paths is $keys, where the key line is: its tokens expanded
# as sshd does (%% %h %u %U), a relative path taken from the home.
reads_keys_file() {
    setting authorizedkeysfile | HOME_DIR="$home" KEYS="$keys" USER_NAME="$ACCOUNT" \
        USER_ID="$uid" awk '
        function expanded(path,   out, i, c) {
            out = ""
            for (i = 1; i <= length(path); i++) {
                c = substr(path, i, 1)
                if (c == "%") {
                    c = substr(path, ++i, 1)
                    if (c == "h") c = ENVIRON["HOME_DIR"]
                    else if (c == "u") c = ENVIRON["USER_NAME"]
                    else if (c == "U") c = ENVIRON["USER_ID"]
                }
                out = out c
            }
            return out
        }
        {
            for (f = 1; f <= NF; f++) {
                path = expanded($f)
                if (substr(path, 1, 1) != "/") path = ENVIRON["HOME_DIR"] "/" path
                if (path == ENVIRON["KEYS"]) found = 1
            }
        }
        END { exit !found }'
}

# What in $effective keeps the tunnel out, with what to change; nothing when nothing does. The
# block does not undo an admin's AllowUsers, DisableForwarding or AuthorizedKeysFile: those
# are the server's policy, for its admin to change.
sshd_refusal() {
    [ -n "$effective" ] || return 0
    where="in $SSHD_CONFIG or a file it includes"
    forwarding=$(setting allowtcpforwarding)
    if matches_one_of "$ACCOUNT" "$(setting denyusers)"; then
        echo "sshd's DenyUsers keeps $ACCOUNT out: take it out of DenyUsers $where"
    elif [ -n "$(setting allowusers)" ] && ! matches_one_of "$ACCOUNT" "$(setting allowusers)"
    then
        echo "sshd's AllowUsers leaves $ACCOUNT out: add $ACCOUNT to AllowUsers $where"
    elif in_group_of "$(setting denygroups)"; then
        echo "sshd's DenyGroups names a group of $ACCOUNT: take it out of DenyGroups $where"
    elif [ -n "$(setting allowgroups)" ] && ! in_group_of "$(setting allowgroups)"; then
        echo "sshd's AllowGroups names no group of $ACCOUNT: add $ACCOUNT to one of them," \
            "or one of its groups to AllowGroups $where"
    elif [ "$(setting pubkeyauthentication)" = no ]; then
        echo "sshd's PubkeyAuthentication no refuses every key of $ACCOUNT: set it to yes" \
            "for $ACCOUNT $where"
    elif [ "$(setting disableforwarding)" = yes ]; then
        echo "sshd's DisableForwarding yes turns the tunnel's forward off: remove it $where," \
            "or move it into a Match block that leaves $ACCOUNT out"
    elif [ "$forwarding" = no ] || [ "$forwarding" = local ]; then
        echo "sshd's AllowTcpForwarding $forwarding, from a Match block ahead of this one," \
            "turns the tunnel's (remote) forward off: leave $ACCOUNT out of that block $where"
    elif ! reads_keys_file; then
        echo "sshd's AuthorizedKeysFile ($(setting authorizedkeysfile)) leaves out $keys," \
            "where the key line is: add .ssh/authorized_keys to it for $ACCOUNT $where"
    fi
}

# sshd re-reads its configuration on SIGHUP. Its PidFile names its listener; a stale one may
# name another process by now, which is never signalled.
signal_sshd() {
    pid=$(cat -- "$(setting pidfile)" 2>/dev/null) || return 1
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && kill -HUP "$pid"
}

# Through what the server has: systemd, OpenRC (Alpine), SysV's service, else the signal;
# $SSHD_RELOAD instead when it is set.
reload_sshd() {
    if [ -n "$SSHD_RELOAD" ]; then
        eval "$SSHD_RELOAD"
        return
    fi
    { command -v systemctl && { systemctl reload ssh || systemctl reload sshd; }; } \
        >/dev/null 2>&1 \
        || { command -v rc-service && rc-service sshd reload; } >/dev/null 2>&1 \
        || { command -v service && { service ssh reload || service sshd reload; }; } \
            >/dev/null 2>&1 \
        || signal_sshd
}

# The block is checked and in place whatever the reload does: only the reload is left to do.
reload_or_say_how() {
    if reload_sshd; then
        say "sshd reloaded"
    elif [ -n "$SSHD_RELOAD" ]; then
        say "WARNING: sshd not reloaded ($SSHD_RELOAD failed): the checked block is in place;"
        say "reload sshd yourself for it to apply"
    else
        say "WARNING: sshd not reloaded: no systemctl, rc-service nor service reloaded it, and"
        say "its PidFile names no running sshd. The checked block is in place; for it to apply,"
        say "run: kill -HUP \$(pgrep -o -x sshd)   (or restart sshd)"
    fi
}

# The block holds every session of the account to the tunnel (no terminal, no other forward):
# only for an account that nobody logs in to, one the script created or one without a shell.
tunnel_only() {
    [ "$created" = 1 ] && return 0
    case "$(account_field 7)" in
        */nologin | */false) return 0 ;;
    esac
    return 1
}

install_match_block() {
    if ! tunnel_only; then
        say "WARNING: account $ACCOUNT has the login shell $(account_field 7): this Match block"
        say "would restrict every login of $ACCOUNT (no terminal, no other forward), so it is not"
        say "written. Better give the tunnel an account of its own; to restrict $ACCOUNT anyway,"
        say "append the block to $SSHD_CONFIG yourself, then reload sshd:"
        printf '%s\n' "$MATCH_BLOCK"
        return
    fi
    if ! includes_drop_ins; then
        say "$SSHD_CONFIG does not include $SSHD_CONFIG_DIR/*.conf: not changed."
        say "Append this block at its end, then reload sshd:"
        printf '%s\n' "$MATCH_BLOCK"
        return
    fi
    text="$DROP_IN_MARKER
$(merged_block)"
    if [ -f "$drop_in" ] && [ "$(cat "$drop_in")" = "$text" ]; then
        read_effective_settings
        refusal=$(sshd_refusal)
        [ -z "$refusal" ] || fail "$refusal; then run this again. Nothing changed in sshd"
        say "$drop_in: holds this tunnel's Match block, unchanged"
        return
    fi
    ensure_drop_in_folder
    rm -f "$drop_in.previous"
    [ ! -e "$drop_in" ] || cp -p "$drop_in" "$drop_in.previous"
    printf '%s\n' "$text" >"$drop_in.new"
    chmod 644 "$drop_in.new"
    mv -f "$drop_in.new" "$drop_in"
    if ! checked=$("$SSHD" -t -f "$SSHD_CONFIG" 2>&1); then
        [ -z "$checked" ] || printf '%s\n' "$checked" | safe >&2
        restore_drop_in
        fail "sshd -t refuses the configuration with the new block:" \
            "$drop_in is back as it was, sshd not reloaded"
    fi
    [ -z "$checked" ] || printf '%s\n' "$checked" | safe
    read_effective_settings
    refusal=$(sshd_refusal)
    if [ -n "$refusal" ]; then
        restore_drop_in
        fail "$refusal; then run this again. $drop_in is back as it was, sshd not reloaded"
    fi
    rm -f "$drop_in.previous"
    changed "$drop_in: Match block for $ACCOUNT written, checked with sshd -t"
    reload_or_say_how
}

check_drop_in_is_ours
find_runner
ensure_account
install_key
install_match_block
"""

_DROPBEAR_BODY = r"""
# Dropbear refuses accounts whose shell /etc/shells does not list: the key line's
# command="/bin/false" is what keeps this one from a shell.
account_shell() { echo /bin/sh; }
# Dropbear looks at a locked password for password logins only.
locks_out_keys() { false; }
# Dropbear is built without PAM on the systems that ship it.
uses_pam() { false; }

# An existing account may have a shell /etc/shells leaves out (Debian's lists no nologin). An
# empty shell is /bin/sh; without /etc/shells the C library lists /bin/sh and /bin/csh.
check_shell_listed() {
    shell=$(account_field 7)
    shell=${shell:-/bin/sh}
    if { cat /etc/shells 2>/dev/null || printf '/bin/sh\n/bin/csh\n'; } \
        | LISTED="$shell" awk '$1 == ENVIRON["LISTED"] { found = 1 } END { exit !found }'
    then
        return 0
    fi
    # A directory account may choose its shell: only a plain path is offered as a command.
    case "$shell" in
        *[!A-Za-z0-9/._+-]*) refuse "Dropbear refuses $ACCOUNT: /etc/shells does not list\
 its shell, so the key line is not installed" \
            "Give $ACCOUNT a shell listed there, then run this again" ;;
    esac
    refuse "Dropbear refuses $ACCOUNT: /etc/shells does not list its shell $shell, so the key\
 line is not installed" "Add the shell there (echo $shell >> /etc/shells), then run this again"
}

find_runner
ensure_account
check_shell_listed
install_key
say "Dropbear's settings apply to the whole server: set them yourself in /etc/default/dropbear,"
say "then run systemctl restart dropbear:"
printf '%s\n' "$DROPBEAR_FLAGS"
"""

# The first line of every drop-in the script writes: a file of that name without it is somebody
# else's, which the script leaves alone.
DROP_IN_MARKER = (
    "# Written by ssh_callhome's server script, which adds its ports to it when run again."
)

_SUMMARY = """
[ "$changes" -gt 0 ] || say "nothing to change"
"""

_REFUSAL = """\
printf '%s\\n' 'ssh_callhome: the account name cannot be written safely into this script' \\
    '(letters, digits, . _ - @ only, not digits alone): follow the steps by hand.' >&2
exit 1
"""


class UnsafeScriptValue(ValueError):
    """A value that the script cannot carry safely; it never holds the value itself."""


def setup_script(
    software: ServerSoftware, account: str, key: asyncssh.SSHKey, line: str, settings: str
) -> str:
    """The script that installs `line` (the key's authorized_keys line) and `settings`.

    For OpenSSH (and servers we do not know) `settings` is the Match block, for Dropbear its flags,
    as server_settings() gives them. For an account name the script cannot carry: a script that
    says so and changes nothing.
    """
    try:
        header = _header(key, software, account, line, settings)
    except UnsafeScriptValue:
        return "\n".join((_OPENING, _REFUSAL + _DELIMITER))
    body = _DROPBEAR_BODY if software is ServerSoftware.DROPBEAR else _OPENSSH_BODY
    return "\n".join((_OPENING, header, _PATHS)) + _COMMON_BODY + body + _SUMMARY + _DELIMITER


def _header(
    key: asyncssh.SSHKey, software: ServerSoftware, account: str, line: str, settings: str
) -> str:
    """The script's values, each assigned in single quotes."""
    if (
        len(account) > _MAX_ACCOUNT_LENGTH
        or not _SAFE_ACCOUNT.fullmatch(account)
        # id and getent read digits alone as a uid: another account's (0 is root). useradd
        # refuses such names too.
        or account.isdigit()
    ):
        raise UnsafeScriptValue("account")
    assignments = [
        f"ACCOUNT={shell_quote(account)}",
        f"KEY_LINE={shell_quote(line)}",
        # The key itself, without options or comment: it finds this key's older lines.
        f"KEY_BLOB={shell_quote(export_host_key(key).split()[1])}",
        f"STEP_SECONDS={_STEP_SECONDS}",
        f"STEP_OUTPUT_BYTES={_STEP_OUTPUT_BYTES}",
    ]
    if software is ServerSoftware.DROPBEAR:
        assignments.append(f"DROPBEAR_FLAGS={shell_quote(settings)}")
    else:
        assignments += [
            f"MATCH_BLOCK={shell_quote(settings, lines=True)}",
            f"DROP_IN={shell_quote(f'ssh_callhome-{account}.conf')}",
            f"DROP_IN_MARKER={shell_quote(DROP_IN_MARKER)}",
        ]
    return "\n".join(assignments)


def shell_quote(value: str, *, lines: bool = False) -> str:
    r"""`value` as one single-quoted sh word; refused if it holds a control character.

    Inside single quotes sh reads every character literally except the closing quote, which is
    written as `'\''`. A line break would be taken literally too, and would split a line of
    authorized_keys in two: only values meant to span `lines` (the Match block) may hold one.
    """
    allowed = "\n" if lines else ""
    if any(not char.isprintable() and char not in allowed for char in value):
        raise UnsafeScriptValue("control character")
    return "'" + value.replace("'", "'\\''") + "'"
