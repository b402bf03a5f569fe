"""What tests start for real: PostgreSQL (``postgres``), sshd (``sshd``), a collector in-process (``served``) or as
a subprocess with its agents (``processes``), and small models (``models``)."""
