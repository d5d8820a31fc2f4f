"""A module with a bug of its own: it imports a module that does not exist.

The CLI must let this ImportError through with its traceback (the user's bug), not turn it
into "could not import module 'broken_import'".
"""

import trio_asgi_test_dependency_that_is_not_installed  # noqa: F401

app = None
