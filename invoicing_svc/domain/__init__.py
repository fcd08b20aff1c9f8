"""Pure invoicing rules: no I/O, no ORM, no gRPC."""
