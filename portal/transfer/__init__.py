"""CSV import and export in the early-access format (SPEC section 5)."""
