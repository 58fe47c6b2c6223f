"""The `sagepipe` command line."""

from pathlib import Path

import click

from sagepipe import __version__


@click.group()
@click.version_option(__version__, prog_name="sagepipe")
def main() -> None:
    """sagepipe: run and operate the training pipeline."""


@main.group(hidden=True)
def dev() -> None:
    """Developer tooling used by the Makefile."""


@dev.command()
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".build"), show_default=True)
def translate(out_dir: Path) -> None:
    """Translate template.yaml (ASL inlined) for cfn-lint and checkov, with a copy that has every condition on."""
    from sagepipe.template import write_translations

    paths = write_translations(out_dir)
    for path in (paths.translated, paths.translated_all_features, paths.template_all_features):
        click.echo(f"wrote {path}")
