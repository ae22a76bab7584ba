using BenchmarkDotNet.Running;
using RaftMQ.Storage.Benchmarks;

// `recovery [GiB] [entryBytes]` runs the large-log write/recovery/read measurement, `paired [rounds]` the
// interleaved WAL-vs-raw comparison; anything else goes to
// BenchmarkDotNet (for example `--filter '*'`).
if (args.Length > 0 && args[0] == "recovery") return RecoveryBench.Run(args);
if (args.Length > 0 && args[0] == "paired") return PairedBench.Run(args);
BenchmarkSwitcher.FromAssembly(typeof(BatchAppendBenchmarks).Assembly).Run(args);
return 0;
