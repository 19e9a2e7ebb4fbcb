"""The CrossGuard policy pack's rules, as pure validators importable without starting the
analyzer (`policies/__main__.py` builds the pack), and their offline evaluation."""
