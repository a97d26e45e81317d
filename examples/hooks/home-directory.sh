#!/bin/sh
# An example rollcall hook (README, "Hooks"): creates a home directory for
# every new user and archives it when the user is purged.
#
#   [hooks]
#   post_create = ["/usr/local/lib/rollcall/home-directory.sh"]
#   pre_purge   = ["/usr/local/lib/rollcall/home-directory.sh"]
#
# rollcall runs it with one JSON document on stdin and a clean environment
# (PATH, LANG, ROLLCALL_HOOK = pre_create, post_create, pre_purge, ...), in
# the data dir, killed after hooks.timeout_secs. Exit 0 = fine; a pre_ hook
# that exits non-zero keeps that user from being changed (a row error), a
# post_ hook's failure is recorded in the run's log and summary. What it
# prints on stderr becomes the message (the first 4 KiB).
#
# Needs jq. HOME_ROOT and ARCHIVE are where homes and archives go.
set -eu
HOME_ROOT=${HOME_ROOT:-/srv/homes}
ARCHIVE=${ARCHIVE:-/srv/homes/.archive}

doc=$(cat)
field() { printf '%s' "$doc" | jq -r "$1 // empty"; }

case "${ROLLCALL_HOOK:-}" in
post_create)
    user=$(field .user_after.username)
    school=$(field .user_after.primary_school)
    # usernames are [a-z0-9.-] (the username scheme guarantees it)
    case "$user" in *[!a-z0-9.-]* | "") echo "unexpected username '$user'" >&2; exit 1 ;; esac
    mkdir -p "$HOME_ROOT/$school/$user"
    chmod 700 "$HOME_ROOT/$school/$user"
    ;;
pre_purge)
    user=$(field .user_before.username)
    case "$user" in *[!a-z0-9.-]* | "") echo "unexpected username '$user'" >&2; exit 1 ;; esac
    # Homes of limbo users were moved nowhere: look them up by name.
    dir=$(find "$HOME_ROOT" -mindepth 2 -maxdepth 2 -type d -name "$user" -print -quit)
    if [ -n "$dir" ]; then
        mkdir -p "$ARCHIVE"
        # A failing archive keeps the user (exit non-zero: a row error).
        tar -czf "$ARCHIVE/$user.tar.gz" -C "$(dirname "$dir")" "$user" || {
            echo "cannot archive $dir; the user is kept" >&2
            exit 1
        }
        rm -rf "$dir"
    fi
    ;;
*)
    echo "home-directory.sh is not meant for ${ROLLCALL_HOOK:-no hook}" >&2
    exit 1
    ;;
esac
