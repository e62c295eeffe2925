"""`make bench`: throughput, latency, lag and replay of Rapport on this machine, measured
through processes, HTTP and wrk (issue 10). See `tools/bench/__main__.py`."""
