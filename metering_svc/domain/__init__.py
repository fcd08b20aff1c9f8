"""Pure metering rules: no I/O, no ORM, no gRPC."""
