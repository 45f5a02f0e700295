"""Every session of every package in this repository.

Packages are discovered from ``packages/*/pyproject.toml``. Each one gets:

* ``test-<dist>`` (tag ``test``): fresh venv, ``paddlepaddle==3.3.1`` and the package with
  its ``test`` extra, then its pytest suite.
* ``demo-<dist>`` (tag ``demo``): the package's main job on an embedded default.
* ``bench-<dist>`` (tag ``bench``): its benchmark scripts (``benchmarks/bench_*.py``), which
  write ``benchmarks/results/<name>.local.json`` (``nox -s bench-<dist> -- --record`` updates
  the committed results).
* ``wheel-<dist>`` (tags ``wheel`` and ``test``): builds the wheel and installs it alone, with
  ``paddlepaddle==3.3.1`` (and the package's constraints file, as its README says), into a
  fresh venv, then runs each of its command lines with ``--version`` and imports it.

A package describes anything beyond that in its own ``pyproject.toml``, so this file never
needs to know about a particular package::

    [tool.collection]
    demo = [["ppflux", "demo"]]            # commands of the demo session (required)
    test-args = ["-m", "not slow"]         # extra pytest arguments of test-<dist>
    constraints = "constraints.txt"        # pip -c file used by every session of the package

    [tool.collection.sessions.test-tf]     # -> session test-<dist>-tf, tag "test"
    paddle = "3.3.1"                       # or "2.6.2", or "none"
    extras = ["test"]                      # extras of the package to install ([] = none,
                                           # "no-package" as only item = do not install it)
    install = ["tensorflow-cpu==2.16.1"]   # further requirements, installed first
    constraints = false                    # only if it pins its own set: no -c file then
    run = [["pytest", "tests/tf", "{posargs}"]]

The session key before the first dash is the kind and becomes the tag (``zoo`` sessions are
tagged ``zoo``), so ``nox -t test`` runs every test session of every package.
Commands run inside the package folder. ``{posargs}`` expands to ``nox -- ARGS``. Commands
of ``sessions`` entries may be programs outside the venv (``node``, ``npm``, ``bash``).
``test-<dist>`` may also run setup commands before pytest::

    [tool.collection]
    test-setup = [["bash", "tests/setup_browser.sh"]]

Plus ``build`` (``python -m build`` into ``dist/`` and ``twine check``) and ``lint`` (``ruff check``,
``ruff format --check``, and the check that every deliberate copy of a shared file, one that
starts with ``# Copied from <dist>:<path>``, still equals its original).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: nox itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent
PACKAGES_DIR = ROOT / "packages"
PADDLE_VERSION = "3.3.1"

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = []  # nothing by default: name a session or a tag

# With NOX_DISCARD_VENVS=1 (set by .ci/run) each session removes its virtualenv when it ends,
# so a full run needs the disk of its largest session (about 5 GB), not of all of them.
DISCARD_VENVS = "NOX_DISCARD_VENVS"


def _session(func, **kwargs) -> None:
    """Register ``func`` as a nox session; it discards its virtualenv at the end on request."""

    def run(session: nox.Session) -> None:
        try:
            func(session)
        finally:
            if os.environ.get(DISCARD_VENVS) == "1":
                location = getattr(session.virtualenv, "location", None)
                if location and Path(location).is_dir():
                    shutil.rmtree(location, ignore_errors=True)
                    session.log(f"{DISCARD_VENVS}=1: removed {location}")

    run.__doc__ = func.__doc__
    run.__name__ = kwargs.get("name") or func.__name__
    nox.session(**kwargs)(run)


def _discover() -> list[tuple[str, Path, dict]]:
    found = []
    for pyproject in sorted(PACKAGES_DIR.glob("*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        dist = data["project"]["name"]
        cfg = data.get("tool", {}).get("collection", {})
        found.append((dist, pyproject.parent, cfg))
    return found


def _pip_constraints(pkg_dir: Path, cfg: dict) -> list[str]:
    constraints = cfg.get("constraints")
    return ["-c", str(pkg_dir / constraints)] if constraints else []


def _install(
    session: nox.Session,
    pkg_dir: Path,
    cfg: dict,
    *,
    paddle: str,
    extras: list[str],
    extra_reqs: list[str],
    constraints: bool = True,
) -> None:
    cons = _pip_constraints(pkg_dir, cfg) if constraints else []
    session.install("--upgrade", "pip")
    if paddle != "none":
        session.install(f"paddlepaddle=={paddle}", *cons)
    if extra_reqs:
        session.install(*extra_reqs, *cons)
    if extras != ["no-package"]:
        target = str(pkg_dir) + (f"[{','.join(extras)}]" if extras else "")
        session.install(target, *cons)


def _expand(command: list[str], session: nox.Session) -> list[str]:
    out: list[str] = []
    for arg in command:
        if arg == "{posargs}":
            out.extend(session.posargs)
        else:
            out.append(arg)
    return out


def _session_env() -> dict[str, str]:
    # Only what keeps runs reproducible offline (no model hub is reachable from CI). Nothing
    # that changes what a user's terminal shows: Paddle's log level and Python's warning
    # filters stay as a user has them, so demos print what the tools print.
    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


def _register(dist: str, pkg_dir: Path, cfg: dict) -> None:
    def test(session: nox.Session) -> None:
        _install(session, pkg_dir, cfg, paddle=PADDLE_VERSION, extras=["test"], extra_reqs=[])
        session.chdir(pkg_dir)
        for command in cfg.get("test-setup", []):
            session.run(*_expand(command, session), env=_session_env(), external=True)
        session.run(
            "pytest",
            "tests",
            "-ra",
            *cfg.get("test-args", []),
            *session.posargs,
            env=_session_env(),
        )

    _session(test, name=f"test-{dist}", tags=["test"])

    def demo(session: nox.Session) -> None:
        _install(
            session,
            pkg_dir,
            cfg,
            paddle=PADDLE_VERSION,
            extras=cfg.get("demo-extras", []),
            extra_reqs=[],
        )
        session.chdir(pkg_dir)
        commands = cfg.get("demo")
        if not commands:
            session.error(f"{dist}: [tool.collection] demo is not set in pyproject.toml")
        for command in commands:
            session.run(*_expand(command, session), env=_session_env())

    _session(demo, name=f"demo-{dist}", tags=["demo"])

    def bench(session: nox.Session) -> None:
        _install(
            session,
            pkg_dir,
            cfg,
            paddle=PADDLE_VERSION,
            extras=cfg.get("bench-extras", ["test"]),
            extra_reqs=[],
        )
        session.chdir(pkg_dir)
        commands = cfg.get("bench") or [
            ["python", str(script.relative_to(pkg_dir)), "{posargs}"]
            for script in sorted((pkg_dir / "benchmarks").glob("bench_*.py"))
        ]
        if not commands:
            session.error(f"{dist}: no benchmarks/bench_*.py and no [tool.collection] bench")
        for command in commands:
            session.run(*_expand(command, session), env=_session_env())

    _session(bench, name=f"bench-{dist}", tags=["bench"])

    def wheel(session: nox.Session) -> None:
        """Build the wheel, install it alone (plus Paddle) into this fresh venv, import it."""
        session.install("build")
        out = Path(session.create_tmp()) / "wheel"
        session.run("python", "-m", "build", "--wheel", "--outdir", str(out), str(pkg_dir))
        (built,) = out.glob("*.whl")
        # What the package README's Install section tells a user to run: the wheel alone with
        # Paddle, pinned by the package's constraints file where it ships one.
        cons = _pip_constraints(pkg_dir, cfg)
        session.install(f"paddlepaddle=={PADDLE_VERSION}", *cons)
        session.install(str(built), *cons)
        # Each command line the package installs must start and answer --version.
        scripts = tomllib.loads((pkg_dir / "pyproject.toml").read_text(encoding="utf-8"))
        for script in scripts["project"].get("scripts", {}):
            session.run(script, "--version", env=_session_env())
        module = dist.replace("-", "_")
        session.run(
            "python",
            "-c",
            f"import {module}; print({module}.__name__, {module}.__version__)",
            env=_session_env(),
        )

    # Tagged "test" too, so CI installs every built wheel the way the READMEs say (about 5 min).
    _session(wheel, name=f"wheel-{dist}", tags=["wheel", "test"])

    for key, spec in cfg.get("sessions", {}).items():
        kind, _, part = key.partition("-")
        name = f"{kind}-{dist}" + (f"-{part}" if part else "")

        def extra(session: nox.Session, spec: dict = spec) -> None:
            _install(
                session,
                pkg_dir,
                cfg,
                paddle=spec.get("paddle", PADDLE_VERSION),
                extras=spec.get("extras", ["test"]),
                extra_reqs=spec.get("install", []),
                constraints=spec.get("constraints", True),
            )
            session.chdir(pkg_dir)
            for command in spec["run"]:
                # external: a part may call node, npm, bash or apt-get as well as venv tools.
                session.run(*_expand(command, session), env=_session_env(), external=True)

        _session(extra, name=name, tags=[kind])


for _dist, _dir, _cfg in _discover():
    _register(_dist, _dir, _cfg)


@nox.session
def build(session: nox.Session) -> None:
    """Build an sdist and a wheel of every package into dist/, then twine check them."""
    session.install("build", "twine")
    out = ROOT / "dist"
    for dist, pkg_dir, _ in _discover():
        session.run("python", "-m", "build", "--outdir", str(out / dist), str(pkg_dir))
    files = [str(p) for p in sorted(out.glob("*/*")) if p.suffix in {".whl", ".gz"}]
    session.run("twine", "check", "--strict", *files)


COPY_HEADER = "# Copied from "


def deliberate_copies():
    """``(copy, header line, original or None, "<dist>:<path>")`` for every file whose first
    line is ``# Copied from <dist>:<path>``; the original is ``packages/<dist>/<path>``."""
    for path in sorted(PACKAGES_DIR.glob("*/**/*.py")):
        if {".nox", "node_modules", "build"} & set(path.parts):
            continue
        with path.open(encoding="utf-8") as handle:
            first = handle.readline()
        if not first.startswith(COPY_HEADER):
            continue
        dist, _, inner = first[len(COPY_HEADER) :].strip().partition(":")
        original = PACKAGES_DIR / dist / inner
        yield path, first, (original if inner and original.is_file() else None), f"{dist}:{inner}"


def drifted_copies() -> list[str]:
    """Problems with deliberate copies: each must equal its original after the header line."""
    problems = []
    for path, first, original, name in deliberate_copies():
        where = path.relative_to(ROOT)
        if original is None:
            problems.append(f"{where}: its original {name} does not exist")
        elif first + original.read_text(encoding="utf-8") != path.read_text(encoding="utf-8"):
            problems.append(f"{where}: differs from its original {name}")
    return problems


@nox.session(name="sync-copies")
def sync_copies(session: nox.Session) -> None:
    """Write every deliberate copy again from its original (``# Copied from`` header kept)."""
    for path, first, original, name in deliberate_copies():
        if original is None:
            continue
        text = first + original.read_text(encoding="utf-8")
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            session.log(f"re-copied {path.relative_to(ROOT)} from {name}")


def lint(session: nox.Session) -> None:
    """ruff (check and format) over the whole repository, and no drifted copies."""
    problems = drifted_copies()
    for problem in problems:
        session.warn(problem)
    if problems:
        session.error(
            f"{len(problems)} copied file(s) differ from their original; "
            "copy the original again (never edit a copy)"
        )
    session.install("ruff")
    session.run("ruff", "check", str(ROOT))
    session.run("ruff", "format", "--check", str(ROOT))


_session(lint, name="lint", tags=["test"])
