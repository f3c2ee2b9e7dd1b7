#!/usr/bin/env python3
"""Generates the installed reference files from the built programs, so they never drift:

  compd.conf        `compd-milter --print-example-config` (every setting, commented out)
  compd-milter.8    packaging/man/compd-milter.8.in with the program's --help
  mapctl.1          packaging/man/mapctl.1.in with --help of mapctl and of each command
  compd.conf.5      packaging/man/compd.conf.5.in with one entry per setting of the table

Usage: gen-dist.py --milter BIN --mapctl BIN --templates DIR --out DIR --version V
                   --docdir DIR
(--docdir: where the documentation is installed, which the pages point to.)
Fails (non-zero, naming the program) if a program fails or prints something unexpected.
Python 3 standard library only.
"""

import argparse
import datetime
import os
import re
import subprocess
import sys


class GenError(Exception):
    pass


def run(argv):
    # argv[0] is the bare program name: CLI11 prints it in "Usage:" lines, and the pages
    # must not name the build folder.
    try:
        r = subprocess.run([os.path.basename(argv[0])] + argv[1:], executable=argv[0], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    except OSError as e:
        raise GenError("cannot run %s: %s" % (argv[0], e)) from None
    if r.returncode != 0:
        raise GenError("`%s` failed (exit %d): %s" % (" ".join(argv), r.returncode,
                                                     r.stderr.strip()))
    if not r.stdout.strip():
        raise GenError("`%s` printed nothing" % " ".join(argv))
    return r.stdout


def roff_text(s):
    """Escapes running text for troff: backslashes, hyphens (so they stay ASCII '-' and
    options can be copied), and a leading '.' or "'" that would start a request."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    if s.startswith((".", "'")):
        s = "\\&" + s
    return s


def roff_block(text):
    """Preformatted text (help output) as a .nf block."""
    lines = [roff_text(line.rstrip()) for line in text.rstrip("\n").split("\n")]
    return ".nf\n.ft CR\n" + "\n".join(lines) + "\n.ft R\n.fi"


def parse_example_config(text):
    """The example config as a list of (name, type, default, doc).

    Its format (core/base/settings.cc ExampleConfig): a header of comments, then for each
    setting a blank line, `# doc`, `# (type)`, `#name = default`."""
    blocks = text.strip("\n").split("\n\n")
    out = []
    for block in blocks[1:]:
        lines = block.split("\n")
        m = re.fullmatch(r"#([a-z0-9_]+) = (.*)", lines[-1]) if len(lines) == 3 else None
        t = re.fullmatch(r"# \((.*)\)", lines[1]) if len(lines) == 3 else None
        if not (m and t and lines[0].startswith("# ")):
            raise GenError("unexpected block in --print-example-config output:\n" + block)
        out.append((m.group(1), t.group(1), m.group(2), lines[0][2:]))
    if not out:
        raise GenError("no settings in --print-example-config output")
    return out


def settings_roff(settings):
    parts = []
    for name, type_, default, doc in settings:
        flag = "\\-\\-" + roff_text(name.replace("_", "-"))
        parts.append(".TP\n.B %s\n%s\n.br\nType: %s; default: %s; flag: %s." % (
            name, roff_text(doc), roff_text(type_),
            roff_text(default) if default else "(empty)", flag))
    return "\n".join(parts)


def mapctl_commands(help_text):
    """Subcommand names from `mapctl --help` (CLI11's SUBCOMMANDS: section)."""
    names, in_section = [], False
    for line in help_text.split("\n"):
        if re.match(r"^[A-Za-z ]*[Ss][Uu][Bb][Cc][Oo][Mm][Mm][Aa][Nn][Dd][Ss]:\s*$", line):
            in_section = True
            continue
        if in_section:
            m = re.match(r"^\s+([a-z][a-z0-9-]*)\b", line)
            if m:
                names.append(m.group(1))
            elif line.strip() and not line.startswith(" "):
                in_section = False
    if not names:
        raise GenError("no subcommands found in `mapctl --help` output:\n" + help_text)
    return names


def fill(template_path, values):
    with open(template_path, encoding="utf-8") as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace("@%s@" % key, value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise GenError("%s: unknown placeholder(s) %s" % (template_path, ", ".join(left)))
    return text


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--milter", required=True)
    ap.add_argument("--mapctl", required=True)
    ap.add_argument("--templates", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--docdir", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    # SOURCE_DATE_EPOCH keeps the pages reproducible when a packager sets it.
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    date = (datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%d")
    common = {"VERSION": a.version, "DATE": date, "DOCDIR": roff_text(a.docdir)}

    example = run([a.milter, "--print-example-config"])
    settings = parse_example_config(example)
    write(os.path.join(a.out, "compd.conf"), example)

    milter_help = run([a.milter, "--help"])
    write(os.path.join(a.out, "compd-milter.8"),
          fill(os.path.join(a.templates, "compd-milter.8.in"),
               dict(common, HELP=roff_block(milter_help))))

    mapctl_help = run([a.mapctl, "--help"])
    commands = []
    for name in mapctl_commands(mapctl_help):
        sub = run([a.mapctl, name, "--help"])
        commands.append(".SS mapctl %s\n%s" % (roff_text(name), roff_block(sub)))
    write(os.path.join(a.out, "mapctl.1"),
          fill(os.path.join(a.templates, "mapctl.1.in"),
               dict(common, HELP=roff_block(mapctl_help), COMMANDS="\n".join(commands))))

    write(os.path.join(a.out, "compd.conf.5"),
          fill(os.path.join(a.templates, "compd.conf.5.in"),
               dict(common, SETTINGS=settings_roff(settings))))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GenError as e:
        print("gen-dist.py: %s" % e, file=sys.stderr)
        sys.exit(1)
