"""Invoicing: a gRPC server with health and reflection; its RPCs arrive with the invoicing issue."""
