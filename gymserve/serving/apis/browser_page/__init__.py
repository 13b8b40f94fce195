"""The page in the browser, served by the HTTP port: `protocol.py` its routes, `static/` its files."""
