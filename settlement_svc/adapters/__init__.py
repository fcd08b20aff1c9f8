"""Settlement's storage, its chain adapter and its invoicing client."""
