"""The parts of the service benchmark (bench/bench_api.py): data, load, webhooks, report."""
