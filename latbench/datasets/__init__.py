"""Device latency datasets: build, import public ones, export, task suites (to come)."""
