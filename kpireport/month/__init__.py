"""The managed month: approval, the audit trail, diff, status, reopen."""
