"""The on-device side: runtimes, the measurement loop, the environment snapshot. Never imports torch."""
