"""The man pages ftpsd(8), ftpsd.conf(5) and ftpsd-user(8).

  * They render without a single warning: `groff -man -ww -z -Tutf8` and
    `man --warnings -l` print nothing on stderr, and no rendered line is wider
    than MANWIDTH=80.
  * ftpsd.conf(5) documents exactly the keys `ftpsd --print-config` prints (one
    `.TP` entry per key under KEYS), each with the default --print-config shows
    ("Default: not set" for a key printed as "# key is not set").
  * ftpsd(8) documents every option `ftpsd --help` shows.
  * ftpsd-user(8) documents every command and option `ftpsd-user --help` shows.
"""

import os
import re
import shutil
import subprocess

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import IO_TIMEOUT

PAGES = {name: os.path.join(lib.REPO, "ftpsd", name) for name in ("ftpsd.8", "ftpsd.conf.5")}
PAGES["ftpsd-user.8"] = os.path.join(lib.REPO, "ftpsd", "tools", "ftpsd-user.8")
FTPSD_USER_BIN = os.environ.get("FTPSD_USER_BIN",
                                os.path.join(lib.REPO, "build", "ftpsd", "ftpsd-user"))
WIDTH = 80


def groff_warnings(path):
    r = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", path], capture_output=True,
                       text=True, timeout=IO_TIMEOUT)
    return r.returncode, r.stderr


def man_render(path):
    env = dict(os.environ, MANWIDTH=str(WIDTH), LC_ALL="C.UTF-8", MAN_DISABLE_SECCOMP="1")
    env.pop("MANPAGER", None)
    r = subprocess.run(["man", "--warnings", "-P", "cat", "-l", path], capture_output=True,
                       text=True, timeout=IO_TIMEOUT, env=env)
    return r.returncode, r.stdout, r.stderr


needs_groff = pytest.mark.skipif(shutil.which("groff") is None,
                                 reason="groff missing (Debian: groff-base)")
needs_man = pytest.mark.skipif(shutil.which("man") is None, reason="man missing (Debian: man-db)")


@needs_groff
@pytest.mark.parametrize("page", sorted(PAGES))
def test_groff_renders_without_warnings(page):
    rc, err = groff_warnings(PAGES[page])
    assert rc == 0 and err == "", err


@needs_man
@pytest.mark.parametrize("page", sorted(PAGES))
def test_man_renders_without_warnings_within_80_columns(page):
    rc, out, err = man_render(PAGES[page])
    assert rc == 0 and err == "", err
    assert "NAME" in out and "SEE ALSO" in out, out[:500]
    wide = [line for line in out.splitlines() if len(line) > WIDTH]
    assert not wide, wide


@needs_groff
def test_groff_reports_a_broken_page(tmp_path):
    """The checks above can fail: a page with a roff mistake makes groff -ww speak."""
    with open(PAGES["ftpsd.8"]) as f:
        text = f.read()
    bad = tmp_path / "bad.8"
    bad.write_text(text.replace(".SH OPTIONS\n", ".SH OPTIONS\n.XY unknown macro\n\\fQoops\n"))
    rc, err = groff_warnings(str(bad))
    assert err != "", "groff said nothing about a broken page"


# --------------------------------------------------------------- roff parsing

def unroff(s):
    """Text of a roff fragment: font changes, break points and escapes removed."""
    s = re.sub(r"\\f[BIRP]", "", s)
    s = s.replace("\\:", "").replace("\\&", "").replace("\\%", "")
    s = s.replace("\\(aq", "'").replace("\\~", " ").replace("\\-", "-").replace("\\e", "\\")
    return s


def section(text, name):
    m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH )" % re.escape(name), text, re.M | re.S)
    assert m, "no .SH %s" % name
    return m.group(1)


def tp_entries(body):
    """[(tag line, [body lines])] of the .TP entries in a section."""
    entries = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == ".TP":
            tag = lines[i + 1]
            j = i + 2
            while j < len(lines) and not re.match(r"^\.(TP|SS|SH)\b", lines[j]):
                j += 1
            entries.append((tag, lines[i + 2:j]))
            i = j
        else:
            i += 1
    return entries


def first_arg(tag):
    m = re.match(r'^\.(?:B|BI|BR|I|IB|IR)\s+(?:"([^"]*)"|(\S+))', tag)
    assert m, "entry tag is not a .B/.BI/.BR line: %r" % tag
    return unroff(m.group(1) if m.group(1) is not None else m.group(2))


def documented_keys():
    """{key: default text or None ("not set")} from the KEYS section of ftpsd.conf(5)."""
    with open(PAGES["ftpsd.conf.5"]) as f:
        text = f.read()
    keys = {}
    for tag, body in tp_entries(section(text, "KEYS")):
        key = first_arg(tag).split("=")[0].strip()
        assert re.fullmatch(r"[a-z][a-z0-9-]*", key), "not a key: %r (%r)" % (key, tag)
        assert key not in keys, "%s documented twice" % key
        default = [line for line in body if line.startswith("Default:")]
        assert len(default) == 1, "%s: want one 'Default:' line, got %r" % (key, default)
        bold = re.search(r"\\fB(.*?)\\f[RP]", default[0])
        if bold:
            keys[key] = unroff(bold.group(1))
        else:
            assert unroff(default[0]).startswith("Default: not set"), default[0]
            keys[key] = None
    return keys


SET_FOR_PRINT = {"tls-certificate": "/nonexistent/cert.pem", "tls-key": "/nonexistent/key.pem",
                 "users-file": "/nonexistent/users"}


def printed_config(binary, tmp_path):
    """{key: value or None} from --print-config over the smallest valid configuration."""
    conf = tmp_path / "min.conf"
    conf.write_text("".join("%s = %s\n" % kv for kv in SET_FOR_PRINT.items()))
    r = subprocess.run([binary, "--config", str(conf), "--print-config"], capture_output=True,
                       text=True, timeout=IO_TIMEOUT)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        m = re.fullmatch(r"# (\S+) is not set", line)
        if m:
            out[m.group(1)] = None
            continue
        key, sep, value = line.partition(" = ")
        assert sep, "unexpected --print-config line %r" % line
        out[key] = value
    assert out, r.stdout
    return out


def test_conf_page_documents_exactly_the_config_keys(ftpsd_bin, tmp_path):
    printed = printed_config(ftpsd_bin, tmp_path)
    documented = documented_keys()
    missing = sorted(set(printed) - set(documented))
    extra = sorted(set(documented) - set(printed))
    assert not missing and not extra, (
        "ftpsd.conf(5) KEYS is out of step with ftpsd --print-config:\n"
        "  not documented: %s\n  documented but not a key: %s" % (missing, extra))


def test_conf_page_gives_each_keys_default(ftpsd_bin, tmp_path):
    printed = printed_config(ftpsd_bin, tmp_path)
    documented = documented_keys()
    wrong = {k: (documented[k], printed[k]) for k in printed
             if k in documented and k not in SET_FOR_PRINT and documented[k] != printed[k]}
    assert not wrong, "default in ftpsd.conf(5) vs --print-config: %s" % wrong
    for k in SET_FOR_PRINT:
        assert documented.get(k, "") is None, "%s has no default" % k


def test_key_parser_sees_a_missing_entry(tmp_path, monkeypatch):
    """The comparison can fail: drop one entry and it is missing."""
    with open(PAGES["ftpsd.conf.5"]) as f:
        text = f.read()
    cut = re.sub(r"\.TP\n\.BR \"ccc = \".*?(?=\.TP\n)", "", text, count=1, flags=re.S)
    assert cut != text
    page = tmp_path / "ftpsd.conf.5"
    page.write_text(cut)
    monkeypatch.setitem(PAGES, "ftpsd.conf.5", str(page))
    assert "ccc" not in documented_keys() and "umask" in documented_keys()


def test_daemon_page_documents_every_option(ftpsd_bin):
    r = subprocess.run([ftpsd_bin, "--help"], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    assert r.returncode == 0
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", r.stdout))
    assert "--config" in options, r.stdout
    with open(PAGES["ftpsd.8"]) as f:
        text = f.read()
    documented = set()
    for tag, _ in tp_entries(section(text, "OPTIONS")):
        documented |= set(re.findall(r"--[a-z][a-z-]*", unroff(tag)))
    assert options <= documented, sorted(options - documented)
    for name in ("LAUNCH", "PROCESSES", "SIGNALS", "EXIT STATUS", "FILES"):
        section(text, name)


def tool_help():
    r = subprocess.run([FTPSD_USER_BIN, "--help"], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    assert r.returncode == 0, r.stderr
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", r.stdout))
    commands = set(re.findall(r"^  ([a-z]+) ", r.stdout, re.M))
    return options, commands


def tool_page_entries(path):
    """(options, commands) the OPTIONS and COMMANDS entries of ftpsd-user(8) name."""
    with open(path) as f:
        text = f.read()
    options, commands = set(), set()
    for tag, body in tp_entries(section(text, "OPTIONS")):
        options |= set(re.findall(r"--[a-z][a-z-]*", unroff(tag)))
        # .TQ: a second tag in the same entry
        for i, line in enumerate(body):
            if line.strip() == ".TQ" and i + 1 < len(body):
                options |= set(re.findall(r"--[a-z][a-z-]*", unroff(body[i + 1])))
    for tag, _ in tp_entries(section(text, "COMMANDS")):
        commands.add(first_arg(tag).split()[0])
    for name in ("SESSIONS", "FILES", "EXIT STATUS"):
        section(text, name)
    return options, commands


def test_tool_page_documents_every_command_and_option():
    if not os.access(FTPSD_USER_BIN, os.X_OK):
        pytest.fail("ftpsd-user not found at %s (set FTPSD_USER_BIN)" % FTPSD_USER_BIN)
    options, commands = tool_help()
    assert {"--config", "--users", "--keep-sessions"} <= options, options
    assert {"add", "who", "check"} <= commands, commands
    doc_options, doc_commands = tool_page_entries(PAGES["ftpsd-user.8"])
    assert options <= doc_options, sorted(options - doc_options)
    assert commands <= doc_commands, sorted(commands - doc_commands)


def test_tool_page_check_sees_a_missing_entry(tmp_path):
    """The comparison can fail: drop the entry of --json and of who."""
    with open(PAGES["ftpsd-user.8"]) as f:
        text = f.read()
    cut = re.sub(r"\.TP\n\.B \\-\\-json\n.*?(?=\.TP\n)", "", text, count=1, flags=re.S)
    cut = re.sub(r"\.TP\n\.B who\n.*?(?=\.SH )", "", cut, count=1, flags=re.S)
    assert cut != text
    page = tmp_path / "ftpsd-user.8"
    page.write_text(cut)
    options, commands = tool_page_entries(str(page))
    assert "--json" not in options and "--keep-sessions" in options and "--gid" in options
    assert "who" not in commands and "check" in commands
