"""How usage is priced: one rule for the invoices (invoicing) and the prepaid checks (metering)."""
