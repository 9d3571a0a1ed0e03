"""The `precache` command line: process commands, answer and admin commands, scoring and calibration."""

import click

from cli import admin, answers, documents, processes, scoring


@click.group()
def main():
    """precache: instant answers for slow LLMs."""


for _module in (processes, answers, documents, admin, scoring):
    for _command in _module.COMMANDS:
        main.add_command(_command)
