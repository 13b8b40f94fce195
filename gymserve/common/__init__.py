"""Helpers every layer may use; they import nothing else of gymserve.

files.py              files and folders written atomically
validation_errors.py  one line per problem of a pydantic ValidationError
extras.py             which extra installs each optional module; one clear line when missing
moved_modules.py      old import paths of moved modules, kept working with a warning
"""
