#!/usr/bin/env python3
"""Every flag a program's --help lists appears in its man page.

Usage: man_page_test.py PROGRAM MAN_PAGE [HELP_OPTION]

HELP_OPTION is --help unless given (taskq: --help-all, which has every
subcommand's flags).

The man pages are generated from --help by help2man (packaging/CMakeLists.txt);
this catches a page that help2man could not parse (a flag lost, a section
cut) and a stale page installed from an older build.
"""
import re
import subprocess
import sys


def flags_in_help(program, option):
    out = subprocess.run([program, option], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        sys.exit(f"{program} --help exited with {out.returncode}: {out.stderr.strip()}")
    # The option column: lines that start (after the indent) with flags.
    listed = set()
    for line in out.stdout.splitlines():
        m = re.match(r"\s+((?:--?[A-Za-z][\w-]*,?\s?)+)", line)
        if m:
            listed.update(re.findall(r"--?[A-Za-z][\w-]*", m.group(1)))
    return listed


def man_text(page):
    with open(page, encoding="utf-8") as f:
        roff = f.read()
    # roff escapes: \- is a hyphen, \fB \fI \fR \fP switch fonts.
    text = roff.replace("\\-", "-")
    return re.sub(r"\\f[BIRP]", "", text)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    program, page = sys.argv[1], sys.argv[2]
    option = sys.argv[3] if len(sys.argv) == 4 else "--help"
    flags = flags_in_help(program, option)
    if len(flags) < 3:
        sys.exit(f"found only {sorted(flags)} in {program} --help: has its format changed?")
    text = man_text(page)
    missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", text))
    if missing:
        sys.exit(f"{page} lacks {missing}, listed by {program} --help: "
                 "regenerate it (cmake --build) or fix packaging/man")
    print(f"{page}: all {len(flags)} flags of {program} --help are there")


if __name__ == "__main__":
    main()
