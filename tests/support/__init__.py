"""Test support: real Envoy, the echo upstream and `wasmetool run` as child processes.

Import as ``tests.support.<module>``; the repository root must be on ``sys.path``
(the conformance conftest puts it there).  One :class:`plugins.ProxySetup` renders
to both an Envoy bootstrap (``envoy.py``) and a wasmetool plugin file
(``wasmetool_run.py``).
"""
