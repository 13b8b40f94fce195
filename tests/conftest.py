"""Shared test setup. pytest puts this folder on sys.path, so test modules import the helpers
beside it (e.g. `tensorflow_threads`)."""
