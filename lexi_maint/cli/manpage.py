"""lexi-maint(1) and a bash completion, generated from the argument parser.

`python -m lexi_maint.cli.manpage man > lexi-maint.1` writes the manual page (roff, man macros);
`python -m lexi_maint.cli.manpage bash > lexi-maint` the completion script. `make install`
runs both with the installed program, so they always describe the commands it has.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from lexi_maint import __version__
from lexi_maint.cli.main import build_parser

ENVIRONMENT = (
    ("LEXI_MAINT_CONFIG", "Configuration file when --config is not given."),
    ("DEEPSEEK_API_KEY", "API key for the LLM stages, after the systemd credential and "
     "[llm] api_key_file."),
    ("TRIGGER_UNIT", "Set by systemd in a unit a timer started; submit then records the run "
     "as started by the timer."),
    ("MONITOR_UNIT, MONITOR_SERVICE_RESULT, MONITOR_EXIT_STATUS",
     "Set by systemd for lexi-notify@.service; notify-failure passes them on."),
)  # fmt: skip
FILES = (
    ("/etc/lexi-maint/lexi-maint.toml", "The configuration (config check validates it)."),
    ("/var/lib/lexi-maint", "state_dir: the ledger, the embedded graph, the LLM cache."),
    ("/opt/lexi-maint/README.md", "The operator's manual."),
)


def roff(text: str) -> str:
    """Text safe in a roff line: backslashes escaped, no line starts with a control dot."""
    lines = text.replace("\\", "\\e").replace("-", "\\-").split("\n")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in lines)


def subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(full name, parser) of every command, depth first: "run", "config check", ..."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for deeper, subsub in subcommands(sub):
                    yield f"{name} {deeper}", subsub


def options(
    parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()
) -> Iterator[tuple[str, str]]:
    """(how it is written, help) of each documented argument whose dest is not in `skip`."""
    for action in parser._actions:
        if (
            action.help == argparse.SUPPRESS
            or action.dest in skip
            or isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        ):
            continue
        metavar = action.metavar or (action.dest.upper() if action.nargs != 0 else None)
        if action.choices and not action.metavar:
            metavar = "{" + ",".join(map(str, action.choices)) + "}"
        if action.option_strings:
            written = ", ".join(action.option_strings) + (f" {metavar}" if metavar else "")
        else:
            written = str(metavar)
        yield written, action.help or ""


def manpage(parser: argparse.ArgumentParser | None = None) -> str:
    parser = parser or build_parser()
    out = [f'.TH LEXI\\-MAINT 1 "" "lexi-maint {__version__}" "User Commands"',
           ".SH NAME", "lexi\\-maint \\- " + roff(parser.description or ""),
           ".SH SYNOPSIS", roff(parser.format_usage().removeprefix("usage: ").strip()),
           ".SH OPTIONS",
           "--config and -v may also follow the command."]  # fmt: skip
    out += _items(options(parser))
    out.append(".SH COMMANDS")
    for name, sub in subcommands(parser):
        if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
            continue  # "config", "graph": their actions are listed one by one
        usage = " ".join(sub.format_usage().removeprefix("usage: ").split())
        out += [f".SS {roff(name)}", roff(usage), ".PP", roff(sub.description or "")]
        out += _items(options(sub, skip=("config", "verbose")))
        if sub.epilog:
            out += [".PP", roff(" ".join(sub.epilog.split()))]
    out += [".SH EXIT STATUS", ".nf", roff((parser.epilog or "").strip()), ".fi"]
    out.append(".SH ENVIRONMENT")
    out += _items(iter(ENVIRONMENT))
    out.append(".SH FILES")
    out += _items(iter(FILES))
    out += [".SH SEE ALSO", "systemctl(1), journalctl(1), systemd.exec(5)"]
    return "\n".join(out) + "\n"


def _items(pairs: Iterator[tuple[str, str]]) -> list[str]:
    lines = []
    for written, text in pairs:
        lines += [".TP", f"\\fB{roff(written)}\\fR", roff(" ".join(text.split()))]
    return lines


def bash_completion(parser: argparse.ArgumentParser | None = None) -> str:
    """A bash completion: commands, then each command's options."""
    parser = parser or build_parser()
    top = [name for name, _ in subcommands(parser) if " " not in name]
    known = "|".join(name for name, _ in subcommands(parser))
    cases = []
    for name, sub in subcommands(parser):
        words = [opt for a in sub._actions if a.help != argparse.SUPPRESS
                 for opt in a.option_strings]  # fmt: skip
        words += [n.split(" ", 1)[1] for n, _ in subcommands(parser) if n.startswith(name + " ")]
        cases.append(f'        "{name}") words="{" ".join(words)}" ;;')
    return "\n".join([
        "# bash completion for lexi-maint (generated from its argument parser)",
        "_lexi_maint() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" command="" words i candidate',
        f'    local known="|{known}|"',
        '    for ((i = 1; i < COMP_CWORD; i++)); do',
        '        case "${COMP_WORDS[i]}" in',
        '            --config) ((i++)) ;;',
        '            -*) ;;',
        '            *) candidate="${command:+$command }${COMP_WORDS[i]}"',
        '               [[ $known == *"|$candidate|"* ]] && command=$candidate ;;',
        "        esac",
        "    done",
        '    case "$command" in',
        f'        "") words="{" ".join(top)} --config --verbose --version --help" ;;',
        *cases,
        '        *) words="" ;;',
        "    esac",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
        "complete -o default -F _lexi_maint lexi-maint",
    ]) + "\n"  # fmt: skip


def main(argv: list[str]) -> int:
    if argv[1:] == ["man"]:
        sys.stdout.write(manpage())
    elif argv[1:] == ["bash"]:
        sys.stdout.write(bash_completion())
    else:
        print("usage: python -m lexi_maint.cli.manpage man|bash", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
