"""What users see: plain data for figures (``data``), renderers (``plots``), status, progress."""
