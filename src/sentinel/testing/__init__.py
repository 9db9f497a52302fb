"""Public testing helpers: real servers on free ports, started and cleaned up by the test suite."""
