"""bench/run as a module, for the scripts beside it (twocore.py, p99.py): its servers, clients
and measurements, so that they are written once."""
import importlib.machinery
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load():
    """bench/run, imported (its main() does not run), with the repository as the working folder."""
    loader = importlib.machinery.SourceFileLoader("benchrun", os.path.join(ROOT, "bench", "run"))
    spec = importlib.util.spec_from_loader("benchrun", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    os.chdir(ROOT)
    return module
