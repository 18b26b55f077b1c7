"""What a path is: the predicates every layer asks (under a tree, a
Windows name, a pseudo file, a file of the installed system), in one
place.  Pure functions on the normal forms of docs/json-schema.md: POSIX
paths absolute and clean, Windows paths as ``C:\\dir\\file``."""
from __future__ import annotations

#: Directories whose entries are not files a user's data lives in: kernel
#: views, devices, and the names the kernel gives to pipes and sockets.
PSEUDO_PREFIXES = ("/proc", "/sys", "/dev")
#: Roots of the installed system; ``exclude_system`` drops them.
SYSTEM_PREFIXES = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin",
                   "/sbin", "/etc")
#: Windows paths in the normal form of docs/json-schema.md (C:\\dir\\file).
WINDOWS_PSEUDO_PREFIXES = ("\\\\.\\", "\\Device\\", "\\??\\")
WINDOWS_SYSTEM_PREFIXES = ("C:\\Windows", "C:\\Program Files", "C:\\ProgramData")


def is_windows_path(path: str) -> bool:
    """A path in the Windows normal form: ``C:\\...``, ``\\\\server\\...``,
    ``\\\\.\\device``, or an NT object name (``\\Device\\...``)."""
    return (len(path) > 2 and path[1] == ":" and path[2] == "\\") or path.startswith("\\")


def windows_fold(path: str) -> str:
    """The form two Windows names are compared in: each UTF-16 unit mapped
    to its simple (one-to-one) upper case, as RtlUpcaseUnicodeChar does;
    characters whose upper case is several characters (``ß``) or outside
    the 16-bit range stay as they are."""
    out = []
    for c in path:
        u = c.upper()
        out.append(u if len(u) == 1 and ord(c) <= 0xFFFF and ord(u) <= 0xFFFF else c)
    return "".join(out)


def under_windows(path: str, tree: str) -> bool:
    """``path`` is ``tree`` or below it, by the Windows rule (case folded)."""
    p, t = windows_fold(path), windows_fold(tree)
    if t.endswith("\\"):          # a drive's root, C:\\
        return p.startswith(t) or p == t[:-1]
    return p == t or p.startswith(t + "\\")


def under(path: str, tree: str) -> bool:
    """Whether ``path`` is ``tree`` or below it; Windows trees compare by
    the Windows rule, and a POSIX path is never under a Windows tree (nor
    the reverse).  A trailing slash on ``tree`` is allowed."""
    if is_windows_path(tree) or is_windows_path(path):
        return is_windows_path(tree) and is_windows_path(path) and under_windows(path, tree)
    if tree != "/":
        tree = tree.rstrip("/")
    return path == tree or tree == "/" or path.startswith(tree + "/")


def is_pseudo(path: str) -> bool:
    """True for /proc, /sys, /dev and anonymous objects (``pipe:[..]`` ...);
    on Windows, device namespaces (``\\\\.\\``, ``\\Device\\``)."""
    if is_windows_path(path):
        return any(path.startswith(p) for p in WINDOWS_PSEUDO_PREFIXES)
    return not path.startswith("/") or any(under(path, p) for p in PSEUDO_PREFIXES)


def is_system(path: str) -> bool:
    """True for paths of the installed system (/usr, /lib, /etc, ...;
    C:\\Windows and C:\\Program Files on Windows)."""
    if is_windows_path(path):
        return any(under_windows(path, p) for p in WINDOWS_SYSTEM_PREFIXES)
    return any(under(path, p) for p in SYSTEM_PREFIXES)
