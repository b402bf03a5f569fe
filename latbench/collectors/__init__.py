"""The central side: the HTTP service (``service``, ``app``, ``routes``), its store (``db``, ``models``,
``migrations``), campaigns, leases, results, artifacts, tokens and exports; ``latbench.client`` drives it over HTTP.

Nothing is imported here, so importing one of these modules costs only what that module needs.
"""
