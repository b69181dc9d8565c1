"""Printers: one class per target language, a ``_print_<Node>`` method per node kind."""
