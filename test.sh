#!/usr/bin/env bash
# Builds everything and runs the default test suite. RAFTMQ_SOAK=1 runs the long randomized and soak runs too.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build RaftMQ.slnx -c Release
dotnet test RaftMQ.slnx -c Release --no-build --logger "console;verbosity=normal" "$@"
