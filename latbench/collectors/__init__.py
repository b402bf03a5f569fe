"""The central side: the HTTP service (``service``, ``app``, ``routes``), its store (``db``, ``models``,
``migrations``), campaigns, leases, results, artifacts, tokens and exports; ``client`` drives it over HTTP.

Nothing is imported here, so ``latbench.collectors.client`` stays light for the CLI.
"""
