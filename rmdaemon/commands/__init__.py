"""The commands behind the CLI that are not the daemon itself: check, status, preview/export, purge."""
