"""Book → Results: KPI windows and scores (SPEC §2), roll-ups, bands, payout and pay."""
