#!/usr/bin/env bash
# Starts, stops or lists a local three-node bank cluster.
#   samples/BankTeller/bank-cluster.sh start [DIR]   build if needed, write DIR/cluster.json (unless it exists), start 3 servers
#   samples/BankTeller/bank-cluster.sh stop [DIR]    stop them (SIGTERM)
#   samples/BankTeller/bank-cluster.sh status [DIR]  which are running
# DIR defaults to ./bank-cluster; HTTP ports are $BANK_PORT, +1, +2 (default 7001), peer ports 1000 above.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
action="${1:-}"
dir="${2:-bank-cluster}"
port="${BANK_PORT:-7001}"
config="${BANK_CONFIGURATION:-Release}"
dll="$here/BankTeller.Server/bin/$config/net10.0/BankTeller.Server.dll"

case "$action" in
  start)
    mkdir -p "$dir"
    if [ ! -f "$dll" ]; then
      dotnet build "$here/BankTeller.Server/BankTeller.Server.csproj" -c "$config" -nologo -v q -clp:ErrorsOnly
    fi
    if [ ! -f "$dir/cluster.json" ]; then
      printf '{"addresses": [\n  {"ip": "127.0.0.1", "port": %d, "internal_port": %d},\n  {"ip": "127.0.0.1", "port": %d, "internal_port": %d},\n  {"ip": "127.0.0.1", "port": %d, "internal_port": %d}\n]}\n' \
        "$port" $((port + 1000)) $((port + 1)) $((port + 1001)) $((port + 2)) $((port + 1002)) > "$dir/cluster.json"
    fi
    for i in 0 1 2; do
      if [ -f "$dir/node-$i.pid" ] && kill -0 "$(cat "$dir/node-$i.pid")" 2>/dev/null; then
        echo "node $i is already running (pid $(cat "$dir/node-$i.pid"))"
        continue
      fi
      nohup dotnet "$dll" "$dir/cluster.json" "$i" --data-dir "$dir/data-$i" > "$dir/node-$i.log" 2>&1 &
      echo $! > "$dir/node-$i.pid"
      echo "node $i started (pid $!, log $dir/node-$i.log)"
    done
    echo "servers: $(sed -nE 's/.*"port": ([0-9]+),.*/http:\/\/127.0.0.1:\1/p' "$dir/cluster.json" | paste -sd, -)"
    ;;
  stop)
    for i in 0 1 2; do
      [ -f "$dir/node-$i.pid" ] || continue
      pid="$(cat "$dir/node-$i.pid")"
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        echo "node $i stopped"
      fi
      rm -f "$dir/node-$i.pid"
    done
    ;;
  status)
    for i in 0 1 2; do
      if [ -f "$dir/node-$i.pid" ] && kill -0 "$(cat "$dir/node-$i.pid")" 2>/dev/null; then
        echo "node $i running (pid $(cat "$dir/node-$i.pid"))"
      else
        echo "node $i stopped"
      fi
    done
    ;;
  *)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
