"""Device tests: a real Tango DB (pytango-db's PyDatabaseds) and a real PlantDS server process.

The simulators run in this test process on real loopback sockets; the server under test is a
separate ``PlantDS`` process that reaches them exactly as it would reach the instruments. The
fixtures ``tango_host`` and ``server_logs`` are in tests/conftest.py (tests/clients uses them too).
"""
