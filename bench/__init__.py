"""The orchestrator's benchmark harness: `python -m bench` (or `make bench`).

Five parts, each a module:
- efficiency: ideal/actual makespan against a zero-overhead oracle (oracle.py), in
  three latency regimes on the time-scaled sandbox;
- detection: how soon a finished prediction is seen, adaptive vs uniform polling;
- peer: the official `fashn` SDK, driven as a typical user would, on the same jobs;
- overhead: end-to-end jobs per second with every limit lifted (profile included);
- scale: a million-job CSV, a 100,000-job YAML, `status` and `resume` on the result.

It prints one table and writes it as Markdown to bench/results.md. Not part of
`make test`; the pure parts (oracle, statistics) are unit-tested in tests/test_bench.py.
"""
