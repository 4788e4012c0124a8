#!/bin/sh
# Add a broker user to the NATS cluster's users.conf, with the permissions of its role:
#   ./add-user.sh agent REGION BRANCH AGENT     user "REGION/BRANCH/AGENT"
#   ./add-user.sh collector NAME [REGION]       user NAME, every region or one
# A fresh random password goes to ./USER.password (mode 600; "/" in the user becomes
# "-"): copy it to the agent as /etc/branchwatch/agent.password (the collector: its
# mqtt.password_file), then delete it here. users.conf holds only its bcrypt hash.
# Copy users.conf to every node and reload them: systemctl reload 'nats-branchwatch@*'.
# Env: USERS_FILE (default ./users.conf), PREFIX (topic prefix, default bw),
#      BCRYPT_COST (default 8: the passwords are random, and every node checks the
#      hash at each connect; a whole region reconnecting after a failover pays it once
#      per agent), BRANCHWATCH (the branchwatch command that hashes, default branchwatch).
set -eu
usage() {
    echo "usage: $0 agent REGION BRANCH AGENT | $0 collector NAME [REGION]" >&2
    exit 2
}
check_id() {
    if ! printf '%s' "$1" | grep -Eq '^[a-z0-9][a-z0-9_-]{0,31}$'; then
        echo "$0: '$1' is not a valid id (^[a-z0-9][a-z0-9_-]{0,31}\$)" >&2
        exit 2
    fi
}
[ $# -ge 1 ] || usage
users_file=${USERS_FILE:-./users.conf}
prefix=${PREFIX:-bw}
marker='# add-user.sh inserts users above this line'
case "$1" in
agent)
    [ $# -eq 4 ] || usage
    check_id "$2"; check_id "$3"; check_id "$4"
    user="$2/$3/$4"
    own="$prefix.v1.$2.$3.$4"
    permissions="publish: [\"$own.events\", \"$own.status\", \"$own.doctor\"], subscribe: [\"$own.cmd\", \"$own.doctor\", \"\$MQTT.sub.>\"]"
    ;;
collector)
    [ $# -eq 2 ] || [ $# -eq 3 ] || usage
    check_id "$2"
    user="$2"
    region='*'
    if [ $# -eq 3 ]; then check_id "$3"; region="$3"; fi
    agents="$prefix.v1.$region.*.*"
    permissions="publish: [\"$agents.cmd\"], subscribe: [\"$agents.events\", \"$agents.status\", \"\$MQTT.sub.>\"]"
    ;;
*) usage ;;
esac
grep -qx "$marker" "$users_file" || { echo "$0: no line '$marker' in $users_file" >&2; exit 1; }
if grep -q "{user: \"$user\"," "$users_file"; then
    echo "$0: $user is already in $users_file (remove its line to replace it)" >&2
    exit 1
fi
out="./$(printf '%s' "$user" | tr / -).password"
umask 077
password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
hash=$(printf '%s\n' "$password" | "${BRANCHWATCH:-branchwatch}" collector hash-password --cost "${BCRYPT_COST:-8}")
line="  {user: \"$user\", password: \"$hash\", allowed_connection_types: [\"MQTT\"], permissions: {$permissions}}"
tmp="$users_file.tmp.$$"
awk -v line="$line" -v marker="$marker" '$0 == marker { print line } { print }' "$users_file" > "$tmp"
chmod --reference="$users_file" "$tmp" 2>/dev/null || true
mv "$tmp" "$users_file"
printf '%s\n' "$password" > "$out"
echo "added $user to $users_file; password in $out (mode 600)"
echo "copy $users_file to every node, then: systemctl reload 'nats-branchwatch@*'"
