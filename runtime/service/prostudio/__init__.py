"""ProStudio service: a small WSGI API cached in Redis."""
