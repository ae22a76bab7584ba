using BenchmarkDotNet.Running;
using RaftMQ.Storage.Benchmarks;

// `recovery [GiB] [entryBytes]` runs the large-log write/recovery/read measurement; anything else goes to
// BenchmarkDotNet (for example `--filter '*'`).
if (args.Length > 0 && args[0] == "recovery") return RecoveryBench.Run(args);
BenchmarkSwitcher.FromAssembly(typeof(BatchAppendBenchmarks).Assembly).Run(args);
return 0;
