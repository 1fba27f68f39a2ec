"""Reports: plain data objects for figures (``data``) and renderers that draw them (``plots``)."""
