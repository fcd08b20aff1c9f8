"""Invoicing's storage, its metering client and its webhook sender."""
