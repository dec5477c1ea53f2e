"""Command line, certification reports, golden-vector export and offline verification."""
