"""Developer tooling: the private PostgreSQL cluster, stub generation, the local platform."""
