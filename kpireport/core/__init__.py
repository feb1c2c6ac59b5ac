"""The shared ground of every stage: the typed model, SPEC constants, issues and their catalogue,
names, options, money, atomic file writes, i18n. Imports nothing else of kpireport."""
