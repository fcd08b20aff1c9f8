"""Settlement's gRPC entry point."""
