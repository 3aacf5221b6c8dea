"""IrEne-viz: a web page and read-only JSON API to explore a model's energy tree, and HTML reports."""
