"""Metering's gRPC entry point."""
