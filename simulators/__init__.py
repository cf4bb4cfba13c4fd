"""Simulated patient monitors for demos and tests: ``python -m simulators --help``.

``patient`` is the pure patient model and its named scenarios; ``datex`` speaks the GE S/5
protocol; ``output`` moves the bytes to a pty, a pyserial URL or a file.
"""
