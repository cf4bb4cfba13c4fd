"""devices/, session/, store/ and export/ must never import Qt (DESIGN.md)."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import infusion_monitor

CORE = ("devices", "session", "store", "export")
QT = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6")
ROOT = Path(infusion_monitor.__file__).parent


def core_modules() -> list[str]:
    names = []
    for pkg in CORE:
        names.append(f"infusion_monitor.{pkg}")
        for info in pkgutil.walk_packages([str(ROOT / pkg)], f"infusion_monitor.{pkg}."):
            if ".migrations" not in info.name:
                names.append(info.name)
    return names


def test_no_core_source_file_imports_qt():
    offenders = []
    for pkg in CORE:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in QT]
    assert offenders == []


def test_importing_the_whole_core_loads_no_qt():
    modules = core_modules()
    assert len(modules) >= 8, modules  # the walk really found the core
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {QT!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
