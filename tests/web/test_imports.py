"""The web process never loads a generation backend (the question embedder is its one model)."""

import subprocess
import sys


def test_web_does_not_import_generation_libraries(config):
    code = (
        "import sys; from web import create_app; "
        f"app = create_app({{'database_url': {config['database_url']!r}, 'redis_url': {config['redis_url']!r}}}); "
        "app.test_client().post('/v1/ask', json={'question': 'hello'}); "
        "print(sorted(m for m in ('llama_cpp', 'worker', 'worker.backends') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
