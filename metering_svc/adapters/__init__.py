"""Metering's storage: tables, repositories and partition upkeep."""
