import subprocess
import sys

SCRIPT = """
import sys, jax, jax.numpy as jnp
import posterax as px
path = px.enable_compilation_cache(sys.argv[1], min_compile_seconds=0.0)
f = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T)
f(jnp.ones((8, 8))).block_until_ready()
print(path)
"""


def test_compiled_programs_are_written_to_the_cache_dir(tmp_path):
    # A fresh process: JAX reads the cache setting at its first compilation.
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(tmp_path / "cache")
    assert any((tmp_path / "cache").iterdir()), "no compiled program was stored"


def test_default_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    from posterax.compilation import default_cache_dir

    monkeypatch.setenv("POSTERAX_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("POSTERAX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "posterax" / "jax"
