"""The ``posterax`` command line: demo (and later fit, predict, benchmark, report)."""
