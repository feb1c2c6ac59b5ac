"""A build's reports → e-mail: recipients, messages, PDF protection, transports, the send ledger."""
