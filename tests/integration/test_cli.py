"""The yizhan command line: domains, accounts, aliases; clear errors and
non-zero exits on bad input, nothing half-written."""
import json

import pytest


def test_domain_add_list_del(yz_unstarted):
    yz = yz_unstarted
    yz.cli("domain", "add", "other.test")
    assert json.loads(yz.cli("--json", "domain", "list").stdout) == ["example.test", "other.test"]
    assert "other.test" in yz.cli("domain", "list").stdout
    r = yz.cli("domain", "add", "other.test", check=False)
    assert r.returncode != 0 and "exists" in r.stderr
    r = yz.cli("domain", "add", "bad..domain", check=False)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0
    yz.cli("domain", "del", "other.test")
    assert json.loads(yz.cli("--json", "domain", "list").stdout) == ["example.test"]
    r = yz.cli("domain", "del", "example.test", check=False)
    assert r.returncode != 0, "a domain with accounts is not deleted without --force"
    yz.cli("domain", "del", "example.test", "--force")
    assert json.loads(yz.cli("--json", "domain", "list").stdout) == []
    assert json.loads(yz.cli("--json", "user", "list").stdout) == []


def test_user_lifecycle(yz_unstarted):
    yz = yz_unstarted
    yz.cli("user", "add", "carol@example.test", "--password-stdin", "--name", "Carol C",
           "--quota", "500M", input="s3cret-pw\n")
    users = json.loads(yz.cli("--json", "user", "list", "example.test").stdout)
    carol = [u for u in users if u["address"] == "carol@example.test"][0]
    assert carol["quota"] == 500 * 1024 * 1024 and carol["name"] == "Carol C"
    assert carol["enabled"] is True
    yz.cli("user", "quota", "carol@example.test", "2G")
    users = json.loads(yz.cli("--json", "user", "list").stdout)
    assert [u for u in users if u["address"] == "carol@example.test"][0]["quota"] == 2 << 30
    r = yz.cli("user", "passwd", "carol@example.test", "--generate-password")
    assert "password:" in r.stdout
    yz.cli("user", "del", "carol@example.test")
    users = json.loads(yz.cli("--json", "user", "list").stdout)
    assert "carol@example.test" not in [u["address"] for u in users]


@pytest.mark.parametrize("args,stdin,needle", [
    (["user", "add", "not-an-address", "--password-stdin"], "pw\n", "address"),
    (["user", "add", "x@unknown.test", "--password-stdin"], "pw\n", "unknown.test"),
    (["user", "add", "alice@example.test", "--password-stdin"], "pw\n", "exists"),
    (["user", "add", "dave@example.test", "--password-stdin", "--quota", "lots"], "pw\n", "quota"),
    (["user", "quota", "alice@example.test", "12Q"], None, "quota"),
    (["user", "passwd", "nobody@example.test", "--password-stdin"], "pw\n", "nobody@example.test"),
    (["user", "del", "nobody@example.test"], None, "nobody@example.test"),
    (["user", "add", "eve@example.test"], "", "password"),
    (["alias", "add", "x@unknown.test", "alice@example.test"], None, "unknown.test"),
    (["alias", "add", "a%b@example.test", "alice@example.test"], None, "address"),
    (["domain", "del", "unknown.test"], None, "unknown.test"),
    (["user"], None, "usage"),
])
def test_bad_input_one_sentence_nonzero(yz_unstarted, args, stdin, needle):
    yz = yz_unstarted
    before = yz.cli("--json", "user", "list").stdout
    r = yz.cli(*args, input=stdin, check=False)
    assert r.returncode != 0
    out = (r.stderr + r.stdout).lower()
    assert needle.lower() in out, out
    if "usage" not in needle:
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert yz.cli("--json", "user", "list").stdout == before, "nothing half-written"


def test_password_never_from_command_line(yz_unstarted):
    r = yz_unstarted.cli("user", "add", "frank@example.test", "--password", "x", check=False)
    assert r.returncode != 0


def test_aliases(yz_unstarted):
    yz = yz_unstarted
    yz.cli("alias", "add", "sales@example.test", "alice@example.test", "bob@example.test")
    yz.cli("alias", "add", "@example.test", "alice@example.test")
    yz.cli("alias", "add", "fwd@example.test", "someone@elsewhere.test")
    al = json.loads(yz.cli("--json", "alias", "list").stdout)
    pairs = {(a["source"], a["target"]) for a in al}
    assert ("sales@example.test", "bob@example.test") in pairs
    assert ("@example.test", "alice@example.test") in pairs
    assert ("fwd@example.test", "someone@elsewhere.test") in pairs
    yz.cli("alias", "del", "sales@example.test", "bob@example.test")
    al = json.loads(yz.cli("--json", "alias", "list").stdout)
    assert ("sales@example.test", "bob@example.test") not in {(a["source"], a["target"]) for a in al}
    yz.cli("alias", "del", "sales@example.test")
    r = yz.cli("alias", "del", "sales@example.test", check=False)
    assert r.returncode != 0


def test_init_is_idempotent(yz_unstarted):
    yz = yz_unstarted
    r = yz.cli("init", "--domain", "example.test", "--user", "alice")
    assert "exists already" in r.stdout
    assert "password:" not in r.stdout
