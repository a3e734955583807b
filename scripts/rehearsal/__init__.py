"""The cutover rehearsal behind ``make rehearse``: stand-ins, load, faults, engines, report."""
