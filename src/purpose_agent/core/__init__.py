"""The types layer, under everything else: ``State``, ``Action``, ``Step``, ``TaskResult`` and
``Usage`` (``core.types``), ``RunMode`` (``core.modes``), the typed events and the JSONL
trace (``core.events``), and the ``Environment`` protocol (``core.environment``)."""
