"""The central side: HTTP service, store, campaigns and leases, CLI, SSH deployment (to come)."""
