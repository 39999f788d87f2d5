"""Live monitoring of a training run: incremental readers of the files a run writes, and what is derived from them.

A training process never talks to the app; it writes files into its run directory and the app reads them, locally or
over SSH, remembering a byte offset per file so that each poll costs only the new bytes:

- `files`: where the bytes come from (`LocalFiles`, `RemoteFiles` over an `SSHSession`), attempt discovery.
- `reader`: `IncrementalReader` (offsets, partial lines, truncation, rotation, bounded chunks).
- `metrics` / `canonical` / `console`: the metrics store merged across attempts, the engine-to-chart name mapping,
  and the console-line parser used when a run has no metrics file.
- `display`: min/max downsampling and EMA smoothing for charts.
- `progress`, `watchdog`: step / ETA and health warnings, pure functions over the store.
- `logs`: levels, search, tail, download, and the first-error finder.
- `gradnorms`, `rollouts`, `system`: per-layer gradient norms, sampled rollouts, GPU/CPU samples.
- `sampling`: the GPU/CPU samplers the job supervisor calls (standard library only, copied next to remote runs).
- `run`: `RunMonitor`, which polls all of the above for one run directory.
"""
