"""Metering: meters, usage events, and usage summaries. The source of truth for usage."""
