"""Developer tooling: the private PostgreSQL cluster, code generation and the local platform runner."""
