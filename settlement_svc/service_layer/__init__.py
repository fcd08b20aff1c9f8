"""Settlement use cases: each a function over the unit of work and the service's dependencies."""
