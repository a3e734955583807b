"""Tools for running ProStudio on this machine: local redis-servers with throwaway TLS material,
free loopback ports, managed child processes and the box's whole topology (nginx -> gunicorn ->
Redis). Used by the tests, the benchmarks, the rehearsal and ``make run-local``; never shipped
in the service image or the operator CLIs' wheel.
"""
