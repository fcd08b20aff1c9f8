"""Plumbing shared by every service: settings, database, gRPC bootstrap, errors, decimals, clock.

Nothing domain-specific lives here: a rule that two services need is owned by one of them.
"""
