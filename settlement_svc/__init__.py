"""Settlement: a gRPC server with health and reflection; RPCs arrive with the settlement issue."""
