"""Session layer: recorder, alarms, minute log. Pure Python, never imports Qt."""
