"""The Qt user interface; the only package that imports Qt (modules are named ``qt_*.py``)."""

import os

# pyqtgraph picks its Qt binding at import time; pin it before any ui module imports it.
os.environ["PYQTGRAPH_QT_LIB"] = "PySide6"
