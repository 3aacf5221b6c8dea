"""The model tree: schema, JSON Lines I/O, the paper-CSV importer, flat tables and energy shares."""
