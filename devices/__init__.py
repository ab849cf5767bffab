"""Instrument families, one folder each; nothing is shared sideways between them."""
