"""Reference applications, built only on loopline's public API."""
