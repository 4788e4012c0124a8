#!/bin/sh
# Create the broker user of one agent: ./add-agent.sh REGION BRANCH AGENT
# Adds "REGION/BRANCH/AGENT" with a fresh random password to the Mosquitto password
# file and writes the password to ./REGION-BRANCH-AGENT.password (mode 600): copy that
# file to the branch PC as /etc/branchwatch/agent.password, then delete it here.
# The ACL needs no change: its pattern lines cover every agent (see acl).
# Env: PASSWD_FILE (default /etc/mosquitto/branchwatch.passwd).
set -eu
[ $# -eq 3 ] || { echo "usage: $0 REGION BRANCH AGENT" >&2; exit 2; }
for id in "$1" "$2" "$3"; do
    if ! printf '%s' "$id" | grep -Eq '^[a-z0-9][a-z0-9_-]{0,31}$'; then
        echo "$0: '$id' is not a valid id (^[a-z0-9][a-z0-9_-]{0,31}\$)" >&2
        exit 2
    fi
done
passwd_file=${PASSWD_FILE:-/etc/mosquitto/branchwatch.passwd}
user="$1/$2/$3"
out="./$1-$2-$3.password"
umask 077
password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
[ -f "$passwd_file" ] || touch "$passwd_file"
# Readable by the broker (it drops to the mosquitto user) and by nobody else.
if chgrp mosquitto "$passwd_file" 2>/dev/null; then chmod 640 "$passwd_file"; else chmod 600 "$passwd_file"; fi
# -b takes the password as an argument: run this on the broker host as root only.
mosquitto_passwd -b "$passwd_file" "$user" "$password"
printf '%s\n' "$password" > "$out"
echo "added $user to $passwd_file; password in $out (mode 600)"
echo "reload the broker: systemctl reload mosquitto"
