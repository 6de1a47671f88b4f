"""Data tables shipped with fusemax (see NOTICE.md for their sources and licence)."""
