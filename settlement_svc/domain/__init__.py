"""Pure settlement rules: no I/O, no ORM, no gRPC, no web3."""
