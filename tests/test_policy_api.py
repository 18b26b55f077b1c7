"""The Policy and breakaway declarations as a user writes them: validation,
resolution, the one rule of what a policy allows, and the Result fields
(JSON round trip against the shipped schema)."""
import os

import jsonschema
import pytest

from sandbox_py import Breakaway, Denied, Policy, Result
from sandbox_py.breakaway import compile_rule
from sandbox_py.result import Exec, PathSet, json_schema


def test_policy_rejects_bad_input():
    with pytest.raises(ValueError, match="on_violation"):
        Policy(read=["/tmp"], on_violation="block")
    with pytest.raises(TypeError, match="read"):
        Policy(read=[3])
    with pytest.raises(ValueError, match="not a path"):
        Policy(write=["a\0b"])


def test_policy_resolves_relative_trees_and_symlinks(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    p = Policy(read=["link"], write=["out/"], system=False).resolved(tmp_path)
    real = os.path.realpath(tmp_path)
    assert os.path.join(real, "real") in p.read
    assert os.path.join(str(tmp_path), "link") in p.read      # as written, too
    assert p.allows("read", os.path.join(real, "real", "f.c"))
    assert p.allows("write", os.path.join(real, "out", "x.o"))
    assert p.allows("read", os.path.join(real, "out", "x.o"))  # writable implies readable
    assert not p.allows("write", os.path.join(real, "real", "f.c"))
    assert not p.allows("read", os.path.join(real, "realx"))   # a tree, not a prefix
    assert p.allows("probe", real)                             # on the way to a tree
    assert not p.allows("enumeration", real)
    assert p.allows("exec", os.path.join(real, "real", "tool"))  # execute defaults to read


def test_system_baseline():
    p = Policy(read=["/nonexistent-src"]).resolved("/")
    assert p.allows("read", "/etc/ld.so.cache")
    assert p.allows("exec", "/usr/bin/cc")
    assert p.allows("write", "/dev/null")
    assert not p.allows("write", "/etc/passwd")
    assert not p.allows("read", "/home")
    strict = Policy(read=["/nonexistent-src"], system=False).resolved("/")
    assert not strict.allows("read", "/etc/ld.so.cache")


def test_violations_from_a_result():
    p = Policy(read=["/src"], write=["/build"], execute=["/usr/bin/cc"],
               system=False).resolved("/")
    r = Result(0, ["cc"], reads=PathSet({"/src/a.c", "/secret"}),
               writes=PathSet({"/build/a.o", "/src/a.c"}), probes=PathSet({"/src", "/nope"}),
               execs=(Exec(7, 1, "/usr/bin/cc", ("cc",)), Exec(8, 7, "/bin/sh", ("sh",))))
    assert set(p.violations(r)) == {Denied("/secret", "read"), Denied("/src/a.c", "write"),
                                    Denied("/nope", "probe"), Denied("/bin/sh", "exec", 8)}


def test_breakaway_rule():
    rule = compile_rule(["sccache", "/usr/bin/true", lambda path, argv: "--daemon" in argv])
    assert rule.matches("/opt/x/sccache", ["sccache"])
    assert rule.matches("/usr/bin/python3", ["sccache", "--start-server"])
    assert rule.matches(os.path.realpath("/usr/bin/true"), ["true"])
    assert rule.matches("/usr/bin/srv", ["srv", "--daemon"])
    assert not rule.matches("/usr/bin/cc", ["cc"])
    assert compile_rule(None) is None and compile_rule([]) is None
    with pytest.raises(ValueError, match="absolute"):
        compile_rule(["bin/sccache"])
    with pytest.raises(TypeError):
        compile_rule([5])


def test_result_fields_round_trip_through_the_schema():
    r = Result(0, ["make"], policy=Policy(read=["/src"], on_violation="report").resolved("/"),
               denied=(Denied("/etc/shadow", "read", 12),),
               breakaways=(Breakaway(40, "/usr/bin/sccache", ("sccache", "--start-server")),))
    doc = r.to_dict()
    jsonschema.validate(doc, json_schema())
    back = Result.from_json(r.to_json())
    assert back == r
    assert back.denied[0].pid == 12 and back.breakaways[0].argv[0] == "sccache"
    path, category, pid = back.denied[0]
    assert (path, category, pid) == ("/etc/shadow", "read", 12)


def test_program_search_and_top_level_probes_are_not_violations():
    env = {"PATH": "/opt/tools/bin:/usr/bin"}
    p = Policy(read=["/src"]).resolved("/", env)
    assert p.allows("probe", "/opt/tools/bin/cc")          # execvp looking for cc
    assert not p.allows("read", "/opt/tools/bin/cc")
    assert not p.allows("probe", "/opt/tools/lib/x")
    assert p.allows("probe", "/selinux")                   # libselinux's look
    strict = Policy(read=["/src"], system=False).resolved("/", env)
    assert not strict.allows("probe", "/opt/tools/bin/cc")


def test_system_baseline_leaves_out_the_secrets_of_etc():
    p = Policy(read=["/nonexistent-src"]).resolved("/")
    for secret in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssl/private/k.pem",
                   "/etc/ssh/ssh_host_ed25519_key"):
        assert not p.allows("read", secret), secret
    assert p.allows("probe", "/etc/shadow")       # a look at a name in /etc: no content
    if os.path.exists("/etc/ssh/ssh_config"):
        assert p.allows("read", "/etc/ssh/ssh_config")
    assert p.allows("read", "/etc/passwd") and p.allows("probe", "/etc/ld.so.preload")
