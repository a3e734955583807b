"""The cutover rehearsal behind ``make rehearse``: stand-ins, load, faults, engines, report."""

from rehearsal import paths as paths  # puts the service and the test helpers on sys.path
