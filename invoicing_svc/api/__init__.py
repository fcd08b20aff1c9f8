"""Invoicing's gRPC entry point."""
