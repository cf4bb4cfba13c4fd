"""Infusion Monitor: a bedside secondary display and record of vital signs.

It never controls an infusion pump, and it does not replace the patient monitor's own alarms.
"""

__version__ = "0.1.0"
