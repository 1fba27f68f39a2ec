"""A trainer written for the Vertex AI NAS tools, as a migrating user brings it (see README.md)."""
