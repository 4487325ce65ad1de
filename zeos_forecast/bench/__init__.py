"""Benchmarks: `zeos-forecast bench scale` times our pipeline against plain mlforecast.

- `data`: the benchmark's lake of weekly drops and its held-out weeks (generated once, reused).
- `baseline`: plain mlforecast on the whole history in one frame (run as its own process).
- `measure`: wall time and peak memory of a process tree.
- `scale`: the command: both runs, their accuracy on the held-out weeks, the table.
"""
